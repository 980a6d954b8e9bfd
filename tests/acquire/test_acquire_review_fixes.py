"""Review fixes: raw files restored by id, exit code of a partial fetch, api_url check, bad positions, TOKEN_ENV."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest

import geolocate.acquire.client as client_module
import geolocate.acquire.http as http_module
from geolocate.acquire.catalog import bbox_area
from geolocate.acquire.fetch import run_fetch
from geolocate.manifest import read_manifest, write_manifest
from geolocate.paths import DataPaths
from tests.fakes.mapillary import FAKE_TOKEN, FakeMapillary

AREA_BBOX = (2.30, 48.85, 2.32, 48.87)
AREA = bbox_area(AREA_BBOX, "testville")


@pytest.fixture
def data(tmp_path):
    return DataPaths(tmp_path / "data")


def _fetch(fake, data, sleeps, transport=None, **kwargs):
    cfg = fake.fetch_config(max_per_city=10_000)
    return run_fetch(cfg, data, [AREA], transport=transport or fake.transport(), sleep=sleeps, **kwargs)


def _prepare_like(data, ids):
    """What `prepare` leaves: a processed copy per id, recorded in the manifest."""
    data.processed.mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        data.processed_photo(image_id).write_bytes(data.raw_photo(image_id).read_bytes())
    manifest = read_manifest(data)
    recorded = pl.when(pl.col("image_id").is_in(list(ids))).then(pl.lit("processed/") + pl.col("image_id") + pl.lit(".jpg"))
    write_manifest(data, manifest.with_columns(recorded.otherwise(pl.col("processed_path")).alias("processed_path")))


def _clean_raw_like(data, ids):
    """What `clean-raw` leaves: raw files deleted, their manifest `path` null."""
    for image_id in ids:
        data.raw_photo(image_id).unlink()
    manifest = read_manifest(data)
    cleared = pl.when(pl.col("image_id").is_in(list(ids))).then(pl.lit(None, dtype=pl.Utf8)).otherwise(pl.col("path"))
    write_manifest(data, manifest.with_columns(cleared.alias("path")))


def test_a_photo_lost_from_raw_and_processed_is_downloaded_again_by_id(fake, data, sleeps, token):
    _fetch(fake, data, sleeps)
    lost = read_manifest(data)["image_id"][5]
    _clean_raw_like(data, [lost])  # and it has no processed copy either
    fake.requests.clear()
    report = _fetch(fake, data, sleeps)
    area = report.areas[0]
    assert area.photos_restored == 1 and area.photos_new == 0 and report.complete
    assert data.raw_photo(lost).read_bytes() == fake.jpeg(lost) and fake.downloads[lost] == 2
    assert any(r.url.path == f"/{lost}" for r in fake.api_requests())  # fresh URL by id lookup
    row = read_manifest(data).filter(pl.col("image_id") == lost).row(0, named=True)
    assert row["path"] == f"raw/{lost}.jpg" and row["city"] == "testville"


def test_clean_raw_is_not_undone_unless_restore_raw_is_asked(fake, data, sleeps, token):
    _fetch(fake, data, sleeps)
    ids = read_manifest(data)["image_id"].to_list()
    _prepare_like(data, ids)
    _clean_raw_like(data, ids)
    fake.requests.clear()
    report = _fetch(fake, data, sleeps)
    assert not fake.thumb_requests() and report.areas[0].photos_restored == 0
    assert not any(data.raw.iterdir()) and read_manifest(data)["path"].null_count() == len(ids)

    report = _fetch(fake, data, sleeps, restore_raw=True)
    manifest = read_manifest(data)
    assert report.areas[0].photos_restored == len(ids) and report.complete
    assert sorted(p.stem for p in data.raw.iterdir()) == sorted(ids)
    assert manifest["path"].to_list() == [f"raw/{i}.jpg" for i in manifest["image_id"]]
    assert manifest["processed_path"].null_count() == 0  # what prepare recorded is kept


def test_records_without_a_position_are_counted_apart_from_bad_ids(fake, data, sleeps, token):
    fake.add_bad_record("12ab")

    async def handle(request):  # the fake's answer, plus a record with a valid id and no geometry
        response = await fake.handle(request)
        if request.url.path != "/images" or response.status_code != 200:
            return response
        body = json.loads(response.content)
        body["data"].append({"id": "424242", "geometry": None})
        return httpx.Response(200, json=body)

    area = _fetch(fake, data, sleeps, transport=httpx.MockTransport(handle)).areas[0]
    assert area.bad_ids == ["12ab"]
    assert area.bad_positions == ["424242"] * 4  # one per searched tile
    assert not data.raw_photo("424242").exists()


@pytest.fixture
def fake_cli(monkeypatch):
    from geolocate.acquire.catalog import find_area

    lat, lon = find_area("Saint-Étienne").center
    fake = FakeMapillary.grid((lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01), n=20, seed=5)
    monkeypatch.setattr(http_module, "transport_factory", fake.transport)
    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    return fake


def test_a_partial_fetch_exits_1_and_still_prints_its_summary(cli, workdir, fake_cli):
    fake_cli.fail_next("thumb", status=500, times=10_000)
    sets = [a for kv in (f"fetch.api_url={fake_cli.api_url}", "fetch.backoff_s=0", "fetch.max_retries=0") for a in ("--set", kv)]
    result = cli("fetch", "--city", "Saint-Étienne", "--json", *sets)
    summary = json.loads(result.stdout)
    assert result.exit_code == 1 and not summary["complete"] and summary["areas"][0]["photos_failed"] == 20
    assert "Exits 1" in cli("fetch", "--help").stdout


def test_a_complete_fetch_exits_0(cli, workdir, fake_cli):
    result = cli("fetch", "--city", "Saint-Étienne", "--set", f"fetch.api_url={fake_cli.api_url}")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("url", ["notaurl", "ftp://x", "https://"])
def test_a_bad_api_url_is_refused_in_one_line(cli, workdir, url):
    result = cli("config", "--set", f"fetch.api_url={url}")
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1
    assert "fetch.api_url" in lines[0] and "http:// or https://" in lines[0]


def test_a_good_api_url_is_accepted(cli, workdir):
    assert cli("config", "--set", "fetch.api_url=http://localhost:8080/v4").exit_code == 0


def test_secret_scan_uses_the_client_token_variable(monkeypatch):
    from geolocate.artifacts import secret_scan

    monkeypatch.setattr(client_module, "TOKEN_ENV", "SOME_OTHER_VAR")
    assert not hasattr(secret_scan, "TOKEN_ENV")
    assert secret_scan.secret_patterns(env={"SOME_OTHER_VAR": "MLY|123456789"}) == [b"MLY|123456789", b"MLY|"]
    assert "$SOME_OTHER_VAR" in secret_scan.describe(b"x")
