"""`geolocate prepare` through the CLI: table, --json summary, failures listed, re-run incremental."""

from __future__ import annotations

import json

from geolocate.manifest import read_manifest
from geolocate.paths import DataPaths


def test_cli_prepare_reports_failures_and_is_incremental(cli, workdir):
    assert cli("synth", "--n", "20", "--size", "48").exit_code == 0
    data = DataPaths(workdir / "data")
    broken = read_manifest(data)["image_id"][0]
    data.raw_photo(broken).write_bytes(b"garbage")
    result = cli("prepare", "--set", "data.max_size=32", "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["processed"] == 19 and summary["failed_ids"] == [broken]
    assert f"failed {broken}: undecodable" in result.stderr
    again = json.loads(cli("prepare", "--json").stdout)
    assert again["processed"] == 0 and again["already_done"] == 19 and again["failed"] == 1


def test_cli_prepare_without_manifest_is_one_line(cli, workdir):
    result = cli("prepare")
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "manifest" in lines[0]
