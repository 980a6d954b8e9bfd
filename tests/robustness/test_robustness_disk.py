"""A full disk or a read-only directory: one line of error, and nothing half-written.

Tests run as root in CI, where chmod does not stop a write; then the read-only file system is
simulated where the write begins (creating the temporary file), as the kernel would refuse it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile

import polars as pl


def _snapshot(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or all(not line.startswith(("Traceback", "  File")) for line in lines), result.stderr
    assert "Traceback" not in result.output
    return " ".join(lines)


def test_disk_full_mid_write_leaves_the_old_files_whole(project, cli, monkeypatch):
    data = project / "data"
    before = _snapshot(data)
    real_write = pl.DataFrame.write_parquet

    def fill_the_disk(self, file, *args, **kwargs):
        real_write(self, file, *args, **kwargs)
        with open(file, "r+b") as handle:  # half of the file made it to disk, then the device was full
            handle.truncate(os.path.getsize(file) // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fill_the_disk)
    result = cli("cells", "--profile", "tiny", "--set", "cells.min_samples=30")
    assert result.exit_code == 2
    assert "no space left on the device" in _one_line(result)
    assert _snapshot(data) == before  # the old cells/labels are intact, no temporary file is left
    monkeypatch.setattr(pl.DataFrame, "write_parquet", real_write)  # space again (undo() would also undo the chdir)
    assert pl.read_parquet(data / "cells.parquet").height > 0


def test_disk_full_while_cleaning_raw_keeps_the_manifest_whole(project, cli, monkeypatch):
    data = project / "data"
    real_write = pl.DataFrame.write_parquet

    def full(self, file, *args, **kwargs):
        real_write(self, file, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    result = cli("clean-raw")
    assert result.exit_code == 2 and "no space left" in _one_line(result)
    monkeypatch.setattr(pl.DataFrame, "write_parquet", real_write)  # space again (undo() would also undo the chdir)
    manifest = pl.read_parquet(data / "manifest.parquet")  # the old manifest, whole
    assert manifest["path"].null_count() == 0
    assert not [p for p in data.rglob("*.tmp")]
    again = cli("clean-raw")  # with space again, the next run repairs the rows of files already gone
    assert again.exit_code == 0, again.output
    assert pl.read_parquet(data / "manifest.parquet")["path"].null_count() == manifest.height


def _make_read_only(directory, monkeypatch) -> None:
    """chmod 0o555; when that does not stop writes (root), refuse file creation there as EROFS."""
    directory.chmod(0o555)
    try:
        probe = directory / ".probe"
        probe.write_bytes(b"")
        probe.unlink()
    except PermissionError:
        return  # the file system enforces it
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and os.path.realpath(dir).startswith(os.path.realpath(directory)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)


def test_read_only_data_directory_is_one_line_and_writes_nothing(project, cli, monkeypatch):
    from geolocate.cells.kpi import append_kpi_history, read_kpi_history
    from geolocate.paths import DataPaths

    data = project / "data"
    # 3 distinct rows (an identical rerun adds none): kpi then draws (and must write) its figure
    for n, row in enumerate(read_kpi_history(DataPaths(data)).to_dicts() * 2):
        append_kpi_history(DataPaths(data), {**row, "photos": row["photos"] + n + 1})
    before = _snapshot(data)
    _make_read_only(data, monkeypatch)
    try:
        result = cli("split", "--profile", "tiny")
        kpi = cli("kpi", "--profile", "tiny")
    finally:
        data.chmod(0o755)
    for outcome in (result, kpi):
        assert outcome.exit_code == 2
        message = _one_line(outcome)
        assert "cannot write" in message and ("read-only" in message or "permission denied" in message)
    assert _snapshot(data) == before
