"""A fake Mapillary Graph API v4 and thumbnail CDN, served through `httpx.MockTransport`.

An in-memory world of images (positions, sequences, creators) answers the endpoints geolocate
uses, with the real API's quirks, and faults switched on per test::

    fake = FakeMapillary.grid((2.30, 48.85, 2.32, 48.87), n=120, seed=1)   # or add_image(...)
    fake.fail_next("search", status=429, retry_after=7)   # next search answers 429 + Retry-After
    fake.fail_next("thumb", timeout=True, times=2)        # next two thumbnail GETs time out
    fake.expire(image_id)                                 # its current thumbnail URL goes stale (410)
    fake.corrupt(image_id, times=1)                       # one truncated JPEG, then good bodies
    fake.add_bad_record("12ab")                           # a search record with a non-numeric id
    transport = fake.transport()                          # httpx.MockTransport for an AsyncClient
    cfg = fake.fetch_config(limit=50)                     # a FetchConfig pointed at the fake

CLI tests: `monkeypatch.setattr(geolocate.acquire.http, "transport_factory", fake.transport)`,
`monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)` and `--set fetch.api_url=<fake.api_url>`
(plus `--set fetch.backoff_s=0` when faults make the client back off). Library calls take
`transport=` and `sleep=RecordingSleep()` directly.

Endpoints (on `FakeMapillary.API_HOST` unless noted):
- `GET /images?bbox=...&fields=...&limit=...`: images in the box, sorted by id, cut at `limit`
  (no pagination: the caller must split); boxes wider than `max_box_deg` answer 400; honours
  `start_captured_at` / `end_captured_at`; returns only the requested fields (plus `id`).
- `GET /{image_id}?fields=...`: one image, with a fresh thumbnail URL.
- `GET https://CDN_HOST/thumb/<id>/<size>.jpg?v=<version>&sig=...`: the JPEG; a stale version answers
  `expired_status` (410). The CDN answers 400 to any request carrying an Authorization header.
API requests need `Authorization: OAuth <token>` (else 401). `latency` seconds are slept in every
request (the benchmark uses 0.05). Everything received is in `requests`; successful thumbnail
bodies per id are counted in `downloads`.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx

FAKE_TOKEN = "MLY|4242|fake-secret-never-leak"


@dataclass
class FakeImage:
    """One image of the fake world (what the API knows about it)."""

    id: str
    lon: float
    lat: float
    sequence: str
    creator_id: str
    creator_username: str
    captured_at: int  # ms since epoch, UTC
    compass_angle: float = 0.0
    is_pano: bool = False
    camera_type: str = "perspective"
    width: int = 4000
    height: int = 3000

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "geometry": {"type": "Point", "coordinates": [self.lon, self.lat]},
            "computed_geometry": {"type": "Point", "coordinates": [self.lon + 1e-5, self.lat + 1e-5]},
            "sequence": self.sequence,
            "captured_at": self.captured_at,
            "compass_angle": self.compass_angle,
            "is_pano": self.is_pano,
            "camera_type": "spherical" if self.is_pano else self.camera_type,
            "creator": {"id": self.creator_id, "username": self.creator_username},
            "width": self.width,
            "height": self.height,
        }


@dataclass
class _Fault:
    status: int | None = None
    retry_after: float | None = None
    timeout: bool = False


@dataclass
class FakeMapillary:
    """The fake world and its faults; `transport()` serves it. See the module docstring."""

    API_HOST = "graph.fake-mapillary.test"
    CDN_HOST = "cdn.fake-mapillary.test"

    token: str = FAKE_TOKEN
    latency: float = 0.0
    max_box_deg: float = 0.01
    expired_status: int = 410
    thumb_px: tuple[int, int] = (48, 32)
    images: dict[str, FakeImage] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    downloads: Counter = field(default_factory=Counter)
    _faults: dict[str, list[_Fault]] = field(default_factory=lambda: defaultdict(list))
    _versions: Counter = field(default_factory=Counter)
    _expiring: dict[str, int] = field(default_factory=dict)
    _corrupt: dict[str, int | None] = field(default_factory=dict)
    _bad_records: list[dict[str, Any]] = field(default_factory=list)
    _jpegs: dict[str, bytes] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        """The value for `fetch.api_url`."""
        return f"https://{self.API_HOST}"

    def fetch_config(self, **overrides: Any):
        """A `FetchConfig` pointed at this fake, with no rate ceiling in the way."""
        from geolocate.config import FetchConfig

        values = {"api_url": self.api_url, "requests_per_minute": 10**7, "concurrency": 8, "max_retries": 3}
        return FetchConfig(**(values | overrides))

    # ------------------------------------------------------------ building the world

    @classmethod
    def grid(cls, bbox: tuple[float, float, float, float], n: int, seed: int = 0, *, per_sequence: int = 8, panos: int = 0, **kwargs: Any) -> "FakeMapillary":
        """A world of `n` images at random points of `bbox`, in sequences of `per_sequence` consecutive
        images (a short drive each) by a few creators; the first `panos` images are panoramas."""
        fake = cls(**kwargs)
        rng = random.Random(seed)
        for i in range(n):
            seq = i // per_sequence
            if i % per_sequence == 0:
                lon, lat = rng.uniform(bbox[0], bbox[2]), rng.uniform(bbox[1], bbox[3])
            lon = min(max(lon + rng.uniform(-2e-4, 2e-4), bbox[0]), bbox[2])
            lat = min(max(lat + rng.uniform(-2e-4, 2e-4), bbox[1]), bbox[3])
            creator = seq % 5
            fake.add_image(FakeImage(
                id=str(1_000_000 + i * 7), lon=lon, lat=lat, sequence=f"seq{seq:04d}", creator_id=str(900 + creator),
                creator_username=f"driver{creator}", captured_at=1_700_000_000_000 + i * 2_000,
                compass_angle=rng.uniform(0, 360), is_pano=i < panos,
            ))
        return fake

    def add_image(self, image: FakeImage) -> FakeImage:
        self.images[image.id] = image
        return image

    def add_bad_record(self, image_id: str = "12ab", lon: float | None = None, lat: float | None = None) -> None:
        """A search record whose id is not digits (placed at the first image's position by default)."""
        first = next(iter(self.images.values()))
        record = FakeImage(image_id, lon if lon is not None else first.lon, lat if lat is not None else first.lat, first.sequence, "1", "x", first.captured_at)
        self._bad_records.append(record.fields())

    # ------------------------------------------------------------ faults

    def fail_next(self, endpoint: str, *, status: int | None = None, retry_after: float | None = None, timeout: bool = False, times: int = 1) -> None:
        """The next `times` requests to `endpoint` ("search", "image" or "thumb") fail this way."""
        assert endpoint in ("search", "image", "thumb"), endpoint
        self._faults[endpoint].extend(_Fault(status, retry_after, timeout) for _ in range(times))

    def expire(self, image_id: str) -> None:
        """The next thumbnail request for `image_id` answers `expired_status` and every URL handed out
        so far goes stale: only a fresh lookup (`GET /{id}`) gives a working URL."""
        self._expiring[image_id] = self._versions[image_id]

    def corrupt(self, image_id: str, times: int | None = 1) -> None:
        """Serve a truncated JPEG for `image_id` the next `times` downloads (None: always)."""
        self._corrupt[image_id] = times

    # ------------------------------------------------------------ serving

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def thumb_url(self, image_id: str, size: str) -> str:
        return f"https://{self.CDN_HOST}/thumb/{image_id}/{size}.jpg?v={self._versions[image_id]}&sig=cdn-signature"

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == self.API_HOST]

    def thumb_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == self.CDN_HOST]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.url.host == self.CDN_HOST:
            return self._fault(request, "thumb") or self._thumbnail(request)
        if request.url.host != self.API_HOST:
            return _json(404, {"error": "unknown host"})
        if request.headers.get("Authorization") != f"OAuth {self.token}":
            return _json(401, {"error": {"message": "Invalid OAuth access token"}})
        if request.url.path == "/images":
            return self._fault(request, "search") or self._search(request)
        return self._fault(request, "image") or self._lookup(request)

    def _fault(self, request: httpx.Request, endpoint: str) -> httpx.Response | None:
        return take_fault(self._faults[endpoint], request)

    def _search(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        try:
            box = tuple(float(v) for v in params["bbox"].split(","))
            limit = min(int(params.get("limit", 2000)), 2000)
        except (KeyError, ValueError):
            return _json(400, {"error": "bad bbox"})
        if len(box) != 4 or box[2] - box[0] > self.max_box_deg + 1e-6 or box[3] - box[1] > self.max_box_deg + 1e-6:
            return _json(400, {"error": {"message": "bbox too large"}})
        start, end = _ms(params.get("start_captured_at")), _ms(params.get("end_captured_at"))
        hits = [
            img.fields() | {"id": img.id} for img in sorted(self.images.values(), key=lambda i: int(i.id))
            if box[0] <= img.lon <= box[2] and box[1] <= img.lat <= box[3]
            and (start is None or img.captured_at >= start) and (end is None or img.captured_at < end)
        ]
        hits += [r for r in self._bad_records if box[0] <= r["geometry"]["coordinates"][0] <= box[2] and box[1] <= r["geometry"]["coordinates"][1] <= box[3]]
        wanted = set(params.get("fields", "").split(","))
        return _json(200, {"data": [self._select(hit, wanted) for hit in hits[:limit]]})

    def _lookup(self, request: httpx.Request) -> httpx.Response:
        image = self.images.get(request.url.path.strip("/"))
        if image is None:
            return _json(404, {"error": "not found"})
        return _json(200, self._select(image.fields(), set(request.url.params.get("fields", "").split(","))))

    def _select(self, record: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if k in wanted or k == "id"}
        for name in wanted:
            if name.startswith("thumb_") and name.endswith("_url"):
                out[name] = self.thumb_url(record["id"], name[len("thumb_"):-len("_url")])
        return out

    def _thumbnail(self, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            return _json(400, {"error": "pre-signed URL: do not send Authorization"})
        parts = request.url.path.strip("/").split("/")
        image_id = parts[1] if len(parts) == 3 else ""
        if image_id not in self.images:
            return _json(404, {"error": "no such object"})
        if image_id in self._expiring:
            del self._expiring[image_id]
            self._versions[image_id] += 1
        if request.url.params.get("v") != str(self._versions[image_id]):
            return _json(self.expired_status, {"error": "URL signature expired"})
        body = self.jpeg(image_id)
        if self._take_corruption(image_id):  # a transfer cut half-way: valid header, truncated data
            return httpx.Response(200, content=body[: len(body) // 2], headers={"Content-Type": "image/jpeg"})
        self.downloads[image_id] += 1
        return httpx.Response(200, content=body, headers={"Content-Type": "image/jpeg"})

    def _take_corruption(self, image_id: str) -> bool:
        if image_id not in self._corrupt:
            return False
        left = self._corrupt[image_id]
        if left is None:
            return True
        if left <= 0:
            return False
        self._corrupt[image_id] = left - 1
        return True

    def jpeg(self, image_id: str) -> bytes:
        """The (deterministic) JPEG served for `image_id`."""
        if image_id not in self._jpegs:
            from PIL import Image

            rng = random.Random(int(image_id))
            color = tuple(rng.randrange(256) for _ in range(3))
            img = Image.new("RGB", self.thumb_px, color)
            img.putpixel((0, 0), (255 - color[0], 0, 0))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=80)
            self._jpegs[image_id] = buf.getvalue()
        return self._jpegs[image_id]


class RecordingSleep(list):
    """An injectable `sleep` that records each delay and returns at once (retries stay fast)."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


def take_fault(queue: list[_Fault], request: httpx.Request) -> httpx.Response | None:
    """The next queued fault's answer (or raised timeout), None when the queue is empty (shared by the fakes)."""
    if not queue:
        return None
    fault = queue.pop(0)
    if fault.timeout:
        raise httpx.ReadTimeout("fake timeout", request=request)
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    return _json(fault.status or 500, {"error": "fake fault"}, headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})})


def _ms(iso: str | None) -> int | None:
    if not iso:
        return None
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)
