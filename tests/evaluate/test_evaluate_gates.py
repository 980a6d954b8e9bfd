"""Gates: ≥ for accuracy, strict < for km, ≤ for stability; unmeasured values fail."""

from __future__ import annotations

import pytest

from geolocate.config import GatesConfig
from geolocate.evaluate.gates import all_pass, check_gate, evaluate_gates

GATES = GatesConfig(accuracy_min=0.5, median_km_max=1.0, p90_km_max=5.0, max_std_km=0.25, absolute=True)  # France v1


def _statuses(metrics, std):
    return {row.name: row.status for row in evaluate_gates(metrics, std, GATES)}


def test_boundaries():
    at_limits = _statuses({"acc_top1": 0.5, "median_km": 1.0, "p90_km": 5.0}, 0.25)
    assert at_limits == {"accuracy": "PASS", "median_km": "FAIL", "p90_km": "FAIL", "stability_std_km": "PASS"}
    inside = _statuses({"acc_top1": 0.5001, "median_km": 0.999, "p90_km": 4.99}, 0.0)
    assert set(inside.values()) == {"PASS"}
    outside = _statuses({"acc_top1": 0.4999, "median_km": 1.05, "p90_km": 457.0}, 0.2501)
    assert set(outside.values()) == {"FAIL"}


def test_unmeasured_values_fail():
    rows = evaluate_gates({"median_km": 0.5, "p90_km": 1.0}, float("nan"), GATES)
    status = {r.name: r.status for r in rows}
    assert status["accuracy"] == "FAIL" and status["stability_std_km"] == "FAIL"
    assert rows[0].value is None and not all_pass(rows)


def test_rows_carry_threshold_and_comparison():
    rows = evaluate_gates({"acc_top1": 0.7, "median_km": 0.5, "p90_km": 1.0}, 0.1, GATES)
    assert all_pass(rows)
    assert [(r.comparison, r.threshold) for r in rows] == [(">=", 0.5), ("<", 1.0), ("<", 5.0), ("<=", 0.25)]
    assert rows[1].as_dict() == {
        "name": "median_km", "value": 0.5, "threshold": 1.0, "comparison": "<", "passed": True, "applicable": True, "status": "PASS",
    }  # fmt: skip
    assert not all_pass([])


def test_check_gate_single():
    assert check_gate("x", 2.0, "<=", 2.0).passed
    with pytest.raises(KeyError):
        check_gate("x", 1.0, "==", 1.0)


def test_stability_of_a_model_without_epochs_is_not_applicable_rather_than_failed():
    from geolocate.config import GatesConfig
    from geolocate.evaluate.gates import all_pass, evaluate_gates
    from geolocate.evaluate.tables import gates_section

    gates = GatesConfig(absolute=False, beat_baselines=False)
    measured = evaluate_gates({}, float("nan"), gates, stability_mean_km=None)
    assert measured[-1].status == "FAIL"  # a trained model with no usable history still fails
    rows = evaluate_gates({}, float("nan"), gates, stability_mean_km=None, trained_epochs=False)
    assert [(r.name, r.status) for r in rows] == [("stability_std_share", "N/A")] and all_pass(rows)
    assert "N/A (no training epochs)" in "\n".join(gates_section(rows)) and "**FAIL**" not in "\n".join(gates_section(rows))


def test_the_summary_line_counts_a_gate_that_does_not_apply_apart():
    from geolocate.config import GatesConfig
    from geolocate.evaluate.gates import evaluate_gates
    from geolocate.evaluate.tables import summary_line

    rows = evaluate_gates({}, float("nan"), GatesConfig(absolute=False, beat_baselines=False), trained_epochs=False)
    assert summary_line(rows, None, None).startswith("Gates: 0/0 pass (1 not applicable).")
    assert summary_line([r.as_dict() for r in evaluate_gates({}, 0.1, GATES)], None, None).startswith("Gates: 1/4 pass.")
