"""Benchmark: predict's two paths (ONNX without torch, torch) cold and in batch, against their floors.

    .venv/bin/python benchmarks/bench_predict.py [--photos ../shared/real-photos/osv5m] [--rounds 3] [--quick]

Issue 10's targets, each a ratio of medians measured in this one run:
- cold single-photo `geolocate predict photo.jpg` on a model with an exported graph ≤ 1.3× the floor:
  a bare script that imports onnxruntime + PIL, opens the same graph and runs the same photo;
- `geolocate --help` ≤ 0.2 s (wall, fresh process);
- torch batch predict (`Predictor.predict_files`) ≥ 0.9× the forward-only limit (the same batches
  of already-decoded tensors, forward only) and ≥ 1.5× a naive one-at-a-time loop.

The model is resnet18 with random weights (speed does not depend on the weights) and 150 classes
around France, saved by `save_checkpoint` and exported by `export_onnx` (parity-checked). The
photos are the real Mapillary JPEGs in `--photos`, repeated through symlinks to reach `--count`.
Every measured run is a fresh process (`os.wait4` gives its CPU time and peak RSS); the variants
are interleaved round by round so the machine's load hits them alike.
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
GEOLOCATE = [sys.executable, "-m", "geolocate"]
DEFAULT_PHOTOS = Path("/work/shared/real-photos/osv5m")
BATCH_METHODS = ("batched", "forward-only", "naive")
COLD = ("floor", "cold onnx", "cold torch", "--help")

# The floor: what any ONNX predictor must do for one photo (imports, session, decode, forward).
FLOOR = """
import sys, numpy as np, onnxruntime as ort
from PIL import Image
graph, photo, side = sys.argv[1], sys.argv[2], 224
s = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
img = Image.open(photo); img.draft("RGB", (side, side)); img = img.convert("RGB").resize((side, side))
x = ((np.asarray(img, np.float32) / 255 - 0.45) / 0.225).transpose(2, 0, 1)[None]
print(int(s.run(["logits"], {"image": np.ascontiguousarray(x)})[0].argmax()))
"""


def make_checkpoint(stem: Path, num_classes: int = 150) -> None:
    """resnet18 (random weights) with `num_classes` cells spread over France, as a checkpoint pair + graph."""
    import numpy as np

    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.onnx_export import export_onnx
    from geolocate.models import create_model

    rng = np.random.default_rng(0)
    lats, lons = rng.uniform(43.0, 50.5, num_classes), rng.uniform(-1.5, 7.5, num_classes)
    classes = [{"cell_id": f"cell{i:03d}", "centroid_lat": float(a), "centroid_lon": float(o), "city": f"city{i % 50}"}
               for i, (a, o) in enumerate(zip(lats, lons))]
    model = create_model("resnet18", num_classes=num_classes, pretrained=False)
    save_checkpoint(stem, model, {"classes": classes})
    export_onnx(stem)


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
    """One timed pass over the folder with one method (torch path), in this process; prints a JSON line."""
    import numpy as np
    import torch

    from geolocate.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.checkpoint)
    files = sorted(Path(args.folder).iterdir())
    if args.method == "forward-only":  # decode everything first, then time the forwards alone
        arrays = [predictor._decode(f)[1] for f in files]
        batches = [np.stack(arrays[i:i + args.batch]) for i in range(0, len(arrays), args.batch)]
    t, cpu = time.perf_counter(), time.process_time()
    if args.method == "batched":
        rows, failures = predictor.predict_files(files, top=5, batch_size=args.batch)
        assert not failures and len(rows) == len(files)
    elif args.method == "forward-only":
        for batch in batches:
            predictor._forward(batch)
    else:
        _naive(predictor, files)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"images_per_s": len(files) / seconds, "seconds": seconds, "cpu_ms_per_image": 1000 * cpu / len(files)}))


def _naive(predictor, files: list[Path]) -> None:
    """The reference: open with PIL, torchvision eval transform, forward one photo at a time, softmax, top-5."""
    import numpy as np
    import torch
    from PIL import Image

    from geolocate.data.transforms import eval_transform
    from geolocate.evaluate.metrics import softmax

    transform = eval_transform(predictor.meta["preprocessing"])
    with torch.inference_mode():
        for f in files:
            with Image.open(f) as img:
                x = transform(img.convert("RGB"))
            probs = softmax(predictor.model(x[None]).float().numpy(), predictor.temperature)[0]
            np.argsort(-probs)[:5]


def measure(cmd: list[str], threads: int) -> dict:
    """Run `cmd` to completion: wall and CPU (user + sys) seconds, peak RSS (MB), the last stdout line."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
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


def cold_commands(checkpoint: Path, photo: Path) -> dict[str, list[str]]:
    model = str(checkpoint) + ".safetensors"
    return {
        "floor": [sys.executable, "-c", FLOOR, str(checkpoint) + ".onnx", str(photo)],
        "cold onnx": [*GEOLOCATE, "predict", str(photo), "--checkpoint", model],
        "cold torch": [*GEOLOCATE, "predict", str(photo), "--checkpoint", model, "--engine", "torch"],
        "--help": [*GEOLOCATE, "--help"],
    }


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """Markdown tables of the medians, with every ratio computed from this run's medians."""
    runs = lambda rs, k: ", ".join(f"{r[k]:.2f}" for r in rs)  # noqa: E731
    b, f, n = (results[k] for k in BATCH_METHODS)
    lines = [
        f"resnet18 (random weights, 150 classes), {args.count} photos, batch {args.batch}, torch threads {args.threads}, "
        f"{args.rounds} interleaved rounds, {args.cold_runs} cold runs; load average {os.getloadavg()[0]:.1f} at the end\n",
        "| torch path, in one process | images/s (median) | runs | CPU / image | peak RSS |",
        "| --- | --- | --- | --- | --- |",
    ]
    labels = {"batched": "`Predictor.predict_files` (decode threads + batched forward)",
              "forward-only": "forward-only limit (pre-decoded batches)", "naive": "naive loop (PIL, transform, one forward each)"}
    for name, rs in zip(BATCH_METHODS, (b, f, n)):
        lines.append(f"| {labels[name]} | {med(rs, 'images_per_s'):.2f} | {runs(rs, 'images_per_s')} "
                     f"| {med(rs, 'cpu_ms_per_image'):.0f} ms | {med(rs, 'peak_mb'):.0f} MB |")
    lines += [
        f"\nbatch / forward-only: **{med(b, 'images_per_s') / med(f, 'images_per_s'):.2f}×** (target ≥ 0.9×); "
        f"batch / naive: **{med(b, 'images_per_s') / med(n, 'images_per_s'):.2f}×** (target ≥ 1.5×).\n",
        "| process, start to exit | wall (median) | runs (s) | CPU user+sys | peak RSS |",
        "| --- | --- | --- | --- | --- |",
    ]
    return "\n".join(lines + cold_lines(results))


def cold_lines(results: dict[str, list[dict]]) -> list[str]:
    """The cold processes' table and their ratios to the floor (wall, and CPU: steadier under load)."""
    runs = lambda rs, k: ", ".join(f"{r[k]:.2f}" for r in rs)  # noqa: E731
    lines = []
    for name in COLD:
        rs = results[name]
        lines.append(f"| {name} | {med(rs, 'wall_s'):.3f} s | {runs(rs, 'wall_s')} | {med(rs, 'cpu_s'):.2f} s | {med(rs, 'peak_mb'):.0f} MB |")
    floor, floor_cpu = med(results["floor"], "wall_s"), med(results["floor"], "cpu_s")
    lines.append(f"\ncold onnx / floor: **{med(results['cold onnx'], 'wall_s') / floor:.2f}×** wall, "
                 f"{med(results['cold onnx'], 'cpu_s') / floor_cpu:.2f}× CPU (target ≤ 1.3×); "
                 f"cold torch / floor: {med(results['cold torch'], 'wall_s') / floor:.2f}×; "
                 f"`--help`: **{med(results['--help'], 'wall_s'):.3f} s** wall, {med(results['--help'], 'cpu_s'):.3f} s CPU (target ≤ 0.2 s).")
    return lines


def report_cold(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    head = [f"{args.cold_runs} interleaved cold runs of each process; load average {os.getloadavg()[0]:.1f} at the end\n",
            "| process, start to exit | wall (median) | runs (s) | CPU user+sys | peak RSS |", "| --- | --- | --- | --- | --- |"]
    return "\n".join(head + cold_lines(results))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="Folder of real JPEGs (read in place).")
    parser.add_argument("--count", type=int, default=200, help="Photos in the predicted folder.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each batch method, interleaved.")
    parser.add_argument("--cold-runs", type=int, default=7, help="Runs of each cold process, interleaved.")
    parser.add_argument("--batch", type=int, default=32, help="predict_files batch size (predict.batch_size).")
    parser.add_argument("--threads", type=int, default=2, help="torch threads and OMP_NUM_THREADS.")
    parser.add_argument("--quick", action="store_true", help="40 photos, 1 round, 2 cold runs.")
    parser.add_argument("--cold-only", action="store_true", help="Only the cold processes (floor, cold onnx/torch, --help).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--make", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.count, args.rounds, args.cold_runs = 40, 1, 2
    return args


def main() -> None:
    args = parse_args()
    if args.make:
        return make_checkpoint(Path(args.make))
    if args.child:
        return child(args)
    results: dict[str, list[dict]] = {k: [] for k in (*BATCH_METHODS, *COLD)}
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        checkpoint, folder = tmp / "model", tmp / "photos"
        # In a child: a parent holding torch would lend its 1 GB to every fork's peak RSS.
        subprocess.run([sys.executable, __file__, "--make", str(checkpoint)], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        files = make_folder(args.photos, folder, args.count)
        for i in range(0 if args.cold_only else args.rounds):
            for method in BATCH_METHODS:
                results[method].append(run_method(method, checkpoint, folder, args))
                print(f"round {i + 1} {method}: {json.dumps(results[method][-1])}", file=sys.stderr)
        commands = cold_commands(checkpoint, files[0])
        for i in range(args.cold_runs):
            for name in COLD:
                results[name].append(measure(commands[name], args.threads))
            print(f"cold {i + 1}: " + ", ".join(f"{k} {results[k][-1]['wall_s']:.2f} s" for k in COLD), file=sys.stderr)
    print(report_cold(results, args) if args.cold_only else report(results, args))


if __name__ == "__main__":
    main()
