"""The Mapillary Graph API v4 source: bbox search, one-image lookup, thumbnail download, records.

What it gets right (see `shared/mapillary-api.md`):
- the token goes only in `Authorization: OAuth <token>`, only to the API host; thumbnails (a CDN,
  pre-signed URLs) are fetched with no Authorization header at all;
- retries, backoff, concurrency and the rate ceiling are `http.ApiClient`'s, shared with Panoramax.
Error messages name the endpoint and the status, never a URL's query, a header or the token.
Ids stay bare digits (Mapillary's own ids; the `mapillary:` form is accepted too).
"""

from __future__ import annotations

import asyncio
import os
import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx

from geolocate.acquire.http import ApiClient, ExpiredURL, RequestFailed, open_http
from geolocate.acquire.ratelimit import Sleep
from geolocate.acquire.records import epoch_ms, is_position, number, text
from geolocate.acquire.tiling import Box, box_key
from geolocate.config import FetchConfig
from geolocate.errors import UserError
from geolocate.manifest import MAPILLARY_LICENSE
from geolocate.paths import check_image_id, is_valid_image_id

__all__ = ["ExpiredURL", "MapillaryClient", "RequestFailed", "open_client", "read_token"]

TOKEN_ENV = "MAPILLARY_TOKEN"
# Fields asked for in a bbox search; every field but `id` must be named explicitly.
SEARCH_FIELDS = ("id", "geometry", "sequence", "captured_at", "compass_angle", "is_pano", "camera_type", "creator")


def read_token() -> str:
    """The client token from the environment; UserError (one line, token never echoed) when unusable."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UserError(f"{TOKEN_ENV} is not set; export {TOKEN_ENV}=MLY|... (a client token from mapillary.com/dashboard/developers)")
    if any(ch.isspace() or ord(ch) < 32 for ch in token):
        raise UserError(f"{TOKEN_ENV} contains whitespace or control characters; export {TOKEN_ENV}=MLY|... with the token only")
    return token


def thumb_field(size: int | str) -> str:
    """The image field holding the thumbnail URL of `size` (1024 → 'thumb_1024_url')."""
    return f"thumb_{size}_url"


class MapillaryClient(ApiClient):
    """Async access to the Graph API and its thumbnails over an injected `httpx.AsyncClient`.

    Args:
        cfg: the `[fetch]` table (api_url, limit, retries, backoff, concurrency, rate ceiling).
        token: the client token; kept private, sent only to the API host.
        http: the HTTP client (its transport decides whether this is the network or a fake).
        sleep: the coroutine used for backoff and rate limiting (tests pass a fast one).
        rng: jitter source.
    """

    name = "mapillary"

    def __init__(self, cfg: FetchConfig, token: str, http: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        super().__init__(cfg, http, concurrency=cfg.concurrency, requests_per_minute=cfg.requests_per_minute, sleep=sleep, rng=rng)
        self._api = httpx.URL(cfg.api_url.rstrip("/") + "/")
        self._auth = {"Authorization": f"OAuth {token}"}
        self.thumb_field = thumb_field(cfg.thumb_size)
        self.tile_deg, self.limit, self.max_split_depth = cfg.tile_deg, cfg.limit, cfg.max_split_depth
        self.include_panos = cfg.include_panos

    def __repr__(self) -> str:  # never show the token
        return f"MapillaryClient(api_url={self.cfg.api_url!r})"

    async def search(self, box: Box) -> list[dict[str, Any]]:
        """Images in `box` (at most `limit`: a full answer means the box was truncated)."""
        params: dict[str, Any] = {"bbox": box_key(box), "fields": ",".join((*SEARCH_FIELDS, self.thumb_field)), "limit": self.cfg.limit}
        if self.cfg.start_captured_at:
            params["start_captured_at"] = self.cfg.start_captured_at
        if self.cfg.end_captured_at:
            params["end_captured_at"] = self.cfg.end_captured_at
        body = await self.get_json(self._api.join("images"), params, "search", self._auth)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise RequestFailed("search: answer has no 'data' list")
        return [item for item in data if isinstance(item, dict)]

    async def image(self, image_id: str, fields: tuple[str, ...]) -> dict[str, Any]:
        """One image's `fields`; `image_id` must be digits (it becomes the URL path)."""
        path = check_image_id(image_id).removeprefix("mapillary:")
        body = await self.get_json(self._api.join(path), {"fields": ",".join(fields)}, "image lookup", self._auth)
        if not isinstance(body, dict):
            raise RequestFailed("image lookup: answer is not an object")
        return body

    async def thumbnail(self, url: str) -> bytes:
        """Download a pre-signed thumbnail URL, without any Authorization header (ExpiredURL on 403/404/410)."""
        return await self.get_bytes(url, "thumbnail")

    photo = thumbnail  # the source interface's name

    async def photo_url(self, candidate: dict[str, Any]) -> str:
        """A fresh thumbnail URL for a candidate, by looking its id up (search URLs expire)."""
        answer = await self.image(candidate["image_id"], (self.thumb_field,))
        url = answer.get(self.thumb_field)
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise RequestFailed(f"image lookup: no {self.thumb_field} in the answer")
        return url

    def parse_record(self, item: dict[str, Any]) -> dict[str, Any] | None:
        return parse_record(item, self.thumb_field)

    def record_problem(self, item: dict[str, Any]) -> str | None:
        return record_problem(item)


@asynccontextmanager
async def open_client(cfg: FetchConfig, token: str, *, transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep = asyncio.sleep, seed: int | None = None) -> AsyncIterator[MapillaryClient]:
    """A `MapillaryClient` on a fresh `httpx.AsyncClient` (on `transport`, else `http.transport_factory`, else the network)."""
    async with open_http(cfg, cfg.concurrency, transport) as http:
        yield MapillaryClient(cfg, token, http, sleep=sleep, rng=random.Random(seed))


def parse_record(item: dict[str, Any], thumb_field: str = "thumb_1024_url") -> dict[str, Any] | None:
    """A search record as a candidate row (manifest metadata), or None when `record_problem` finds one.

    The position is `geometry` (the capture GPS, what bbox search filters on), not
    `computed_geometry`: the SfM position is missing for many images and occasionally far off.
    Mapillary imagery is CC-BY-SA 4.0, the creator is the attribution.
    """
    if record_problem(item) is not None:
        return None
    coords = item["geometry"]["coordinates"]
    creator = item.get("creator") or {}
    return {
        "image_id": _record_id(item),
        "sequence_id": text(item.get("sequence")),
        "creator_id": text(creator.get("id")),
        "creator_username": text(creator.get("username")),
        "captured_at_ms": epoch_ms(item.get("captured_at")),
        "lat": float(coords[1]),
        "lon": float(coords[0]),
        "compass_angle": number(item.get("compass_angle")),
        "is_pano": bool(item.get("is_pano", False)),
        "camera_type": text(item.get("camera_type")),
        "license": MAPILLARY_LICENSE,
        "thumb_url": text(item.get(thumb_field)),  # short-lived: used this run, never stored
    }


def record_problem(item: dict[str, Any]) -> str | None:
    """Why a search record cannot be used: "id" (not digits), "position" (no valid geometry), "date"
    (a capture time outside 1900-2100), or None."""
    if not is_valid_image_id(_record_id(item)) or not str(_record_id(item)).isdigit():
        return "id"
    geometry = item.get("geometry")
    if not is_position(geometry.get("coordinates") if isinstance(geometry, dict) else None):
        return "position"
    return "date" if item.get("captured_at") is not None and epoch_ms(item.get("captured_at")) is None else None


def _record_id(item: dict[str, Any]) -> Any:
    image_id = item.get("id")
    return str(image_id) if isinstance(image_id, int) and not isinstance(image_id, bool) else image_id


