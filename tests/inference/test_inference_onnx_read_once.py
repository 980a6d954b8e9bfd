"""`predict` reads an ONNX graph once: the bytes whose digest is checked are the bytes onnxruntime
runs and the bytes the control-flow check reads, beside the checkpoint or beside the run
checkpoint it was promoted from (its twin).

A file swapped while the graph loads is staged by a spy on `onnxruntime.InferenceSession`; the
opens are counted by an audit hook (every `open` Python makes, whichever function makes it).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

import numpy as np
import pytest

from geolocate.errors import UserError
from tests.robustness.hostile_round2 import SIDE, graph_bytes, install_graph

RUN_ID = "20260101-000000-tiny-abcd"
PLACES = ("beside", "twin")
# Audit hooks cannot be removed: this one is added once per test process and idles (records
# nothing) outside the `opened` fixture.
_opens: dict[str, object] = {"seen": None, "hooked": False}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """`runs/<id>/best` and its promoted copy `ckpt/model` (same weights id), neither with a graph yet."""
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.models import create_model

    root = tmp_path_factory.mktemp("read_once")
    run = root / "runs" / RUN_ID
    run.mkdir(parents=True)
    classes = [{"cell_id": f"87{i}", "centroid_lat": 45.0 + i, "centroid_lon": 2.0 + i, "city": f"c{i}"} for i in range(3)]
    model = create_model("tiny_resnet", num_classes=3, pretrained=False)
    save_checkpoint(run / "best", model, {"classes": classes, "temperature": 1.5, "position": "top1", "run_id": RUN_ID})
    (root / "ckpt").mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(run / f"best{suffix}", root / "ckpt" / f"model{suffix}")
    return root


@pytest.fixture
def project(template, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(template, root)
    return root


@pytest.fixture
def opened():
    """The paths Python opens while the test runs."""
    if not _opens.get("hooked"):
        sys.addaudithook(_record_open)
        _opens["hooked"] = True
    _opens["seen"] = []
    yield _opens["seen"]
    _opens["seen"] = None


def _record_open(event: str, args: tuple) -> None:
    seen = _opens["seen"]
    if event == "open" and seen is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        seen.append(os.fsdecode(args[0]))


def _install(project, place: str, data: bytes):
    """`data` as the graph at `place`, vouched for by that checkpoint's sidecar; the graph's path."""
    stem = project / "ckpt" / "model" if place == "beside" else project / "runs" / RUN_ID / "best"
    install_graph(stem, data)
    return stem.with_suffix(".onnx")


def _load(project):
    from geolocate.inference.predictor import load_predictor

    return load_predictor(project / "ckpt" / "model", engine="onnx", runs=project / "runs")


def _logits(session_or_bytes) -> np.ndarray:
    import onnxruntime as ort

    session = session_or_bytes
    if isinstance(session_or_bytes, bytes):
        session = ort.InferenceSession(session_or_bytes, providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).random((2, 3, SIDE, SIDE), dtype=np.float32)
    return session.run(["logits"], {"image": batch})[0]


def _swap_when_the_session_opens(monkeypatch, graph, data: bytes, before: bool) -> None:
    """Write `data` over `graph` as the session opens (`before` it reads its source, or just after)."""
    import onnxruntime

    real = onnxruntime.InferenceSession

    def session(source, *args, **kwargs):
        if before:
            graph.write_bytes(data)
        opened_session = real(source, *args, **kwargs)
        graph.write_bytes(data)
        return opened_session

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)


@pytest.mark.parametrize("place", PLACES)
def test_the_graph_is_opened_once_and_the_session_gets_those_bytes(project, place, opened, monkeypatch):
    import onnxruntime

    graph = _install(project, place, graph_bytes())
    sources = []
    real = onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda source, *a, **k: sources.append(source) or real(source, *a, **k))
    opened.clear()  # writing the graph opened it too
    _load(project)
    assert opened.count(str(graph)) == 1, opened
    assert sources == [graph_bytes()]


@pytest.mark.parametrize("place", PLACES)
def test_a_graph_swapped_after_its_digest_was_checked_never_runs(project, place, monkeypatch):
    graph = _install(project, place, graph_bytes())
    _swap_when_the_session_opens(monkeypatch, graph, graph_bytes(scale=2.0), before=True)
    predictor = _load(project)
    assert np.allclose(_logits(predictor.session), _logits(graph_bytes()))
    assert not np.allclose(_logits(predictor.session), _logits(graph_bytes(scale=2.0)))  # the swap would show


@pytest.mark.parametrize("place", PLACES)
def test_the_control_flow_check_reads_the_bytes_the_session_runs(project, place, monkeypatch):
    """A vouched-for graph holding a Loop, replaced by a clean one once the session has opened: still refused."""
    graph = _install(project, place, graph_bytes(loop=True))
    _swap_when_the_session_opens(monkeypatch, graph, graph_bytes(), before=False)
    with pytest.raises(UserError, match="it holds a Loop") as caught:
        _load(project)
    assert str(graph) in str(caught.value)


def _swapped(graph) -> None:
    graph.write_bytes(graph_bytes(scale=2.0))


def _linked(graph) -> None:
    graph.rename(graph.parent.parent / "elsewhere.onnx")
    graph.symlink_to(graph.parent.parent / "elsewhere.onnx")


REFUSALS = {"swapped": (_swapped, "is not the graph its checkpoint was written with (SHA-256 differs from the sidecar's)"),
            "linked": (_linked, "is a symbolic link")}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", REFUSALS)
def test_a_changed_graph_is_refused_in_one_line_naming_it(project, place, name):
    change, message = REFUSALS[name]
    graph = _install(project, place, graph_bytes())
    change(graph)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        _load(project)
    assert str(caught.value).startswith(str(graph)) and "\n" not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_graph_that_is_a_fifo_is_refused_by_the_loader(project):
    """`load_predictor` never hands a FIFO over (it looks for regular files); the loader refuses one itself."""
    from geolocate.artifacts.checkpoint import read_sidecar
    from geolocate.inference.onnx_predictor import OnnxPredictor

    stem = project / "ckpt" / "model"
    graph = _install(project, "beside", graph_bytes())
    graph.unlink()
    os.mkfifo(graph)
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(10)  # a blocking open or read would otherwise hang the suite
    try:
        with pytest.raises(UserError, match=f"graph {graph}: not a regular file"):
            OnnxPredictor.load(stem, read_sidecar(stem))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _hung(*_):
    raise TimeoutError("opening a FIFO blocked: the loader must refuse it without reading")


def test_a_twin_graph_is_checked_against_the_promoted_copys_digest(project):
    """The copy (`ckpt/model`, no graph beside it) vouches for the graph it was promoted with. A twin
    exported again since (its own sidecar records another digest) is not that graph: no graph for
    the copy (auto falls back to torch). A twin whose bytes changed under the copy's digest is refused."""
    import hashlib
    import json

    copy = project / "ckpt" / "model.json"
    meta = json.loads(copy.read_text())
    meta["onnx"] = {"file": "best.onnx", "weights_id": meta["weights_id"], "sha256": hashlib.sha256(graph_bytes()).hexdigest()}
    copy.write_text(json.dumps(meta))
    graph = _install(project, "twin", graph_bytes(scale=2.0))  # the twin's own sidecar vouches for the new bytes
    with pytest.raises(UserError, match="has no exported graph"):
        _load(project)
    from geolocate.inference.predictor import load_predictor

    assert load_predictor(project / "ckpt" / "model", engine="auto", runs=project / "runs").engine == "torch"
    _install(project, "twin", graph_bytes())
    graph.write_bytes(graph_bytes(scale=2.0))  # the bytes change, the records do not
    with pytest.raises(UserError, match="SHA-256 differs from the sidecar's") as caught:
        _load(project)
    assert str(caught.value).startswith(str(graph))
    _install(project, "twin", graph_bytes())  # the graph the copy was promoted with loads
    assert np.allclose(_logits(_load(project).session), _logits(graph_bytes()))
