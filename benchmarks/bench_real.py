"""Real photos: the default single-photo and four-view flows against every baseline, per split seed.

    python benchmarks/bench_real.py                      # both real sets in ../shared/real-photos, seeds 0 1 2
    python benchmarks/bench_real.py --photos DIR --seeds 0 1 2 --flows v1 four-view --set train.epochs=10

Without `--photos` both real sets run, each written to its own page: panoramax-capferret →
benchmarks/results/real.md, osv5m → benchmarks/results/real-osv5m.md. DIR holds a
`locations.csv` as `geolocate import-locations` reads it (an id, `lat`, `lon`, views or vehicle
faces with `azimuth`, and a `group` column naming the capture sequence), or a `photos.csv` of
single photos (file, lat, lon[, city]), which `single_view_locations.py` turns into one-view places. Everything
runs through the CLI, exactly as a user would: import-locations → prepare → (cells → split →
sanity → train → evaluate) for `v1`, (regions → train → evaluate) for `four-view`, in a scratch
directory, with EfficientNet-Lite0's offline ImageNet weights. The split is grouped by the
table's `group` column (import keeps it as the sequence), so captures of one sequence never
straddle train and test, and a spatial buffer (`split.buffer`) keeps other sequences'
near-duplicates out of train. The classes are H3 cells at the finest resolution that suits the
area (`area_settings`: the library's "auto" rule). Each seed's model and baselines (majority, centroid, 1-NN, 5-NN on the
frozen backbone, ceiling) come from the run's own `metrics.json`; the table is printed and
written to `--out`. Without the photo folder the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared/real-photos next to the repository; GEOLOCATE_REAL_PHOTOS points elsewhere (e.g. from a git worktree).
REAL_PHOTOS = Path(os.environ.get("GEOLOCATE_REAL_PHOTOS", REPO.parent / "shared" / "real-photos"))
REAL_SETS = {"panoramax-capferret": "real.md", "osv5m": "real-osv5m.md"}  # folder → its page in benchmarks/results
FLOWS = {"v1": "v1", "four-view": "scout-sniper"}
SHOWN = ("model", "majority", "centroid", "1-NN", "5-NN", "ceiling")


def geolocate(workdir: Path, *args: str) -> str:
    """Run one CLI command in `workdir`; its stdout, or SystemExit with the command's error line."""
    cmd = [sys.executable, "-m", "geolocate", *args]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"`geolocate {' '.join(args[:2])}` failed: {last}")
    return done.stdout


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def import_photos(workdir: Path, photos: Path, weights: Path | None) -> list[str]:
    """Import and prepare the photos once; returns the model overrides every flow uses."""
    geolocate(workdir, "import-locations", str(photos / "locations.csv"), "--images-dir", str(photos))
    geolocate(workdir, "prepare")
    if weights is None:
        return []
    geolocate(workdir, "models", "--export-weights", "efficientnet_lite0", str(weights))
    return ["model.name=efficientnet_lite0", f"model.weights={weights}",
            "scout.second_model=efficientnet_lite0", f"scout.second_weights={weights}"]


def area_settings(photos: Path) -> list[str]:
    """Class settings fitted to where the photos are, by the library's one rule (`cells.resolution.auto_classes`:
    the finest resolution whose cells of >= 5 places hold >= 70 % of them, 5 places' worth of photos per class).

    "auto" is spelt out because the v1 profile fixes France's resolution 7 and 150 photos; `photos` is
    not read: `cells` and `regions` look at the imported positions themselves and say what they chose.
    """
    # Several capture sequences drive the same roads: the spatial buffer keeps their near-duplicates
    # out of train, as `sanity` asks when more than 1 % of test photos have one.
    return ["cells.resolution=auto", "cells.min_samples=auto", "regions.source=h3",
            "regions.h3_resolution=auto", "regions.min_samples=auto", "split.buffer=true"]


def run_flow(workdir: Path, flow: str, seed: int, overrides: list[str], area: list[str]) -> dict:
    """One seed of one flow, from labels to evaluation; the run's metrics.json."""
    profile = ["--profile", FLOWS[flow]]
    common = profile + sets([*area, f"split.seed={seed}", *overrides])
    if flow == "v1":
        for step in ("cells", "split"):
            geolocate(workdir, step, *common)
        geolocate(workdir, "sanity", "--quick", *common)
    else:
        geolocate(workdir, "regions", *common)
    start = time.perf_counter()
    geolocate(workdir, "train", *common)
    metrics = json.loads((workdir / "runs" / "latest" / "metrics.json").read_text())
    return {"flow": flow, "seed": seed, "seconds": time.perf_counter() - start, **_columns(metrics)}


def _columns(metrics: dict) -> dict:
    """The model's test metrics (after the sniper for four views) and each baseline's."""
    test = metrics["metrics"]["test"] if "metrics" in metrics else metrics["test"]["ensemble + sniper"]
    baselines = metrics.get("baselines") or metrics.get("metrics", {}).get("baselines", {})
    return {"model": test, **baselines, "gates": {g["name"]: g["passed"] for g in metrics.get("gates", [])}}


def render(rows: list[dict]) -> str:
    """A markdown table: per flow and seed, median / p90 km and top-1 of the model and each baseline,
    and whether the run meets issue 20's target (below the best trivial baseline on median and p90,
    and a median not worse than 5-NN's)."""
    head = ("| flow | seed | " + " | ".join(SHOWN) + " | beats trivial (median & p90) | median not worse than 5-NN "
            "| target |")
    lines = [head, "|" + "---|" * (len(SHOWN) + 5)]
    for row in rows:
        cells = [_cell(row.get(name)) for name in SHOWN]
        lines.append(f"| {row['flow']} | {row['seed']} | " + " | ".join(cells) + f" | {_yes(_beats_trivial(row))} | "
                     f"{_yes(_not_worse_median(row, '5-NN'))} | {_yes(meets_target(row))} |")
    met = sum(bool(meets_target(row)) for row in rows)
    return ("\n".join(lines) + f"\n\nEach cell: median km / p90 km / top-1 on the test split. Target met in {met} of "
            f"{len(rows)} runs.\n")


def meets_target(row: dict) -> bool | None:
    """Issue 20's target for one run: beats the best trivial baseline on median and p90, and its
    median is not worse than 5-NN's (None without a 5-NN baseline)."""
    knn = _not_worse_median(row, "5-NN")
    return None if knn is None else _beats_trivial(row) and knn


def _cell(m: dict | None) -> str:
    if not m:
        return "–"
    return f"{m['median_km']:.2f} / {m['p90_km']:.2f} / {100 * m.get('acc_top1', float('nan')):.0f} %"


def _not_worse_median(row: dict, name: str) -> bool | None:
    if name not in row:
        return None
    return row["model"]["median_km"] <= row[name]["median_km"]


def _beats_trivial(row: dict) -> bool:
    best = {k: min(row[n][k] for n in ("majority", "centroid")) for k in ("median_km", "p90_km")}
    return row["model"]["median_km"] < best["median_km"] and row["model"]["p90_km"] < best["p90_km"]


def _yes(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def run_bench(photos: Path, workdir: Path, seeds: list[int], flows: list[str], overrides: list[str],
              lite0: bool = True) -> list[dict]:
    """Every flow × seed on `photos` in `workdir`; one row each (see `run_flow`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    model = import_photos(workdir, photos, workdir / "lite0.safetensors" if lite0 else None)
    area = area_settings(photos)
    print("classes: " + ", ".join(area), flush=True)
    rows = []
    for flow in flows:
        for seed in seeds:
            rows.append(run_flow(workdir, flow, seed, [*model, *overrides], area))
            print(f"{flow} seed {seed}: {_cell(rows[-1]['model'])} ({rows[-1]['seconds']:.0f} s)", flush=True)
    return rows


def environment(load_before: float) -> str:
    """Machine, software, date and load: the figures' context (the machine is shared and noisy)."""
    import datetime
    import platform

    import torch

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, no GPU use; Python {platform.python_version()}, "
            f"torch {torch.__version__}; finished {now}; load average {load_before:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end.")


def readable(photos: Path, workdir: Path) -> Path | None:
    """A folder `run_bench` reads: `photos` itself when it has a locations.csv, one-view places made
    from its photos.csv (in `workdir`), or None."""
    if (photos / "locations.csv").is_file():
        return photos
    if not (photos / "photos.csv").is_file():
        return None
    sys.path.insert(0, str(Path(__file__).parent))
    from single_view_locations import single_view_locations

    single_view_locations(photos, workdir / "places")
    return workdir / "places"


def bench_set(photos: Path, out: Path, workdir: Path, args, argv: list[str]) -> None:
    """Every flow × seed on one set of photos, printed and written to `out`."""
    found = readable(photos, workdir)
    if found is None:
        print(f"bench_real skipped {photos}: no real photos there (needs locations.csv or photos.csv; see the folder's README)")
        return
    load_before = os.getloadavg()[0]
    rows = run_bench(found, workdir, args.seeds, args.flows, args.overrides)
    table = render(rows)
    print(table)
    header = (f"# bench_real on {photos.name}\n\n`python benchmarks/bench_real.py {' '.join(argv)}`\n\n"
              f"{environment(load_before)}\n\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + table + "\n```json\n" + json.dumps(rows, indent=1, default=str) + "\n```\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=None, help="one set of photos (default: both real sets)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--flows", nargs="+", choices=list(FLOWS), default=list(FLOWS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config override, repeatable")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="the page to write (default: benchmarks/results/real.md; "
                        "without --photos each set's own page)")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="geolocate-real-"))
    results = REPO / "benchmarks" / "results"
    if args.photos is not None:
        bench_set(args.photos, args.out or results / "real.md", workdir, args, argv)
        return 0
    for name, page in REAL_SETS.items():
        out = results / page if args.out is None else args.out.with_name(f"{args.out.stem}-{name}{args.out.suffix}")
        bench_set(REAL_PHOTOS / name, out, workdir / name, args, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
