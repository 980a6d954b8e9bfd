"""`geolocate fetch`: download Mapillary or Panoramax photos of a catalog city, a batch or any box."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from geolocate.cli.app import Invocation, command, default_of, emit
from geolocate.console import console, inert, stdout
from geolocate.errors import UserError

SOURCES = ("mapillary", "panoramax")


@command("fetch")
def fetch_command(
    inv: Invocation,
    source: Optional[str] = typer.Option(None, "--source", help="mapillary (needs MAPILLARY_TOKEN) or panoramax (no token); default: fetch.source.", show_default=False),
    city: Optional[str] = typer.Option(None, "--city", help="A catalog city (case- and accent-insensitive).", show_default=False),
    batch: Optional[list[str]] = typer.Option(None, "--batch", help="A catalog batch, e.g. 03; repeatable.", show_default=False),
    bbox: Optional[str] = typer.Option(None, "--bbox", help="Any area: MINLON,MINLAT,MAXLON,MAXLAT (use --bbox=... for negative values).", show_default=False),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the --bbox area (its city in the manifest).", show_default=False),
    catalog_name: Optional[str] = typer.Option(None, "--catalog", help=f"fr or us ({default_of('fetch.catalog')}).", show_default=False),
    max_per_city: Optional[int] = typer.Option(None, "--max-per-city", min=1, help=f"Photos kept per area ({default_of('fetch.max_per_city')}).", show_default=False),
    restore_raw: bool = typer.Option(False, "--restore-raw", help="Download again the raw files of every manifest row of the area whose raw file is missing, even when its processed copy exists (rebuilds data/raw after clean-raw)."),
    list_areas: bool = typer.Option(False, "--list", help="Print the catalog and exit."),
) -> None:
    """Fetch photos from Mapillary (token from MAPILLARY_TOKEN) or Panoramax; re-run the same command to resume or retry failures.

    Photos lost from both data/raw and data/processed are downloaded again by id. Exits 1 when
    some box or photo failed (the summary still prints), 0 when the fetch is complete.
    """
    from geolocate.acquire.fetch import catalog_listing, run_fetch, select_areas

    cfg = inv.cfg
    if source is not None:
        cfg.fetch.source = _source(source)
    catalog_name = catalog_name or cfg.fetch.catalog
    if list_areas:
        _print_catalog(catalog_listing(catalog_name), inv.as_json)
        return
    areas = select_areas(catalog_name, city=city, batch=batch, bbox=bbox, name=name)
    data = inv.paths.data
    report = run_fetch(cfg.fetch, data, areas, max_per_city=max_per_city, restore_raw=restore_raw)
    if inv.as_json:
        inv.emit(report.to_dict())
    else:
        stdout.print(_summary_table(report))
    _print_problems(report)
    if not report.complete:
        raise typer.Exit(1)  # scripts must not mistake a partial fetch for a finished one


def _source(value: str) -> str:
    if value not in SOURCES:
        raise UserError(f"--source {value!r}: fetch.source is one of {', '.join(SOURCES)} (your own photos: geolocate import)")
    return value


def _print_catalog(rows: list[dict], as_json: bool) -> None:
    if as_json:
        emit(rows, as_json)
        return
    regions = any(row["region"] for row in rows)
    table = Table("batch", "name", "kind", *(["region"] if regions else []), "bbox")
    for row in rows:
        bbox = ",".join(f"{v:.3f}" for v in row["bbox"])
        table.add_row(row["batch"], row["name"], row["kind"], *([row["region"]] if regions else []), bbox)
    stdout.print(table)


def _print_problems(report) -> None:
    for a in report.areas:
        for what, items in (("boxes failed", a.failed_boxes), ("photos failed", a.failed_photos)):
            if items:
                key, reason = next(iter(items.items()))
                console.print(f"[yellow]{a.area}[/]: {len(items)} {what}, e.g. {inert(key)}: {inert(reason)}", markup=True, highlight=False)
        if a.boxes_unreachable:
            console.print(f"[yellow]{a.area}[/]: {a.boxes_unreachable} boxes not searched (host unreachable)", highlight=False)
        if a.bad_ids:
            console.print(f"[yellow]{a.area}[/]: skipped {len(a.bad_ids)} records with an invalid image id: {inert(', '.join(map(repr, a.bad_ids[:3])))}")
        if a.bad_positions:
            console.print(f"[yellow]{a.area}[/]: skipped {len(a.bad_positions)} records without a valid position: {inert(', '.join(map(repr, a.bad_positions[:3])))}")
        if a.bad_records:
            console.print(f"[yellow]{a.area}[/]: skipped {len(a.bad_records)} records: {inert(', '.join(a.bad_records[:3]))}")
        if a.boxes_truncated or a.photos_restored:
            console.print(f"[yellow]{a.area}[/]: {a.boxes_truncated} boxes still truncated after splitting, "
                          f"{a.photos_restored} raw files restored")
    for reason in report.unreachable:
        console.print(f"[red]{reason}[/]: stopped early instead of retrying every box; is this machine offline? "
                      f"(DNS, proxy, firewall, or {report.api_setting})", soft_wrap=True)
    if report.areas_skipped:
        console.print(f"[yellow]not started[/]: {', '.join(report.areas_skipped)}", soft_wrap=True)
    if not report.complete:
        console.print("[yellow]run the same command again " + ("once online " if report.unreachable else "")
                      + "to retry what failed[/] (done boxes and photos are skipped)")


def _summary_table(report) -> Table:
    """Seven columns that fit 80: rare counts (truncated, restored, bad records) are lines of their own."""
    table = Table(title=f"fetch: {report.requests} requests in {report.seconds:.1f} s", title_justify="left")
    table.add_column("area", overflow="fold")
    for name in ("boxes", "failed", "found", "new", "skipped", "failed photos"):
        table.add_column(name, justify="right", no_wrap=name != "failed photos")
    for a in report.areas:
        table.add_row(a.area, f"{a.boxes_done}/{a.boxes}", str(a.boxes_failed), str(a.found), str(a.photos_new),
                      str(a.photos_skipped), str(a.photos_failed))
    return table
