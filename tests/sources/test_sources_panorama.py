"""360° captures: the projection against a synthetic equirectangular image, and prepare's views."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from PIL import Image

from geolocate.acquire.panorama import perspective_view, view_azimuths
from geolocate.acquire.prepare import run_prepare
from geolocate.config import DataConfig
from geolocate.manifest import read_manifest, training_photos, write_manifest
from geolocate.paths import DataPaths

W, H = 720, 360  # 0.5° per pixel


def _column(lon_deg: float) -> int:
    return int(round((lon_deg / 360 + 0.5) * W - 0.5))


def _row(lat_deg: float) -> int:
    return int(round((0.5 - lat_deg / 180) * H - 0.5))


def _pano() -> np.ndarray:
    """Four coloured quarters centred on 0°, 90°, 180°, -90° from the centre, a marker at (30°, 20°)."""
    pano = np.zeros((H, W, 3), np.uint8)
    lon = (np.arange(W) + 0.5) / W * 360 - 180
    quarter = (np.round(lon / 90).astype(int)) % 4
    pano[:, :] = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200], [200, 200, 0]], np.uint8)[quarter][None]
    pano[_row(20) - 2:_row(20) + 3, _column(30) - 2:_column(30) + 3] = 255
    return pano


def test_views_see_the_known_directions_and_the_marker_where_a_pinhole_puts_it():
    pano, size, fov = _pano(), 201, 90.0
    for yaw, colour in ((0, [200, 0, 0]), (90, [0, 200, 0]), (180, [0, 0, 200]), (270, [200, 200, 0])):
        centre = perspective_view(pano, yaw, fov, size)[90:110, 90:110].reshape(-1, 3)
        assert np.abs(centre.mean(0) - colour).max() < 2
    view = perspective_view(pano, 0, fov, size).astype(int)
    focal = (size / 2) / math.tan(math.radians(fov / 2))
    # Pinhole: longitude 30° at x = f·tan 30°; latitude 20° at y = f·tan 20° / cos 30° (the ray leaves the axis).
    expect_x = size / 2 + focal * math.tan(math.radians(30))
    expect_y = size / 2 - focal * math.tan(math.radians(20)) / math.cos(math.radians(30))
    white = np.argwhere(view.min(axis=2) > 230)
    assert len(white) and abs(white[:, 1].mean() + 0.5 - expect_x) < 1.5 and abs(white[:, 0].mean() + 0.5 - expect_y) < 1.5


def test_views_face_true_north_when_the_heading_is_known():
    assert view_azimuths(4, 30.0) == [(330.0, 0.0), (60.0, 90.0), (150.0, 180.0), (240.0, 270.0)]
    assert view_azimuths(4, None) == [(0.0, None), (90.0, None), (180.0, None), (270.0, None)]
    # Heading 90 (the capture's centre faces east): its north view is the quarter left of centre.
    north = perspective_view(_pano(), view_azimuths(4, 90.0)[0][0], 90, 64)[28:36, 28:36].reshape(-1, 3)
    assert np.abs(north.mean(0) - [200, 200, 0]).max() < 2


def test_prepare_cuts_a_pano_into_view_rows_and_recuts_a_lost_view(tmp_path):
    data = DataPaths(tmp_path / "data")
    data.raw.mkdir(parents=True)
    Image.fromarray(_pano()).save(data.raw_photo("local:00000000000000aa"), format="JPEG")
    Image.fromarray(_pano()[:, :360]).save(data.raw_photo("local:00000000000000bb"), format="JPEG")
    rows = [{"image_id": i, "sequence_id": "s", "lat": 48.0, "lon": 2.0, "compass_angle": 90.0, "is_pano": pano, "source": "local",
             "path": data.relative(data.raw_photo(i)), "city": "x"} for i, pano in (("local:00000000000000aa", True), ("local:00000000000000bb", False))]
    write_manifest(data, pl.DataFrame(rows))
    report = run_prepare(DataConfig(max_size=64), data, workers=1)
    assert report.processed == 2 and not report.failed
    manifest = read_manifest(data)
    views = manifest.filter(pl.col("parent_id") == "local:00000000000000aa").sort("compass_angle")
    assert views["image_id"].to_list() == [f"local:00000000000000aa@{a:03d}" for a in (0, 90, 180, 270)]
    assert views["compass_angle"].to_list() == [0.0, 90.0, 180.0, 270.0] and views["sequence_id"].to_list() == ["s"] * 4
    assert all(data.processed_photo(i).is_file() for i in views["image_id"])
    north = np.asarray(Image.open(data.processed_photo(views["image_id"][0])))[24:40, 24:40].reshape(-1, 3).mean(0)
    assert np.abs(north - [200, 200, 0]).max() < 12  # heading 90: north is the quarter left of centre (JPEG tolerance)
    assert sorted(training_photos(manifest)["image_id"]) == sorted(["local:00000000000000bb", *views["image_id"]])
    assert run_prepare(DataConfig(max_size=64), data, workers=1).processed == 0
    data.processed_photo(views["image_id"][2]).unlink()
    assert run_prepare(DataConfig(max_size=64), data, workers=1).processed == 1
    assert data.processed_photo(views["image_id"][2]).is_file() and read_manifest(data).height == 6
