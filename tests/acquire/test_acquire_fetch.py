"""`run_fetch` end to end against the fake API: faults, leaks, resumption, sampling."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime, timezone

import polars as pl
import pytest
from PIL import Image

from geolocate.acquire.catalog import bbox_area
from geolocate.acquire.fetch import run_fetch
from geolocate.manifest import read_manifest
from geolocate.acquire.tiling import box_key, tile_bbox
from geolocate.paths import DataPaths
from geolocate.schemas import MANIFEST
from tests.fakes.mapillary import FakeImage, FakeMapillary

AREA_BBOX = (2.30, 48.85, 2.32, 48.87)  # the fake fixture's world: 2 × 2 tiles
AREA = bbox_area(AREA_BBOX, "testville")


@pytest.fixture
def data(tmp_path):
    return DataPaths(tmp_path / "data")


def _fetch(fake, data, sleeps, area=AREA, **cfg):
    return run_fetch(fake.fetch_config(**({"max_per_city": 10_000} | cfg)), data, [area], transport=fake.transport(), sleep=sleeps)


def _valid_ids(fake, panos=False):
    return {i for i, img in fake.images.items() if panos or not img.is_pano}


def _raw_files(data):
    return sorted(p.name for p in data.raw.iterdir())


def test_every_valid_photo_is_fetched_exactly_once_despite_faults(fake, data, sleeps, token):
    ids = sorted(fake.images)
    fake.fail_next("search", status=429, retry_after=7)
    fake.fail_next("search", status=500, times=2)
    fake.fail_next("image", status=502)
    fake.fail_next("thumb", timeout=True, times=2)
    fake.expire(ids[20])
    fake.corrupt(ids[21], times=1)
    fake.corrupt(ids[22], times=None)
    fake.add_bad_record("12ab")
    report = _fetch(fake, data, sleeps, limit=20)
    area = report.areas[0]
    wanted = _valid_ids(fake) - {ids[22]}
    assert set(fake.downloads) == wanted and set(fake.downloads.values()) == {1}
    assert _raw_files(data) == sorted(f"{i}.jpg" for i in wanted)
    assert 7 in sleeps  # Retry-After honoured
    assert area.bad_ids == ["12ab"] and area.panos_excluded == 4 and area.boxes_failed == 0
    assert list(area.failed_photos) == [ids[22]] and "decode" in area.failed_photos[ids[22]]
    assert any(r.url.path == f"/{ids[20]}" for r in fake.api_requests())  # the expired URL was refreshed
    assert not report.complete and report.to_dict()["areas"][0]["photos_new"] == len(wanted)


def test_no_corrupt_or_partial_file_is_kept(fake, data, sleeps, token):
    ids = sorted(fake.images)
    for image_id in ids[10:15]:
        fake.corrupt(image_id, times=None)
    _fetch(fake, data, sleeps)
    assert not any(f"{i}.jpg" in _raw_files(data) for i in ids[10:15])
    for path in data.raw.iterdir():
        assert not path.name.startswith(".")  # no temporary file left behind
        with Image.open(path) as img:
            img.load()


def test_manifest_rows_match_the_files_and_schema(fake, data, sleeps, token):
    _fetch(fake, data, sleeps)
    manifest = read_manifest(data)
    assert dict(manifest.schema) == MANIFEST
    assert sorted(manifest["image_id"]) == sorted(_valid_ids(fake))
    row = manifest.filter(pl.col("image_id") == sorted(_valid_ids(fake))[0]).row(0, named=True)
    image = fake.images[row["image_id"]]
    assert row["path"] == f"raw/{image.id}.jpg" and (data.root / row["path"]).stat().st_size == row["bytes"]
    assert (row["lat"], row["lon"], row["sequence_id"], row["creator_username"]) == (image.lat, image.lon, image.sequence, image.creator_username)
    assert row["captured_at"].timestamp() * 1000 == image.captured_at and row["captured_at"].tzinfo is not None
    assert (row["width"], row["height"]) == fake.thumb_px and row["source"] == "mapillary" and row["city"] == "testville"
    assert row["processed_path"] is None and row["batch"] == "custom"


def test_the_token_leaks_nowhere(fake, data, sleeps, token):
    fake.fail_next("search", status=500, times=3)  # a failed box: its error lands in the state file
    fake.expire(sorted(fake.images)[30])
    report = _fetch(fake, data, sleeps, max_retries=2, concurrency=1)
    assert report.areas[0].boxes_failed == 1
    for path in data.root.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes() and b"fake-secret" not in path.read_bytes(), path
    assert token not in json.dumps(report.to_dict())
    assert fake.thumb_requests() and not any("authorization" in r.headers for r in fake.thumb_requests())
    assert not any("fake-secret" in str(r.url) for r in fake.requests)


def test_a_second_run_downloads_nothing_and_keeps_the_manifest(fake, data, sleeps, token):
    _fetch(fake, data, sleeps, limit=20)
    first = read_manifest(data)
    sent = len(fake.requests)
    report = _fetch(fake, data, sleeps, limit=20)
    assert len(fake.requests) == sent  # done boxes are not searched again, present photos not fetched
    assert report.areas[0].photos_new == 0 and report.areas[0].photos_skipped == first.height
    assert read_manifest(data).equals(first)


def test_truncated_boxes_are_split_until_complete(fake, data, sleeps, token):
    report = _fetch(fake, data, sleeps, limit=10)
    searches = [r for r in fake.api_requests() if r.url.path == "/images"]
    assert len(searches) > 4 and report.areas[0].boxes_truncated == 0
    assert report.areas[0].found == len(_valid_ids(fake))


def test_boxes_still_full_at_max_depth_are_reported(fake, data, sleeps, token):
    report = _fetch(fake, data, sleeps, limit=10, max_split_depth=1)
    area = report.areas[0]
    assert area.boxes_truncated > 0 and area.found < len(_valid_ids(fake))
    state = json.loads(data.area_state("testville").read_text())
    assert len(state["truncated"]) == area.boxes_truncated


def test_a_failed_box_is_recorded_shown_and_retried_next_run(fake, data, sleeps, token):
    fake.fail_next("search", status=503, times=3)  # concurrency 1: all on the first tile's request
    report = _fetch(fake, data, sleeps, concurrency=1, max_retries=2)
    first_tile = box_key(tile_bbox(AREA_BBOX, 0.01)[0])
    area = report.areas[0]
    assert area.boxes_failed == 1 and list(area.failed_boxes) == [first_tile] and area.boxes_done == 3
    assert first_tile in json.loads(data.area_state("testville").read_text())["failed"]
    searched = len([r for r in fake.api_requests() if r.url.path == "/images"])
    again = _fetch(fake, data, sleeps)
    retried = [r.url.params["bbox"] for r in fake.api_requests() if r.url.path == "/images"][searched:]
    assert retried == [first_tile]
    assert again.complete and again.areas[0].boxes_done == 4
    assert sorted(read_manifest(data)["image_id"]) == sorted(_valid_ids(fake))


def test_an_interrupted_run_keeps_no_partial_file_and_the_next_run_finishes(fake, data, sleeps, token):
    # Requests must really suspend, as network ones do: with zero latency the whole batch of
    # downloads would run inside one event-loop iteration, before the Ctrl-C could be handled.
    fake.latency = 0.002
    handle, thumbs, at_kill = fake.handle, [], []

    async def interrupting(request):
        if request.url.host == fake.CDN_HOST:
            thumbs.append(request)
            if len(thumbs) > 50:  # hold later downloads until some photos reached the disk, then Ctrl-C
                for _ in range(1000):
                    if data.raw.is_dir() and len(_raw_files(data)) >= 20:
                        break
                    await asyncio.sleep(0.01)
                if not at_kill:
                    at_kill.append(sum(fake.downloads.values()))
                    signal.raise_signal(signal.SIGINT)  # asyncio.run cancels the run, then raises KeyboardInterrupt
        return await handle(request)

    fake.handle = interrupting
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # what a terminal gives asyncio.run
    try:
        with pytest.raises(KeyboardInterrupt):
            _fetch(fake, data, sleeps)
    finally:
        signal.signal(signal.SIGINT, previous)
    kept = _raw_files(data)
    assert sum(fake.downloads.values()) <= at_kill[0] + 8  # stopped promptly: at most the requests in flight
    assert 0 < len(kept) < len(_valid_ids(fake)) and not any(name.startswith(".") for name in kept)
    fake.handle = handle
    _fetch(fake, data, sleeps)
    assert set(fake.downloads) == _valid_ids(fake)
    fetched_twice = {i for i, n in fake.downloads.items() if n > 1}  # only those in flight at the kill
    assert not fetched_twice & {name[:-4] for name in kept}
    assert sorted(read_manifest(data)["image_id"]) == sorted(_valid_ids(fake))


def test_rows_lost_by_a_kill_are_recovered_from_disk_without_downloading(fake, data, sleeps, token):
    _fetch(fake, data, sleeps)
    data.manifest.unlink()  # as if killed after writing the photos, before merging their rows
    downloads = sum(fake.downloads.values())
    _fetch(fake, data, sleeps)
    assert sum(fake.downloads.values()) == downloads
    assert sorted(read_manifest(data)["image_id"]) == sorted(_valid_ids(fake))


def test_max_per_city_spreads_the_sample_over_tiles_and_sequences(data, sleeps, token):
    fake = FakeMapillary()
    tiles = tile_bbox(AREA_BBOX, 0.01)
    dense, sparse = tiles[0], tiles[1:]
    for i in range(200):  # 20 sequences of 10 in the dense tile
        fake.add_image(FakeImage(str(5000 + i), dense[0] + 0.001 + (i % 10) * 1e-4, dense[1] + 0.001 + (i // 10) * 1e-4, f"d{i // 10}", "1", "u", 0))
    for t, tile in enumerate(sparse):
        for i in range(8):
            fake.add_image(FakeImage(str(9000 + t * 10 + i), tile[0] + 0.005, tile[1] + 0.001 + i * 1e-4, f"s{t}", "2", "v", 0))
    _fetch(fake, data, sleeps, max_per_city=40)
    manifest = read_manifest(data)
    in_dense = manifest.filter(pl.col("image_id").str.starts_with("5"))
    assert manifest.height == 40 and in_dense.height == 40 - 3 * 8  # every sparse photo, the rest from the dense tile
    assert in_dense["sequence_id"].n_unique() == in_dense.height  # one photo per sequence before any second
    _fetch(fake, data, sleeps, max_per_city=50)
    assert read_manifest(data).height == 50 and sum(fake.downloads.values()) == 50


def test_panoramas_are_kept_only_when_asked_without_searching_again(fake, data, sleeps, token):
    report = _fetch(fake, data, sleeps)
    assert report.areas[0].panos_excluded == 4 and read_manifest(data)["is_pano"].sum() == 0
    searches = len([r for r in fake.api_requests() if r.url.path == "/images"])
    _fetch(fake, data, sleeps, include_panos=True)
    assert sorted(read_manifest(data)["image_id"]) == sorted(_valid_ids(fake, panos=True))
    assert read_manifest(data)["is_pano"].sum() == 4
    assert len([r for r in fake.api_requests() if r.url.path == "/images"]) == searches


@pytest.mark.parametrize("status", [403, 404, 410])
def test_an_expired_thumbnail_url_is_refreshed_by_a_lookup(fake, data, sleeps, token, status):
    fake.expired_status = status
    stale = sorted(_valid_ids(fake))[:3]
    for image_id in stale:
        fake.expire(image_id)
    report = _fetch(fake, data, sleeps)
    assert report.complete and set(fake.downloads) == _valid_ids(fake)
    looked_up = {r.url.path.strip("/") for r in fake.api_requests() if r.url.path != "/images"}
    assert looked_up == set(stale)


def test_capture_date_filters_are_passed_to_the_search(fake, data, sleeps, token):
    cutoff = sorted(img.captured_at for img in fake.images.values())[60]
    iso = datetime.fromtimestamp(cutoff / 1000, timezone.utc).isoformat()
    _fetch(fake, data, sleeps, start_captured_at=iso)
    assert all(fake.images[i].captured_at >= cutoff for i in read_manifest(data)["image_id"])
    assert read_manifest(data).height == len([i for i in _valid_ids(fake) if fake.images[i].captured_at >= cutoff])
