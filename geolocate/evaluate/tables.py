"""The tables and lines REPORT.md is made of: pure functions of plain dicts, markdown lines out.

`report.SECTIONS` decides which appear and in what order; each builder here formats one kind of
result (metrics, baselines, gates, radius...) the same way for both systems.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from geolocate.evaluate.choice import RULE as HEAD_RULE
from geolocate.evaluate.gates import GateRow

ARTIFACTS = ("config.json", "confusion_matrix.png", "geo_error.png", "error_map.png", "metrics.csv", "predictions.parquet")
METRIC_ORDER = (
    "n", "acc_top1", "acc_top5", "median_km", "mean_km", "p90_km", "p95_km",
    "within_1km", "within_5km", "within_25km", "within_200km", "within_750km", "within_2500km", "over_200km", "over_500km",
)  # fmt: skip
_SHARE_PREFIXES = ("acc", "within_", "over_", "share", "top_class_share")

NamedMetrics = Mapping[str, Mapping[str, Any]] | Sequence[tuple[str, Mapping[str, Any]]]


def format_value(key: str, value: Any) -> str:
    """A metric value as the report prints it: shares in %, km with two decimals."""
    if hasattr(value, "item"):  # numpy scalars print like Python numbers
        value = value.item()
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if key.startswith(_SHARE_PREFIXES):
        return f"{100 * value:.1f} %"
    if key.endswith("_km"):
        return f"{value:.2f} km"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    """`3723.4` → `1 h 02 min 03 s`."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _named(metrics: NamedMetrics) -> list[tuple[str, Mapping[str, Any]]]:
    return list(metrics.items()) if isinstance(metrics, Mapping) else list(metrics)


def metrics_section(metrics: NamedMetrics) -> list[str]:
    """One column per named metric set (test, val, or a scout-sniper phase), one row per metric."""
    named = _named(metrics)
    keys = [k for k in METRIC_ORDER if any(k in m for _, m in named)]
    keys += sorted({k for _, m in named for k in m} - set(keys))
    rows = [[k] + [format_value(k, m.get(k)) for _, m in named] for k in keys]
    return ["## Metrics", ""] + _table(["metric"] + [name for name, _ in named], rows)


def gates_section(gates: Sequence[GateRow | Mapping[str, Any]], collapsed: bool = False) -> list[str]:
    """The gates table and the overall verdict (which never reads as a pass when the model collapsed)."""
    rows = [g.as_dict() if isinstance(g, GateRow) else dict(g) for g in gates]
    table = [
        [r["name"], "—" if r.get("applicable", True) is False else format_value(r["name"], r["value"]), r["comparison"],
         format_value(r["name"], r["threshold"]), _gate_result(r)]
        for r in rows
    ]  # fmt: skip
    verdict = "all gates pass" if rows and all(r["passed"] for r in rows) else "at least one gate fails"
    if collapsed and verdict == "all gates pass":
        verdict = "the gates pass, but the model collapsed onto one class (see the warning): its figures come from a prior"
    return ["## Gates", ""] + _table(["gate", "value", "must be", "threshold", "result"], table) + [f"Verdict: **{verdict}**.", ""]


def _gate_result(row: Mapping[str, Any]) -> str:
    if row.get("applicable", True) is False:
        return "N/A (no training epochs)"
    return "**PASS**" if row["passed"] else "**FAIL**"


DISTANCES_KM = (1, 25, 200, 750, 2500)  # the Im2GPS3k / YFCC4k scale: street, city, region, country, continent


def distance_accuracy_section(model: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]],
                              model_name: str = "model") -> list[str]:
    """Share of test examples within 1 / 25 / 200 / 750 / 2,500 km, for the model and every baseline."""
    named = [(model_name, model), *baselines.items()]
    keys = [f"within_{km}km" for km in DISTANCES_KM if any(f"within_{km}km" in m for _, m in named)]
    if not keys:
        return []
    rows = [[f"{km:,} km"] + [format_value(key, m.get(key)) for _, m in named] for km, key in zip(DISTANCES_KM, keys)]
    return ["## Accuracy at distance (test)", ""] + _table(["within"] + [n for n, _ in named], rows)


BASELINE_KEYS = ("acc_top1", "median_km", "p90_km", "p95_km", "within_1km", "within_25km", "over_200km")


def baselines_section(model: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]], model_name: str = "model") -> list[str]:
    """The model beside every baseline on the same test photos, and whether it beats them."""
    from geolocate.evaluate.baselines import best_trivial

    named = [(model_name, model), *baselines.items()]
    rows = [[k] + [format_value(k, m.get(k)) for _, m in named] for k in BASELINE_KEYS if any(k in m for _, m in named)]
    lines = ["## Baselines (same test set, drawn from train + val)", ""] + _table(["metric"] + [n for n, _ in named], rows)
    return lines + _verdicts(model, baselines, best_trivial) + [""]


def _verdicts(model: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]], best_trivial) -> list[str]:
    median, p90 = model.get("median_km", float("nan")), model.get("p90_km", float("nan"))
    out = []
    name, value = best_trivial(baselines, "median_km")
    _, p90_value = best_trivial(baselines, "p90_km")
    beats = median < value and p90 < p90_value
    out.append(f"- Best trivial baseline: **{name}** ({format_value('median_km', value)} median); the model "
               f"**{'beats' if beats else 'does not beat'}** the trivial baselines on median and p90.")
    for knn in (k for k in ("5-NN", "1-NN") if k in baselines):
        kb = baselines[knn]
        verdict = "beats" if median < kb["median_km"] and p90 < kb["p90_km"] else "does not beat"
        out.append(f"- Against {knn} on the frozen backbone: the model **{verdict}** it on median and p90 "
                   f"({format_value('median_km', median)} vs {format_value('median_km', kb['median_km'])} median).")
    if "ceiling" in baselines:
        out.append(f"- Ceiling (true class centroid): {format_value('median_km', baselines['ceiling']['median_km'])} median: "
                   "no model placing photos at class centroids does better.")
    return out


def baselines_line(model: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]]) -> str:
    """One console line: median km of the model and of each baseline."""
    return "baselines (median km): " + ", ".join(
        f"{name} {m['median_km']:.2f}" for name, m in [("model", model), *baselines.items()])


def gate_basis(gates, why: str | None = None) -> str:
    """What the gates measure against, stated at the top of the report (`why`: why they differ from the config)."""
    parts = []
    if gates.absolute:
        parts.append(f"fixed thresholds (top-1 ≥ {gates.accuracy_min:.0%}, median < {gates.median_km_max:g} km, "
                     f"p90 < {gates.p90_km_max:g} km)")
    if gates.beat_baselines:
        parts.append("median and p90 below the best trivial baseline (majority class or train centroid) of this area")
    stability = (f"val median km steady within {gates.max_std_km:g} km" if gates.absolute
                 else f"val median km steady within {gates.max_std_share:.0%} of itself")
    return "Gates: " + " and ".join([*parts, stability]) + (f"; {why}." if why else ".")


def calibration_section(calibration: Mapping[str, Any], claimed: bool = True) -> list[str]:
    """Temperature and ECE/NLL before and after scaling (not claimed on too few examples)."""
    if not claimed:
        return ["## Calibration", "", "Not claimed: too few val or test examples (see the warning at the top).", ""]
    rows = [
        ["ECE", format_value("ece", calibration.get("ece_before")), format_value("ece", calibration.get("ece_after"))],
        ["NLL", format_value("nll", calibration.get("nll_before")), format_value("nll", calibration.get("nll_after"))],
    ]
    head = [f"Temperature fitted on val: T = {calibration.get('temperature', float('nan')):.3f}", ""]
    if calibration.get("applied") is False:
        head = ["No temperature is applied to this system's confidences: figures at T = 1.", ""]
    return ["## Calibration", ""] + head + _table(["", "before (T = 1)", "after"], rows)


def stability_section(stability: Mapping[str, Any]) -> list[str]:
    """Std of val median km over the last K epochs, with the values it was computed from."""
    if stability.get("trained_epochs") is False:
        return ["## Stability", "", f"Not measured: {stability.get('not_measured') or 'the model trained no epochs.'}", ""]
    history = ", ".join(f"{v:.2f}" for v in stability.get("val_median_km", []))
    lines = [
        "## Stability",
        "",
        f"Std of val median km over the last {stability.get('last_k', '?')} epochs: "
        f"**{format_value('std_km', stability.get('std_km'))}**",
    ]
    return lines + ([f"(val median km by epoch: {history})"] if history else []) + [""]


def seeds_section(seeds: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Mean ± std of every metric over seeds (`aggregate_seeds` output)."""
    rows = [[k, f"{format_value(k, v['mean'])} ± {format_value(k, v['std'])}"] for k, v in seeds.items()]
    return ["## Seeds", ""] + _table(["metric", "mean ± std"], rows)


def key_value_section(title: str, values: Mapping[str, Any]) -> list[str]:
    """A two-column table under a `## title`."""
    return [f"## {title}", ""] + _table(["", "value"], [[k, format_value(k, v)] for k, v in values.items()])


def config_section(config: Mapping[str, Any]) -> list[str]:
    """The headline settings, and a link to the run's `config.json` for every key."""
    model, train = config.get("model") or {}, config.get("train") or {}
    return ["## Config", "",
            f"Profile **{config.get('profile') or 'none'}**, model **{model.get('name', '?')}**, "
            f"{train.get('epochs', '?')} epochs, batch {train.get('batch_size', '?')}, lr {train.get('lr', '?')}; "
            "every resolved key is in [config.json](config.json).", ""]


def per_area_section(rows: Sequence[Mapping[str, Any]], by: str = "city") -> list[str]:
    """One row per area of the test photos (a city, or an H3 parent cell for imported photos): photos,
    top-1 accuracy, median and p90 km."""
    table = [[r["city"], f"{r['n']:,}", format_value("acc_top1", r["acc_top1"]), format_value("median_km", r["median_km"]),
              format_value("p90_km", r["p90_km"])] for r in rows]
    return [f"## Per {by} (test)", ""] + _table([by, "examples", "top-1", "median", "p90"], table)


def samples_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A strip of test predictions from the best to the worst: photo, truth, guess, error."""
    table = [[f"`{r['image_id']}`", _place(r.get("true_city"), r["true_lat"], r["true_lon"]),
              _place(r.get("pred_city"), r["pred_lat"], r["pred_lon"]), format_value("error_km", r["error_km"])]
             for r in rows]  # fmt: skip
    head = ["## Sample predictions (test, best to worst)", ""]
    return head + _table(["photo", "truth", "guess", "error"], table)


def _place(city: str | None, lat: float, lon: float) -> str:
    """"Bordeaux (44.8378, -0.5792)", or the coordinates alone where the place has no city (imported photos)."""
    where = f"({lat:.4f}, {lon:.4f})"
    return f"{city} {where}" if city else where


_SCOUT_HEAD_RULE = V1_HEAD_RULE = HEAD_RULE  # one rule for both systems (`evaluate.choice`)


def head_selection_section(rows: Sequence[Mapping[str, Any]], title: str = "Head chosen on val",
                           rule: str = _SCOUT_HEAD_RULE) -> list[str]:
    """The candidate heads a small-data run trained, their val figures and which one it kept (by `rule`)."""
    if not rows:
        return []
    if len(rows) == 1:
        return ["", f"{title}: **{rows[0]['head']}** (the only candidate)."]
    scored = any(r.get("val_score") is not None for r in rows)  # France v1 ranks on km alone: no score column
    body = [[("**" + r["head"] + "**") if r.get("chosen") else r["head"], format_value("median_km", r.get("val_median_km")),
             format_value("p90_km", r.get("val_p90_km")),
             *([f"{r['val_score']:.2f}" if r.get("val_score") is not None else "–"] if scored else []),
             format_value("seconds", r.get("seconds"))] for r in rows]
    return ["", f"## {title}", "", "Below `train.small_data` train examples every candidate of `train.small_data_heads` "
            f"trains; {rule}", "",
            *_table(["head", "val median km", "val p90 km", *(["score"] if scored else []), "seconds"], body)]


def artifacts_section(artifacts: Sequence[str]) -> list[str]:
    """Links to the run's files, and the PNGs inline."""
    lines = ["## Artifacts", ""] + [f"- [{name}]({name})" for name in artifacts] + [""]
    return lines + [f"![{name}]({name})\n" for name in artifacts if name.endswith(".png")]


def retrieval_section(retrieval: Mapping[str, Any]) -> list[str]:
    """Classifier position vs retrieval-refined position, on val (where it is chosen) and test."""
    lines = ["## Retrieval refinement", ""]
    if "val" not in retrieval:
        return lines + [f"Not evaluated: {retrieval.get('reason', 'no index')}.", ""]
    verdict = "**on**" if retrieval["enabled"] else "**off** (not better on val)"
    method = {"cluster": "the mean of the heaviest cell's", "median": "the geometric median of all",
              "medoid": "the medoid (as k-NN places) of the"}.get(retrieval.get("method", "cluster"))
    of = retrieval.get("index_of", "train")
    cells = "every cell" if retrieval.get("top_cells") == retrieval.get("classes") else f"top {retrieval['top_cells']} cells"
    lines += [f"Refinement is {verdict}: {cells}, {method} {retrieval['neighbours']} nearest "
              f"of {retrieval['index_size']:,} {of} photos (chosen on val against the best baseline, searching train only; "
              f"test and predict search {of}).", ""]
    keys = list(retrieval["val"])
    rows = [[k] + [format_value(k, retrieval[split][k][side]) for split in ("val", "test") for side in ("classifier", "retrieval")]
            for k in keys]
    return lines + _table(["metric", "val classifier", "val retrieval", "test classifier", "test retrieval"], rows)


def radius_section(radius: Mapping[str, Any], claimed: bool = True) -> list[str]:
    """The credible radius per confidence band (fitted on val) and its coverage measured on test."""
    level, test = radius["level"], (radius.get("test") or {}) if claimed else {}
    bounds = [0.0, *radius["edges"], 1.0]
    per_band = test.get("per_band") or [None] * len(radius["radius_km"])
    rows = [[f"{bounds[b]:.3f} – {bounds[b + 1]:.3f}", format_value("radius_km", r), format_value("share", c)]
            for b, (r, c) in enumerate(zip(radius["radius_km"], per_band))]
    lines = ["## Credible radius", "",
             f"Split-conformal on {radius.get('n_val', '?')} val examples: the true place should be within the radius "
             f"with {level:.0%} probability. " + (f"Test coverage: **{format_value('share', test.get('coverage'))}** "
             f"(target {level:.0%} ± 3 points)." if claimed else "Coverage is not claimed: too few examples."), ""]
    return lines + _table(["confidence band", "radius", "test coverage"], rows)


def summary_line(gates, duration_s: float | None, became_best: bool | None, already_best: bool = False,
             promotion: Mapping[str, Any] | None = None) -> str:
    rows = [g.as_dict() if isinstance(g, GateRow) else g for g in gates]
    measured = [g["passed"] for g in rows if g.get("applicable", True) is not False]
    skipped = len(rows) - len(measured)
    parts = [f"Gates: {sum(measured)}/{len(measured)} pass" + (f" ({skipped} not applicable)." if skipped else ".")]
    if duration_s is not None:
        parts.append(f"Duration: {format_duration(duration_s)}.")
    why = (promotion or {}).get("why")
    if already_best and not became_best:
        parts.append("This run **is the global best** (the default model already)."
                     + (" Judged this way, it fails its gates." if why and why.startswith("failed") else ""))
    elif why:  # `best.promote`'s reason, naming the system's default (models/best or models/scout-sniper/)
        parts.append(f"This run **{why}**." if became_best else f"This run {why}.")
    elif became_best is True:
        parts.append("This run **became the global best** (`models/best.*`).")
    elif became_best is False:
        parts.append("This run did not beat the global best.")
    return " ".join(parts)


def _mode_figures(scores: Mapping[str, Any]) -> list[str]:
    figures = [format_value("median_km", scores["median_km"])] if "median_km" in scores else []
    if scores.get("score") is not None and scores["score"] != scores.get("median_km"):  # without a bar the score is the median
        figures.append(f"(score {scores['score']:.2f})" if figures else f"score {scores['score']:.2f}")
    return figures


def position_lines(position: Mapping[str, Any] | None) -> list[str]:
    """The position mode and, when val chose it, every mode's val figures (median km, and the bar score)."""
    if not position:
        return []
    scores = position.get("scores") or {}
    shown = ", ".join(f"{mode} " + " ".join(_mode_figures(s)) for mode, s in scores.items() if isinstance(s, Mapping))
    mode, k = position.get("mode"), position.get("k")
    reads = f" of the top {k} classes" if k and mode in ("weighted", "median") else ""
    chosen = f"{position.get('title', 'Predicted position')}: **{mode}{reads}**"
    return [chosen + (f" (chosen on val: {shown})." if shown else " (eval.position)."), ""]


def tta_lines(tta: Mapping[str, Any] | None) -> list[str]:
    """Whether predict averages test-time views (`eval.tta`) and, when val chose, both sides' val figures."""
    if not tta:
        return []
    views = f"{2 * tta['crops']} views"
    state = f"**on** ({views}: {tta['crops']} crops and their mirror images)" if tta["enabled"] else "**off** (one centre crop)"
    val = tta.get("val") or {}
    sides = (("plain", "one crop"), ("tta", views))
    shown = ", ".join(f"{label} " + " ".join(_mode_figures(val[side])) for side, label in sides if isinstance(val.get(side), Mapping))
    why = f"chosen on val: {shown}" if shown else f"eval.tta = {tta.get('setting')}"
    return [f"Test-time augmentation: {state}; {why}.", ""]
