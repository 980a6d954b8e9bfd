"""The whole tiny scout-sniper profile through the CLI, in a temporary directory (tiny twins, CPU)."""

from __future__ import annotations

import csv
import json

import polars as pl

P = ("--profile", "tiny-scout-sniper")


def test_tiny_scout_sniper_end_to_end(cli, workdir):
    assert cli("synth", *P, "--n", "240").exit_code == 0
    assert cli("prepare", *P).exit_code == 0
    result = cli("locations", *P, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["locations"] > 40
    result = cli("regions", *P, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["regions"] >= 2 and report["leakage"]["sequences_shared"] == 0

    result = cli("train", *P, "--phase", "all", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout[result.stdout.index("["):])[0]
    root = workdir / "runs" / run["run_id"]
    for phase in ("scout-clip", "scout-convnext", "sniper"):
        assert (root / f"{phase}.safetensors").is_file() and (root / f"{phase}.json").is_file()
    assert len(json.loads((root / "scout_sniper.json").read_text())["weights"]) == 2

    # --resume skips every finished phase and evaluates again
    result = cli("train", *P, "--phase", "all", "--resume", "latest")
    assert result.exit_code == 0 and result.output.count("already done") == 4, result.output

    result = cli("evaluate", *P, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    metrics = summary["phases"]["test"]
    assert {"scout-clip", "scout-convnext", "ensemble", "ensemble + sniper"} <= set(metrics)
    assert summary["metrics"]["test"] == metrics["ensemble + sniper"] and summary["system"] == "scout-sniper"
    report_md = (root / "REPORT.md").read_text()
    assert "ensemble + sniper" in report_md and "median_km" in report_md
    saved = json.loads((root / "metrics.json").read_text())
    assert list(saved["baselines"]) == ["majority", "centroid", "1-NN", "5-NN", "ceiling"]
    # 60 locations is small data: each scout's head was chosen on val among the three cached heads
    heads = saved["head_selection"]["scout-clip"]
    assert [row["head"] for row in heads] == ["probe", "mean", "transformer"] and sum(row["chosen"] for row in heads) == 1
    assert "## Head of scout-clip" in report_md and "## Head of sniper" in report_md
    assert "Position before the sniper: **" in report_md and "(chosen on val: " in report_md  # eval.position = auto
    # The same finish as a single-photo run: the error map, a per-region table, the radius in the bundle
    assert (root / "error_map.png").is_file() and "## Per region (test)" in report_md
    assert "## Credible radius" in report_md and "radius" in json.loads((root / "scout_sniper.json").read_text())
    assert "## Accuracy at distance (test)" in report_md and "| 2,500 km |" in report_md
    if saved["collapse"]:  # a collapsed run never reads as a pass
        assert "all gates pass" not in report_md
    assert saved["baselines"]["majority"]["n"] == metrics["ensemble + sniper"]["n"]  # the same test locations
    assert {g["name"] for g in saved["gates"]} >= {"beats_trivial_median_km", "beats_trivial_p90_km"}
    assert "## Baselines" in report_md and "Gates: median and p90 below the best trivial baseline" in report_md
    assert (root / "predictions.parquet").is_file() and (root / "geo_error.png").is_file()

    _predict_views(cli, workdir)
    _predict_batch(cli, workdir)
    _freeze_and_predict_from_release(cli, workdir, run["run_id"])


def _locations_with_paths(workdir) -> pl.DataFrame:
    data = workdir / "data"
    manifest = pl.read_parquet(data / "manifest.parquet").select("image_id", "processed_path")
    locations = pl.read_parquet(data / "locations.parquet")
    paths = dict(manifest.iter_rows())
    return locations.with_columns(
        [pl.col(v).replace_strict(paths, default=None).alias(v) for v in ("north", "east", "south", "west")]
    )


def _predict_views(cli, workdir) -> None:
    loc = _locations_with_paths(workdir).filter(pl.col("north").is_not_null() & pl.col("south").is_not_null()).row(0, named=True)
    data = workdir / "data"
    result = cli("predict", *P, "--north", data / loc["north"], "--south", data / loc["south"], "--top", "3", "--json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.stdout)["predictions"][0]
    assert len(prediction["top"]) == 3 and -90 <= prediction["lat"] <= 90
    # top-k entries are keyed like single-photo predictions (the region's id is its cell_id)
    top = prediction["top"]
    assert all(set(t) == {"rank", "cell_id", "city", "lat", "lon", "prob", "polygon"} for t in top)
    assert [t["rank"] for t in top] == [1, 2, 3]
    assert all(a["prob"] >= b["prob"] for a, b in zip(top, top[1:])) and 0 < sum(t["prob"] for t in top) <= 1 + 1e-6
    # A missing file is reported (exit 1) and the location is still predicted from the other view.
    result = cli("predict", *P, "--views", data / loc["north"], "--views", workdir / "missing.jpg", "--json")
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)["predictions"]) == 1


def _predict_batch(cli, workdir) -> None:
    locations = _locations_with_paths(workdir).head(6)
    table = workdir / "data" / "test_locations.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "north", "east", "south", "west"])
        for row in locations.iter_rows(named=True):
            writer.writerow([f"loc{row['location_id'][-4:]}"] + [row[v] or "" for v in ("north", "east", "south", "west")])
    out = workdir / "submission.csv"
    result = cli("predict", *P, "--locations", table, "--out", out)
    assert result.exit_code == 0, result.output
    submission = pl.read_csv(out)  # the columns of single-photo predictions, the location id as `file`
    assert submission.columns[:5] == ["file", "lat", "lon", "confidence", "radius_km"] and "top2_cell" in submission.columns
    assert submission.height == 6 and submission["file"].str.starts_with("loc").all()


def _freeze_and_predict_from_release(cli, workdir, run_id: str) -> None:
    """A scout-sniper run freezes like a v1 run; the release predicts from four views without the run."""
    from geolocate.artifacts.digest import verify_sha256sums

    result = cli("freeze", *P, "--tag", "ss1", "--force", "--json")
    assert result.exit_code == 0, result.output
    release = workdir / "releases" / "ss1"
    record = json.loads((release / "RELEASE.json").read_text())
    assert record["run_id"] == run_id and record["model"]["system"] == "scout-sniper"
    assert (release / "scout_sniper.json").is_file() and (release / "sniper.safetensors").is_file()
    assert verify_sha256sums(release) == []
    assert pl.read_parquet(release / "regions.parquet").height >= 2
    loc = _locations_with_paths(workdir).filter(pl.col("north").is_not_null()).row(0, named=True)
    result = cli("predict", *P, "--model", release, workdir / "data" / loc["north"], "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["predictions"]) == 1
