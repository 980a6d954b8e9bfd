"""Four-view predictions are single-photo predictions' equals: the same fields (radius, error, top
cells with polygons, model line), --out/--json/--geojson, batches with a summary, failures listed
and counted, the Cap-Ferret table (faces + azimuth) read as `import-locations` reads it."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow
P = ("--profile", "tiny-scout-sniper")
# The shared real photos (`../shared/real-photos/panoramax-capferret` of the checkout, or of any folder above it).
CAPFERRET = next((p / "shared/real-photos/panoramax-capferret" for p in Path(__file__).resolve().parents
                  if (p / "shared/real-photos/panoramax-capferret/locations.csv").is_file()),
                 Path("shared/real-photos/panoramax-capferret"))
ROW_FIELDS = ["file", "lat", "lon", "position", "confidence", "radius_km", "top", "true_lat", "true_lon", "error_km"]


@pytest.fixture(scope="module")
def scout_run(tmp_path_factory):
    """A tiny scout-sniper trained and evaluated on synthetic four-view photos: (project, run directory)."""
    from typer.testing import CliRunner

    from geolocate.cli import app
    from geolocate.ops.demo import working_directory

    root = tmp_path_factory.mktemp("scout_predict")
    runner = CliRunner()
    with working_directory(root):
        for args in (("synth", *P, "--n", "480"), ("prepare", *P), ("locations", *P), ("regions", *P),
                     ("train", *P, "--phase", "all")):
            result = runner.invoke(app, list(args), catch_exceptions=False)
            assert result.exit_code == 0, result.output
    run = next(p for p in (root / "runs").iterdir() if (p / "scout_sniper.json").is_file() and not p.is_symlink())
    return root, run


def _views(project: Path, n: int) -> list[dict]:
    """`n` locations' compass views as files of the project."""
    data = project / "data"
    manifest = dict(pl.read_parquet(data / "manifest.parquet").select("image_id", "processed_path").iter_rows())
    locations = pl.read_parquet(data / "locations.parquet").filter(pl.col("north").is_not_null()).sort("location_id").head(n)
    return [{v: data / manifest[row[v]] for v in ("north", "east", "south", "west") if row[v]}
            for row in locations.iter_rows(named=True)]


def test_the_capferret_table_predicts_as_it_is(scout_run, cli, tmp_path, monkeypatch):
    if not CAPFERRET.is_dir():
        pytest.skip(f"{CAPFERRET} is absent (the shared real photos)")
    project, run = scout_run
    monkeypatch.chdir(project)
    out, geojson = tmp_path / "x.csv", tmp_path / "y.geojson"
    result = cli("predict", *P, "--checkpoint", run, "--locations", CAPFERRET / "locations.csv", "--out", out,
                 "--geojson", geojson, "--top", "3", "--json")
    assert result.exit_code == 0, result.output
    assert "no readable view" not in result.output
    assert f"model: run {run.name}" in " ".join(result.stderr.split()) and "cells" in result.stderr
    doc = json.loads(result.stdout)
    table = {row["id"]: row for row in csv.DictReader(open(CAPFERRET / "locations.csv", encoding="utf-8"))}
    predictions = doc["predictions"]
    assert len(predictions) == len(table) == 100 and doc["failures"] == []
    for p in predictions:
        assert list(p)[:len(ROW_FIELDS)] == ROW_FIELDS and p["position"] == "sniper"
        assert p["radius_km"] is not None and p["radius_km"] > 0  # fitted on val by evaluate
        truth = table[p["file"]]
        assert (p["true_lat"], p["true_lon"]) == (float(truth["lat"]), float(truth["lon"])) and p["error_km"] > 0
        assert len(p["views"]) == 4  # front/right/back/left turned by the azimuth onto four compass views
    assert doc["model"]["run_id"] == run.name and doc["model"]["model"].startswith("scout-sniper")
    assert doc["model"]["data_sources"] == ["synthetic"] and doc["model"]["synthetic"]  # from the bundle: not "unknown photos"
    written = pl.read_csv(out)
    assert written.height == 100 and written.columns[:8] == ["file", "lat", "lon", "confidence", "radius_km", "true_lat", "true_lon", "error_km"]
    features = json.loads(geojson.read_text())["features"]
    cells = [f for f in features if f["properties"]["kind"] == "cell"]
    assert len(cells) == 300 and all(f["geometry"]["type"] == "Polygon" for f in cells)  # H3 regions as hexagons
    assert sum(f["properties"]["kind"] == "truth" for f in features) == 100
    assert sum(f["properties"]["kind"] == "credible_circle" for f in features) == 100


def test_faces_with_an_azimuth_mean_the_compass_views_they_look_at(scout_run, monkeypatch):
    from geolocate import Geolocator

    project, run = scout_run
    monkeypatch.chdir(project)
    views = _views(project, 1)[0]
    g = Geolocator.load(run)
    assert g.four_view
    by_compass = g.predict(views, top=3)
    # heading 90°: front looks east, right south, back west, left north
    faces = {"front": views.get("east"), "right": views.get("south"), "back": views.get("west"), "left": views.get("north"), "azimuth": 90}
    by_face = g.predict(faces, top=3)
    assert [c["cell_id"] for c in by_face.top] == [c["cell_id"] for c in by_compass.top]
    assert (by_face.lat, by_face.lon) == pytest.approx((by_compass.lat, by_compass.lon))
    listed = g.predict([views.get(v) for v in ("north", "east", "south", "west")], top=3)
    assert listed.confidence == pytest.approx(by_compass.confidence)
    as_bytes = g.predict({v: Path(p).read_bytes() for v, p in views.items()}, top=3)
    assert [c["cell_id"] for c in as_bytes.top] == [c["cell_id"] for c in by_compass.top]
    assert by_compass.to_geojson()["features"][0]["geometry"]["type"] == "Polygon"


def _table(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "lat", "lon", "north", "east", "south", "west"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_unreadable_locations_are_listed_and_counted(scout_run, cli, monkeypatch):
    project, run = scout_run
    monkeypatch.chdir(project)
    folder = project / "batch"
    folder.mkdir(exist_ok=True)
    rows = []
    for i, views in enumerate(_views(project, 3)):
        rows.append({"id": f"L{i}", "lat": "40.0", "lon": "-100.0"})
        for view, path in views.items():
            shutil.copy(path, folder / f"{i}-{view}.jpg")
            rows[-1][view] = f"{i}-{view}.jpg"
    (folder / "junk.jpg").write_text("not a photo")
    rows.append({"id": "broken", "north": "junk.jpg", "south": "gone.jpg"})
    result = cli("predict", *P, "--checkpoint", run, "--locations", _table(folder / "t.csv", rows))
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-1].startswith("4 locations, 1 failed (2 unreadable views); median error ")
    assert "broken" in result.stderr and "junk.jpg" in result.stderr
    # every location failing: nothing written, no ✓, a non-zero exit
    out = project / "none.csv"
    result = cli("predict", *P, "--checkpoint", run, "--locations", _table(folder / "bad.csv", rows[-1:] * 1 + [{"id": "x", "north": "gone.jpg"}]),
                 "--out", out)
    assert result.exit_code == 2 and "✓" not in result.output and not out.exists()
    assert "none of the 2 locations could be predicted" in " ".join(result.stderr.split())


def test_one_location_from_options_has_the_single_photo_fields(scout_run, cli, monkeypatch):
    project, run = scout_run
    monkeypatch.chdir(project)
    views = _views(project, 1)[0]
    result = cli("predict", *P, "--checkpoint", run, "--north", views["north"], "--lat", "40", "--lon", "-100", "--top", "2", "--json")
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)["predictions"][0]
    assert list(p)[:len(ROW_FIELDS)] == ROW_FIELDS and p["error_km"] > 0 and len(p["top"]) == 2
    assert set(p["top"][0]) == {"rank", "cell_id", "city", "lat", "lon", "prob", "polygon"}
    assert os.path.samefile(p["views"]["north"], views["north"])


def test_a_folder_given_to_a_four_view_model_is_its_locations_table(scout_run, cli, monkeypatch, tmp_path):
    project, run = scout_run
    monkeypatch.chdir(project)
    folder = tmp_path / "survey"
    folder.mkdir()
    views = _views(project, 2)
    rows = []
    for i, location in enumerate(views):
        shutil.copy(location["north"], folder / f"{i}.jpg")
        rows.append({"id": f"S{i}", "north": f"{i}.jpg"})
    result = cli("predict", *P, "--checkpoint", run, folder)
    assert "holds no" not in result.output and "locations.csv" in result.output and result.exit_code == 2
    _table(folder / "locations.csv", rows)
    result = cli("predict", *P, "--checkpoint", run, folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("2 locations, 0 failed")
