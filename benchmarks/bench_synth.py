"""Benchmark `geolocate synth` and `geolocate prepare`, and check that the photos are learnable.

    .venv/bin/python benchmarks/bench_synth.py [--photos 1000] [--runs 3] [--sizes 96 160 256]
    .venv/bin/python benchmarks/bench_synth.py --learn [--photos 1800] [--size 96] [--cnn]

Speed: each run draws `--photos` photos into a fresh directory with `run_synth` (all cores,
as the CLI does), then prepares them with `run_prepare` (longest side 64 px); the medians of
photos per minute (wall clock) are printed. The target is at least 1,000 photos a minute.

Learnability (`--learn`): draws one data set (batch 01, the tiny profile's cities), labels every
photo with its H3 cell at resolutions 5 and 6, holds out a fifth of the sequences (or of the
drives, the stricter test: no neighbouring sequence in train), and compares a ridge classifier
and a 1-nearest-neighbour on tiny pixel features with the majority class: top-1 accuracy, and the
median error in km of the predicted cell's train centroid (1-NN: of the neighbour's position).
`--cnn` adds timm's `test_resnet` trained from scratch for 6 epochs at 64 px on CPU (res 6).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geolocate.acquire.prepare import run_prepare  # noqa: E402
from geolocate.config import DataConfig, SynthConfig  # noqa: E402
from geolocate.paths import DataPaths  # noqa: E402
from geolocate.synth import run_synth  # noqa: E402


def bench_speed(photos: int, sizes: list[int], runs: int) -> None:
    print("| photos | size | views | synth photos/min (median) | prepare photos/min (median) |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for size in sizes:
        for multiview in (False, True):
            synth_rates, prepare_rates = [], []
            for run in range(runs):
                with tempfile.TemporaryDirectory() as tmp:
                    data = DataPaths(Path(tmp))
                    cfg = SynthConfig(n_photos=photos, size=size, seed=run, multiview=multiview)
                    report = run_synth(cfg, data)
                    prepared = run_prepare(DataConfig(max_size=64), data)
                    synth_rates.append(report.photos_per_minute)
                    prepare_rates.append(60 * prepared.processed / prepared.seconds)
            views = "four" if multiview else "one"
            print(f"| {report.photos} | {size} | {views} | {statistics.median(synth_rates):,.0f} "
                  f"| {statistics.median(prepare_rates):,.0f} |", flush=True)


def _features(root: Path, paths) -> np.ndarray:
    from PIL import Image

    rows = []
    for path in paths:
        image = Image.open(root / path).convert("RGB")
        layout = np.asarray(image.resize((8, 8), Image.BILINEAR), dtype=np.float32).ravel() / 255
        hsv = np.asarray(image.convert("HSV").resize((32, 32)), dtype=np.float32).reshape(-1, 3) / 256
        hist = np.concatenate([np.histogram(hsv[:, c], bins=12, range=(0, 1))[0] for c in range(3)]) / 1024
        rows.append(np.concatenate([layout, hist]))
    return np.stack(rows)


def _evaluate(x, lat, lon, cells, groups, seed: int = 0) -> dict[str, float]:
    from geolocate.geo import haversine_km

    classes, y = np.unique(cells, return_inverse=True)
    unique = np.unique(groups)
    test = np.isin(groups, np.random.default_rng(seed).choice(unique, len(unique) // 5, replace=False))
    train = ~test
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
    w = np.linalg.solve(x[train].T @ x[train] + np.eye(x.shape[1]), x[train].T @ np.eye(len(classes))[y][train])
    ridge = (x[test] @ w).argmax(1)
    nearest = ((x[test][:, None] - x[train][None]) ** 2).sum(-1).argmin(1)
    majority = np.bincount(y[train]).argmax()
    centroid = np.array([[lat[train][y[train] == c].mean(), lon[train][y[train] == c].mean()]
                         if (y[train] == c).any() else [np.nan, np.nan] for c in range(len(classes))])
    guess = centroid[ridge]
    guess = np.where(np.isnan(guess), centroid[majority], guess)
    return {
        "classes": len(classes), "test": int(test.sum()),
        "majority": float(np.mean(y[test] == majority)), "ridge": float(np.mean(ridge == y[test])),
        "1nn": float(np.mean(y[train][nearest] == y[test])),
        "km_majority": float(np.median(haversine_km(lat[test], lon[test], *centroid[majority]))),
        "km_ridge": float(np.median(haversine_km(lat[test], lon[test], guess[:, 0], guess[:, 1]))),
        "km_1nn": float(np.median(haversine_km(lat[test], lon[test], lat[train][nearest], lon[train][nearest]))),
    }


def _cnn(images: np.ndarray, y: np.ndarray, test: np.ndarray, epochs: int = 6) -> np.ndarray:
    """Train timm's tiny `test_resnet` on the train photos; predicted classes of the test photos."""
    import timm
    import torch

    torch.manual_seed(0)
    x = (torch.tensor(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    labels = torch.tensor(y)
    model = timm.create_model("test_resnet", num_classes=int(y.max()) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    train = np.where(~test)[0]
    for epoch in range(epochs):
        model.train()
        order = np.random.default_rng(epoch).permutation(train)
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            flip = torch.rand(len(batch), 1, 1, 1) < 0.5  # mirror: a street seen the other way round
            loss = torch.nn.functional.cross_entropy(model(torch.where(flip, x[batch].flip(3), x[batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        return model(x[test]).argmax(1).numpy()


def _cnn_rows(root: Path, paths, lat, lon, sequences, drives) -> None:
    import h3
    from PIL import Image

    from geolocate.geo import haversine_km

    images = np.stack([np.asarray(Image.open(root / p).convert("RGB").resize((64, 64), Image.BILINEAR)) for p in paths])
    _, y = np.unique([h3.latlng_to_cell(a, b, 6) for a, b in zip(lat, lon)], return_inverse=True)
    print("\n| CNN (test_resnet, 6 epochs, 64 px), res 6 | held out | majority | top-1 | median km majority | median km CNN |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, groups in (("sequences", sequences), ("drives", drives)):
        unique = np.unique(groups)
        test = np.isin(groups, np.random.default_rng(0).choice(unique, len(unique) // 5, replace=False))
        predicted = _cnn(images, y, test)
        majority = np.bincount(y[~test]).argmax()
        centroid = {c: (lat[~test][y[~test] == c].mean(), lon[~test][y[~test] == c].mean()) for c in np.unique(y[~test])}
        guess = np.array([centroid.get(c, centroid[majority]) for c in predicted])
        km = haversine_km(lat[test], lon[test], guess[:, 0], guess[:, 1])
        km_majority = haversine_km(lat[test], lon[test], *centroid[majority])
        print(f"| | {name} | {np.mean(y[test] == majority):.3f} | {np.mean(predicted == y[test]):.3f} "
              f"| {np.median(km_majority):.1f} | {np.median(km):.1f} |", flush=True)


def bench_learn(photos: int, size: int, cnn: bool = False) -> None:
    import polars as pl

    with tempfile.TemporaryDirectory() as tmp:
        data = DataPaths(Path(tmp))
        run_synth(SynthConfig(n_photos=photos, size=size, batches=["01"]), data)
        manifest = pl.read_parquet(data.manifest)
        x = _features(data.root, manifest["path"])
        lat, lon = manifest["lat"].to_numpy(), manifest["lon"].to_numpy()
        sequences = manifest["sequence_id"].to_numpy()
        drives = np.array([s.rsplit("s", 1)[0] for s in sequences])
        _linear_rows(x, lat, lon, sequences, drives)
        if cnn:
            _cnn_rows(data.root, manifest["path"], lat, lon, sequences, drives)


def _linear_rows(x, lat, lon, sequences, drives) -> None:
    import h3

    print("| res | held out | classes | test photos | majority | ridge | 1-NN | median km majority | ridge | 1-NN |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for res in (5, 6):
        cells = np.array([h3.latlng_to_cell(a, b, res) for a, b in zip(lat, lon)])
        for name, groups in (("sequences", sequences), ("drives", drives)):
            r = _evaluate(x, lat, lon, cells, groups)
            print(f"| {res} | {name} | {r['classes']} | {r['test']} | {r['majority']:.3f} | {r['ridge']:.3f} | {r['1nn']:.3f} "
                  f"| {r['km_majority']:.1f} | {r['km_ridge']:.1f} | {r['km_1nn']:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 160, 256])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--learn", action="store_true", help="Run the learnability check instead of the speed benchmark.")
    parser.add_argument("--cnn", action="store_true", help="With --learn: also train a tiny CNN (needs torch and timm; minutes).")
    args = parser.parse_args()
    if args.learn:
        bench_learn(args.photos or 1800, args.size, args.cnn)
    else:
        bench_speed(args.photos or 1000, args.sizes, args.runs)


if __name__ == "__main__":
    main()
