"""Rules written once: the spherical mean and "does this photo decode?"."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from geolocate.data.images import BadImage, decoded_size, decodes, load_rgb
from geolocate.geo import spherical_mean


def test_spherical_mean_across_the_antimeridian_and_weighted():
    lat, lon = spherical_mean([0.0, 0.0], [179.0, -179.0])
    assert lat == pytest.approx(0.0, abs=1e-9) and abs(lon) == pytest.approx(180.0)  # not 0, the naive mean
    lat, lon = spherical_mean([0.0, 0.0], [0.0, 10.0], weights=[3.0, 1.0])
    assert lat == pytest.approx(0.0) and 0.0 < lon < 5.0  # pulled towards the heavier point


def test_spherical_mean_by_rows_matches_one_row_at_a_time():
    rng = np.random.default_rng(0)
    lat, lon, w = rng.uniform(-60, 60, (5, 4)), rng.uniform(-180, 180, (5, 4)), rng.uniform(0.1, 1, (5, 4))
    rows_lat, rows_lon = spherical_mean(lat, lon, w)
    for i in range(5):
        assert (rows_lat[i], rows_lon[i]) == pytest.approx(spherical_mean(lat[i], lon[i], w[i]))


def _jpeg(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("bad", [b"", b"not an image", _jpeg()[:200], b"\xff\xd8" + b"\x00" * 50])
def test_every_bad_photo_fails_the_same_way_from_bytes_and_from_a_file(tmp_path, bad):
    path = tmp_path / "bad.jpg"
    path.write_bytes(bad)
    assert decoded_size(bad) is None and decoded_size(bad, verify=True) is None
    assert not decodes(path) and not decodes(bad)
    with pytest.raises(BadImage):
        load_rgb(path)


def test_a_good_photo_decodes_at_full_size_even_when_drafted(tmp_path):
    path = tmp_path / "good.jpg"
    path.write_bytes(_jpeg((640, 480)))
    assert decoded_size(path, scale=8) == (640, 480) and decoded_size(path.read_bytes(), verify=True) == (640, 480)
    assert decodes(path) and load_rgb(path).size == (640, 480)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg((640, 480)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert not decodes(path)
    with pytest.raises(BadImage, match="too large"):
        load_rgb(path)


def test_each_stage_takes_the_data_lock_itself(tmp_path):
    """Called from the library, not only the CLI, a stage refuses to run beside another writer."""
    import json
    import os

    from geolocate.config import CellsConfig
    from geolocate.errors import UserError
    from geolocate.cells import run_cells
    from geolocate.paths import DataPaths

    data = DataPaths(tmp_path / "data")
    data.root.mkdir()
    holder = {"pid": os.getppid(), "hostname": __import__("socket").gethostname(), "command": "geolocate fetch", "started": "now"}
    data.lock.write_text(json.dumps(holder))
    with pytest.raises(UserError, match="geolocate fetch"):
        run_cells(CellsConfig(), data)


def test_a_version_1_config_names_the_predict_checkpoint_under_its_new_key(workdir):
    from geolocate.config import load_config

    (workdir / "config.toml").write_text('version = 1\n[predict]\nmodel = "releases/v1.0"\n[profiles.x]\npredict = { model = "best" }\n')
    assert load_config().predict.checkpoint == "releases/v1.0"
    assert load_config(None, "x").predict.checkpoint == "best"


def test_old_spellings_still_work_with_a_one_line_note(cli, workdir):
    result = cli("predict", "--model", "best", workdir / "missing.jpg")
    assert "predict --model is deprecated" in " ".join(result.stderr.split())
    assert "no global best model yet" in " ".join(result.stderr.split())  # the old spelling still names the checkpoint
    result = cli("batch", "07", "--batch", "08")
    assert result.exit_code != 0 and "two batches given" in result.stderr
    assert "deprecated" in result.stderr


def test_every_command_emits_its_json_the_same_way(cli, workdir):
    import json

    out = cli("config", "--json", "--set", "predict.top=3")
    assert out.exit_code == 0 and json.loads(out.stdout)["predict"] == {"top": 3, "device": "cpu", "checkpoint": "best", "batch_size": 32}
