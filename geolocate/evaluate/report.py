"""REPORT.md: a pure function of metrics.json, rendered from a list of sections.

Everything the reader needs to judge a run sits in one page: metrics (test and val, and one column
per scout-sniper phase), the position, the test-time views, heads chosen on val, baselines, accuracy
at distance, the gates, retrieval, the credible radius, the per-area table, samples, calibration,
stability, seeds, the data each stage kept, the environment, the config and the artifacts. Each is a function of the
summary (`SECTIONS`); a system adds a section rather than patching the text.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any, Callable, Mapping, Sequence

from geolocate.evaluate.tables import (
    ARTIFACTS, V1_HEAD_RULE, artifacts_section, baselines_section, calibration_section, config_section,
    distance_accuracy_section, gates_section, head_selection_section, key_value_section, metrics_section,
    per_area_section, position_lines, radius_section, retrieval_section, samples_section, seeds_section,
    stability_section, summary_line, tta_lines,
)

Section = Callable[[Mapping[str, Any]], list[str]]
SMALL_SAMPLE = 30  # below this many val or test examples no figure is trusted, coverage and ECE are not claimed


def small_sample_warning(n_val: int, n_test: int) -> str | None:
    """The sentence REPORT.md and the terminal show when val or test is too small to mean anything."""
    if min(n_val, n_test) >= SMALL_SAMPLE:
        return None
    return (f"only {n_val} val and {n_test} test examples (fewer than {SMALL_SAMPLE}): these figures cannot be trusted; "
            "coverage and calibration error are not claimed. Add photos, or use coarser classes")


def _title(r) -> list[str]:
    return [f"# geolocate run `{r['run_id']}`", ""] + ([r["judged_line"], ""] if r.get("judged_line") else [])


def _summary_section(r) -> list[str]:
    lines = [summary_line(r.get("gates") or [], r.get("duration_s"), r.get("became_best"), r.get("already_best", False),
                      r.get("promotion")), ""]
    lines += [r["gate_basis"], ""] if r.get("gate_basis") else []
    return lines + [f"**Warning: {w}**\n" for w in r.get("warnings") or [] if w]


def _metrics(r) -> list[str]:
    return metrics_section(r["metrics"]) + position_lines(r.get("position")) + tta_lines(r.get("tta"))


def _phases(r) -> list[str]:
    """Scout-sniper: one column per phase (each scout, the ensemble, after the sniper), test then val."""
    lines = []
    for split in ("test", "val"):
        named = (r.get("phases") or {}).get(split)
        if named:
            lines += [f"## Metrics per phase ({split})", ""] + metrics_section(named)[2:]
    return lines


def _heads(r) -> list[str]:
    rows = r.get("head_selection")
    if not rows:
        return []
    if isinstance(rows, Mapping):  # scout-sniper: one choice per phase, ranked by the bar ratio
        lines = [line for phase, table in rows.items() for line in head_selection_section(table, f"Head of {phase}")]
        return lines + [""]
    return head_selection_section(rows, "Head chosen on val", V1_HEAD_RULE)[1:] + [""]


def _baselines(r) -> list[str]:
    return baselines_section(r["metrics"]["test"], r["baselines"]) if r.get("baselines") else []


def _distance_accuracy(r) -> list[str]:
    return distance_accuracy_section(r["metrics"]["test"], r.get("baselines") or {})


def _gates(r) -> list[str]:
    return gates_section(r.get("gates") or [], collapsed=bool(r.get("collapse")))


def _retrieval(r) -> list[str]:
    return retrieval_section(r["retrieval"]) if r.get("retrieval") else []


def _radius(r) -> list[str]:
    return radius_section(r["radius"], claimed=not r.get("small_sample")) if r.get("radius") else []


def _per_area(r) -> list[str]:
    return per_area_section(r["per_area"], r.get("per_area_by", "city")) if r.get("per_area") else []


def _samples(r) -> list[str]:
    return samples_section(r["samples"]) if r.get("samples") else []


def _calibration(r) -> list[str]:
    return calibration_section(r["calibration"], claimed=not r.get("small_sample")) if r.get("calibration") else []


def _stability(r) -> list[str]:
    return stability_section(r["stability"]) if r.get("stability") else []


def _seeds(r) -> list[str]:
    seeds = r.get("seeds")
    if not seeds:
        return []
    lines = seeds_section(seeds.get("test", seeds))
    if seeds.get("runs"):
        lines[0] = f"## Seeds ({len(seeds['runs'])} runs: {', '.join(seeds['runs'])}; test split)"
    return lines


def _data(r) -> list[str]:
    return key_value_section("Data", r["data"]) if r.get("data") else []


def _environment(r) -> list[str]:
    return key_value_section("Environment", r.get("environment") or {})


def _config(r) -> list[str]:
    return config_section(r.get("config") or {})


def _artifacts(r) -> list[str]:
    return artifacts_section(r.get("artifacts") or ARTIFACTS)


# REPORT.md, top to bottom: every section is a function of the summary that returns [] when it has nothing to say.
SECTIONS: tuple[Section, ...] = (
    _title, _summary_section, _metrics, _phases, _heads, _baselines, _distance_accuracy, _gates, _retrieval, _radius,
    _per_area, _samples, _calibration, _stability, _seeds, _data, _environment, _config, _artifacts,
)


def render_report(summary: Mapping[str, Any], sections: Sequence[Section] = SECTIONS) -> str:
    """REPORT.md for one run: the `sections` in order, each a pure function of `summary`.

    `summary` is what evaluation writes to metrics.json (`evaluate.finish`): `run_id`, `metrics`
    (`{"test": .., "val": ..}` or named pairs), `gates`, `config`, `environment`, and optionally
    `judged_line`, `gate_basis`, `warnings`, `duration_s`, `became_best`, `already_best`, `promotion`,
    `position`, `tta`, `phases`, `head_selection`, `baselines`, `retrieval`, `radius`, `small_sample`,
    `per_area`, `samples`, `calibration`, `stability`, `seeds`, `data` and `artifacts`. Nothing
    patches the text afterwards: a system that needs more adds a section.
    """
    lines = [line for section in sections for line in section(summary)]
    return "\n".join(lines).rstrip() + "\n"


def collect_environment(device: str) -> dict[str, str]:
    """Python, platform and library versions (read from package metadata: no torch import) and the device."""
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "device": device}
    for package in ("geolocate", "torch", "timm", "numpy", "polars"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = "not installed"
    return env
