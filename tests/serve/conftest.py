"""A served model made in seconds: a tiny network with random weights over real H3 cells around
Paris, exported to ONNX, beside the files `evaluate` writes (metrics.json, REPORT.md, error map).

The figures in metrics.json and REPORT.md are fixture data for the model card (what the page
shows beside the baselines), not measurements.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")

from tests.fakes.models import CITIES, classes_around  # noqa: E402  after the extra is known to be there

TOP = 5


def _figures(median_km: float, acc: float) -> dict:
    return {"n": 40, "acc_top1": acc, "acc_top5": min(1.0, acc + 0.3), "median_km": median_km, "p90_km": 4 * median_km,
            "within_1km": 0.2, "within_25km": 0.9}


@pytest.fixture(scope="session")
def served_checkpoint(tmp_path_factory) -> Path:
    """`<folder>/model`: checkpoint pair + ONNX graph, with metrics.json, REPORT.md and error_map.png beside it."""
    from PIL import Image

    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.onnx_export import export_onnx
    from geolocate.models import create_model

    folder = tmp_path_factory.mktemp("served")
    classes = classes_around(CITIES, 4)
    model = create_model("tiny_resnet", num_classes=len(classes), pretrained=False)
    radius = {"level": 0.9, "edges": [0.5], "radius_km": [12.0, 3.0], "n_val": 40}
    save_checkpoint(folder / "model", model, {"classes": classes, "radius": radius, "run_id": "serve-test-run",
                                              "provenance": {"sources": ["local"]}})
    export_onnx(folder / "model")
    metrics = {"metrics": {"test": _figures(3.5, 0.41)},
               "baselines": {"majority": _figures(9.0, 0.1), "centroid": _figures(7.0, 0.05)}, "gates_pass": True}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "REPORT.md").write_text("# Report\n\n## Data\n\n|  | value |\n|---|---|\n| classes | 12 |\n"
                                      "| test photos | 40 |\n| val photos | 40 |\n| train photos | 320 |\n\n## Next\n")
    Image.new("RGB", (40, 30), (200, 40, 40)).save(folder / "error_map.png")
    return folder / "model"


@pytest.fixture(scope="session")
def served_model(served_checkpoint):
    from geolocate.serve.model import ServedModel

    return ServedModel.load(str(served_checkpoint.with_suffix(".safetensors")), None)


@pytest.fixture
def serve_settings():
    from geolocate.config import ServeConfig

    return ServeConfig()


@pytest.fixture
def client(served_model, serve_settings):
    from fastapi.testclient import TestClient

    from geolocate.serve.app import create_app

    with TestClient(create_app(served_model, serve_settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def photo_bytes(tmp_path):
    """A JPEG whose EXIF GPS puts it in Paris (the truth the page draws)."""
    from tests.sources.photo_factory import geotagged

    return geotagged(tmp_path / "paris.jpg", 48.8600, 2.3400, size=(160, 120), seed=3).read_bytes()


@pytest.fixture
def live_server(served_model, serve_settings):
    """The app on a real uvicorn server on a free local port (for parallel clients and the browser)."""
    import uvicorn

    from geolocate.serve.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(served_model, serve_settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
