"""`read_companion`: a graph's bytes read once, refused as `verify_companion` refuses the file.

The checks by name (link, special file) run before the read; the read itself opens without
following a link and refuses a descriptor that is not a regular file's, so a swap between the
two is refused too (the race is staged by skipping the checks by name).
"""

from __future__ import annotations

import hashlib
import os
import signal

import pytest

from geolocate.artifacts import integrity
from geolocate.artifacts.integrity import read_companion
from geolocate.errors import UserError

DATA = b"graph v1"
DIGEST = hashlib.sha256(DATA).hexdigest()
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


@pytest.fixture
def graph(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(DATA)
    return path


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo.onnx"
    os.mkfifo(path)
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading the FIFO blocked"))
    signal.alarm(10)  # a blocking open or read would otherwise hang the suite
    yield path
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _link(graph):
    link = graph.with_name("link.onnx")
    link.symlink_to(graph)
    return link


@pytest.mark.parametrize("recorded", [DIGEST, DIGEST.upper(), None])
def test_the_vouched_bytes_come_back(graph, recorded):
    assert read_companion(graph, recorded, "graph") == DATA


@pytest.mark.parametrize("recorded", [hashlib.sha256(b"graph v2").hexdigest(), "", 12])
def test_other_bytes_than_the_sidecars_are_refused_in_one_line_naming_the_file(graph, recorded):
    with pytest.raises(UserError, match="SHA-256 differs from the sidecar's") as caught:
        read_companion(graph, recorded, "graph")
    assert str(graph) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("recorded", [DIGEST, None])
def test_a_link_is_refused_even_without_a_recorded_digest(graph, recorded):
    with pytest.raises(UserError, match="is a symbolic link"):
        read_companion(_link(graph), recorded, "graph")


@needs_fifo
def test_a_fifo_is_refused_without_blocking(fifo):
    with pytest.raises(UserError, match=f"graph {fifo}: not a regular file"):
        read_companion(fifo, DIGEST, "graph")


def test_a_link_put_in_after_the_checks_by_name_is_not_followed(graph, monkeypatch):
    monkeypatch.setattr(integrity, "_require_own_file", lambda *args: None)
    link = _link(graph)
    with pytest.raises(UserError, match="cannot read it") as caught:
        read_companion(link, DIGEST, "graph")
    assert str(link) in str(caught.value)


@needs_fifo
def test_a_fifo_put_in_after_the_checks_by_name_is_refused_without_blocking(fifo, monkeypatch):
    monkeypatch.setattr(integrity, "_require_own_file", lambda *args: None)
    with pytest.raises(UserError, match=f"graph {fifo}: not a regular file"):
        read_companion(fifo, DIGEST, "graph")
