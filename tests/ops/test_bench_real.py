"""`benchmarks/bench_real.py` on a tiny subset of the shared real photos (tiny twins, one seed)."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.name=tiny_clip", "model.pretrained=false", "scout.second_model=tiny_convnext", "train.epochs=2",
        "scout.sniper_epochs=2", "train.batch_size=16", "data.num_workers=0", "cells.resolution=6", "cells.min_samples=8",
        "regions.h3_resolution=6", "regions.min_samples=2", "split.val=0.2", "split.test=0.2", "split.train=0.6",
        "cells.max_dominance=0.9"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_real", REPO / "benchmarks" / "bench_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REAL = _bench().REAL_PHOTOS / "panoramax-capferret"


def _subset(dest: Path, n: int = 40) -> Path:
    """The first `n` captures of the real table, with their faces, copied to `dest` (never into the repo)."""
    with open(REAL / "locations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    dest.mkdir()
    for row in rows:
        for face in ("front", "right", "back", "left"):
            target = dest / row[face]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REAL / row[face], target)
    with open(dest / "locations.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return dest


@pytest.mark.skipif(not (REAL / "locations.csv").is_file(), reason=f"no shared real photos at {REAL}")
def test_bench_real_puts_both_flows_beside_their_baselines(tmp_path):
    bench = _bench()
    photos = _subset(tmp_path / "photos")
    rows = bench.run_bench(photos, tmp_path / "work", [0], ["v1", "four-view"], TINY, lite0=False)
    assert [(r["flow"], r["seed"]) for r in rows] == [("v1", 0), ("four-view", 0)]
    for row in rows:
        assert {"model", "majority", "centroid", "1-NN", "5-NN", "ceiling"} <= set(row)
        assert row["majority"]["n"] == row["model"]["n"] > 0
        assert "beats_trivial_median_km" in row["gates"]
    table = bench.render(rows)
    assert table.count("\n| v1 | 0 |") == 1 and "| four-view | 0 |" in table
    assert f"Target met in {sum(bool(bench.meets_target(r)) for r in rows)} of 2 runs" in table


def test_the_target_is_both_trivial_figures_beaten_and_a_median_not_worse_than_5nn():
    bench = _bench()

    def row(model, majority, centroid, knn):
        return {"model": dict(zip(("median_km", "p90_km"), model)), "majority": dict(zip(("median_km", "p90_km"), majority)),
                "centroid": dict(zip(("median_km", "p90_km"), centroid)), "5-NN": dict(zip(("median_km", "p90_km"), knn))}

    assert bench.meets_target(row((1.0, 5.0), (2.0, 9.0), (3.0, 6.0), (1.0, 4.0)))  # a 5-NN p90 below the model's is allowed
    assert not bench.meets_target(row((1.0, 6.5), (2.0, 9.0), (3.0, 6.0), (1.5, 4.0)))  # p90 above the centroid's
    assert not bench.meets_target(row((1.6, 5.0), (2.0, 9.0), (3.0, 6.0), (1.5, 4.0)))  # median worse than 5-NN
    assert bench.meets_target({"model": {"median_km": 1, "p90_km": 1}, "majority": {"median_km": 2, "p90_km": 2},
                               "centroid": {"median_km": 2, "p90_km": 2}}) is None  # no 5-NN: not judged


def test_bench_real_without_photos_says_it_is_skipped(tmp_path, capsys):
    assert _bench().main(["--photos", str(tmp_path / "absent")]) == 0
    assert "bench_real skipped" in capsys.readouterr().out


def test_bench_real_runs_both_real_sets_by_default_each_to_its_own_page(tmp_path, monkeypatch, capsys):
    bench, ran = _bench(), []
    monkeypatch.setattr(bench, "REAL_PHOTOS", tmp_path / "real")
    monkeypatch.setattr(bench, "run_bench", lambda photos, workdir, *a, **k: ran.append((photos, workdir)) or [])
    monkeypatch.setattr(bench, "render", lambda rows: "table")
    (tmp_path / "real" / "panoramax-capferret").mkdir(parents=True)
    (tmp_path / "real" / "panoramax-capferret" / "locations.csv").write_text("id,lat,lon\n")
    (tmp_path / "real" / "osv5m").mkdir()
    (tmp_path / "real" / "osv5m" / "photos.csv").write_text("file,lat,lon\n")
    assert bench.main(["--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out" / "real.md")]) == 0
    assert [p.name for p, _ in ran] == ["panoramax-capferret", "places"]  # osv5m's photos became one-view places
    assert len({w for _, w in ran}) == 2
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["real-osv5m.md", "real-panoramax-capferret.md"]


OSV5M = REAL.parent / "osv5m"


@pytest.mark.skipif(not (OSV5M / "photos.csv").is_file(), reason=f"no shared real photos at {OSV5M}")
def test_single_photos_become_one_view_places_for_the_bench(tmp_path):
    spec = importlib.util.spec_from_file_location("svl", REPO / "benchmarks" / "single_view_locations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = tmp_path / "src"
    source.mkdir()
    with open(OSV5M / "photos.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:6]
    for row in rows:
        shutil.copyfile(OSV5M / row["file"], source / row["file"])
    with open(source / "photos.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert module.single_view_locations(source, tmp_path / "places") == 6
    with open(tmp_path / "places" / "locations.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["north"] for r in table] == [r["file"] for r in rows] and [r["group"] for r in table] == [r["city"] for r in rows]
    assert all((tmp_path / "places" / r["north"]).is_file() and not (tmp_path / "places" / r["north"]).is_symlink() for r in table)
