"""Enumerate an area's photos from any source: query each tile, split truncated boxes, keep candidates.

Neither Mapillary's bbox search nor Panoramax's STAC `/search` paginates: an answer holding
`limit` items may have dropped some, so the box is split into four and each quadrant queried
again, down to `max_split_depth` levels; a box still full at that depth is kept as it is and
reported as truncated. A tile succeeds only when every box under it did; otherwise it is failed
(recorded, retried by the next run) and the records its successful sub-boxes found are kept
anyway (ids are deduplicated later). The source turns raw items into candidate rows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from geolocate.acquire.http import HostUnreachable, RequestFailed
from geolocate.acquire.records import in_box
from geolocate.acquire.source import PhotoSource
from geolocate.acquire.tiling import Box, box_key, split_box


@dataclass
class TileResult:
    """What searching one tile (and its sub-boxes) gave."""

    key: str
    records: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False  # the host could not be reached: the box was not searched (not its failure)
    bad_ids: list[str] = field(default_factory=list)  # records skipped: id invalid for the source
    bad_positions: list[str] = field(default_factory=list)  # records skipped: no valid capture position
    bad_records: list[str] = field(default_factory=list)  # records skipped for another reason: "<id> (<reason>)"


async def search_tile(source: PhotoSource, tile: Box) -> TileResult:
    """Search `tile`, splitting on truncation; records are parsed into candidate rows.

    Panoramas are kept (with `is_pano`): whether to download them is decided when sampling, so
    turning `include_panos` on later needs no new search.

    Args:
        source: the photo source.
        tile: the box to search.
    """
    result = TileResult(box_key(tile))
    raw: list[dict[str, Any]] = []
    await _search_box(source, tile, 0, raw, result)
    for item in raw:
        problem = _problem(source, item, tile)
        if problem is None:
            result.records.append(source.parse_record(item))
        elif problem == "id":
            result.bad_ids.append(str(item.get("id"))[:40])
        elif problem == "position":
            result.bad_positions.append(str(item.get("id"))[:40])
        else:  # one bad record never stops the others: counted with its reason
            result.bad_records.append(f"{str(item.get('id'))[:40]} ({problem})")
    return result


def _problem(source: PhotoSource, item: dict[str, Any], tile: Box) -> str | None:
    """Why an item is skipped ("id", "position", "date", "outside the asked box", "unreadable"), or None."""
    try:
        record = source.parse_record(item)
        problem = source.record_problem(item) if record is None else None
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):  # a field of an unexpected shape
        return "unreadable"
    return problem if record is None else None if in_box(record, tile) else "outside the asked box"


async def _search_box(source: PhotoSource, box: Box, depth: int, raw: list, result: TileResult) -> None:
    try:
        items = await source.search(box)
    except RequestFailed as exc:
        result.error = result.error or (str(exc) if depth == 0 else f"sub-box {box_key(box)}: {exc}")
        result.unreachable |= isinstance(exc, HostUnreachable)
        return
    if len(items) < source.limit:
        raw.extend(items)
    elif depth >= source.max_split_depth:
        raw.extend(items)  # the best we can do: keep them and say the box is still truncated
        result.truncated.append(box_key(box))
    else:
        await asyncio.gather(*(_search_box(source, q, depth + 1, raw, result) for q in split_box(box)))
