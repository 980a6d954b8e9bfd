"""The JSON API of `geolocate serve`: same fields as `predict --json`, safe answers to bad uploads."""

from __future__ import annotations

import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serve.conftest import TOP


def _post(client, *photos: bytes, top: int | None = None, field: str = "photo", filename: str = "photo.jpg"):
    files = [(field, (filename, data, "image/jpeg")) for data in photos]
    return client.post("/api/predict", files=files, data={} if top is None else {"top": str(top)})


def test_health_and_model_card(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["run_id"] == "serve-test-run" and health["engine"] == "onnx"
    card = client.get("/api/model").json()
    assert card["run_id"] == "serve-test-run" and card["classes"] == 12 and card["views"] is False
    assert card["trained_on"]["sources"] == ["local"]
    assert card["trained_on"]["photos"] == {"test photos": 40, "val photos": 40, "train photos": 320}
    assert card["test"]["median_km"] == 3.5 and set(card["baselines"]) == {"majority", "centroid"}
    image = client.get("/api/model/error_map.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")


def test_predict_answers_the_fields_of_predict_json(client, photo_bytes, tmp_path, cli, served_checkpoint):
    answer = _post(client, photo_bytes, top=3)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    (prediction,) = doc["predictions"]
    path = tmp_path / "same.jpg"
    path.write_bytes(photo_bytes)
    result = cli("predict", path, "--checkpoint", served_checkpoint.with_suffix(".safetensors"), "--json", "--top", "3")
    expected = json.loads(result.stdout)["predictions"][0]
    assert set(expected) - {"file"} <= set(prediction)  # every field predict --json gives
    assert [c["cell_id"] for c in prediction["top"]] == [c["cell_id"] for c in expected["top"]]
    assert prediction["lat"] == pytest.approx(expected["lat"]) and prediction["lon"] == pytest.approx(expected["lon"])
    assert prediction["radius_km"] == pytest.approx(expected["radius_km"])
    assert prediction["error_km"] == pytest.approx(expected["error_km"])  # EXIF truth read from the upload
    assert prediction["true_lat"] == pytest.approx(48.86, abs=1e-4)
    assert all(len(c["polygon"]) == 7 for c in prediction["top"])  # closed H3 hexagon rings for the map
    assert doc["model"]["run_id"] == "serve-test-run" and prediction["file"] == "photo 1"


def test_several_photos_in_one_request(client, photo_bytes):
    doc = _post(client, photo_bytes, photo_bytes).json()
    assert [p["file"] for p in doc["predictions"]] == ["photo 1", "photo 2"]
    assert len(doc["predictions"][0]["top"]) == TOP


@pytest.mark.parametrize("body, expected", [
    (b"not an image at all", "photo 1: not an image Pillow can read"),
    (b"", "photo 1: empty upload"),
])
def test_a_non_image_is_400_with_one_line(client, body, expected):
    answer = _post(client, body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(expected) and "\n" not in answer.text


def test_a_truncated_photo_is_400_with_the_decoders_reason(client, photo_bytes):
    answer = _post(client, photo_bytes[: len(photo_bytes) // 2])  # headers intact, pixels cut
    assert answer.status_code == 400
    assert "truncated" in answer.json()["error"] and "\n" not in answer.json()["error"]
    both = _post(client, photo_bytes, photo_bytes[: len(photo_bytes) // 2]).json()  # one good, one cut: the good one answered
    assert [p["file"] for p in both["predictions"]] == ["photo 1"] and [f["file"] for f in both["failures"]] == ["photo 2"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns, then open_photo refuses
def test_a_decompression_bomb_is_400_before_decoding(client):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, "PNG")  # 144 Mpx in a few kB
    assert len(buffer.getvalue()) < 100_000
    answer = _post(client, buffer.getvalue())
    assert answer.status_code == 400 and "decompression bomb" in answer.json()["error"]


def test_an_upload_over_the_limit_is_413(served_model, photo_bytes):
    from fastapi.testclient import TestClient

    from geolocate.config import ServeConfig
    from geolocate.serve.app import create_app

    with TestClient(create_app(served_model, ServeConfig(max_upload_mb=0.05))) as small:
        answer = _post(small, photo_bytes + b"\0" * 60_000)
        assert answer.status_code == 413 and "serve.max_upload_mb" in answer.json()["error"]
        chunked = small.post("/api/predict", content=iter([b"x" * 16384] * 4), headers={"content-type": "multipart/form-data; boundary=b"})
        assert chunked.status_code == 413  # no Content-Length: counted as it streams
        assert _post(small, photo_bytes).status_code == 200


def test_requests_that_are_not_a_photo_upload_are_400(client, photo_bytes):
    assert client.post("/api/predict", content=b"{}", headers={"content-type": "application/json"}).status_code == 400
    assert _post(client, photo_bytes, field="image").json()["error"].startswith("no photo in the request")
    assert _post(client, photo_bytes, top=0).status_code == 400
    assert _post(client, photo_bytes, top="../etc").status_code == 400


def test_no_request_names_a_server_path(client, tmp_path, photo_bytes):
    """A file name is only a label: the server reads the uploaded bytes, never a file it names."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buffer, "JPEG")  # no EXIF
    geotagged = tmp_path / "on-server.jpg"
    geotagged.write_bytes(photo_bytes)  # a photo with GPS on the server's disk
    doc = _post(client, buffer.getvalue(), filename=str(geotagged)).json()
    (prediction,) = doc["predictions"]
    assert prediction["file"] == "photo 1" and prediction["true_lat"] is None  # its EXIF was not read
    assert client.get("/static/../geolocate/config.py").status_code == 404
    assert client.get("/api/model/error_map.png", params={"path": "/etc/passwd"}).content.startswith(b"\x89PNG")


def test_no_docs_pages_and_no_cors_by_default(client):
    for url in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(url).status_code == 404
    answer = client.get("/api/health", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_cors_only_for_configured_origins(served_model):
    from fastapi.testclient import TestClient

    from geolocate.config import ServeConfig
    from geolocate.serve.app import create_app

    with TestClient(create_app(served_model, ServeConfig(cors_origins=["https://maps.example"]))) as cors:
        allowed = cors.get("/api/health", headers={"Origin": "https://maps.example"})
        other = cors.get("/api/health", headers={"Origin": "https://elsewhere.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://maps.example"
    assert "access-control-allow-origin" not in other.headers


def test_an_unexpected_error_is_one_line_for_the_client_and_logged_once(served_model, serve_settings, photo_bytes, caplog, monkeypatch):
    from fastapi.testclient import TestClient

    from geolocate.serve.app import create_app

    def broken(photos, top):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(served_model, "predict", broken)
    with TestClient(create_app(served_model, serve_settings), raise_server_exceptions=False) as c, caplog.at_level(logging.ERROR):
        answer = _post(c, photo_bytes)
    assert answer.status_code == 500
    assert answer.json() == {"error": "prediction failed; the server log has the details"}
    assert "secret" not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if r.name == "geolocate.serve"]
    assert len(logged) == 1 and "secret internal detail" in logged[0].exc_text


def test_forty_requests_eight_at_a_time_all_succeed(live_server, photo_bytes):
    import httpx

    def one(i: int) -> int:
        with httpx.Client(base_url=live_server, timeout=120) as http:
            answer = http.post("/api/predict", files={"photo": (f"{i}.jpg", photo_bytes, "image/jpeg")})
        return answer.status_code, len(answer.json().get("predictions", []))

    with ThreadPoolExecutor(8) as clients:
        answers = list(clients.map(one, range(40)))
    assert answers == [(200, 1)] * 40


def test_the_prediction_pool_is_sized_to_the_cores(client):
    import os

    assert client.get("/api/health").json()["workers"] == os.cpu_count()


def test_binding_beyond_loopback_warns(served_checkpoint, monkeypatch, capsys):
    import uvicorn

    from geolocate.config import GeolocateConfig
    from geolocate.serve.run import run_serve

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    ref = str(served_checkpoint.with_suffix(".safetensors"))
    run_serve(GeolocateConfig(), None, ref, "127.0.0.1", 8123)
    assert "warning" not in capsys.readouterr().err
    run_serve(GeolocateConfig(), None, ref, "0.0.0.0", 8123)
    assert "warning: binding 0.0.0.0" in " ".join(capsys.readouterr().err.split())
    assert [c["host"] for c in calls] == ["127.0.0.1", "0.0.0.0"]


# URLs in the vendored files that fetch nothing: an XML namespace, licence/comment links, and the
# attribution prefix the page turns off (`setPrefix(false)`); the browser test checks the requests.
INERT = {"http://www.w3.org/2000/svg", "https://leafletjs.com", "https://github.com/topojson/topojson-client",
         "https://bugs.chromium.org/p/chromium/issues/detail?id=600120", "https://bugzilla.mozilla.org/show_bug.cgi?id=888319"}


def _served_urls(client) -> tuple[str, dict[str, set[str]]]:
    import re

    page = client.get("/").text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert {"/static/vendor/leaflet/leaflet.js", "/static/app.js", "/static/vendor/leaflet/leaflet.css"} <= set(assets)
    texts = {"/": page, **{a: client.get(a).text for a in assets}}
    found = {name: set(re.findall(r"https?://[^\s\"'()<>`]+", text)) for name, text in texts.items()}
    return page, found


def test_the_page_references_no_other_host(client):
    page, found = _served_urls(client)
    own = {"/", "/static/app.js", "/static/app.css"}
    assert all(not found[name] for name in own), {n: found[n] for n in own}
    vendored = set().union(*(urls for name, urls in found.items() if name not in own))
    assert vendored <= INERT, vendored - INERT
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]


def test_a_configured_tile_server_is_the_only_other_host(served_model):
    from fastapi.testclient import TestClient

    from geolocate.config import ServeConfig
    from geolocate.serve.app import create_app

    tiles = ServeConfig(tile_url="https://tile.openstreetmap.org/{z}/{x}/{y}.png", tile_attribution="© OpenStreetMap contributors")
    with TestClient(create_app(served_model, tiles)) as c:
        _, found = _served_urls(c)
        policy = c.get("/").headers["content-security-policy"]
    assert found["/"] == {"https://tile.openstreetmap.org/{z}/{x}/{y}.png"}
    assert "img-src 'self' data: blob: https://tile.openstreetmap.org;" in policy


def test_a_tile_url_must_be_http(workdir):
    from geolocate.config import load_config
    from geolocate.errors import UserError

    with pytest.raises(UserError, match="tile_url must be an http"):
        load_config(None, None, ["serve.tile_url=file:///etc/passwd"])


class _FourView:
    """A stand-in for a four-view model: records what the server hands it (the routing is the server's)."""

    views, error_map = True, None
    card = {"run_id": "four", "engine": "onnx", "views": True}

    def __init__(self) -> None:
        self.calls = []

    def predict(self, photos, top):
        self.calls.append((photos, top))
        return {"model": self.card, "predictions": [], "failures": []}


def test_four_views_arrive_by_compass_name_or_in_order(serve_settings, photo_bytes):
    from fastapi.testclient import TestClient

    from geolocate.serve.app import create_app

    model = _FourView()
    with TestClient(create_app(model, serve_settings)) as c:
        named = c.post("/api/predict", files=[("north", ("n.jpg", photo_bytes)), ("west", ("w.jpg", photo_bytes))], data={"top": "3"})
        ordered = c.post("/api/predict", files=[("photo", (f"{i}.jpg", photo_bytes)) for i in range(3)])
        both = c.post("/api/predict", files=[("north", ("n.jpg", photo_bytes)), ("photo", ("p.jpg", photo_bytes))])
        five = c.post("/api/predict", files=[("photo", (f"{i}.jpg", photo_bytes)) for i in range(5)])
        bad = c.post("/api/predict", files=[("east", ("e.jpg", b"nope"))])
    assert named.status_code == ordered.status_code == 200
    assert [(sorted(p), top) for p, top in model.calls] == [(["north", "west"], 3), (["east", "north", "south"], 5)]
    assert both.status_code == five.status_code == 400
    assert bad.status_code == 400 and bad.json()["error"].startswith("east: not an image")
