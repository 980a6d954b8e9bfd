"""Fetch throughput against the fake Mapillary (or Panoramax) API with 50 ms latency per request.

Compares the source's configured concurrency (`fetch.concurrency`, `fetch.panoramax.concurrency`)
with one request in flight; issue 2's target is a ratio of at least 10× for Mapillary. Each run
fetches the same fake world into a fresh data directory (search, spread sampling, download, JPEG
check, atomic write, manifest merge).

    .venv/bin/python benchmarks/bench_fetch.py [--source mapillary|panoramax] [--photos 400] [--runs 3] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.fakes

from geolocate.acquire.catalog import bbox_area  # noqa: E402
from geolocate.acquire.fetch import run_fetch  # noqa: E402
from geolocate.config import FetchConfig  # noqa: E402
from geolocate.paths import DataPaths  # noqa: E402
from tests.fakes.mapillary import FAKE_TOKEN, FakeMapillary  # noqa: E402
from tests.fakes.panoramax import FakePanoramax  # noqa: E402

BBOX = (2.30, 48.85, 2.32, 48.87)  # 2 × 2 search tiles


def one_run(source: str, photos: int, latency: float, concurrency: int, thumb_px: tuple[int, int]) -> float:
    """Photos per second of one complete fetch."""
    if source == "panoramax":  # its fake serves 48×36 JPEGs, 64×32 for a 360°
        fake = FakePanoramax.grid(BBOX, n=photos, seed=0, latency=latency)
        cfg = FetchConfig(source="panoramax", panoramax={"api_url": fake.api_url, "concurrency": concurrency})
    else:
        fake = FakeMapillary.grid(BBOX, n=photos, seed=0, latency=latency, thumb_px=thumb_px)
        cfg = FetchConfig(api_url=fake.api_url, concurrency=concurrency)  # everything else: the defaults
    with tempfile.TemporaryDirectory() as tmp:
        report = run_fetch(cfg, DataPaths(Path(tmp)), [bbox_area(BBOX, "bench")], transport=fake.transport(), sleep=asyncio.sleep)
    new = report.areas[0].photos_new
    assert new == photos, f"fetched {new} of {photos}"
    return new / report.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("mapillary", "panoramax"), default="mapillary")
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--thumb", type=int, nargs=2, default=(256, 192), metavar=("W", "H"))
    args = parser.parse_args()
    os.environ["MAPILLARY_TOKEN"] = FAKE_TOKEN
    configured = FetchConfig().panoramax.concurrency if args.source == "panoramax" else FetchConfig().concurrency
    medians = {}
    for concurrency in (configured, 1):
        rates = [one_run(args.source, args.photos, args.latency, concurrency, tuple(args.thumb)) for _ in range(args.runs)]
        medians[concurrency] = statistics.median(rates)
        print(f"concurrency {concurrency:>3}: " + ", ".join(f"{r:.1f}" for r in rates) + f" photos/s (median {medians[concurrency]:.1f})")
    ratio = medians[configured] / medians[1]
    print(f"{args.source}: ratio {ratio:.1f}x (issue 2's Mapillary target >= 10x): {'PASS' if ratio >= 10 else 'FAIL'}")


if __name__ == "__main__":
    main()
