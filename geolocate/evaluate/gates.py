"""The release gates: each a threshold from `[eval.gates]`, shown PASS or FAIL.

Accuracy must reach its minimum (≥); km errors must stay strictly below theirs (<), as the
card words it ("median < 1.0 km"); stability may equal its ceiling (≤, "at most"). A missing or
NaN value fails: a gate nobody could measure has not been passed. The one exception is stability
of a model that trained no epochs (a four-view run whose sniper val chose is an index, a v1 run
whose head val chose is a k-NN vote head): it cannot swing between epochs it never had, so that
gate reads N/A instead of failing on an empty history or passing on a sweep of settings.
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from typing import Mapping

from geolocate.config import GatesConfig

_COMPARE = {">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class GateRow:
    """One gate: `value comparison threshold` holds or not."""

    name: str
    value: float | None
    threshold: float
    comparison: str
    passed: bool
    applicable: bool = True

    @property
    def status(self) -> str:
        return "N/A" if not self.applicable else "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


def check_gate(name: str, value: float | None, comparison: str, threshold: float) -> GateRow:
    """A `GateRow` for `value <comparison> threshold` (None and NaN fail)."""
    measurable = value is not None and not math.isnan(value)
    passed = measurable and _COMPARE[comparison](value, threshold)
    return GateRow(name, None if value is None else float(value), float(threshold), comparison, bool(passed))


from geolocate.manifest import IMPORTED_SOURCES  # noqa: E402 - re-exported: the gates' callers name it here


def gates_for_area(gates: GatesConfig, sources: list[str]) -> tuple[GatesConfig, str | None]:
    """The gates that fit the photos' area, and why they differ from the config when they do.

    France v1's fixed thresholds (median < 1 km…) were set for its catalog of 50 cities; on photos a
    user imported, of a peninsula or a continent, they say nothing, so those are judged against
    their own baselines instead.
    """
    imported = sorted(set(sources) & set(IMPORTED_SOURCES))
    if not gates.absolute or not imported:
        return gates, None
    why = (f"the fixed thresholds are France v1's, and these photos were imported ({', '.join(imported)}): "
           "this area's own baselines set the bar")
    return gates.model_copy(update={"absolute": False}), why


def evaluate_gates(metrics: Mapping[str, float], stability_std_km: float | None, gates: GatesConfig,
                   baselines: Mapping[str, Mapping[str, float]] | None = None,
                   stability_mean_km: float | None = None, trained_epochs: bool = True) -> list[GateRow]:
    """The gates on test metrics (`acc_top1`, `median_km`, `p90_km`) and the val stability std.

    The fixed thresholds apply when `gates.absolute` (France v1); the baseline gates when
    `gates.beat_baselines` and `baselines` (the `evaluate.baselines.all_baselines` output) are given.
    Stability is France's 0.25 km with the fixed thresholds; elsewhere, where a 0.25 km swing can be
    noise (a world-wide set) or everything (a town), it is a share of the val median itself.
    Without `trained_epochs` the stability gate is N/A (see the module's docstring).
    """
    rows = []
    if gates.absolute:
        rows += [
            check_gate("accuracy", metrics.get("acc_top1"), ">=", gates.accuracy_min),
            check_gate("median_km", metrics.get("median_km"), "<", gates.median_km_max),
            check_gate("p90_km", metrics.get("p90_km"), "<", gates.p90_km_max),
        ]
    if gates.beat_baselines and baselines:
        rows += baseline_gates(metrics, baselines)
    if not trained_epochs:
        name, threshold = ("stability_std_km", gates.max_std_km) if gates.absolute else ("stability_std_share", gates.max_std_share)
        return rows + [GateRow(name, None, float(threshold), "<=", True, applicable=False)]
    if gates.absolute or stability_mean_km is None:
        return rows + [check_gate("stability_std_km", stability_std_km, "<=", gates.max_std_km)]
    share = None if stability_std_km is None or not stability_mean_km else stability_std_km / stability_mean_km
    return rows + [check_gate("stability_std_share", share, "<=", gates.max_std_share)]


def baseline_gates(metrics: Mapping[str, float], baselines: Mapping[str, Mapping[str, float]]) -> list[GateRow]:
    """Median and p90 km strictly below the best trivial baseline's (majority or centroid)."""
    from geolocate.evaluate.baselines import best_trivial

    return [check_gate(f"beats_trivial_{key}", metrics.get(key), "<", best_trivial(baselines, key)[1])
            for key in ("median_km", "p90_km")]


def all_pass(rows: list[GateRow]) -> bool:
    """True when every gate passed (and there is at least one)."""
    return bool(rows) and all(row.passed for row in rows)


def gates_table(gates: list[Mapping], title: str = "gates"):
    """A rich table of gate rows (`GateRow.as_dict()` or metrics.json's "gates"), PASS or FAIL."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in ("gate", "value", "rule", "status"):
        table.add_column(name)
    for g in gates:
        value = "n/a" if g.get("value") is None else f"{g['value']:.3f}"
        status = "[dim]N/A[/]" if g.get("applicable", True) is False else "[green]PASS[/]" if g["passed"] else "[red]FAIL[/]"
        table.add_row(g["name"], value, f"{g['comparison']} {g['threshold']:g}", status)
    return table
