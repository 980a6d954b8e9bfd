"""Importing a competition-style locations table: copies, digit ids, unreadable views reported."""

from __future__ import annotations

import json

import pytest

import numpy as np
import polars as pl
from PIL import Image

from geolocate.errors import UserError
from geolocate.paths import DataPaths, is_valid_image_id
from geolocate.acquire.locations_table import import_locations


def _table(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a_n.jpg", "a_e.png", "b_s.jpg"):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / name)
    (images / "b_w.jpg").write_bytes(b"this is not a jpeg")
    table = tmp_path / "train.csv"
    table.write_text("id,north,east,south,west,lat,lon,state\n"
                     "A,a_n.jpg,a_e.png,,,39.7,-104.9,Colorado\n"
                     "B,,,b_s.jpg,b_w.jpg,40.0,-105.2,Colorado\n")
    return table, images


def test_import_copies_views_and_reports_the_unreadable_one(tmp_path):
    table, images = _table(tmp_path)
    data = DataPaths(tmp_path / "data")
    result = import_locations(table, images, data, region_column="state")
    assert (result.locations, result.views) == (2, 3)
    assert [(u["location_id"], u["view"]) for u in result.unreadable] == [("B", "west")]
    locations = pl.read_parquet(data.locations).sort("location_id")
    a, b = locations.rows(named=True)
    assert a["north"] and a["east"] and a["south"] is None and a["region"] == "Colorado"
    assert b["south"] and b["west"] is None  # the unreadable view is left empty
    manifest = pl.read_parquet(data.manifest)
    assert manifest.height == 3 and all(is_valid_image_id(i) for i in manifest["image_id"])
    for row in manifest.iter_rows(named=True):
        assert (data.root / row["path"]).is_file() and row["source"] == "import"
    assert sorted(manifest["compass_angle"].to_list()) == [0.0, 90.0, 180.0]
    json.dumps(result.__dict__)  # the CLI prints it as JSON


def test_importing_the_same_table_twice_changes_nothing(tmp_path):
    table, images = _table(tmp_path)
    data = DataPaths(tmp_path / "data")
    import_locations(table, images, data)
    first = pl.read_parquet(data.locations)
    import_locations(table, images, data)
    assert pl.read_parquet(data.locations).equals(first)
    assert pl.read_parquet(data.manifest).height == 3


def test_import_command_reports_and_exits_zero(cli, workdir):
    table, images = _table(workdir)
    result = cli("import-locations", table, "--images-dir", images)
    assert result.exit_code == 0, result.output
    assert "unreadable" in result.output and "B west" in result.output


def test_data_commands_do_not_import_torch(tmp_path):
    import subprocess
    import sys

    table, images = _table(tmp_path)
    code = ("import sys; from typer.testing import CliRunner; from geolocate.cli import app; "
            f"r = CliRunner().invoke(app, ['import-locations', {str(table)!r}, '--images-dir', {str(images)!r}]); "
            "print(r.exit_code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]


def _photo(path):
    Image.fromarray(np.full((30, 40, 3), 120, dtype=np.uint8)).save(path)


def test_view_paths_never_leave_the_images_dir(tmp_path):
    """A view `../private/x.png`, an absolute path or a link out of --images-dir refuses the table,
    naming every refused line; nothing is copied."""
    images, private = tmp_path / "images", tmp_path / "private"
    images.mkdir()
    private.mkdir()
    _photo(private / "secret.png")
    _photo(images / "ok.jpg")
    (images / "link.png").symlink_to(private / "secret.png")
    table = tmp_path / "t.csv"
    table.write_text("id,north,east,south,west\n"
                     "A,ok.jpg,../private/secret.png,,\n"
                     f"B,ok.jpg,,{private / 'secret.png'},\n"
                     "C,ok.jpg,,,link.png\n")
    data = DataPaths(tmp_path / "data")
    with pytest.raises(UserError) as refused:
        import_locations(table, images, data)
    message = str(refused.value)
    assert "line 2: east" in message and "line 3: south" in message and "line 4: west" in message
    assert "images-dir" in message and "nothing imported" in message
    assert not data.root.exists() or not any(data.root.rglob("*.jpg"))


@pytest.mark.parametrize("lat, lon", [("nan", "2"), ("inf", "2"), ("91", "2"), ("45", "181"), ("45", ""), ("x", "2")])
def test_positions_outside_the_globe_are_refused_with_the_line(tmp_path, lat, lon):
    images = tmp_path / "images"
    images.mkdir()
    _photo(images / "a.jpg")
    table = tmp_path / "t.csv"
    table.write_text(f"id,north,lat,lon\nA,a.jpg,45,2\nB,a.jpg,{lat},{lon}\n")
    data = DataPaths(tmp_path / "data")
    with pytest.raises(UserError, match="line 3"):
        import_locations(table, images, data)
    assert not data.root.exists() or not any(data.root.rglob("*.parquet"))


def test_a_duplicate_id_names_both_lines(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _photo(images / "a.jpg")
    table = tmp_path / "t.csv"
    table.write_text("id,north\nA,a.jpg\nB,a.jpg\nA,a.jpg\n")
    with pytest.raises(UserError, match="line 4: id 'A' already on line 2"):
        import_locations(table, images, DataPaths(tmp_path / "data"))


def test_a_header_only_table_says_no_rows(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("id,north,east,south,west\n")
    with pytest.raises(UserError, match="no rows"):
        import_locations(table, tmp_path, DataPaths(tmp_path / "data"))


def _faces_table(tmp_path, header_extra="group", rows=None):
    images = tmp_path / "faces"
    images.mkdir()
    rng = np.random.default_rng(1)
    for loc in ("P", "Q", "R"):
        for face in ("front", "right", "back", "left"):
            Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(images / f"{loc}_{face}.jpg")
    table = tmp_path / "faces.csv"
    lines = [f"id,lat,lon,azimuth,{header_extra},front,right,back,left"]
    for loc, azimuth, group in rows or [("P", 130, "s1"), ("Q", 139, "s1"), ("R", 10, "s2")]:
        lines.append(f"{loc},44.7,-1.1,{azimuth},{group}," + ",".join(f"{loc}_{f}.jpg" for f in ("front", "right", "back", "left")))
    table.write_text("\n".join(lines) + "\n")
    return table, images


def test_vehicle_faces_map_to_the_compass_views_they_look_at(tmp_path):
    table, images = _faces_table(tmp_path)
    data = DataPaths(tmp_path / "data")
    result = import_locations(table, images, data)
    assert (result.locations, result.views) == (3, 12)
    manifest = pl.read_parquet(data.manifest)
    locations = pl.read_parquet(data.locations).sort("location_id")
    p = locations.row(0, named=True)  # azimuth 130: front looks south-east, 40° from east
    angle = dict(zip(manifest["image_id"], manifest["compass_angle"]))
    assert [angle[p[v]] for v in ("east", "south", "west", "north")] == [130.0, 220.0, 310.0, 40.0]
    r = locations.row(2, named=True)  # azimuth 10: front looks (almost) north
    assert [angle[r[v]] for v in ("north", "east", "south", "west")] == [10.0, 100.0, 190.0, 280.0]


def test_group_column_keeps_one_sequence_per_capture_group(tmp_path):
    table, images = _faces_table(tmp_path)
    data = DataPaths(tmp_path / "data")
    import_locations(table, images, data)
    seqs = dict(pl.read_parquet(data.locations).select("location_id", "sequence_id").iter_rows())
    assert seqs["P"] == seqs["Q"] != seqs["R"]  # P and Q were captured in one sequence
    manifest = pl.read_parquet(data.manifest)
    assert manifest["sequence_id"].n_unique() == 2


def test_without_a_group_column_each_location_is_its_own_group(tmp_path):
    table, images = _faces_table(tmp_path, header_extra="note")
    data = DataPaths(tmp_path / "data")
    import_locations(table, images, data)
    assert pl.read_parquet(data.locations)["sequence_id"].n_unique() == 3


def test_faces_without_azimuth_are_a_one_line_error(cli, workdir):
    images = workdir / "imgs"
    images.mkdir()
    table = workdir / "t.csv"
    table.write_text("id,front,back\nA,a.jpg,b.jpg\n")
    result = cli("import-locations", table, "--images-dir", images)
    assert result.exit_code != 0 and "azimuth" in result.output and "Traceback" not in result.output


def test_vehicle_faces_are_confined_and_azimuth_checked(tmp_path):
    """Face columns are paths like the compass views: a face leaving --images-dir or a bad azimuth
    refuses the table with its line."""
    table, images = _faces_table(tmp_path)
    text = table.read_text().splitlines()
    text[1] = text[1].replace("P_front.jpg", "../outside.jpg")
    text[2] = text[2].replace(",139,", ",north,")
    table.write_text("\n".join(text) + "\n")
    with pytest.raises(UserError) as refused:
        import_locations(table, images, DataPaths(tmp_path / "data"))
    assert "line 2: front" in str(refused.value) and "line 3: azimuth 'north'" in str(refused.value)
