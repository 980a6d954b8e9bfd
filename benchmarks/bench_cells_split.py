"""Benchmark: `cells` + `split` on a 1,000,000-row synthetic manifest (no images).

    .venv/bin/python benchmarks/bench_cells_split.py [--rows 1000000] [--runs 3]

The manifest is plausible rather than random: the 50 catalog cities (photos weighted by city
kind), sequences of ~12 photos 5 m apart along a heading, three sequences per drive, a few
thousand creators. Each run is a fresh process (so peak RSS is that run's alone) executing
`run_cells` then `run_split` with the v1 profile; the parent prints every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
KIND_WEIGHT = {"metropolis": 4.0, "medium": 2.0, "rural": 1.0}
KIND_SPREAD_M = {"metropolis": 4000.0, "medium": 2500.0, "rural": 1500.0}


def synthetic_manifest(rows: int, seed: int = 0, per_sequence: int = 12) -> pl.DataFrame:
    """`rows` manifest rows in sequences of `per_sequence` photos around the French catalog cities."""
    from geolocate.acquire.catalog import catalog
    from geolocate.geo import offset_m
    from geolocate.schemas import MANIFEST, conform

    rng = np.random.default_rng(seed)
    areas = catalog("fr")
    n_seq = -(-rows // per_sequence)
    weights = np.array([KIND_WEIGHT[a.kind] for a in areas])
    city = rng.choice(len(areas), n_seq, p=weights / weights.sum())
    spread = np.array([KIND_SPREAD_M[a.kind] for a in areas])[city]
    start_n, start_e = rng.normal(0, 1, (2, n_seq)) * spread
    heading = rng.uniform(0, 2 * np.pi, n_seq)
    seq = np.repeat(np.arange(n_seq), per_sequence)[:rows]
    step = np.tile(np.arange(per_sequence), n_seq)[:rows] * 5.0
    c_lat = np.array([a.center[0] for a in areas])[city][seq]
    c_lon = np.array([a.center[1] for a in areas])[city][seq]
    lat, lon = offset_m(c_lat, c_lon, start_n[seq] + np.cos(heading[seq]) * step, start_e[seq] + np.sin(heading[seq]) * step)
    drive = seq // 3
    creator = rng.integers(0, 5000, drive.max() + 1)[drive]
    t0 = datetime(2023, 1, 1, tzinfo=timezone.utc)
    seconds = drive * 86_400 // 7 + (seq % 3) * 600 + np.tile(np.arange(per_sequence), n_seq)[:rows] * 2
    frame = pl.DataFrame(
        {
            "image_id": pl.int_range(10**12, 10**12 + rows, eager=True).cast(pl.Utf8),
            "sequence_id": pl.Series(seq).cast(pl.Utf8),
            "creator_id": pl.Series(creator).cast(pl.Utf8),
            "captured_at": pl.Series(seconds * 1_000_000).cast(pl.Datetime("us", "UTC")) + (t0 - datetime(1970, 1, 1, tzinfo=timezone.utc)),
            "lat": lat,
            "lon": lon,
            "city": pl.Series([a.name for a in areas])[city[seq]],
            "batch": pl.Series([a.batch for a in areas])[city[seq]],
            "source": pl.repeat("bench", rows, eager=True),
        }
    )
    return conform(frame, MANIFEST)


def child(data_dir: str) -> None:
    """One measured run: cells + split in this process; prints a JSON line."""
    from geolocate.cells import run_cells
    from geolocate.config import load_config
    from geolocate.paths import DataPaths
    from geolocate.split import run_split

    cfg = load_config(ROOT / "config.toml", "v1")
    data = DataPaths(Path(data_dir))
    t0 = time.perf_counter()
    cells = run_cells(cfg.cells, data)
    t1 = time.perf_counter()
    split = run_split(cfg, data)
    t2 = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({
        "cells_s": t1 - t0, "split_s": t2 - t1, "total_s": t2 - t0, "peak_mb": peak_mb,
        "classes": cells.kpis["classes"], "photos": cells.kpis["photos"],
        "sequences_shared": split.report["leakage"]["sequences_shared"],
        "near_share": split.report["leakage"]["near_duplicates"]["share"],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    from geolocate.manifest import write_manifest
    from geolocate.paths import DataPaths

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_manifest(DataPaths(Path(tmp)), synthetic_manifest(args.rows))
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        runs = []
        for i in range(args.runs):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--child", tmp], check=True, capture_output=True, text=True)
            run = json.loads(out.stdout.strip().splitlines()[-1]) | {"process_s": time.perf_counter() - t}
            print(f"run {i + 1}: {json.dumps(run)}", file=sys.stderr)
            runs.append(run)
    medians = {k: statistics.median(r[k] for r in runs) for k in ("cells_s", "split_s", "total_s", "process_s", "peak_mb")}
    print(json.dumps({"rows": args.rows, "runs": args.runs, "median": medians, "last": runs[-1]}, indent=2))


if __name__ == "__main__":
    main()
