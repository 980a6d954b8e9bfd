"""`geolocate kpi`: the KPI history as a table and a figure."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from PIL import Image

from geolocate.cells.kpi import append_kpi_history
from geolocate.paths import DataPaths


def _history(data: DataPaths) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, (batches, photos) in enumerate([("01", 1200), ("01,02", 2600), ("01,02,03", 4100)]):
        append_kpi_history(data, {"timestamp": start + timedelta(days=i), "batches": batches, "photos": photos,
                                  "classes": 10 + 5 * i, "min_per_cell": 150, "median_per_cell": 180.0 + i,
                                  "max_per_cell": 400 - 50 * i, "top_class_share": 0.30 - 0.05 * i})


def test_kpi_prints_the_history_and_writes_the_figure(workdir, cli):
    data = DataPaths(workdir / "data")
    _history(data)
    result = cli("kpi", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["batches"] for r in summary["history"]] == ["01", "01,02", "01,02,03"]
    assert summary["figure"] == "data/kpi_history.png"
    with Image.open(workdir / "data" / "kpi_history.png") as image:
        assert image.format == "PNG" and image.width > 400
    assert "KPI history" not in result.stderr  # --json: the JSON is the result, nothing else on stdout
    table = cli("kpi")
    text = " ".join(table.stdout.split())
    assert "KPI history" in text and "4,100" in text and "150 / 182 / 300" in text and "20.0%" in text


def test_kpi_out_chooses_where_the_figure_goes(workdir, cli):
    _history(DataPaths(workdir / "data"))
    result = cli("kpi", "--out", "reports/kpi.png")
    assert result.exit_code == 0 and (workdir / "reports" / "kpi.png").stat().st_size > 0
    assert not (workdir / "data" / "kpi_history.png").exists()


def test_kpi_without_history_says_what_to_run(workdir, cli):
    result = cli("kpi")
    assert result.exit_code == 2 and "run `geolocate cells`" in " ".join(result.stderr.split())


def test_kpi_draws_no_figure_before_three_rows(workdir, cli):
    data = DataPaths(workdir / "data")
    append_kpi_history(data, {"timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc), "batches": "01", "photos": 1200,
                              "classes": 10, "min_per_cell": 150, "median_per_cell": 180.0, "max_per_cell": 400,
                              "top_class_share": 0.3})
    result = cli("kpi")
    assert result.exit_code == 0 and "1,200" in result.stdout
    assert "no figure until the history has 3 rows (it has 1)" in " ".join(result.stderr.split())
    assert not (workdir / "data" / "kpi_history.png").exists()
