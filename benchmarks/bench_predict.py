"""Benchmark: `geolocate predict` on a folder of 200 photos, and a cold single-photo predict.

    .venv/bin/python benchmarks/bench_predict.py [--photos ../shared/real-photos/osv5m] [--rounds 3] [--quick]

Issue 3's targets: batch prediction (`Predictor.predict_files`: decoding in a thread pool,
batched forwards) at least 1.5× the images/s of a naive loop that opens each photo with PIL,
transforms it and runs the network on it alone; and the wall time of a cold
`geolocate predict photo.jpg --model <ckpt>`, process start to answer.

The model is resnet18 with random weights (speed does not depend on the weights) saved as a
real checkpoint (safetensors + sidecar, 150 classes around France) by `save_checkpoint`. The
200 photos are the real Mapillary photos in `--photos` (read in place), repeated through
symlinks in a temporary folder to reach `--count`. Each measured run is a fresh process, so
its peak RSS (`os.wait4`) is its own; the two methods are interleaved round by round.
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
GEOLOCATE = Path(sys.executable).with_name("geolocate")
DEFAULT_PHOTOS = ROOT.parent / "shared" / "real-photos" / "osv5m"


def make_checkpoint(stem: Path, num_classes: int = 150) -> None:
    """resnet18 (random weights) with `num_classes` cells spread over France, as a checkpoint pair."""
    import numpy as np

    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.models import create_model

    rng = np.random.default_rng(0)
    lats, lons = rng.uniform(43.0, 50.5, num_classes), rng.uniform(-1.5, 7.5, num_classes)
    classes = [{"cell_id": f"cell{i:03d}", "centroid_lat": float(a), "centroid_lon": float(o), "city": f"city{i % 50}"}
               for i, (a, o) in enumerate(zip(lats, lons))]
    model = create_model("resnet18", num_classes=num_classes, pretrained=False)
    save_checkpoint(stem, model, {"classes": classes})


def make_folder(source: Path, folder: Path, count: int) -> list[Path]:
    """`count` photos in `folder`: symlinks to the JPEGs of `source`, repeated as needed."""
    originals = sorted(source.glob("*.jpg"))
    if not originals:
        raise SystemExit(f"no .jpg photos in {source}")
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for i in range(count):
        link = folder / f"{i:04d}-{originals[i % len(originals)].name}"
        link.symlink_to(originals[i % len(originals)].resolve())
        links.append(link)
    return links


def child(args: argparse.Namespace) -> None:
    """One timed pass over the folder with one method, in this process; prints a JSON line."""
    import torch

    from geolocate.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.checkpoint)
    files = sorted(Path(args.folder).iterdir())
    t, cpu = time.perf_counter(), time.process_time()
    if args.method == "batched":
        rows, failures = predictor.predict_files(files, top=5, batch_size=args.batch)
        assert not failures and len(rows) == len(files)
    else:
        _naive(predictor, files)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"images_per_s": len(files) / seconds, "seconds": seconds, "cpu_ms_per_image": 1000 * cpu / len(files)}))


def _naive(predictor, files: list[Path]) -> None:
    """The reference: open with PIL, transform, forward one photo at a time, softmax, top-5."""
    import numpy as np
    import torch
    from PIL import Image

    from geolocate.evaluate.metrics import softmax

    with torch.inference_mode():
        for f in files:
            with Image.open(f) as img:
                x = predictor.transform(img.convert("RGB"))
            probs = softmax(predictor.model(x[None]).float().numpy(), predictor.temperature)[0]
            np.argsort(-probs)[:5]


def measure(cmd: list[str], threads: int) -> dict:
    """Run `cmd` to completion: wall and CPU (user + sys) seconds, peak RSS (MB), the last stdout line."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({status}): {' '.join(map(str, cmd))}")
    lines = out.strip().splitlines()
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
            "last": lines[-1] if lines else ""}


def run_method(method: str, checkpoint: Path, folder: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", "--method", method, "--checkpoint", str(checkpoint),
           "--folder", str(folder), "--threads", str(args.threads), "--batch", str(args.batch)]
    run = measure(cmd, args.threads)
    return json.loads(run.pop("last")) | run


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """Markdown tables of the medians, with the ratio computed from the same run's medians."""
    b, n, cli, cold, torch_ = (results[k] for k in ("batched", "naive", "cli", "cold", "import torch"))
    runs = lambda rs, k: ", ".join(f"{r[k]:.2f}" for r in rs)  # noqa: E731
    return "\n".join([
        f"resnet18 (random weights, 150 classes), {args.count} photos, batch {args.batch}, torch threads {args.threads}, "
        f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f} at the end\n",
        "| method | images/s (median) | runs (images/s) | CPU / image (median) | peak RSS (median) |",
        "| --- | --- | --- | --- | --- |",
        f"| `Predictor.predict_files` (thread-pool decode, batched forward) | {med(b, 'images_per_s'):.2f} | {runs(b, 'images_per_s')} "
        f"| {med(b, 'cpu_ms_per_image'):.0f} ms | {med(b, 'peak_mb'):.0f} MB |",
        f"| naive loop (PIL open, transform, forward one at a time) | {med(n, 'images_per_s'):.2f} | {runs(n, 'images_per_s')} "
        f"| {med(n, 'cpu_ms_per_image'):.0f} ms | {med(n, 'peak_mb'):.0f} MB |",
        f"\nSpeed-up of predict_files over the naive loop: **{med(b, 'images_per_s') / med(n, 'images_per_s'):.2f}×** (target ≥ 1.5×).\n",
        "| process, start to exit | wall (median) | runs (s) | CPU user+sys (median) | peak RSS (median) |",
        "| --- | --- | --- | --- | --- |",
        f"| `geolocate predict <folder of {args.count}> --model <ckpt>` | {med(cli, 'wall_s'):.2f} s | {runs(cli, 'wall_s')} "
        f"| {med(cli, 'cpu_s'):.2f} s | {med(cli, 'peak_mb'):.0f} MB |",
        f"| `geolocate predict photo.jpg --model <ckpt>` (cold, one photo) | {med(cold, 'wall_s'):.2f} s | {runs(cold, 'wall_s')} "
        f"| {med(cold, 'cpu_s'):.2f} s | {med(cold, 'peak_mb'):.0f} MB |",
        f"| `python -c \"import torch\"` (reference) | {med(torch_, 'wall_s'):.2f} s | {runs(torch_, 'wall_s')} "
        f"| {med(torch_, 'cpu_s'):.2f} s | {med(torch_, 'peak_mb'):.0f} MB |",
    ])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="Folder of real JPEGs (read in place).")
    parser.add_argument("--count", type=int, default=200, help="Photos in the predicted folder.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each batch method, interleaved.")
    parser.add_argument("--cold-runs", type=int, default=5, help="Runs of the cold single-photo predict.")
    parser.add_argument("--batch", type=int, default=32, help="predict_files batch size (predict.batch_size).")
    parser.add_argument("--threads", type=int, default=2, help="torch threads and OMP_NUM_THREADS.")
    parser.add_argument("--quick", action="store_true", help="40 photos, 1 round, 2 cold runs.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.count, args.rounds, args.cold_runs = 40, 1, 2
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        return child(args)
    results: dict[str, list[dict]] = {k: [] for k in ("batched", "naive", "cli", "cold", "import torch")}
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        checkpoint, folder = tmp / "model", tmp / "photos"
        make_checkpoint(checkpoint)
        files = make_folder(args.photos, folder, args.count)
        ckpt = str(checkpoint) + ".safetensors"
        for i in range(args.rounds):
            for method in ("batched", "naive"):
                results[method].append(run_method(method, checkpoint, folder, args))
                print(f"round {i + 1} {method}: {json.dumps(results[method][-1])}", file=sys.stderr)
            results["cli"].append(measure([str(GEOLOCATE), "predict", str(folder), "--model", ckpt], args.threads))
        for i in range(args.cold_runs):
            results["cold"].append(measure([str(GEOLOCATE), "predict", str(files[0]), "--model", ckpt], args.threads))
            results["import torch"].append(measure([sys.executable, "-c", "import torch"], args.threads))
            print(f"cold {i + 1}: {results['cold'][-1]['wall_s']:.2f} s, import torch {results['import torch'][-1]['wall_s']:.2f} s", file=sys.stderr)
    print(report(results, args))


if __name__ == "__main__":
    main()
