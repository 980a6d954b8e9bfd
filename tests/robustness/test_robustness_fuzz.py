"""Hypothesis fuzzes sidecar JSON, `--set` overrides and locations CSV rows through the CLI.

The same promises as the corpus (`test_robustness_hostile.py`): whatever the input, an exit
code of 0, 1 or 2, no traceback, no hang, one line on stderr when refused, nothing read from or
written outside the project, and when accepted, output that means what it says (valid JSON,
positions on the globe).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.robustness.hostile import CKPT
from tests.robustness.test_robustness_hostile import (  # noqa: F401 - fixtures
    TIME_LIMIT_S,
    Hung,
    assert_contained,
    invoke_with_alarm,
    project,
    snapshot,
    template,
)

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
SIDECAR_PATHS = ["model", "model.name", "model.kwargs", "model.num_classes", "classes", "classes.0", "classes.0.centroid_lat",
                 "classes.0.cell_id", "preprocessing", "preprocessing.input_size", "preprocessing.mean", "preprocessing.std",
                 "preprocessing.crop_pct", "preprocessing.interpolation", "temperature", "position", "weighted_topk", "version", "format"]
CONFIG_KEYS = ["train.lr", "train.epochs", "train.batch_size", "train.grad_clip", "views.radius_m", "paths.data", "cells.resolution",
               "split.val", "eval.gates.median_km_max", "fetch.api_url", "model.name", "synth.batches", "predict.top", "data.image_size"]


def check_outcome(result, seconds: float, accepted=None) -> None:
    """Exit 0/1/2 without a traceback within the limit; refused → one line; accepted → `accepted(result)`."""
    if isinstance(result.exception, Hung):
        pytest.fail(f"hung: {result.exception}")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exit_code in (0, 1, 2), result.stderr[-1000:]
    assert seconds < TIME_LIMIT_S
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr[-2000:]
    elif result.exit_code == 0 and accepted is not None:
        accepted(result)


def _set_path(doc, path: str, value) -> None:
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@FUZZ
@given(path=st.sampled_from(SIDECAR_PATHS), value=json_values)
@example(path="model.kwargs", value={"\n": False})  # once reached the error line raw: two lines
def test_fuzzed_sidecar(project: Path, runner, path, value):
    doc = json.loads((project / f"{CKPT}.json").read_text())
    _set_path(doc, path, value)
    stem = project / "fuzzed" / "model"
    stem.parent.mkdir(exist_ok=True)
    (stem.parent / "model.safetensors").write_bytes((project / f"{CKPT}.safetensors").read_bytes())
    (stem.parent / "model.json").write_text(json.dumps(doc))  # NaN/inf written as JSON's NaN/Infinity on purpose
    before = snapshot(project.parent / "outside"), {p.name for p in project.parent.iterdir()}
    start = time.perf_counter()
    result = invoke_with_alarm(runner, ["predict", "photos/ok.jpg", "--checkpoint", str(stem), "--json"], TIME_LIMIT_S)

    def valid_prediction(result) -> None:
        row = _strict_json(result.stdout)["predictions"][0]
        assert -90 <= row["lat"] <= 90 and -180 <= row["lon"] <= 180 and 0 <= row["confidence"] <= 1

    check_outcome(result, time.perf_counter() - start, valid_prediction)
    assert_contained(project, *before, result.stdout, result.stderr)


@FUZZ
@given(key=st.sampled_from(CONFIG_KEYS) | st.text(max_size=30), value=st.text(max_size=40))
def test_fuzzed_config_override(project: Path, runner, key, value):
    start = time.perf_counter()
    result = invoke_with_alarm(runner, ["config", "--set", f"{key}={value}"], TIME_LIMIT_S)
    check_outcome(result, time.perf_counter() - start)
    assert result.exit_code in (0, 2)


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
coordinates = st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-400, 400).map(str) | cells
row_strategy = st.fixed_dictionaries({"id": cells, "north": st.sampled_from(["ok.jpg", "", "../outside/secret.png", "missing.jpg"]) | cells,
                                      "lat": coordinates, "lon": coordinates})


@FUZZ
@given(rows=st.lists(row_strategy, max_size=5))
def test_fuzzed_locations_rows(project: Path, runner, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "north", "lat", "lon"])
    writer.writeheader()
    writer.writerows(rows)
    (project / "t.csv").write_text(buffer.getvalue(), encoding="utf-8")
    before = snapshot(project.parent / "outside"), {p.name for p in project.parent.iterdir()}
    start = time.perf_counter()
    result = invoke_with_alarm(runner, ["import-locations", "t.csv", "--images-dir", "photos"], TIME_LIMIT_S)

    def positions_on_the_globe(result) -> None:
        import polars as pl

        table = pl.read_parquet(project / "data" / "locations.parquet")
        for lat, lon in zip(table["lat"].to_list(), table["lon"].to_list()):
            assert (lat is None) == (lon is None)
            assert lat is None or (math.isfinite(lat) and -90 <= lat <= 90 and -180 <= lon <= 180)

    check_outcome(result, time.perf_counter() - start, positions_on_the_globe)
    assert_contained(project, *before, result.stdout, result.stderr)
