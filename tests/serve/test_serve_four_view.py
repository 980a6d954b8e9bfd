"""A four-view model over HTTP: the views of one place, by compass name, answered as `predict` does."""

from __future__ import annotations

import pytest

from tests.scout.test_scout_predict import _views, scout_run  # noqa: F401 - the tiny scout-sniper fixture

pytestmark = pytest.mark.slow


def test_four_views_over_http(scout_run, serve_settings):  # noqa: F811
    from fastapi.testclient import TestClient

    from geolocate.serve.app import create_app
    from geolocate.serve.model import ServedModel

    project, run = scout_run
    model = ServedModel.load(str(run))
    assert model.views and model.card["views"] is True
    views = _views(project, 1)[0]
    with TestClient(create_app(model, serve_settings)) as client:
        assert client.get("/api/model").json()["views"] is True
        answer = client.post("/api/predict", files=[(v, (f"{v}.jpg", path.read_bytes(), "image/jpeg")) for v, path in views.items()],
                             data={"top": "3"})
        missing = client.post("/api/predict", files=[("photo", ("p.jpg", b"\xff\xd8 broken", "image/jpeg"))])
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert prediction["file"] == "location 1" and len(prediction["top"]) == 3
    assert -90 <= prediction["lat"] <= 90 and prediction["radius_km"] is not None
    assert all(c["polygon"] is None or len(c["polygon"]) >= 4 for c in prediction["top"])
    assert missing.status_code == 400
