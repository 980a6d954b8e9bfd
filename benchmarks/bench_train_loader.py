"""Benchmark: resnet18 training throughput with the real data loader versus in-memory tensors.

    .venv/bin/python benchmarks/bench_train_loader.py [--project DIR] [--rounds 3] [--quick]

Issue 3's target: the real loader (processed JPEGs from disk at `data.max_size` 512 →
`PhotoDataset` + `train_transform` → `make_loader` with workers) costs at most 15 % of the
throughput of the same loop fed with pre-decoded, pre-augmented tensors
(loader overhead = 1 − real / in-memory).

Both variants run the library's own loop: `build_session(cfg, paths, dist)` then
`train_one_epoch(session, 0)`, with resnet18 (random weights, 224 px), its AdamW, its geo loss
and the same batch size; only `session.train_loader` differs. The loop's `_step` is wrapped to
time-stamp each step, so warm-up steps are left out and the time the loop spends waiting for a
batch (between one step's end and the next one's start) is measured separately.

Each run is a fresh process (its peak RSS is its own, read with `os.wait4`); the variants are
interleaved round by round because the machine is shared, and the table gives medians and the
overhead computed from the medians of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Synthetic photos are square; 512 px survives `prepare` (max_size 512) unchanged, so the loader
# decodes what a real v1 run decodes: 512 px JPEGs at quality 85.
PROJECT_SETS = ["synth.n_photos=800", "synth.size=512", "data.max_size=512"]


def make_project(root: Path) -> None:
    """A synthetic project under `root`: synth → prepare (512 px) → cells → split (tiny profile)."""
    from geolocate.config import load_config
    from geolocate.ops.demo import prepare_data, working_directory
    from geolocate.paths import ProjectPaths

    with working_directory(root):
        cfg = load_config(None, "tiny", PROJECT_SETS)
        prepare_data(cfg, ProjectPaths.from_config(cfg.paths))


def child(args: argparse.Namespace) -> None:
    """One measured run in this process; prints a JSON line."""
    import torch

    from geolocate.config import load_config
    from geolocate.ops.demo import working_directory
    from geolocate.paths import ProjectPaths
    from geolocate.train import loop
    from geolocate.train.distributed import setup
    from geolocate.train.setup import build_session

    torch.set_num_threads(args.threads)
    workers = 0 if args.variant == "memory" else args.workers
    sets = [
        "model.name=resnet18", "model.pretrained=false", f"train.batch_size={args.batch}",
        f"train.max_steps_per_epoch={args.warmup + args.steps}", f"data.num_workers={workers}",
        f"train.cpu_threads={args.threads}", "data.max_size=512",
    ]
    with working_directory(Path(args.project)):
        cfg = load_config(None, None, sets)
        session = build_session(cfg, ProjectPaths.from_config(cfg.paths), setup())
        if args.variant == "memory":
            session.train_loader = _in_memory_loader(session, args.batch)
        starts, ends = _instrument(loop)
        epoch = loop.train_one_epoch(session, 0)
    print(json.dumps(_summary(args, starts, ends, epoch, _worker_peaks_mb())))


def loader_cpu(args: argparse.Namespace) -> None:
    """CPU ms per photo of the real dataset (decode + train_transform), one thread; prints JSON."""
    import torch

    from geolocate.config import load_config
    from geolocate.ops.demo import working_directory
    from geolocate.paths import ProjectPaths
    from geolocate.train.distributed import setup
    from geolocate.train.setup import build_session

    torch.set_num_threads(1)
    with working_directory(Path(args.project)):
        cfg = load_config(None, None, ["model.name=resnet18", "model.pretrained=false", "data.num_workers=0", "data.max_size=512"])
        dataset = build_session(cfg, ProjectPaths.from_config(cfg.paths), setup()).train_loader.dataset
        passes = []
        for _ in range(3):  # the first pass also warms the page cache
            t = time.process_time()
            for i in range(64):
                dataset[i]
            passes.append(1000 * (time.process_time() - t) / 64)
    print(json.dumps({"loader_cpu_ms_per_image": statistics.median(passes[1:])}))


def _in_memory_loader(session, batch: int):
    """The same loader settings over `4 × batch` photos decoded and augmented once, up front."""
    import torch

    from geolocate.data.dataset import InMemoryDataset
    from geolocate.data.loaders import make_loader

    class InMemoryWithPosition(InMemoryDataset):
        # The loop's geo loss reads lat/lon, which InMemoryDataset does not carry.
        def __init__(self, images, labels, n: int) -> None:
            super().__init__(images, labels)
            self.n = n

        def __len__(self) -> int:
            return self.n

        def __getitem__(self, i: int) -> dict:
            k = i % len(self.labels)
            return {**super().__getitem__(k), "lat": torch.tensor(48.85, dtype=torch.float64),
                    "lon": torch.tensor(2.35, dtype=torch.float64)}

    real = session.train_loader.dataset
    samples = [real[i] for i in range(min(len(real), 4 * batch))]
    images = torch.stack([s["image"] for s in samples])
    labels = torch.stack([s["label"] for s in samples])
    return make_loader(InMemoryWithPosition(images, labels, len(real)), batch, True, 0, session.cfg.train.seed)


def _instrument(loop) -> tuple[list[float], list[float]]:
    """Wrap the loop's `_step` to record when each step starts and ends."""
    starts, ends = [], []
    step = loop._step

    def timed(s, batch):
        starts.append(time.perf_counter())
        loss = step(s, batch)
        ends.append((time.perf_counter(), time.process_time()))
        return loss

    loop._step = timed
    return starts, ends


def _summary(args, starts: list[float], ends: list[tuple[float, float]], epoch: dict, worker_peaks: list[float]) -> dict:
    w, images = args.warmup, args.batch * (len(ends) - args.warmup)
    # From the end of the last warm-up step to the end of the last step.
    span, cpu = ends[-1][0] - ends[w - 1][0], ends[-1][1] - ends[w - 1][1]
    waits = [starts[i] - ends[i - 1][0] for i in range(w, len(starts))]
    return {
        "images_per_s": images / span,
        "main_cpu_ms_per_image": 1000 * cpu / images,
        "step_s": statistics.median(e[0] - s for s, e in zip(starts[w:], ends[w:])),
        "wait_share": sum(waits) / span,
        "epoch_images_per_s": epoch["images_per_s"],
        "worker_peak_mb": worker_peaks,
    }


def _worker_peaks_mb() -> list[float]:
    """Peak RSS (VmHWM) of this process's live children: the DataLoader workers."""
    peaks = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
            peaks.append(kb / 1024)
    return peaks


def run_child(project: str, variant: str, workers: int, threads: int, args: argparse.Namespace) -> dict:
    """One run in a fresh process; adds the process tree's peak RSS and wall time."""
    cmd = [sys.executable, __file__, "--child", "--project", project, "--variant", variant,
           "--workers", str(workers), "--threads", str(threads), "--batch", str(args.batch),
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child {variant} failed ({status}); rerun: {' '.join(cmd)}")
    run = json.loads(out.strip().splitlines()[-1])
    return run | {"peak_mb": usage.ru_maxrss / 1024, "process_s": time.perf_counter() - t}


def variants(args: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    """(label, variant, workers, torch threads) for every configuration measured."""
    out = []
    for threads in args.threads_list:
        out.append((f"in-memory, {threads} thr", "memory", 0, threads))
        out += [(f"disk, {w} worker{'s' * (w > 1)}, {threads} thr", "disk", w, threads) for w in args.workers_list]
    return out


def table(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """Markdown: medians per configuration and the overhead against in-memory at the same threads."""
    lines = ["| configuration | images/s (median) | runs (images/s) | loop waits for data | step (median) | main CPU / image | overhead vs in-memory | peak RSS main | peak RSS per worker |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, variant, workers, threads in variants(args):
        runs = results[label]
        rate = statistics.median(r["images_per_s"] for r in runs)
        memory = statistics.median(r["images_per_s"] for r in results[f"in-memory, {threads} thr"])
        overhead = "—" if variant == "memory" else f"{1 - rate / memory:+.1%}"
        peaks = [p for r in runs for p in r["worker_peak_mb"]]
        worker_peak = f"{max(peaks):.0f} MB" if peaks else "—"
        each = ", ".join(f"{r['images_per_s']:.1f}" for r in runs)
        lines.append(
            f"| {label} | {rate:.1f} | {each} "
            f"| {statistics.median(r['wait_share'] for r in runs):.0%} | {statistics.median(r['step_s'] for r in runs):.2f} s "
            f"| {statistics.median(r['main_cpu_ms_per_image'] for r in runs):.0f} ms | {overhead} | {statistics.median(r['peak_mb'] for r in runs):.0f} MB | {worker_peak} |"
        )
    return "\n".join(lines)


def estimate(results: dict[str, list[dict]], loader: dict, args: argparse.Namespace) -> str:
    """The overhead expected when CPU time is the bottleneck: loader CPU / (loader + training CPU)."""
    lines = []
    for threads in args.threads_list:
        train = statistics.median(r["main_cpu_ms_per_image"] for r in results[f"in-memory, {threads} thr"])
        load = loader["loader_cpu_ms_per_image"]
        lines.append(f"\nCPU per image: loader (decode + train_transform, 1 thread) {load:.1f} ms; training step "
                     f"(in-memory, {threads} torch threads) {train:.0f} ms; loader share of the CPU work "
                     f"{load / (load + train):.1%} (the overhead to expect when the cores are the bottleneck).")
    return "".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="An existing project made by a previous run (default: build one in a temp dir).")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each configuration, interleaved.")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="Measured steps per run.")
    parser.add_argument("--warmup", type=int, default=1, help="Steps run before timing.")
    parser.add_argument("--workers-list", type=int, nargs="+", default=[1, 2], help="DataLoader workers to try.")
    parser.add_argument("--threads-list", type=int, nargs="+", default=[2], help="torch threads to try.")
    parser.add_argument("--quick", action="store_true", help="1 round, 2 steps after 1 warm-up, batch 8, 1 worker.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.warmup, args.batch, args.workers_list = 1, 2, 1, 8, [1]
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        return loader_cpu(args) if args.variant == "loader-cpu" else child(args)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        project = args.project or tmp
        if not args.project:
            t = time.perf_counter()
            make_project(Path(tmp))
            print(f"built the synthetic project in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        results: dict[str, list[dict]] = {label: [] for label, *_ in variants(args)}
        for i in range(args.rounds):
            for label, variant, workers, threads in variants(args):
                run = run_child(project, variant, workers, threads, args)
                print(f"round {i + 1} {label}: {json.dumps(run)}", file=sys.stderr)
                results[label].append(run)
        loader = run_child(project, "loader-cpu", 0, 1, args)
    print(f"resnet18, 224 px, batch {args.batch}, {args.steps} steps after {args.warmup} warm-up, "
          f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f} at the end\n")
    print(table(results, args))
    print(estimate(results, loader, args))


if __name__ == "__main__":
    main()
