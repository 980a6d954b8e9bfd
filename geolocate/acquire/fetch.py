"""`run_fetch`: search each area's boxes, sample a spread-out set of photos, download, record.

The same run serves every fetched source (`fetch.source`: Mapillary, Panoramax) through the
`source.PhotoSource` interface; each source keeps its own fetch state and its own photos per area.

Per area: tiles not yet done are searched (truncated boxes split, failures recorded), the found
images join the area's candidate pool, `max_per_city` photos are picked spread over the pool
(`sampling.spread_order`), the ones not already present are downloaded, and their manifest rows
are merged every `_MERGE_EVERY` photos, so a kill loses at most that many rows, and even those
are recovered from the files on disk by the next run. Manifest rows whose raw file went missing are downloaded
again by id (`plan.py` says which: not after `clean-raw` unless `restore_raw`). A second run finds everything done and
downloads nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any, AsyncIterator, Awaitable, Iterable, TypeVar

import httpx
import polars as pl

from geolocate.acquire.catalog import Area, batch_areas, bbox_area, catalog, find_area
from geolocate.acquire.client import open_client, read_token
from geolocate.acquire.download import download_photo, file_row, rows_frame
from geolocate.acquire.source import PhotoSource
from geolocate.manifest import merge_manifest
from geolocate.acquire.ratelimit import Sleep
from geolocate.acquire.plan import plan_downloads
from geolocate.acquire.search import TileResult, search_tile
from geolocate.acquire.state import AreaState, load_candidates, load_state, merge_candidates, save_candidates, save_state
from geolocate.acquire.tiling import Box, box_key, tile_bbox
from geolocate.config import FetchConfig
from geolocate.console import progress
from geolocate.errors import UserError
from geolocate.paths import DataPaths, safe_name
from geolocate.lock import locks_data

T = TypeVar("T")
_MERGE_EVERY = 200  # manifest rows merged per write while downloading
_SAVE_EVERY = 100  # tiles searched between two saves of the fetch state


@dataclass
class AreaReport:
    """What one area's fetch did."""

    area: str
    batch: str
    boxes: int = 0
    boxes_done: int = 0
    boxes_failed: int = 0  # searched and failed (after retries)
    boxes_unreachable: int = 0  # not searched: the host could not be reached (offline)
    boxes_truncated: int = 0
    found: int = 0
    panos_excluded: int = 0
    photos_new: int = 0
    photos_restored: int = 0
    photos_skipped: int = 0
    photos_failed: int = 0
    bad_ids: list[str] = field(default_factory=list)
    bad_positions: list[str] = field(default_factory=list)
    bad_records: list[str] = field(default_factory=list)  # "<id> (<reason>)": a date out of range, outside the box
    failed_boxes: dict[str, str] = field(default_factory=dict)
    failed_photos: dict[str, str] = field(default_factory=dict)


@dataclass
class FetchReport:
    """The whole run: one `AreaReport` per area, HTTP attempts, wall time."""

    areas: list[AreaReport] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    unreachable: list[str] = field(default_factory=list)  # "cannot reach <host> (<cause>)", once per host
    areas_skipped: list[str] = field(default_factory=list)  # not started: a host was unreachable
    api_setting: str = "fetch.api_url"  # the config key of the API root, for the offline hint

    @property
    def complete(self) -> bool:
        """True when no box and no photo failed (a re-run would have nothing to retry)."""
        return not self.areas_skipped and all(not (a.boxes_failed or a.boxes_unreachable or a.photos_failed) for a in self.areas)

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "requests": self.requests, "seconds": round(self.seconds, 3),
                "unreachable": self.unreachable, "areas_skipped": self.areas_skipped, "areas": [asdict(a) for a in self.areas]}


# ---------------------------------------------------------------- choosing areas


def select_areas(catalog_name: str, *, city: str | None = None, batch: str | list[str] | None = None, bbox: str | None = None,
                 name: str | None = None) -> list[Area]:
    """The areas named by exactly one of `city`, `batch` (one or several catalog batches) or `bbox` (+ `name`)."""
    batch = [batch] if isinstance(batch, str) else (batch or None)
    if sum(x is not None for x in (city, batch, bbox)) != 1:
        raise UserError("say what to fetch with exactly one of --city NAME, --batch NN or --bbox MINLON,MINLAT,MAXLON,MAXLAT --name NAME")
    if city is not None:
        return [find_area(city, catalog_name)]
    if batch is not None:
        return [area for one in dict.fromkeys(batch) for area in batch_areas(one, catalog_name)]
    box = parse_bbox(bbox)
    if not name:
        raise UserError("--bbox needs --name NAME: the area's name in the manifest and the fetch state")
    safe_name(name, "area name")
    return [bbox_area(box, name)]


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'MINLON,MINLAT,MAXLON,MAXLAT' → four floats (UserError otherwise)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise UserError(f"bad --bbox {text!r}: expected four numbers MINLON,MINLAT,MAXLON,MAXLAT, e.g. 4.80,45.74,4.88,45.79")
    return values  # type: ignore[return-value]


def catalog_listing(catalog_name: str) -> list[dict[str, Any]]:
    """The catalog as rows (name, batch, kind, region, bbox) for `fetch --list`."""
    return [{"name": a.name, "batch": a.batch, "kind": a.kind, "region": a.region, "bbox": list(a.bbox)} for a in catalog(catalog_name)]


# ---------------------------------------------------------------- the run


@locks_data("fetch")
def run_fetch(cfg: FetchConfig, data: DataPaths, areas: list[Area], *, max_per_city: int | None = None, restore_raw: bool = False,
              transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep = asyncio.sleep) -> FetchReport:
    """Fetch `areas` into `data` (raw photos, manifest, fetch state) and report what happened.

    Args:
        cfg: the `[fetch]` table.
        data: the data directory.
        areas: what to fetch (see `select_areas`).
        max_per_city: photos kept per area (default `cfg.max_per_city`).
        restore_raw: download again every raw file of the areas' manifest rows that is missing, even
            when its processed copy exists (after `clean-raw`); by default only photos with neither.
        transport: HTTP transport (tests); default `http.transport_factory`, else the network.
        sleep: backoff / rate-limit sleep (tests pass a fast one).

    Raises:
        UserError: no usable MAPILLARY_TOKEN (Mapillary only; Panoramax needs none).
    """
    token = read_token() if cfg.source == "mapillary" else ""
    started = time.perf_counter()
    report = asyncio.run(_fetch(cfg, token, data, areas, max_per_city or cfg.max_per_city, restore_raw, transport, sleep))
    report.seconds = time.perf_counter() - started
    return report


API_SETTINGS = {"mapillary": "fetch.api_url", "panoramax": "fetch.panoramax.api_url"}  # each source's API root key


def open_source(cfg: FetchConfig, token: str, transport, sleep: Sleep):
    """The configured source's client, as an async context manager."""
    if cfg.source == "panoramax":
        from geolocate.acquire.panoramax import open_panoramax

        return open_panoramax(cfg, transport=transport, sleep=sleep, seed=cfg.seed)
    return open_client(cfg, token, transport=transport, sleep=sleep, seed=cfg.seed)


async def _fetch(cfg: FetchConfig, token: str, data: DataPaths, areas: list[Area], max_per_city: int, restore_raw: bool, transport, sleep: Sleep) -> FetchReport:
    report = FetchReport(api_setting=API_SETTINGS[cfg.source])
    async with open_source(cfg, token, transport, sleep) as source:
        with progress() as bars:
            ticks = _Bars(bars)
            for i, area in enumerate(areas):
                report.areas.append(await _fetch_area(source, data, area, max_per_city, restore_raw, ticks))
                if source.unreachable:  # offline: the next areas would only fail the same way
                    report.areas_skipped = [a.name for a in areas[i + 1:]]
                    break
        report.requests = source.requests
        report.unreachable = sorted(set(source.unreachable.values()))
    return report


class _Bars:
    """The two progress bars, boxes and photos, shared by all areas (described by the current area).

    A failed box or photo advances the bar too (it is finished, for this run) but is counted in
    the description, so a bar racing to the end while offline says so.
    """

    def __init__(self, bars) -> None:
        self.bars = bars
        self.boxes = bars.add_task("boxes", total=0)
        self.photos = bars.add_task("photos", total=0)
        self.failed = {self.boxes: 0, self.photos: 0}
        self.unreachable = 0  # boxes not searched: the host could not be reached

    def add(self, task, n: int) -> None:
        self.bars.update(task, total=(self.bars.tasks[task].total or 0) + n)

    def done(self, task, area: str, failed: bool = False, unreachable: bool = False) -> None:
        kind = "boxes" if task == self.boxes else "photos"
        self.failed[task] += failed
        self.unreachable += unreachable
        note = f" · {self.failed[task]} failed" if self.failed[task] else ""
        note += f" · {self.unreachable} not searched (offline)" if task == self.boxes and self.unreachable else ""
        self.bars.update(task, advance=1, description=f"{kind} · {area}{note}")


async def _fetch_area(source: PhotoSource, data: DataPaths, area: Area, max_per_city: int, restore_raw: bool, bars: _Bars) -> AreaReport:
    report = AreaReport(area.name, area.batch)
    state, pool = load_state(data, area, source.name), load_candidates(data, area, source.name)
    tiles = tile_bbox(area.bbox, source.tile_deg)
    todo = [t for t in tiles if box_key(t) not in state.done]
    pool, urls = await _search_area(source, data, area, todo, state, pool, report, bars)
    keys = {box_key(t) for t in tiles}
    report.boxes, report.boxes_done = len(tiles), len(keys & state.done)
    report.failed_boxes = {k: v for k, v in state.failed.items() if k in keys}
    report.boxes_failed, report.boxes_truncated = len(report.failed_boxes), len(state.truncated)
    eligible = pool if source.include_panos else pool.filter(~pl.col("is_pano").fill_null(False))
    report.found, report.panos_excluded = eligible.height, pool.height - eligible.height
    await _download_area(source, data, area, eligible, urls, max_per_city, restore_raw, report, bars)
    return report


async def _search_area(source: PhotoSource, data: DataPaths, area: Area, todo: list[Box], state: AreaState, pool: pl.DataFrame,
                       report: AreaReport, bars: _Bars) -> tuple[pl.DataFrame, dict[str, str]]:
    """Search `todo` tiles concurrently; update state and pool, saving them every `_SAVE_EVERY` tiles."""
    bars.add(bars.boxes, len(todo))
    urls: dict[str, str] = {}
    buffer: list[dict[str, Any]] = []
    searches = [search_tile(source, tile) for tile in todo]  # the bar counts tiles, splits included
    i = 0
    async for result in _completed(searches):
        i += 1
        _record_tile(result, state, report, buffer, urls)
        bars.done(bars.boxes, area.name, failed=bool(result.error) and not result.unreachable, unreachable=result.unreachable)
        if i % _SAVE_EVERY == 0 or i == len(todo):
            pool = merge_candidates(pool, buffer)
            buffer.clear()
            await asyncio.to_thread(_save, data, area, state, pool)
    return pool, urls


def _record_tile(result: TileResult, state: AreaState, report: AreaReport, buffer: list, urls: dict[str, str]) -> None:
    buffer.extend(result.records)
    urls.update((r["image_id"], r["thumb_url"]) for r in result.records if r["thumb_url"])
    state.truncated.update(result.truncated)
    report.bad_ids.extend(result.bad_ids)
    report.bad_positions.extend(result.bad_positions)
    report.bad_records.extend(result.bad_records)
    if result.unreachable:  # not a failure of this box: it is searched again once the host answers
        state.failed.pop(result.key, None)
        report.boxes_unreachable += 1
    elif result.error:
        state.failed[result.key] = result.error
    else:
        state.failed.pop(result.key, None)
        state.done.add(result.key)


def _save(data: DataPaths, area: Area, state: AreaState, pool: pl.DataFrame) -> None:
    save_candidates(data, area, pool, state.source)  # first: a tile is marked done only once its images are saved
    save_state(data, state)


async def _download_area(source: PhotoSource, data: DataPaths, area: Area, pool: pl.DataFrame, urls: dict[str, str],
                         max_per_city: int, restore_raw: bool, report: AreaReport, bars: _Bars) -> None:
    """Download the spread-out sample's missing photos (and lost raw files), merging manifest rows as they come."""
    plan = plan_downloads(data, area, pool, max_per_city, source.cfg, restore_raw, source.name, source.tile_deg)
    report.photos_skipped = len(plan.have) - len(plan.restore)
    rows = pool.filter(pl.col("image_id").is_in(plan.chosen + plan.orphans)).iter_rows(named=True)
    candidates = {r["image_id"]: r | {"thumb_url": urls.get(r["image_id"])} for r in rows}
    # A restored photo keeps its manifest row; no thumb_url, so its URL comes from a lookup by id.
    candidates |= {i: row | {"thumb_url": urls.get(i)} for i, row in plan.restore.items()}
    # Files a killed run wrote before merging their rows: describe them from disk, do not re-download.
    buffer = [row for i in plan.orphans if (row := await asyncio.to_thread(file_row, candidates[i], area, data, source.name))]
    todo = plan.chosen + list(plan.restore)
    bars.add(bars.photos, len(todo))
    async for result in _completed(download_photo(source, data, candidates[i], area) for i in todo):
        bars.done(bars.photos, area.name, failed=result.row is None)
        if result.row is None:
            report.photos_failed += 1
            report.failed_photos[result.image_id] = result.error or "failed"
            continue
        old = plan.restore.get(result.image_id)
        if old is None:
            report.photos_new += 1
            buffer.append(result.row)
        else:  # the row keeps what later stages recorded (processed_path...); only the file's facts change
            report.photos_restored += 1
            buffer.append(old | {k: result.row[k] for k in ("path", "width", "height", "bytes", "fetched_at")})
        if len(buffer) >= _MERGE_EVERY:
            await asyncio.to_thread(merge_manifest, data, rows_frame(buffer))
            buffer = []
    if buffer:
        await asyncio.to_thread(merge_manifest, data, rows_frame(buffer))


async def _completed(coros: Iterable[Awaitable[T]]) -> AsyncIterator[T]:
    """Results as they finish. Tasks start in the given order; when the consumer is cancelled
    (Ctrl-C) the unfinished ones are cancelled too, so nothing keeps downloading behind its back."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

