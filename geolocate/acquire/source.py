"""The one interface every fetched photo source implements (Mapillary, Panoramax).

`fetch.py` drives any `PhotoSource` the same way: tile the area, `search` each box (splitting
full answers), turn items into candidate rows with `parse_record`, sample, download with
`photo` (a fresh URL from `photo_url` when the search gave none or it expired), write the
manifest. Plan, state, sampling, resumability, atomic writes, retries and progress are shared;
a source only knows its API. Local files (`local.py`) and the synthetic generator (`synth/`)
write the same manifest rows without searching.

A candidate row holds `image_id` (valid for `paths.check_image_id`), `sequence_id`,
`creator_id`, `creator_username`, `captured_at_ms`, `lat`, `lon`, `compass_angle` (heading),
`is_pano`, `camera_type`, `license` and, for this run only, `thumb_url`.
"""

from __future__ import annotations

from typing import Any, Protocol

from geolocate.acquire.tiling import Box
from geolocate.config import FetchConfig


class PhotoSource(Protocol):
    """Search an area, download one photo."""

    name: str  # the manifest's `source`, and the fetch-state folder
    cfg: FetchConfig  # the shared keys: retries, backoff, sampling seed, dates
    tile_deg: float  # side of a search tile
    limit: int  # items per search answer: a full answer means truncation
    max_split_depth: int
    include_panos: bool
    requests: int  # HTTP attempts so far

    async def search(self, box: Box) -> list[dict[str, Any]]:
        """Raw items in `box`, at most `limit`."""

    def parse_record(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """The candidate row of an item, None when `record_problem` finds one."""

    def record_problem(self, item: dict[str, Any]) -> str | None:
        """"id", "position" or None."""

    async def photo_url(self, candidate: dict[str, Any]) -> str:
        """A usable download URL for the candidate (looked up by id)."""

    async def photo(self, url: str) -> bytes:
        """The photo's bytes (ExpiredURL when the URL needs refreshing)."""
