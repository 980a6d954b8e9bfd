"""The model card the page's "model" panel shows: who answers, trained on what, how good it is.

Everything comes from files written by `evaluate` and `freeze` next to the checkpoint (a run
directory or a release folder): `metrics.json` for the test figures and the baselines, the
"Data" table of `REPORT.md` for the photo counts, and `error_map.png`. A checkpoint without
them (e.g. `models/best`) is looked up in its run directory by `run_id`; a card with no figures
says so rather than guessing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# The test figures the panel compares, and the baselines it compares them with (when present).
FIGURES = ("acc_top1", "acc_top5", "median_km", "p90_km", "within_1km", "within_25km")
BASELINES = ("majority", "centroid", "1-NN", "5-NN", "ceiling")
_DATA_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$")


def model_folder(folder: Path, run_id: str | None, runs: Path | None) -> Path | None:
    """The folder holding the model's metrics.json: `folder` (the checkpoint's or the bundle's), else its run directory."""
    candidates = [folder]
    if run_id and runs is not None and re.fullmatch(r"[\w.-]+", run_id):  # an id, never a path from the sidecar
        candidates.append(runs / run_id)
    return next((folder for folder in candidates if (folder / "metrics.json").is_file()), None)


def build_card(about: dict, folder: Path | None, views: bool) -> dict:
    """The JSON of `GET /api/model`: `about` (provenance) plus the figures found in `folder`."""
    metrics = _read_json(folder / "metrics.json") if folder else {}
    test = ((metrics.get("metrics") or {}).get("test")) or {}
    baselines = metrics.get("baselines") or {}
    return {
        **about,
        "views": views,
        "trained_on": {"area": _area(about), "sources": about.get("data_sources") or [],
                       "photos": _report_counts(folder / "REPORT.md") if folder else {}},
        "test": {k: test.get(k) for k in FIGURES if k in test},
        "baselines": {name: {k: b.get(k) for k in FIGURES if k in b} for name, b in baselines.items() if name in BASELINES},
        "gates_pass": metrics.get("gates_pass"),
        "error_map": bool(folder and (folder / "error_map.png").is_file()),
    }


def error_map_path(folder: Path | None) -> Path | None:
    """The error map image to serve, fixed when the model loads (no request names a path)."""
    path = folder / "error_map.png" if folder else None
    return path if path is not None and path.is_file() else None


def _area(about: dict) -> dict:
    return {"bbox": about.get("bbox"), "cities": about.get("cities"), "classes": about.get("classes")}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _report_counts(report: Path) -> dict:
    """The photo counts of REPORT.md's "Data" table (`| train photos | 546 |` → {"train photos": 546})."""
    try:
        text = report.read_text(encoding="utf-8")
    except OSError:
        return {}
    section = text.split("## Data", 1)[1].split("\n## ", 1)[0] if "## Data" in text else ""
    counts = {}
    for line in section.splitlines():
        match = _DATA_ROW.match(line)
        if match and "photos" in match.group(1) and match.group(2).isdigit():
            counts[match.group(1)] = int(match.group(2))
    return counts
