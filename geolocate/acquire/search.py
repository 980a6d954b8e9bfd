"""Enumerate an area's images: query each tile, split truncated boxes, turn records into candidates.

Bbox search has no pagination: an answer holding `limit` items may have dropped some, so the box
is split into four and each quadrant queried again, down to `max_split_depth` levels; a box still
full at that depth is kept as it is and reported as truncated. A tile succeeds only when every
box under it did; otherwise it is failed (recorded, retried by the next run) and the records its
successful sub-boxes found are kept anyway (ids are deduplicated later).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from geolocate.acquire.client import MapillaryClient, RequestFailed
from geolocate.acquire.tiling import Box, box_key, split_box
from geolocate.paths import is_valid_image_id


@dataclass
class TileResult:
    """What searching one tile (and its sub-boxes) gave."""

    key: str
    records: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    error: str | None = None
    bad_ids: list[str] = field(default_factory=list)  # records skipped: id not digits
    bad_positions: list[str] = field(default_factory=list)  # records skipped: no valid capture position


async def search_tile(client: MapillaryClient, tile: Box) -> TileResult:
    """Search `tile`, splitting on truncation; records are parsed into candidate rows.

    Panoramas are kept (with `is_pano`): whether to download them is decided when sampling, so
    turning `include_panos` on later needs no new search.

    Args:
        client: the API client.
        tile: the box to search.
    """
    result = TileResult(box_key(tile))
    raw: list[dict[str, Any]] = []
    await _search_box(client, tile, 0, raw, result)
    for item in raw:
        record = parse_record(item, client.thumb_field)
        if record is not None:
            result.records.append(record)
        elif record_problem(item) == "id":
            result.bad_ids.append(str(item.get("id"))[:40])
        else:
            result.bad_positions.append(str(item.get("id"))[:40])
    return result


async def _search_box(client: MapillaryClient, box: Box, depth: int, raw: list, result: TileResult) -> None:
    try:
        items = await client.search(box)
    except RequestFailed as exc:
        result.error = result.error or (str(exc) if depth == 0 else f"sub-box {box_key(box)}: {exc}")
        return
    if len(items) < client.cfg.limit:
        raw.extend(items)
    elif depth >= client.cfg.max_split_depth:
        raw.extend(items)  # the best we can do: keep them and say the box is still truncated
        result.truncated.append(box_key(box))
    else:
        await asyncio.gather(*(_search_box(client, q, depth + 1, raw, result) for q in split_box(box)))


def parse_record(item: dict[str, Any], thumb_field: str = "thumb_1024_url") -> dict[str, Any] | None:
    """A search record as a candidate row (manifest metadata), or None when `record_problem` finds one.

    The position is `geometry` (the capture GPS, what bbox search filters on), not
    `computed_geometry`: the SfM position is missing for many images and occasionally far off.
    """
    if record_problem(item) is not None:
        return None
    image_id = _record_id(item)
    coords = item["geometry"]["coordinates"]
    creator = item.get("creator") or {}
    return {
        "image_id": image_id,
        "sequence_id": _text(item.get("sequence")),
        "creator_id": _text(creator.get("id")),
        "creator_username": _text(creator.get("username")),
        "captured_at_ms": item.get("captured_at") if isinstance(item.get("captured_at"), int) else None,
        "lat": float(coords[1]),
        "lon": float(coords[0]),
        "compass_angle": _number(item.get("compass_angle")),
        "is_pano": bool(item.get("is_pano", False)),
        "camera_type": _text(item.get("camera_type")),
        "thumb_url": _text(item.get(thumb_field)),  # short-lived: used this run, never stored
    }


def record_problem(item: dict[str, Any]) -> str | None:
    """Why a search record cannot be used: "id" (not digits), "position" (no valid geometry), or None."""
    if not is_valid_image_id(_record_id(item)):
        return "id"
    geometry = item.get("geometry")
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    return None if _is_position(coords) else "position"


def _record_id(item: dict[str, Any]) -> Any:
    image_id = item.get("id")
    return str(image_id) if isinstance(image_id, int) and not isinstance(image_id, bool) else image_id


def _is_position(coords: Any) -> bool:
    return isinstance(coords, (list, tuple)) and len(coords) >= 2 and all(isinstance(v, (int, float)) for v in coords[:2]) \
        and -180 <= coords[0] <= 180 and -90 <= coords[1] <= 90


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
