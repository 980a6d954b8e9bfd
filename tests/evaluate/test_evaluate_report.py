"""REPORT.md: every section present, values formatted, phases in order."""

from __future__ import annotations

from geolocate.config import GatesConfig, GeolocateConfig, public_dict
from geolocate.evaluate.gates import evaluate_gates
from geolocate.evaluate.report import collect_environment, render_report
from geolocate.evaluate.tables import format_duration, format_value

TEST = {"n": 120, "acc_top1": 0.5, "acc_top5": 0.8, "median_km": 0.91, "p90_km": 6.25, "over_200km": 0.0}
VAL = {"n": 110, "acc_top1": 0.55, "acc_top5": 0.85, "median_km": 0.85, "p90_km": 4.0, "over_200km": 0.01}


def _report(**kw):
    """REPORT.md of a summary shaped like metrics.json, with `kw` merged in."""
    gates = evaluate_gates(TEST, 0.1, GatesConfig(absolute=True))
    summary = dict(
        run_id="20261121-213000-v1",
        metrics={"test": TEST, "val": VAL},
        gates=[g.as_dict() for g in gates],
        config=public_dict(GeolocateConfig()),
        environment={"python": "3.12.1", "torch": "2.14.1", "device": "cpu"},
    )
    return render_report({**summary, **kw})


def test_report_has_every_section():
    text = _report(
        calibration={"temperature": 1.5, "ece_before": 0.12, "ece_after": 0.03, "nll_before": 1.2, "nll_after": 1.0},
        stability={"std_km": 0.1, "last_k": 5, "val_median_km": [1.0, 0.9, 0.85]},
        data={"photos": 4000, "classes": 20, "top_class_share": 0.17},
        position={"mode": "weighted", "scores": {"top1": {"median_km": 0.95}, "weighted": {"median_km": 0.85}}},
        duration_s=3723.4,
        became_best=True,
    )
    assert text.startswith("# geolocate run `20261121-213000-v1`")
    for heading in ("## Metrics", "## Gates", "## Calibration", "## Stability", "## Data", "## Environment",
                    "## Config", "## Artifacts"):  # fmt: skip
        assert heading in text
    assert "| metric | test | val |" in text
    assert "| acc_top1 | 50.0 % | 55.0 % |" in text
    assert "| median_km | 0.91 km | 0.85 km |" in text
    assert "| accuracy | 50.0 % | >= | 50.0 % | **PASS** |" in text
    assert "| p90_km | 6.25 km | < | 5.00 km | **FAIL** |" in text
    assert "Verdict: **at least one gate fails**." in text
    assert "T = 1.500" in text and "| ECE | 0.12 | 0.03 |" in text
    assert "0.10 km" in text and "1.00, 0.90, 0.85" in text
    assert "Predicted position: **weighted**" in text
    # The config is a link, not a 150-line JSON dump: headline settings, then config.json.
    assert "```json" not in text and "\"geo_tau_km\"" not in text
    assert "model **resnet18**, 30 epochs" in text and "[config.json](config.json)" in text
    assert "| torch | 2.14.1 |" in text and "| device | cpu |" in text
    assert "1 h 02 min 03 s" in text and "became the global best" in text
    for name in ("confusion_matrix.png", "geo_error.png", "metrics.csv", "predictions.parquet"):
        assert f"[{name}]({name})" in text
    assert "![confusion_matrix.png](confusion_matrix.png)" in text


def test_optional_sections_are_left_out_and_not_best_is_said():
    text = _report(became_best=False)
    assert "## Calibration" not in text and "## Stability" not in text and "## Seeds" not in text
    assert "did not beat the global best" in text


def test_per_phase_rows_keep_their_order():
    phases = {"scout-clip": TEST, "scout-convnext": VAL, "ensemble": VAL, "ensemble + sniper": TEST}
    text = _report(phases={"test": phases, "val": phases}, seeds={"runs": ["a", "b"], "test": {"median_km": {"mean": 0.9, "std": 0.05}}})
    assert "## Metrics per phase (test)" in text and "## Metrics per phase (val)" in text
    assert "| metric | scout-clip | scout-convnext | ensemble | ensemble + sniper |" in text
    assert "## Seeds (2 runs: a, b; test split)" in text and "| median_km | 0.90 km ± 0.05 km |" in text


def test_formatting_helpers():
    assert format_value("within_1km", 0.625) == "62.5 %"
    assert format_value("p95_km", 12.3456) == "12.35 km"
    assert format_value("n", 12000) == "12,000"
    assert format_value("median_km", float("nan")) == "–"
    assert format_value("note", "a|b") == "a|b"
    assert format_duration(59.6) == "1 min 00 s" and format_duration(7) == "7 s"


def test_pipes_in_values_do_not_break_tables():
    text = _report(data={"batches": "01|02"})
    assert "| batches | 01\\|02 |" in text


def test_collect_environment():
    env = collect_environment("cpu")
    assert env["device"] == "cpu" and env["python"].count(".") == 2
    assert {"torch", "timm", "numpy"} <= set(env)


def test_judged_line_comes_first_and_names_profile_and_thresholds():
    from geolocate.evaluate.judge import judged_line

    other = {"own": False, "profile": "v1", "run_profile": "tiny", "gates": GatesConfig(absolute=True).model_dump()}
    text = _report(judged_line=judged_line(other))
    assert text.splitlines()[2].startswith("**Judged with profile v1, not the run's own (tiny)**")
    assert "median < 1 km" in text.splitlines()[2] and "accuracy ≥ 50.0 %" in text.splitlines()[2]
    own = judged_line({**other, "own": True, "profile": "tiny"})
    assert own.startswith("Judged with the run's own config (profile tiny)")
    # Without the fixed thresholds (another area, or imported photos under v1) none is named
    relative = {**other, "gates": GatesConfig().model_dump()}
    for line in (judged_line(relative), judged_line(other, absolute=False)):
        assert "median < 1 km" not in line and "relative to this area's baselines" in line


def test_rerunning_the_global_best_is_not_said_to_lose_to_it():
    text = _report(became_best=False, already_best=True)
    assert "is the global best" in text and "did not beat" not in text


def test_per_city_and_sample_predictions():
    import numpy as np

    from geolocate.evaluate.breakdown import per_area, sample_predictions

    cities = ["Lyon", "Lyon", "Lyon", "Gap"]
    err = np.array([0.5, 3.0, 1.0, 200.0])
    rows = per_area(cities, np.array([True, False, True, False]), err)
    assert [r["city"] for r in rows] == ["Lyon", "Gap"] and rows[0]["n"] == 3
    assert abs(rows[0]["acc_top1"] - 2 / 3) < 1e-9 and rows[0]["median_km"] == 1.0
    truth = np.array([[45.0, 4.0]] * 4)
    samples = sample_predictions(["a", "b", "c", "d"], truth, truth + 0.1, err, cities, ["Lyon"] * 4, k=3)
    assert [s["image_id"] for s in samples] == ["a", "b", "d"]  # best, middle, worst
    text = _report(per_area=rows, samples=samples)
    assert "## Per city (test)" in text and "| Lyon | 3 | 66.7 % | 1.00 km |" in text
    assert "| `d` | Gap (45.0000, 4.0000) | Lyon (45.1000, 4.1000) | 200.00 km |" in text


def test_a_sample_without_a_city_shows_its_coordinates_alone():
    import numpy as np

    from geolocate.evaluate.breakdown import sample_predictions

    truth = np.array([[44.6241, -1.1507]])
    samples = sample_predictions(["x"], truth, truth, np.array([0.0]), [None], [None], k=1)
    text = _report(samples=samples)
    assert "| `x` | (44.6241, -1.1507) | (44.6241, -1.1507) | 0.00 km |" in text and "None" not in text


def test_too_few_examples_are_said_and_coverage_and_ece_are_not_claimed():
    from geolocate.evaluate.report import small_sample_warning

    assert small_sample_warning(30, 120) is None
    warning = small_sample_warning(1, 1)
    assert "cannot be trusted" in warning and "1 val and 1 test" in warning
    calibration = {"temperature": 1.5, "ece_before": 0.12, "ece_after": 0.03, "nll_before": 1.2, "nll_after": 1.0}
    radius = {"level": 0.9, "edges": [], "radius_km": [3.0], "n_val": 1, "test": {"coverage": 1.0, "per_band": [1.0]}}
    text = _report(small_sample=warning, warnings=[warning], calibration=calibration, radius=radius)
    assert f"**Warning: {warning}**" in text
    assert "100.0 %" not in text and "| ECE |" not in text  # neither coverage nor the ECE is claimed
    assert "Coverage is not claimed" in text and "Calibration" in text and "Not claimed" in text
    trusted = _report(calibration=calibration, radius={**radius, "n_val": 300})
    assert "| ECE | 0.12 | 0.03 |" in trusted and "Test coverage: **100.0 %**" in trusted


def test_a_collapsed_run_never_reads_all_gates_pass():
    passing = [{"name": "beats_trivial_median_km", "value": 1.0, "threshold": 2.0, "comparison": "<", "passed": True}]
    assert "Verdict: **all gates pass**" in _report(gates=passing)
    text = _report(gates=passing, collapse="collapse: 90 % of val goes to class 3", warnings=["collapse: 90 %"])
    assert "all gates pass" not in text and "collapsed onto one class" in text


def test_failed_gates_say_why_the_run_is_not_the_default():
    text = _report(became_best=False, promotion={"promoted": False, "why": "failed its gates: kept as a run, not promoted to models/best"})
    assert "This run failed its gates: kept as a run, not promoted to models/best." in text


def test_accuracy_at_distance_for_the_model_and_every_baseline():
    model = {**TEST, "within_1km": 0.1, "within_25km": 0.4, "within_200km": 0.8, "within_750km": 0.9, "within_2500km": 1.0}
    baselines = {"majority": {**model, "within_1km": 0.0}, "centroid": {**model, "median_km": 5.0}}
    text = _report(metrics={"test": model, "val": VAL}, baselines=baselines)
    assert "## Accuracy at distance (test)" in text and "| within | model | majority | centroid |" in text
    assert "| 1 km | 10.0 % | 0.0 % | 10.0 % |" in text and "| 2,500 km | 100.0 % | 100.0 % | 100.0 % |" in text


def test_imported_photos_are_tabled_by_h3_parent_cell_not_one_local_row():
    import h3
    import numpy as np

    from geolocate.evaluate.breakdown import areas_of

    truth = np.array([[44.66, -1.25], [44.67, -1.24], [48.85, 2.35]])
    classes = [h3.latlng_to_cell(lat, lon, 5) for lat, lon in truth]
    names, by = areas_of(["local"] * 3, truth, classes)
    assert by == "H3 cell (res 3)" and names[0] == names[1] != names[2]
    assert names[0] == h3.latlng_to_cell(44.66, -1.25, 3)
    assert areas_of(["Lyon", "Gap", "Lyon"], truth, classes) == (["Lyon", "Gap", "Lyon"], "city")  # named areas stay
    assert areas_of(["local"] * 3, truth, ["A", "B", "C"])[1] == "city"  # no H3 classes: nothing coarser to say


def test_report_is_rendered_from_metrics_json_and_rerendered_when_seeds_arrive(tmp_path):
    import json

    from geolocate.artifacts.rundir import RunDir
    from geolocate.evaluate.finish import add_to_summary, write_summary

    run = RunDir(tmp_path)
    gates = [g.as_dict() for g in evaluate_gates(TEST, 0.1, GatesConfig(absolute=True))]
    write_summary(run, {"run_id": "r1", "metrics": {"test": TEST, "val": VAL}, "gates": gates,
                        "config": public_dict(GeolocateConfig()), "environment": {"device": "cpu"}})
    assert "## Seeds" not in run.report.read_text()
    add_to_summary(run, seeds={"runs": ["r0", "r1"], "test": {"median_km": {"mean": 0.9, "std": 0.05}}})
    assert "## Seeds (2 runs: r0, r1; test split)" in run.report.read_text()  # rendered again, not appended
    assert json.loads(run.metrics_json.read_text())["seeds"]["runs"] == ["r0", "r1"]
    assert run.report.read_text().count("## Metrics") == 1


def test_the_data_table_says_why_labelled_photos_are_not_in_the_split(tmp_path):
    """400 labelled, 365 in the split: the report says the 31 + 4 it left out, from the split's own report."""
    import json
    from types import SimpleNamespace

    import polars as pl

    from geolocate.evaluate.finish import stage_counts
    from geolocate.paths import DataPaths

    data = DataPaths(tmp_path / "data")
    data.root.mkdir()
    pl.DataFrame({"image_id": [str(i) for i in range(365)],
                  "split": ["train"] * 229 + ["val"] * 68 + ["test"] * 68}).write_parquet(data.split)
    counts = stage_counts(SimpleNamespace(data=data))
    assert counts == {"photos in the split": "test 68 / train 229 / val 68"}  # no report: nothing said of it
    report = {"dominance": {"downsampled_rows": 31}, "buffer_dropped": 4, "untrained_dropped": 0, "photos": {}, "labelled": 400}
    data.split_report.write_text(json.dumps(report))
    said = stage_counts(SimpleNamespace(data=data))["labelled photos left out of the split"]
    assert said == ("31 train photos left out under the dominance cap (cells.max_dominance); "
                    "4 train photos dropped by the spatial buffer (split.buffer)")
    data.split_report.write_text("[1, 2]")  # edited into something else: the counts still stand
    assert stage_counts(SimpleNamespace(data=data)) == counts
    text = _report(data={"labelled photos left out of the split": said})
    assert "| labelled photos left out of the split | 31 train photos" in text


def test_the_data_table_leaves_out_a_kpi_without_a_value(tmp_path):
    """Imported photos have no fetch batches: the KPI row's empty `batches` is not printed as an empty row."""
    from types import SimpleNamespace

    import polars as pl

    from geolocate.evaluate.run import _kpis
    from geolocate.paths import DataPaths

    data = DataPaths(tmp_path / "data")
    data.root.mkdir()
    pl.DataFrame({"timestamp": [1, 2], "batches": ["01", ""], "photos": [10, 400]}).write_parquet(data.kpi_history)
    assert _kpis(SimpleNamespace(data=data)) == {"photos": 400}


def test_the_data_table_says_why_four_view_locations_are_not_in_the_split(tmp_path):
    """100 locations, 2 without a position, 3 dropped by the buffer, 1 in a region left without train: 94 in the split."""
    import json
    from types import SimpleNamespace

    import polars as pl

    from geolocate.evaluate.finish import stage_counts
    from geolocate.paths import DataPaths

    data = DataPaths(tmp_path / "data")
    data.root.mkdir()
    pl.DataFrame({"location_id": [str(i) for i in range(94)], "split": ["train"] * 66 + ["val"] * 14 + ["test"] * 14}).write_parquet(
        data.location_split)
    data.location_split_report.write_text(json.dumps({"table_locations": 100, "located": 98, "buffer_dropped": 3,
                                                      "locations": {"train": 66, "val": 14, "test": 14}}))
    assert stage_counts(SimpleNamespace(data=data))["locations left out of the split"] == (
        "2 locations without a position or in a sparse region (regions.min_samples); "
        "3 train locations dropped by the spatial buffer (split.buffer); 1 locations of regions left without a train location")
