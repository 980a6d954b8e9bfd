"""Files from another version of geolocate: older ones are migrated, newer ones refused by name.

- config.toml carries `version` (a file without one is version 1, the first); renamed keys of
  an older version are mapped through `config.CONFIG_RENAMES`.
- the manifest carries `geolocate.manifest_version` and `geolocate_version` in its parquet
  metadata; an older manifest without newer columns is conformed (null-filled).
- JSON documents (sidecars, releases, exports, batch state) go through `artifacts.versions.upgrade`
  (sidecar migration tested in tests/artifacts/test_artifacts_checkpoint.py).
"""

from __future__ import annotations

import json

import polars as pl
import pytest

import geolocate.config as config
from geolocate.config import load_config, validate_config
from geolocate.errors import UserError
from geolocate.paths import DataPaths, ProjectPaths


def test_a_config_from_a_newer_geolocate_is_refused_naming_its_version(workdir, cli):
    (workdir / "config.toml").write_text("version = 7\n[train]\nepochs = 3\n")
    result = cli("config")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "config version 7" in message and "upgrade geolocate" in message


def test_an_older_config_is_migrated_through_its_renamed_keys(workdir, monkeypatch):
    monkeypatch.setattr(config, "CONFIG_VERSION", 2)
    monkeypatch.setattr(config, "CONFIG_RENAMES", {1: {"train.epoch": "train.epochs", "cells.res": "cells.resolution"}})
    (workdir / "config.toml").write_text(
        "version = 1\n[train]\nepoch = 3\n[cells]\nres = 6\n[profiles.small]\ntrain = { epoch = 2 }\n")
    assert load_config().train.epochs == 3 and load_config().cells.resolution == 6
    assert load_config(None, "small").train.epochs == 2
    assert load_config().version == 2


def test_a_config_too_old_to_migrate_names_its_version(workdir):
    (workdir / "config.toml").write_text("version = 0\n")
    with pytest.raises(UserError, match="config version 0 can no longer be migrated"):
        load_config()


def test_a_run_config_written_before_versioning_still_loads():
    resolved = config.public_dict(load_config(None, "tiny"))
    resolved.pop("version")
    assert validate_config(resolved, "runs/old/config.json").version == config.CONFIG_VERSION


def _old_manifest(data: DataPaths) -> pl.DataFrame:
    """The synthetic manifest as an older geolocate wrote it: fewer columns, no version metadata."""
    frame = pl.read_parquet(data.manifest).drop("processed_path", "creator_username", "fetched_at", "camera_type")
    frame.write_parquet(data.manifest)  # plain polars: no geolocate metadata
    return frame


def test_an_older_manifest_is_conformed_and_the_pipeline_carries_on(project, cli):
    data = DataPaths(project / "data")
    old = _old_manifest(data)
    from geolocate.manifest import read_manifest

    manifest = read_manifest(data)
    assert manifest.height == old.height and manifest["processed_path"].null_count() == old.height
    assert manifest["creator_username"].null_count() == old.height
    result = cli("prepare", "--profile", "tiny")  # processed copies exist: recorded again, not redone
    assert result.exit_code == 0, result.output
    assert pl.read_parquet_metadata(data.manifest)["geolocate.manifest_version"] == "2"
    cells = cli("cells", "--profile", "tiny")
    assert cells.exit_code == 0, cells.output


def test_a_format_1_manifest_migrates_mapillary_rows_get_their_licence(tmp_path):
    from geolocate.manifest import read_manifest

    data = DataPaths(tmp_path)
    rows = pl.DataFrame({"image_id": ["123", "456"], "source": ["mapillary", "synth"], "lat": [1.0, 2.0], "lon": [1.0, 2.0]})
    rows.write_parquet(data.manifest, metadata={"geolocate.manifest_version": "1"})
    assert read_manifest(data).sort("image_id")["license"].to_list() == ["CC-BY-SA-4.0", None]
    assert read_manifest(data, columns=["license"])["license"].to_list() == ["CC-BY-SA-4.0", None]


def test_a_manifest_from_a_newer_geolocate_is_refused_naming_its_writer(project, cli):
    data = DataPaths(project / "data")
    pl.read_parquet(data.manifest).write_parquet(
        data.manifest, metadata={"geolocate.manifest_version": "3", "geolocate_version": "9.1.0"})
    for command in (["prepare", "--profile", "tiny"], ["clean-raw"]):
        result = cli(*command)
        assert result.exit_code == 2
        message = " ".join(result.stderr.split())
        assert "written by geolocate 9.1.0" in message and "upgrade geolocate" in message


def test_a_batch_state_from_a_newer_geolocate_is_refused(project):
    from geolocate.ops.batch_state import BatchState

    paths = ProjectPaths.from_config(load_config().paths)
    state = paths.data.root / "batches" / "01.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"format": "geolocate.batch", "version": 5, "versions": {"geolocate": "3.0"}, "steps": {}}))
    with pytest.raises(UserError, match="written by geolocate 3.0"):
        BatchState.load(paths, "01")
