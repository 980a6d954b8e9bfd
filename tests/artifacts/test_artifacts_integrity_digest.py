"""A file checked twice in one process (SHA256SUMS, then the sidecar's digest) is hashed once, until it changes."""

from __future__ import annotations

import hashlib

import pytest

from geolocate.artifacts import integrity
from geolocate.errors import UserError


def test_an_unchanged_file_is_hashed_once_and_a_changed_one_again(tmp_path, monkeypatch):
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph v1")
    calls = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: calls.append(p) or real(p))
    integrity._digest_of.cache_clear()
    recorded = hashlib.sha256(b"graph v1").hexdigest()
    integrity.verify_companion(graph, recorded, "graph")
    integrity.verify_companion(graph, recorded, "graph")
    assert len(calls) == 1
    graph.write_bytes(b"graph v2, swapped")
    with pytest.raises(UserError, match="SHA-256 differs"):
        integrity.verify_companion(graph, recorded, "graph")
    assert len(calls) == 2
