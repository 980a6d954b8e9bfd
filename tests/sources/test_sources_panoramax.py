"""`fetch --source panoramax` against the fake: tiling and splits, retries, licences, 360°, resumability."""

from __future__ import annotations

import json

import polars as pl
import pytest

import geolocate.acquire.http as http_module
from geolocate.acquire.catalog import find_area
from geolocate.acquire.fetch import run_fetch
from geolocate.acquire.panoramax import parse_item
from geolocate.manifest import read_manifest
from geolocate.paths import DataPaths
from tests.fakes.mapillary import RecordingSleep
from tests.fakes.panoramax import FakePanoramax

LYON = find_area("Lyon", "fr")


@pytest.fixture
def fake():
    return FakePanoramax.grid(LYON.bbox, n=240, seed=3, panos=10)


def _fetch(fake, data, sleeps, **pano):
    cfg = fake.fetch_config({"limit": 15, "tile_deg": 0.05} | pano)
    return run_fetch(cfg, data, [LYON], transport=fake.transport(), sleep=sleeps)


def test_lyon_is_fetched_whole_through_splits_and_faults_then_resumes_with_no_request(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("MAPILLARY_TOKEN", raising=False)  # Panoramax needs no token
    data, sleeps = DataPaths(tmp_path / "data"), RecordingSleep()
    fake.fail_next("search", status=429, retry_after=3)
    fake.fail_next("search", status=503, times=2)
    fake.fail_next("asset", timeout=True)
    report = _fetch(fake, data, sleeps)
    area = report.areas[0]
    assert report.complete and area.boxes == 12 and area.found == 240 and area.photos_new == 240
    assert 3 in sleeps  # Retry-After honoured
    full = [r for r in fake.search_requests() if r.url.params["bbox"].count(",") == 3]
    assert len(full) > 12  # full answers were split into quarters
    assert set(fake.assets) == {"sd"}  # never hd by default
    manifest = read_manifest(data)
    assert manifest.height == 240 and manifest["source"].unique().to_list() == ["panoramax"]
    assert all(i.startswith("panoramax:") and data.raw_photo(i).is_file() for i in manifest["image_id"])
    assert sorted(manifest["license"].unique().to_list()) == ["CC-BY-SA-4.0", "etalab-2.0"]
    by_id = {f"panoramax:{p.id}": p for p in fake.pictures.values()}
    for row in manifest.iter_rows(named=True):
        picture = by_id[row["image_id"]]
        assert (row["license"], row["creator_username"], row["is_pano"]) == (picture.license, picture.producer, picture.is_360)
        assert row["sequence_id"] == picture.collection and row["compass_angle"] == pytest.approx(picture.azimuth)
    sent = len(fake.requests)
    again = _fetch(fake, data, sleeps)
    assert again.complete and again.areas[0].photos_new == 0 and len(fake.requests) == sent


def test_a_panoramax_area_keeps_its_own_state_and_quota(fake, tmp_path):
    data = DataPaths(tmp_path / "data")
    _fetch(fake, data, RecordingSleep(), include_panos=False)
    assert data.area_state("Lyon", "panoramax").is_file() and not data.area_state("Lyon").exists()
    manifest = read_manifest(data)
    assert manifest.height == 230 and not manifest["is_pano"].any()


def test_items_with_a_bad_id_or_position_are_refused():
    item = FakePanoramax.grid(LYON.bbox, n=1).pictures.popitem()[1].item("h.test")
    assert parse_item(item)["image_id"].startswith("panoramax:")
    assert parse_item(item | {"id": "../../etc/passwd"}) is None
    assert parse_item(item | {"geometry": {"type": "Point", "coordinates": [200, 0]}}) is None
    assert parse_item(item, "thumb")["thumb_url"].endswith("/thumb.jpg")


def test_cli_fetch_panoramax_city_then_prepare_cuts_the_360s(cli, workdir, fake, monkeypatch):
    monkeypatch.setattr(http_module, "transport_factory", fake.transport)
    monkeypatch.delenv("MAPILLARY_TOKEN", raising=False)
    sets = ["--set", f"fetch.panoramax.api_url={fake.api_url}", "--set", "fetch.panoramax.tile_deg=0.05", "--set", "fetch.backoff_s=0"]
    result = cli("fetch", "--source", "panoramax", "--city", "Lyon", "--max-per-city", "60", *sets, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["areas"][0]["photos_new"] == 60
    assert cli("prepare", "--set", "data.max_size=32").exit_code == 0
    manifest = read_manifest(DataPaths(workdir / "data"))
    panos = manifest.filter(pl.col("is_pano"))["image_id"].to_list()
    views = manifest.filter(pl.col("parent_id").is_not_null())
    assert panos and views.height == 4 * len(panos) and set(views["parent_id"]) == set(panos)
    bad = cli("fetch", "--source", "flickr", "--city", "Lyon")
    assert bad.exit_code != 0 and "fetch.source" in bad.output and "Traceback" not in bad.output
