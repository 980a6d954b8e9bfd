"""REPORT.md: every section present, values formatted, phases in order."""

from __future__ import annotations

from geolocate.config import GatesConfig, GeolocateConfig, public_dict
from geolocate.evaluate.gates import evaluate_gates
from geolocate.evaluate.report import collect_environment, format_duration, format_value, render_report

TEST = {"n": 120, "acc_top1": 0.5, "acc_top5": 0.8, "median_km": 0.91, "p90_km": 6.25, "over_200km": 0.0}
VAL = {"n": 110, "acc_top1": 0.55, "acc_top5": 0.85, "median_km": 0.85, "p90_km": 4.0, "over_200km": 0.01}


def _report(**kw):
    gates = evaluate_gates(TEST, 0.1, GatesConfig(absolute=True))
    args = dict(
        run_id="20261121-213000-v1",
        metrics={"test": TEST, "val": VAL},
        gates=gates,
        config=public_dict(GeolocateConfig()),
        environment={"python": "3.12.1", "torch": "2.14.1", "device": "cpu"},
    )
    return render_report(**{**args, **kw})


def test_report_has_every_section():
    text = _report(
        calibration={"temperature": 1.5, "ece_before": 0.12, "ece_after": 0.03, "nll_before": 1.2, "nll_after": 1.0},
        stability={"std_km": 0.1, "last_k": 5, "val_median_km": [1.0, 0.9, 0.85]},
        data_kpis={"photos": 4000, "classes": 20, "top_class_share": 0.17},
        position={"mode": "weighted", "medians": {"top1": 0.95, "weighted": 0.85}},
        duration_s=3723.4,
        became_best=True,
    )
    assert text.startswith("# geolocate run `20261121-213000-v1`")
    for heading in ("## Metrics", "## Gates", "## Calibration", "## Stability", "## Data", "## Environment",
                    "## Resolved config", "## Artifacts"):  # fmt: skip
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
    assert "```json\n{\n" in text and "\"paths\": {" in text and "\"geo_tau_km\": 2.5" in text
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
    phases = [("scout-clip", TEST), ("scout-convnext", VAL), ("ensemble", VAL), ("sniper", TEST)]
    text = _report(metrics=phases, seeds={"median_km": {"mean": 0.9, "std": 0.05}})
    assert "| metric | scout-clip | scout-convnext | ensemble | sniper |" in text
    assert "| median_km | 0.90 km ± 0.05 km |" in text


def test_formatting_helpers():
    assert format_value("within_1km", 0.625) == "62.5 %"
    assert format_value("p95_km", 12.3456) == "12.35 km"
    assert format_value("n", 12000) == "12,000"
    assert format_value("median_km", float("nan")) == "–"
    assert format_value("note", "a|b") == "a|b"
    assert format_duration(59.6) == "1 min 00 s" and format_duration(7) == "7 s"


def test_pipes_in_values_do_not_break_tables():
    text = _report(data_kpis={"batches": "01|02"})
    assert "| batches | 01\\|02 |" in text


def test_collect_environment():
    env = collect_environment("cpu")
    assert env["device"] == "cpu" and env["python"].count(".") == 2
    assert {"torch", "timm", "numpy"} <= set(env)
