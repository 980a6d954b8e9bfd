"""Untrusted input, round two (issue 21): release graphs and indexes, printed data, outputs over inputs.

Every case runs the real CLI in-process with an alarm as the hang guard, and must end in one
line on stderr, exit 1 or 2, no traceback, no NaN, no ESC byte and nothing read from outside
the project (the secret planted next to it). `import`, the remote answers and the temporary
files are in `test_robustness_round2_sources.py`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.robustness.hostile import CKPT
from tests.robustness.hostile_round2 import graph_bytes, install_graph, install_index, make_release
from tests.robustness.test_robustness_hostile import (  # noqa: F401 - project and template are fixtures
    Hung, assert_contained, assert_refused, invoke_with_alarm, project, snapshot, template)

LIMIT_S = 20.0
PREDICT = ["predict", "photos/ok.jpg", "--checkpoint", CKPT]


def run(runner, argv: list[str]):
    result = invoke_with_alarm(runner, argv, LIMIT_S)
    if isinstance(result.exception, Hung):
        pytest.fail(f"hung: {result.exception}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        pytest.fail("traceback\n" + "".join(traceback.format_exception(result.exception))[-3000:])
    return result


def assert_one_line_refusal(project: Path, runner, argv: list[str]) -> str:
    """Run `argv`; it must be refused in one line, without NaN, ESC or anything from outside."""
    before_outside, before_around = snapshot(project.parent / "outside"), {p.name for p in project.parent.iterdir()}
    result = run(runner, argv)
    assert_refused(result.exit_code, result.stderr, result.stdout, 0.0, LIMIT_S)
    assert_contained(project, before_outside, before_around, result.stdout, result.stderr)
    assert "nan" not in result.stdout.lower(), result.stdout  # no answer printed, let alone a NaN one
    assert "\x1b" not in result.stdout + result.stderr
    return result.stderr


# ---------------------------------------------------------------- the graph beside a checkpoint


def _swapped(project: Path) -> None:
    install_graph(project / CKPT, graph_bytes())
    (project / f"{CKPT}.onnx").write_bytes(graph_bytes(scale=2.0))  # a valid graph, not the one the sidecar vouches for


def _linked(project: Path) -> None:
    install_graph(project / CKPT, graph_bytes())  # vouched for, then moved out and linked back in
    (project / f"{CKPT}.onnx").rename(project.parent / "outside" / "graph.onnx")
    (project / f"{CKPT}.onnx").symlink_to(project.parent / "outside" / "graph.onnx")


GRAPHS = {
    "swapped": _swapped,
    "linked-out": _linked,
    "input-name": lambda p: install_graph(p / CKPT, graph_bytes(input_name="input")),
    "input-double": lambda p: install_graph(p / CKPT, graph_bytes(double=True)),
    "classes-4": lambda p: install_graph(p / CKPT, graph_bytes(classes=4)),
    "no-embedding": lambda p: install_graph(p / CKPT, graph_bytes(no_embedding=True)),
    "embedding-width": lambda p: install_graph(p / CKPT, graph_bytes(dim=5)),
    "nan-logits": lambda p: install_graph(p / CKPT, graph_bytes(nan=True)),
    "endless-loop": lambda p: install_graph(p / CKPT, graph_bytes(loop=True)),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_a_hostile_graph_is_refused_before_it_answers(name, project, runner):
    GRAPHS[name](project)
    stderr = assert_one_line_refusal(project, runner, [*PREDICT, "--engine", "onnx"])
    assert "%" not in stderr


def test_the_vouched_graph_itself_answers(project, runner):
    """The cases above mean something only if an untampered graph of that shape is accepted."""
    install_graph(project / CKPT, graph_bytes())
    result = run(runner, [*PREDICT, "--engine", "onnx", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    top = answer["predictions"][0]["top"]
    assert answer["model"]["engine"] == "onnx" and {c["cell_id"] for c in top} == {"870", "871", "872"}
    assert abs(sum(c["prob"] for c in top) - 1.0) < 1e-6


def test_an_endless_graph_is_stopped_by_the_time_limit(tmp_path):
    """Even past the signature check, a pass that never ends is cut off (onnxruntime's terminate flag)."""
    import time

    import onnxruntime as ort

    from geolocate.errors import UserError
    from geolocate.inference.graph_check import run_with_deadline

    path = tmp_path / "loop.onnx"
    path.write_bytes(graph_bytes(loop=True))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    with pytest.raises(UserError, match="did not finish within 1 s"):
        run_with_deadline(session, {"image": np.zeros((1, 3, 64, 64), np.float32)}, 1.0)
    assert time.perf_counter() - start < 10


# ---------------------------------------------------------------- the retrieval index


INDEXES = {
    "nan-positions": {"latlon": [[np.nan, 2.0]] * 6},
    "lat-91": {"latlon": [[91.0, 2.0]] * 6},
    "lon-inf": {"latlon": [[45.0, np.inf]] * 6},
    "label-out-of-range": {"labels": [0, 1, 2, 7, 1, 0]},
    "label-negative": {"labels": [0, -1, 2, 1, 1, 0]},
    "embedding-width": {"dim": 5},
    "empty": {"n": 0, "latlon": np.zeros((0, 2)), "labels": np.zeros(0, dtype=np.int64)},
}


@pytest.mark.parametrize("name", INDEXES)
def test_a_hostile_index_is_refused(name, project, runner):
    install_graph(project / CKPT, graph_bytes())
    install_index(project / CKPT, **INDEXES[name])
    assert_one_line_refusal(project, runner, [*PREDICT, "--engine", "onnx"])


def test_a_swapped_index_is_refused(project, runner):
    install_graph(project / CKPT, graph_bytes())
    install_index(project / CKPT)
    meta = json.loads((project / f"{CKPT}.json").read_text())
    install_index(project / CKPT, labels=[2, 2, 2, 2, 2, 2], vouch=False)  # valid, but not the one vouched for
    (project / f"{CKPT}.json").write_text(json.dumps(meta))
    assert "SHA-256" in assert_one_line_refusal(project, runner, [*PREDICT, "--engine", "onnx"])


def test_an_index_that_cannot_place_a_photo_leaves_the_classifiers_position(project, runner):
    """Valid but partial (no photo of the photo's top cell): never a NaN position, exit 0."""
    install_graph(project / CKPT, graph_bytes())
    first = json.loads(run(runner, [*PREDICT, "--engine", "onnx", "--json"]).stdout)["predictions"][0]
    top = int(first["top"][0]["cell_id"][-1])
    install_index(project / CKPT, labels=[(top + 1) % 3] * 6)
    meta = json.loads((project / f"{CKPT}.json").read_text())
    meta["retrieval"]["top_cells"] = 1
    (project / f"{CKPT}.json").write_text(json.dumps(meta))
    result = run(runner, [*PREDICT, "--engine", "onnx", "--json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["predictions"][0]
    assert np.isfinite([row["lat"], row["lon"]]).all() and (row["lat"], row["lon"]) == (first["lat"], first["lon"])


def test_a_valid_index_refines(project, runner):
    install_graph(project / CKPT, graph_bytes())
    install_index(project / CKPT)
    result = run(runner, [*PREDICT, "--engine", "onnx", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["predictions"][0]["position"] == "retrieval"


# ---------------------------------------------------------------- a release is a signed whole


def _edit_sidecar(release: Path) -> None:
    meta = json.loads((release / "model.json").read_text())
    meta["classes"][0]["city"] = "Lyon"
    (release / "model.json").write_text(json.dumps(meta))


def _link_weights(release: Path) -> None:
    shutil.copyfile(release / "model.safetensors", release.parent / "w.safetensors")
    (release / "model.safetensors").unlink()
    (release / "model.safetensors").symlink_to(release.parent / "w.safetensors")


RELEASES = {
    "sidecar-edited": _edit_sidecar,
    "weights-replaced": lambda r: (r / "model.safetensors").write_bytes((r / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0"),
    "graph-added": lambda r: (r / "model.onnx").write_bytes(graph_bytes()),
    "graph-removed": lambda r: (r / "model.onnx").unlink(),
    "weights-a-link": _link_weights,
    "sums-removed": lambda r: (r / "SHA256SUMS").unlink(),
    "sums-a-link": lambda r: ((r / "SHA256SUMS").rename(r.parent / "S"), (r / "SHA256SUMS").symlink_to(r.parent / "S")),
}


def _linked_release(release: Path) -> None:
    elsewhere = release.parent.parent.parent / "outside" / "release"
    release.rename(elsewhere)
    release.symlink_to(elsewhere, target_is_directory=True)


RELEASES["release-a-link"] = _linked_release


@pytest.mark.parametrize("name", RELEASES)
def test_a_release_changed_after_freezing_is_refused(name, project, runner):
    if name == "graph-removed":
        install_graph(project / CKPT, graph_bytes())
    release = make_release(project, project / CKPT)
    RELEASES[name](release)
    stderr = assert_one_line_refusal(project, runner, ["predict", "photos/ok.jpg", "--checkpoint", str(release)])
    assert "release" in stderr or "link" in stderr


def test_an_intact_release_predicts(project, runner):
    install_graph(project / CKPT, graph_bytes())
    release = make_release(project, project / CKPT)
    result = run(runner, ["predict", "photos/ok.jpg", "--checkpoint", str(release)])
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- printed data is inert, outputs never replace inputs


def _classes_named(project: Path, names: list[str]) -> None:
    meta = json.loads((project / f"{CKPT}.json").read_text())
    for c, name in zip(meta["classes"], names):
        c["city"] = name
    (project / f"{CKPT}.json").write_text(json.dumps(meta))


HOSTILE_NAMES = ["\x1b]0;pwned\x07Lyon", "[link=http://evil.test]Paris[/link]", "\x1b[2J\x9b31mNice"]


@pytest.mark.parametrize("table", [[], ["--top", "3"]])
def test_class_names_from_a_sidecar_reach_the_terminal_inert(project, runner, table):
    _classes_named(project, HOSTILE_NAMES)
    shutil.copyfile(project / "photos" / "ok.jpg", project / "photos" / "two.jpg")
    argv = PREDICT + table if table else ["predict", "photos", "--checkpoint", CKPT, "--top", "3"]
    result = run(runner, argv)
    assert result.exit_code == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "\x1b" not in shown and "\x9b" not in shown and "\x07" not in shown
    assert "[link=" in shown  # the markup is shown as text, not obeyed


def test_formulas_in_out_csv_are_neutralised(project, runner):
    _classes_named(project, ['=HYPERLINK("http://evil.test","x")', "+1+1", "@SUM(A1)"])
    result = run(runner, [*PREDICT, "--top", "3", "--out", "o.csv"])
    assert result.exit_code == 0, result.stderr
    import csv

    row = next(csv.DictReader((project / "o.csv").open()))
    cities = [row[f"top{k}_city"] for k in (1, 2, 3)]
    assert all(c.startswith("'") for c in cities), cities
    assert float(row["lat"]) == pytest.approx(float(row["lat"]))  # numbers stay numbers


@pytest.mark.parametrize("target", ["photos/ok.jpg", "other.png", "./photos/../photos/ok.jpg"])
def test_an_output_never_replaces_a_photo(project, runner, target):
    """`--out` already wants .csv or .parquet; `--geojson` wrote anywhere."""
    before = (project / "photos" / "ok.jpg").read_bytes()
    assert_one_line_refusal(project, runner, [*PREDICT, "--geojson", target])
    assert (project / "photos" / "ok.jpg").read_bytes() == before
    assert not (project / "other.png").exists()


def test_ids_are_matched_whole():
    from geolocate.paths import is_valid_image_id

    uuid = "0a1b2c3d-0000-4000-8000-00000000abcd"
    assert is_valid_image_id(f"panoramax:{uuid}")
    assert not is_valid_image_id(f"panoramax:{uuid}\n") and not is_valid_image_id("123\n")


def test_inert_strips_controls_and_escapes_markup():
    from geolocate.console import csv_cell, inert

    assert inert("\x1b]0;t\x07[bold]x\x9b.jpg\n") == "]0;t\\[bold]x.jpg\n"
    assert [csv_cell(v) for v in ("=1", "-2", "\tx", "ok", 3.5)] == ["'=1", "'-2", "'\tx", "ok", 3.5]


def test_a_submission_never_replaces_its_locations_table(project, runner):
    (project / "t.csv").write_text("id,north\nA,photos/ok.jpg\n")
    before = (project / "t.csv").read_text()
    stderr = assert_one_line_refusal(project, runner, ["predict", "--locations", "t.csv", "--out", "t.csv", "--checkpoint", CKPT])
    assert "--out t.csv" in stderr and (project / "t.csv").read_text() == before  # refused for that, before any model loads


RECORDS = {"not an object": "yes", "a method it does not have": {"enabled": True, "method": "nearest"},
           "no cells": {"enabled": True, "top_cells": 0}, "a string count": {"enabled": True, "neighbours": "3"}}


@pytest.mark.parametrize("engine", ["torch", "onnx"])
@pytest.mark.parametrize("name", RECORDS)
def test_a_hostile_retrieval_record_is_one_line_before_the_index_opens(name, engine, project, runner):
    install_graph(project / CKPT, graph_bytes())
    install_index(project / CKPT)
    meta = json.loads((project / f"{CKPT}.json").read_text())
    meta["retrieval"] = RECORDS[name]
    (project / f"{CKPT}.json").write_text(json.dumps(meta))
    assert "retrieval" in assert_one_line_refusal(project, runner, [*PREDICT, "--engine", engine])


def test_a_record_naming_only_enabled_refines_with_the_defaults(project, runner):
    """`{"enabled": true}` and the index's digest: the setting's defaults apply (it used to be a KeyError).
    ONNX only: the test index is as wide as the test graph's embedding, not the torch model's."""
    install_graph(project / CKPT, graph_bytes())
    install_index(project / CKPT)
    meta = json.loads((project / f"{CKPT}.json").read_text())
    meta["retrieval"] = {"enabled": True, "index_sha256": meta["retrieval"]["index_sha256"]}
    (project / f"{CKPT}.json").write_text(json.dumps(meta))
    result = run(runner, [*PREDICT, "--engine", "onnx", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["predictions"][0]["position"] == "retrieval"
