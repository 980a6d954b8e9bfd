"""A fake Panoramax API (STAC item search) and picture server, served through `httpx.MockTransport`.

It reproduces what geolocate relies on::

    fake = FakePanoramax.grid((4.80, 45.74, 4.88, 45.79), n=200, seed=1, panos=20)
    fake.fail_next("search", status=429, retry_after=3)   # or status=503, timeout=True; "asset" too
    cfg = fake.fetch_config(panoramax={"limit": 50})      # a FetchConfig with source = panoramax

- `GET /api/search?bbox=…&limit=…`: a GeoJSON FeatureCollection of the pictures in the box, sorted
  by distance to the box's centre and cut at `limit` (≤ 10 000): no pagination, no `next` link.
  `ids=<uuid>` looks pictures up. Items carry `collection` (the sequence), `view:azimuth`,
  `pers:interior_orientation` (360° pictures: `field_of_view` 360, 2:1 sensor), a per-picture
  `license` (mixed: etalab-2.0 and CC-BY-SA-4.0) and `providers` (the producer).
- `GET https://ASSET_HOST/<id>/<asset>.jpg`: the picture (`thumb`, `sd`, `hd`), a JPEG, 2:1 for a
  360° one; which assets were asked is counted in `assets`.
No token: a request carrying Authorization answers 400. `latency` seconds are slept per request.
"""

from __future__ import annotations

import asyncio
import io
import math
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from tests.fakes.mapillary import _Fault, _json, take_fault

LICENSES = ("etalab-2.0", "CC-BY-SA-4.0")


@dataclass
class FakePicture:
    id: str
    collection: str
    lon: float
    lat: float
    azimuth: float
    taken: datetime
    license: str
    producer: str
    is_360: bool = False

    def item(self, assets_host: str) -> dict[str, Any]:
        size = [5760, 2880] if self.is_360 else [4000, 3000]
        return {
            "type": "Feature", "stac_version": "1.0.0", "id": self.id, "collection": self.collection,
            "geometry": {"type": "Point", "coordinates": [self.lon, self.lat]},
            "bbox": [self.lon, self.lat, self.lon, self.lat],
            "providers": [{"name": self.producer, "roles": ["producer"]}],
            "properties": {
                "datetime": self.taken.isoformat(), "view:azimuth": self.azimuth, "license": self.license,
                "pers:interior_orientation": {"camera_manufacturer": "GoPro" if self.is_360 else "Sony", "camera_model": "X",
                                              "field_of_view": 360 if self.is_360 else 70, "sensor_array_dimensions": size},
            },
            "assets": {name: {"href": f"https://{assets_host}/{self.id}/{name}.jpg", "type": "image/jpeg", "roles": ["data"]}
                       for name in ("hd", "sd", "thumb")},
            "links": [{"rel": "collection", "href": f"https://fake/api/collections/{self.collection}"}],
        }


@dataclass
class FakePanoramax:
    API_HOST = "api.fake-panoramax.test"
    ASSET_HOST = "pictures.fake-panoramax.test"

    latency: float = 0.0
    pictures: dict[str, FakePicture] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    assets: Counter = field(default_factory=Counter)
    _faults: dict[str, list[_Fault]] = field(default_factory=lambda: defaultdict(list))

    @property
    def api_url(self) -> str:
        return f"https://{self.API_HOST}/api"

    def fetch_config(self, panoramax: dict[str, Any] | None = None, **overrides: Any):
        """A `FetchConfig` with `source = panoramax` pointed at this fake, no rate ceiling in the way."""
        from geolocate.config import FetchConfig

        pano = {"api_url": self.api_url, "requests_per_minute": 10**7, "concurrency": 8} | (panoramax or {})
        return FetchConfig(**({"source": "panoramax", "max_retries": 3, "panoramax": pano} | overrides))

    @classmethod
    def grid(cls, bbox: tuple[float, float, float, float], n: int, seed: int = 0, *, per_sequence: int = 5, panos: int = 0, **kw: Any) -> "FakePanoramax":
        """`n` pictures in sequences of `per_sequence` at random points of `bbox`; the first `panos` are 360°."""
        fake, rng = cls(**kw), random.Random(seed)
        t0 = datetime(2023, 6, 1, 9, tzinfo=timezone.utc)
        for i in range(n):
            if i % per_sequence == 0:
                collection = str(uuid.UUID(int=rng.getrandbits(128)))
                lon, lat = rng.uniform(bbox[0], bbox[2]), rng.uniform(bbox[1], bbox[3])
            picture = FakePicture(str(uuid.UUID(int=rng.getrandbits(128))), collection, lon, lat, rng.uniform(0, 360),
                                  t0 + timedelta(seconds=2 * i), LICENSES[i % 2], f"producer{i % 3}", is_360=i < panos)
            fake.pictures[picture.id] = picture
        return fake

    def fail_next(self, endpoint: str, *, status: int | None = None, retry_after: float | None = None, timeout: bool = False, times: int = 1) -> None:
        """The next `times` requests to `endpoint` ("search" or "asset") fail this way."""
        assert endpoint in ("search", "asset"), endpoint
        self._faults[endpoint].extend(_Fault(status, retry_after, timeout) for _ in range(times))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def search_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == self.API_HOST]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if "authorization" in request.headers:
            return _json(400, {"message": "no token needed"})
        kind = "search" if request.url.host == self.API_HOST else "asset"
        fault = take_fault(self._faults[kind], request)
        if fault is not None:
            return fault
        if kind == "asset":
            return self._asset(request)
        if request.url.path != "/api/search":
            return _json(404, {"message": "not found"})
        return self._search(request)

    def _search(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 10_000:
            return _json(400, {"message": "limit must be between 1 and 10000"})
        if "ids" in params:
            hits = [self.pictures[i] for i in params["ids"].split(",") if i in self.pictures]
        else:
            box = tuple(float(v) for v in params["bbox"].split(","))
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            hits = sorted((p for p in self.pictures.values() if box[0] <= p.lon <= box[2] and box[1] <= p.lat <= box[3]),
                          key=lambda p: (math.hypot(p.lon - cx, p.lat - cy), p.id))
        features = [p.item(self.ASSET_HOST) for p in hits[:limit]]
        return _json(200, {"type": "FeatureCollection", "features": features, "links": [{"rel": "self", "href": str(request.url)}]})

    def _asset(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        picture = self.pictures.get(parts[0]) if len(parts) == 2 else None
        if picture is None:
            return _json(404, {"message": "no such picture"})
        self.assets[parts[1].removesuffix(".jpg")] += 1
        return httpx.Response(200, content=self.jpeg(picture), headers={"Content-Type": "image/jpeg"})

    @staticmethod
    def jpeg(picture: FakePicture) -> bytes:
        from PIL import Image

        rng = random.Random(picture.id)
        img = Image.new("RGB", (64, 32) if picture.is_360 else (48, 36), tuple(rng.randrange(256) for _ in range(3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        return buf.getvalue()
