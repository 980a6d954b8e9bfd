"""The Panoramax source: France's open street-level federation (IGN, OpenStreetMap France), no token.

Reading is anonymous. `GET {api_url}/search?bbox=…&limit=…` is a STAC item search with no
pagination: at most `limit` (≤ 10 000) items, sorted by distance to the box's centre, no `next`
link; so, as for Mapillary, each area is tiled and a full answer split (`search.py`). An item
(a GeoJSON Feature) carries:
- `id` (a UUID) and `collection` (its sequence, a STAC collection);
- `geometry.coordinates` [lon, lat]; `properties.datetime`; `properties["view:azimuth"]` (heading);
- `properties["pers:interior_orientation"]`: `field_of_view` 360 for a 360° capture (else the
  2:1 `sensor_array_dimensions` says so);
- `properties.license` per picture (instances differ: etalab-2.0, CC-BY-SA-4.0…) and the producer
  in `providers` (role "producer"), recorded for attribution;
- `assets`: `thumb`, `sd` (2048 px wide) and `hd` (the original); `fetch.panoramax.asset` picks
  one, `sd` by default. Asset URLs do not expire, but are not stored: a later run looks a
  photo up again with `search?ids=<id>`.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx

from geolocate.acquire.http import ApiClient, RequestFailed, open_http
from geolocate.acquire.panorama import is_equirectangular
from geolocate.acquire.ratelimit import Sleep
from geolocate.acquire.records import is_position, iso_ms, number, text
from geolocate.acquire.tiling import Box, box_key
from geolocate.config import FetchConfig
from geolocate.paths import is_valid_image_id

NAME = "panoramax"


class PanoramaxClient(ApiClient):
    """STAC search and picture download from one Panoramax API (the federation or an instance)."""

    name = NAME

    def __init__(self, cfg: FetchConfig, http: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        pano = cfg.panoramax
        super().__init__(cfg, http, concurrency=pano.concurrency, requests_per_minute=pano.requests_per_minute, sleep=sleep, rng=rng)
        self._search_url = pano.api_url.rstrip("/") + "/search"
        self.asset = pano.asset
        self.tile_deg, self.limit, self.max_split_depth = pano.tile_deg, pano.limit, cfg.max_split_depth
        self.include_panos = pano.include_panos

    def __repr__(self) -> str:
        return f"PanoramaxClient(api_url={self.cfg.panoramax.api_url!r})"

    async def search(self, box: Box) -> list[dict[str, Any]]:
        """Items in `box`, at most `limit` (the nearest to the centre when there are more)."""
        params: dict[str, Any] = {"bbox": box_key(box), "limit": self.limit}
        if self.cfg.start_captured_at or self.cfg.end_captured_at:
            params["datetime"] = f"{self.cfg.start_captured_at or '..'}/{self.cfg.end_captured_at or '..'}"
        return await self._features(params, "search")

    async def photo_url(self, candidate: dict[str, Any]) -> str:
        """The chosen asset's URL, by looking the picture up by id."""
        items = await self._features({"ids": candidate["image_id"].removeprefix(f"{NAME}:")}, "picture lookup")
        url = asset_url(items[0], self.asset) if items else None
        if url is None:
            raise RequestFailed(f"picture lookup: no {self.asset} asset in the answer")
        return url

    async def photo(self, url: str) -> bytes:
        return await self.get_bytes(url, f"{self.asset} picture")

    def parse_record(self, item: dict[str, Any]) -> dict[str, Any] | None:
        return parse_item(item, self.asset)

    def record_problem(self, item: dict[str, Any]) -> str | None:
        return item_problem(item)

    async def _features(self, params: dict[str, Any], what: str) -> list[dict[str, Any]]:
        body = await self.get_json(self._search_url, params, what)
        features = body.get("features") if isinstance(body, dict) else None
        if not isinstance(features, list):
            raise RequestFailed(f"{what}: answer has no 'features' list")
        return [f for f in features if isinstance(f, dict)]


@asynccontextmanager
async def open_panoramax(cfg: FetchConfig, *, transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep = asyncio.sleep,
                         seed: int | None = None) -> AsyncIterator[PanoramaxClient]:
    """A `PanoramaxClient` on a fresh `httpx.AsyncClient` (on `transport`, else `http.transport_factory`, else the network)."""
    async with open_http(cfg, cfg.panoramax.concurrency, transport) as http:
        yield PanoramaxClient(cfg, http, sleep=sleep, rng=random.Random(seed))


def parse_item(item: dict[str, Any], asset: str = "sd") -> dict[str, Any] | None:
    """A STAC item as a candidate row, or None when `item_problem` finds one."""
    if item_problem(item) is not None:
        return None
    props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    lon, lat = item["geometry"]["coordinates"][:2]
    pano = is_360(props)
    return {
        "image_id": f"{NAME}:{str(item['id']).lower()}",
        "sequence_id": text(item.get("collection")),
        "creator_id": None,
        "creator_username": producer(item),
        "captured_at_ms": iso_ms(props.get("datetime")),
        "lat": float(lat),
        "lon": float(lon),
        "compass_angle": number(props.get("view:azimuth")),
        "is_pano": pano,
        "camera_type": "equirectangular" if pano else "perspective",
        "license": text(props.get("license")),
        "thumb_url": asset_url(item, asset),
    }


def item_problem(item: dict[str, Any]) -> str | None:
    """Why an item cannot be used: "id" (not a UUID), "position", "date" (not a time 1900-2100), or None."""
    image_id = str(item.get("id", "")).lower()
    if not is_valid_image_id(f"{NAME}:{image_id}") or "@" in image_id:
        return "id"
    geometry = item.get("geometry")
    if not is_position(geometry.get("coordinates") if isinstance(geometry, dict) else None):
        return "position"
    props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    return "date" if props.get("datetime") is not None and iso_ms(props["datetime"]) is None else None


def is_360(props: dict[str, Any]) -> bool:
    """A 360° capture: a 360° field of view, else a 2:1 sensor."""
    orientation = props.get("pers:interior_orientation")
    if not isinstance(orientation, dict):
        return False
    if number(orientation.get("field_of_view")) == 360.0:
        return True
    size = orientation.get("sensor_array_dimensions")
    return isinstance(size, list) and len(size) == 2 and all(number(v) for v in size) and is_equirectangular(int(size[0]), int(size[1]))


def producer(item: dict[str, Any]) -> str | None:
    """The producer's name (attribution), from `providers` on the item or in its properties."""
    props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    for provider in item.get("providers") or props.get("providers") or []:
        if isinstance(provider, dict) and "producer" in (provider.get("roles") or []):
            return text(provider.get("name"))
    return None


def asset_url(item: dict[str, Any], asset: str) -> str | None:
    """The `asset` href of an item, when it is an http(s) URL."""
    assets = item.get("assets")
    entry = assets.get(asset) if isinstance(assets, dict) else None
    href = entry.get("href") if isinstance(entry, dict) else None
    return href if isinstance(href, str) and href.startswith(("https://", "http://")) else None
