"""Few photos, few sequences, sparse places: val and test get a group each or the split refuses;
every photo with a position reaches the split; later stages judge by the recorded settings."""

from __future__ import annotations

import json

import polars as pl
import pytest
from manifest_factory import manifest_frame, world_manifest, write
from PIL import Image

from geolocate.cells import run_cells
from geolocate.cells.assign import valid_position
from geolocate.config import CellsConfig, load_config
from geolocate.errors import UserError
from geolocate.split import run_split
from geolocate.split.grouped import assign_splits, spare_groups


def _frame(groups_per_cell: dict[str, int]) -> pl.DataFrame:
    """One photo per group; `groups_per_cell` groups in each cell."""
    rows = [{"image_id": f"{cell}-{g}", "cell_id": cell, "group": f"{cell}-g{g}"}
            for cell, n in groups_per_cell.items() for g in range(n)]
    return pl.DataFrame(rows)


def test_no_photo_with_a_valid_position_is_left_out_of_the_split_because_its_cell_was_sparse(tmp_path):
    frame = world_manifest()
    data = write(tmp_path / "data", frame)
    run_cells(CellsConfig(), data)  # the defaults: auto classes, sparse cells merged up
    # Without the dominance cap (which leaves out train rows on purpose, and says so).
    cfg = load_config(None, None, ["cells.max_dominance=1.0"])
    report = run_split(cfg, data).report
    located = frame.filter(valid_position(pl.col("lat"), pl.col("lon")))["image_id"]
    split = pl.read_parquet(data.split)
    assert set(located) == set(split["image_id"]) and report["labelled"] == len(located)
    lone = split.filter(pl.col("image_id").str.starts_with("2000"))
    assert lone.height == 5  # the five lone photos on other continents are in it too


def test_cells_of_one_or_two_groups_still_give_val_and_test_a_group_each():
    frame = _frame({"a": 2, "b": 2, "c": 1})  # no cell has the three groups the per-cell dealing needs
    split = assign_splits(frame, 0.1, 0.1, seed=0)
    per_split = split.group_by("split").agg(pl.col("group").n_unique()).sort("split")
    assert dict(per_split.iter_rows()) == {"test": 1, "train": 3, "val": 1}
    trained = split.filter(pl.col("split") == "train")["cell_id"]
    assert set(trained) == {"a", "b", "c"}  # no class lost its train group


def test_too_few_groups_is_a_one_line_refusal():
    with pytest.raises(UserError, match=r"^only 2 sequence\(s\): train, val and test need one each") as info:
        assign_splits(_frame({"a": 2}), 0.1, 0.1, seed=0)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"each of the 3 sequences left in train is the only train sequence of its class \(3 sequences, 3 classes"):
        assign_splits(_frame({"a": 1, "b": 1, "c": 1}), 0.1, 0.1, seed=0)
    assert spare_groups(_frame({"a": 1, "b": 1}), pl.DataFrame({"group": ["a-g0", "b-g0"], "split": ["train", "train"]})) == []


def _project(root, frame):
    """A project directory whose data/ holds `frame` as its manifest and a tiny JPEG per photo."""
    data = write(root / "data", frame)
    data.raw.mkdir(parents=True)
    for image_id in frame["image_id"]:
        Image.new("RGB", (16, 12), (90, 80, 160)).save(data.raw_photo(image_id), quality=85)
    return data


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_three_photo_project_is_refused_in_one_line_before_train(cli, workdir):
    three = world_manifest().filter(pl.col("image_id").str.starts_with("2000")).head(3)
    _project(workdir, three)
    cells = cli("cells")
    assert cells.exit_code != 0 and len(_errors(cells)) == 1 and "too few" in _errors(cells)[0]
    # Forced into classes of one photo, the split refuses: no sequence can be spared for val or test.
    assert cli("cells", "--set", "cells.min_samples=1").exit_code == 0
    split = cli("split")
    assert split.exit_code != 0 and len(_errors(split)) == 1 and "val and test need" in _errors(split)[0]
    assert "✓" not in split.output
    sanity = cli("sanity", "--quick")
    assert sanity.exit_code != 0 and len(_errors(sanity)) == 1 and "geolocate split" in _errors(sanity)[0]


def test_sanity_judges_by_what_cells_ran_with_not_by_the_defaults(cli, workdir):
    """The README's recipe for few photos, then `sanity` with no --set (it used to fail on 150)."""
    _project(workdir, manifest_frame(n_sequences=30, per_sequence=4, seed=2))
    assert cli("cells", "--res", "3", "--set", "cells.min_samples=1").exit_code == 0
    split = cli("split", "--set", "cells.max_dominance=0.5")
    assert split.exit_code == 0, split.output
    result = cli("sanity", "--quick", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["cell minimum"]["ok"] and "minimum 1, as `cells` ran" in checks["cell minimum"]["detail"]
    assert checks["dominance cap"]["ok"] and "cap 50%" in checks["dominance cap"]["detail"]
    clash = cli("split", "--set", "cells.min_samples=150")
    assert clash.exit_code != 0 and len(_errors(clash)) == 1
    assert "ran with 1" in _errors(clash)[0] and "gives 150" in _errors(clash)[0]
