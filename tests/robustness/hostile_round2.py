"""Hostile inputs of the second round, made by code: graphs, indexes, releases, import folders, a server.

- `graph_bytes` writes an ONNX graph with `onnx.helper`: by default the signature `export-model`
  writes for the template checkpoint (input `image` [N, 3, 64, 64], outputs `logits` [N, 3] and
  `embedding` [N, 8]); each keyword breaks one thing (names, dtype, class count, NaN weights, a
  `Loop` that never ends). `install_graph` puts one beside a checkpoint with a sidecar record
  that vouches for it (digest and weights id), so what is tested is the signature check itself.
- `install_index` writes a retrieval index (safetensors) with chosen positions and labels.
- `make_release` builds `releases/<tag>/` from a checkpoint the way `freeze` lays it out.
- `HostileServer` is an HTTP stand-in on 127.0.0.1 that drips, floods, bombs, nests and redirects.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

CLASSES, DIM, SIDE = 3, 8, 64


# ---------------------------------------------------------------- ONNX graphs


def graph_bytes(*, input_name: str = "image", double: bool = False, classes: int = CLASSES, dim: int = DIM,
                nan: bool = False, loop: bool = False, scale: float = 1.0, no_embedding: bool = False) -> bytes:
    """A small valid graph: mean-pool the image, two matrix products (see module docstring)."""
    from onnx import TensorProto, helper, numpy_helper

    kind = TensorProto.DOUBLE if double else TensorProto.FLOAT
    npkind = np.float64 if double else np.float32
    w1 = np.full((3, classes), np.nan if nan else scale, npkind)
    w1[0, 0] += 1.0  # one class wins: an answer like "c0 100 %"
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(np.ones((3, dim), npkind), "w2")]
    nodes = [helper.make_node("ReduceMean", [input_name], ["pooled"], axes=[2, 3], keepdims=0)]
    source = "pooled"
    if loop:  # no trip count, a condition that stays true: runs until stopped
        body = helper.make_graph(
            [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["x_in"], ["x_out"])], "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("x_in", kind, None)],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("x_out", kind, None)])
        inits.append(numpy_helper.from_array(np.array(True), "cond"))
        nodes.append(helper.make_node("Loop", ["", "cond", "pooled"], ["looped"], body=body))
        source = "looped"
    nodes.append(helper.make_node("MatMul", [source, "w1"], ["logits"]))
    outputs = [helper.make_tensor_value_info("logits", kind, ["N", classes])]
    if not no_embedding:
        nodes.append(helper.make_node("MatMul", [source, "w2"], ["embedding"]))
        outputs.append(helper.make_tensor_value_info("embedding", kind, ["N", dim]))
    graph = helper.make_graph(nodes, "hostile", [helper.make_tensor_value_info(input_name, kind, ["N", 3, SIDE, SIDE])], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def install_graph(stem: Path, data: bytes, *, vouch: bool = True, record_dim: int | None = DIM) -> None:
    """Write `<stem>.onnx` and a sidecar `onnx` record for it (its digest too when `vouch`)."""
    Path(f"{stem}.onnx").write_bytes(data)
    sidecar = Path(f"{stem}.json")
    meta = json.loads(sidecar.read_text())
    meta["onnx"] = {"file": f"{stem.name}.onnx", "weights_id": meta["weights_id"], "opset": 17}
    if vouch:
        meta["onnx"]["sha256"] = hashlib.sha256(data).hexdigest()
    if record_dim is not None:
        meta["onnx"]["embedding_dim"] = record_dim
    sidecar.write_text(json.dumps(meta))


# ---------------------------------------------------------------- retrieval indexes


def install_index(stem: Path, *, latlon=None, labels=None, dim: int = DIM, n: int = 6, vouch: bool = True) -> None:
    """Write `<stem>.index.safetensors` and turn retrieval on in the sidecar."""
    from safetensors.numpy import save_file

    meta = json.loads(Path(f"{stem}.json").read_text())
    arrays = {
        "embeddings": np.random.default_rng(0).normal(size=(n, dim)).astype(np.float16),
        "latlon": np.asarray(latlon if latlon is not None else [[45.0 + i % 3, 2.0 + i % 3] for i in range(n)], dtype=np.float64),
        "labels": np.asarray(labels if labels is not None else [i % CLASSES for i in range(n)], dtype=np.int64),
    }
    path = Path(f"{stem}.index.safetensors")
    save_file(arrays, str(path), metadata={"weights_id": meta["weights_id"]})
    meta["retrieval"] = {"enabled": True, "top_cells": 2, "neighbours": 3}
    if vouch:
        meta["retrieval"]["index_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    Path(f"{stem}.json").write_text(json.dumps(meta))


# ---------------------------------------------------------------- releases


def make_release(project: Path, stem: Path, tag: str = "v1") -> Path:
    """`releases/<tag>/model.*` copied from `stem`, with RELEASE.json and SHA256SUMS, as `freeze` writes them."""
    release = project / "releases" / tag
    release.mkdir(parents=True)
    for suffix in (".json", ".safetensors", ".onnx", ".index.safetensors"):
        if Path(f"{stem}{suffix}").is_file():
            shutil.copyfile(f"{stem}{suffix}", release / f"model{suffix}")
    (release / "RELEASE.json").write_text(json.dumps({"format": "geolocate.release", "version": 1, "tag": tag}))
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(release.iterdir()))
    (release / "SHA256SUMS").write_text(sums)
    return release


# ---------------------------------------------------------------- a hostile HTTP server on loopback


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped (about a thousandth of that on the wire)."""
    out, block = zlib.compressobj(9, zlib.DEFLATED, 31), b"\0" * (1 << 20)
    parts = [out.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + out.flush()


class HostileServer:
    """Answers by path: /drip (a byte every 0.5 s, forever), /huge (an endless body), /bomb (gzip
    bomb), /deep (JSON nested 100 000 deep), /loop (redirects to itself), /away (redirects to
    another host), /ok (a small JSON); and, well-behaved, /hop (a same-host redirect to /gz) and /gz
    (a gzipped JSON answer). Use as a context manager; `url(path)` gives the address."""

    def __init__(self, bomb_mb: int = 200) -> None:
        self.bomb = gzip_bomb(bomb_mb << 20)
        self.stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> "HostileServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                try:
                    getattr(self, "_" + path.strip("/").split("/")[0], self._ok)()
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    pass

            def _head(self, status: int = 200, **headers: str) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key.replace("_", "-"), value)
                self.end_headers()

            def _ok(self) -> None:
                body = json.dumps({"features": []}).encode()
                self._head(200, Content_Type="application/json", Content_Length=str(len(body)))
                self.wfile.write(body)

            def _drip(self) -> None:
                self._head(200, Content_Type="application/json", Content_Length="1000000")
                while not owner.stop.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.5)

            def _huge(self) -> None:
                self._head(200, Content_Type="image/jpeg")  # no length: the body ends when the server says so
                block = b"\xff" * (1 << 16)
                while not owner.stop.is_set():
                    self.wfile.write(block)

            def _bomb(self) -> None:
                self._head(200, Content_Type="application/json", Content_Encoding="gzip", Content_Length=str(len(owner.bomb)))
                self.wfile.write(owner.bomb)

            def _deep(self) -> None:
                body = b"[" * 100_000 + b"]" * 100_000
                self._head(200, Content_Type="application/json", Content_Length=str(len(body)))
                self.wfile.write(body)

            def _loop(self) -> None:
                self._head(302, Location="/loop", Content_Length="0")

            def _hop(self) -> None:  # a well-behaved same-host redirect
                self._head(302, Location="/gz", Content_Length="0")

            def _gz(self) -> None:  # a well-behaved compressed answer
                body = zlib.compress(json.dumps({"features": [{"id": "x" * 1000}]}).encode(), wbits=31)
                self._head(200, Content_Type="application/json", Content_Encoding="gzip", Content_Length=str(len(body)))
                self.wfile.write(body)

            def _away(self) -> None:
                self._head(302, Location=f"http://localhost:{owner.server.server_address[1]}/ok", Content_Length="0")

        return Handler


