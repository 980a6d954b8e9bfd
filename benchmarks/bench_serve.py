"""Benchmark: warm prediction latency through the Python API and `geolocate serve`, against the
forward-only floor of the same ONNX graph; latency under concurrent clients.

    .venv/bin/python benchmarks/bench_serve.py [--photos ../shared/real-photos/osv5m] [--requests 30] [--rounds 5] [--clients 8]

Issue 18's targets, each a ratio of medians measured in this one run:
- warm latency per photo ≤ 1.2× the forward-only floor: the floor is `session.run` of the same
  graph, with the same session options, on an already decoded and preprocessed photo; the API is
  one in-process `Geolocator.predict(bytes)` (decode, EXIF, preprocess, forward, softmax, positions, rows);
  serve is one HTTP POST to `geolocate serve` on localhost (multipart upload, checks, JSON back);
- p50 / p95 latency and throughput with `--clients` clients posting at once (figure only).

The model is resnet18 with random weights and 150 classes (`bench_predict.py --make`): speed does
not depend on the weights. The three warm variants run interleaved, round by round, in the same
process (the server is a child process), so a change in the machine's load hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_PHOTOS = Path("/work/shared/real-photos/osv5m")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(checkpoint: Path, port: int) -> subprocess.Popen:
    """`geolocate serve` on localhost in a child process, once its health answers."""
    import httpx

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "geolocate", "serve", "--checkpoint", str(checkpoint), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"geolocate serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("geolocate serve did not answer within 120 s")


class Floor:
    """The same graph, the same session options as the predictor; a preprocessed photo in, logits out."""

    def __init__(self, stem: Path, photo: Path) -> None:
        import numpy as np
        import onnxruntime as ort

        from geolocate.data.images import load_rgb
        from geolocate.inference.preprocess import Preprocess

        meta = json.loads(stem.with_suffix(".json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(4, os.cpu_count() or 1)  # as OnnxPredictor.load
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(stem.with_suffix(".onnx")), options, providers=["CPUExecutionProvider"])
        preprocess = Preprocess(meta["preprocessing"])
        self.batch = np.ascontiguousarray(preprocess(load_rgb(photo, preprocess.resize, margin=1.0))[None], dtype=np.float32)

    def __call__(self) -> None:
        self.session.run(None, {"image": self.batch})


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def warm_rounds(args, stem: Path, photos: list[bytes], url: str) -> dict[str, list[float]]:
    """Per-request seconds of the floor, the API and serve, interleaved round by round."""
    import httpx

    from geolocate import Geolocator

    floor = Floor(stem, args.photo_files[0])
    model = Geolocator.load(stem.with_suffix(".safetensors"))
    http = httpx.Client(base_url=url, timeout=120)
    post = lambda data: http.post("/api/predict", files={"photo": ("p.jpg", data, "image/jpeg")}).raise_for_status()  # noqa: E731
    variants = {"floor (forward only)": lambda data: floor(), "API predict(bytes)": lambda data: model.predict(data, top=5),
                "serve HTTP POST": post}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():  # one warm-up each: first-run allocations are not the steady state
        fn(photos[0])
    for r in range(args.rounds):
        for name, fn in variants.items():
            times[name] += [timed(lambda: fn(photos[i % len(photos)])) for i in range(args.requests)]
        print(f"round {r + 1}: " + ", ".join(f"{k} {1000 * statistics.median(v):.1f} ms" for k, v in times.items()), file=sys.stderr)
    http.close()
    return times


def concurrent(url: str, photos: list[bytes], clients: int, total: int) -> tuple[list[float], float]:
    """`total` POSTs from `clients` threads at once: each request's seconds, and the wall time of all."""
    import httpx

    def one(i: int) -> float:
        with httpx.Client(base_url=url, timeout=300) as http:
            t = time.perf_counter()
            http.post("/api/predict", files={"photo": ("p.jpg", photos[i % len(photos)], "image/jpeg")}).raise_for_status()
            return time.perf_counter() - t

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(total)))
    return latencies, time.perf_counter() - t


def report(args, warm: dict[str, list[float]], latencies: list[float], wall: float) -> str:
    ms = lambda s: f"{1000 * s:.1f} ms"  # noqa: E731
    med = {k: statistics.median(v) for k, v in warm.items()}
    floor = med["floor (forward only)"]
    load = os.getloadavg()
    lines = [
        f"resnet18 (random weights, 150 classes, ONNX), {len(args.photo_files)} real photos from {args.photos}; "
        f"{args.rounds} interleaved rounds of {args.requests} requests per variant; {os.cpu_count()} cores; "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n",
        "| warm, one photo at a time | median | p95 | / floor |", "| --- | --- | --- | --- |",
    ]
    for name, values in warm.items():
        lines.append(f"| {name} | {ms(med[name])} | {ms(percentile(values, 95))} | {med[name] / floor:.2f}× |")
    lines += [
        f"\nAPI / floor: **{med['API predict(bytes)'] / floor:.2f}×**, serve / floor: **{med['serve HTTP POST'] / floor:.2f}×** (target ≤ 1.2×).\n",
        f"| {args.clients} concurrent clients, {len(latencies)} requests | p50 | p95 | max | throughput |", "| --- | --- | --- | --- | --- |",
        f"| serve HTTP POST | {ms(percentile(latencies, 50))} | {ms(percentile(latencies, 95))} | {ms(max(latencies))} "
        f"| {len(latencies) / wall:.1f} photos/s (one at a time: {1 / med['serve HTTP POST']:.1f}) |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="Folder of real JPEGs (read in place).")
    parser.add_argument("--count", type=int, default=8, help="Distinct photos cycled through.")
    parser.add_argument("--requests", type=int, default=30, help="Requests per variant per round.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients.")
    parser.add_argument("--concurrent-requests", type=int, default=80, help="Requests sent by the concurrent clients.")
    parser.add_argument("--checkpoint", type=Path, help="A checkpoint stem with an ONNX graph (default: make resnet18).")
    args = parser.parse_args()
    args.photo_files = sorted(args.photos.glob("*.jpg"))[: args.count]
    if not args.photo_files:
        raise SystemExit(f"no .jpg photos in {args.photos}")
    photos = [p.read_bytes() for p in args.photo_files]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        stem = args.checkpoint
        if stem is None:
            stem = Path(tmp) / "model"
            subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_predict.py"), "--make", str(stem)], check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        port = free_port()
        server = start_server(stem.with_suffix(".safetensors"), port)
        try:
            url = f"http://127.0.0.1:{port}"
            warm = warm_rounds(args, stem, photos, url)
            latencies, wall = concurrent(url, photos, args.clients, args.concurrent_requests)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(report(args, warm, latencies, wall))


if __name__ == "__main__":
    main()
