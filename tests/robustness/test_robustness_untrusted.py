"""Untrusted inputs: photo ids, paths and names never lead a command outside the data directory.

Covered elsewhere, not repeated here:
- an export archive with absolute, `..`, link or device members given to `export --verify` is
  rejected without writing anything: tests/artifacts/test_artifacts_export.py
  (test_verify_rejects_escaping_members_and_writes_nothing);
- checkpoints and training state are never unpickled: tests/artifacts/test_artifacts_checkpoint.py
  (test_malicious_pickle_is_refused_without_running) and tests/artifacts/test_artifacts_state.py
  (test_hostile_state_is_refused_without_running);
- API records with a non-numeric id are skipped by fetch: tests/acquire/test_acquire_fetch.py.
"""

from __future__ import annotations

import polars as pl
import pytest

from geolocate.manifest import read_manifest, write_manifest
from geolocate.errors import UserError
from geolocate.paths import DataPaths

HOSTILE = [
    {"image_id": "../../escape", "path": "raw/../../escape.jpg", "processed_path": None},
    {"image_id": "/tmp/escape", "path": None, "processed_path": None},
    {"image_id": "123", "path": "raw/123.jpg", "processed_path": "../../outside.jpg"},
    {"image_id": "124", "path": "/etc/passwd", "processed_path": None},
]


def _with_hostile_row(data: DataPaths, row: dict) -> None:
    manifest = read_manifest(data)
    first = manifest.head(1).to_dicts()[0]
    write_manifest(data, pl.concat([manifest, pl.DataFrame([{**first, **row}], schema=manifest.schema)]))


def _everything(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("row", HOSTILE, ids=["dotdot-id", "absolute-id", "processed-outside", "raw-outside"])
def test_a_manifest_row_that_could_escape_is_refused(project, cli, row):
    data = DataPaths(project / "data")
    _with_hostile_row(data, row)
    (project / "outside.jpg").write_bytes((next(data.processed.glob("*.jpg"))).read_bytes())
    before = _everything(project.parent)
    for command in (["prepare", "--profile", "tiny"], ["clean-raw"], ["batch", "01", "--synthetic", "--profile", "tiny"]):
        result = cli(*command)
        assert result.exit_code == 2, (command, result.output)
        message = " ".join(result.stderr.split())
        assert "could leave" in message and repr(row["image_id"]) in message, message
    from geolocate.data.frames import training_frame  # what the dataset reads

    with pytest.raises(UserError, match="could leave"):
        training_frame(data)
    assert _everything(project.parent) == before  # nothing written, inside or outside


def test_ids_and_names_become_paths_only_inside_their_directory(tmp_path):
    data = DataPaths(tmp_path / "data")
    for image_id in ("../../x", "/etc/passwd", "1/2", "", "12ab"):
        with pytest.raises(ValueError):
            data.raw_photo(image_id)
        with pytest.raises(ValueError):
            data.processed_photo(image_id)
    for name in ("../../etc", "/abs/olute", "..", "a/../../b"):
        try:
            path = data.area_state(name)
        except UserError:
            continue  # refused outright is fine too
        assert path.resolve().parent == data.fetch_state.resolve()


def test_a_batch_name_cannot_name_a_path(project, cli):
    for batch in ("../../x", "/tmp/x", "01/../../x"):
        result = cli("batch", batch, "--synthetic", "--profile", "tiny")
        assert result.exit_code == 2 and "no batch" in result.stderr
    assert not (project / "data" / "batches").exists()
