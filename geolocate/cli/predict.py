"""`geolocate predict`: where was this photo taken? Top-k cells, a position, a confidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import ConfigOpt, JsonOpt, ProfileOpt, SetOpt, command, load
from geolocate.console import console
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths


@command("predict")
def predict_command(
    photos: list[Path] = typer.Argument(None, help="Photos or directories of photos.", show_default=False),
    top: Optional[int] = typer.Option(None, "--top", min=1, help="Classes to show (default predict.top)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint, run directory, release directory or 'best'."),
    lat: Optional[float] = typer.Option(None, "--lat", help="True latitude, to report the error in km."),
    lon: Optional[float] = typer.Option(None, "--lon", help="True longitude, to report the error in km."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write one row per photo to a .csv or .parquet file."),
    views: bool = typer.Option(False, "--views", help="Scout-sniper: the photos are up to four views of one location, in N, E, S, W order (--views n.jpg e.jpg s.jpg w.jpg)."),
    north: Optional[Path] = typer.Option(None, "--north", help="Scout-sniper: the north view."),
    east: Optional[Path] = typer.Option(None, "--east", help="Scout-sniper: the east view."),
    south: Optional[Path] = typer.Option(None, "--south", help="Scout-sniper: the south view."),
    west: Optional[Path] = typer.Option(None, "--west", help="Scout-sniper: the west view."),
    locations: Optional[Path] = typer.Option(None, "--locations", help="Scout-sniper batch: a locations CSV; writes a submission CSV to --out."),
    config: ConfigOpt = None,
    profile: ProfileOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict where photos were taken. Exits 1 when any photo could not be read (the others are still predicted)."""
    cfg = load(config, profile, sets)
    paths = ProjectPaths.from_config(cfg.paths)
    ref, k = model or cfg.predict.model, top or cfg.predict.top
    named = {"north": north, "east": east, "south": south, "west": west}
    from geolocate.systems import predicts_views

    if predicts_views(Path(ref) if model else None, bool(views or locations or any(named.values()))):
        from geolocate.scout.predict import run_predict_views

        if photos and (locations or any(named.values())):
            raise UserError("give views either by position (--views n.jpg e.jpg …) or by name (--north …), "
                            "or a --locations table, not several at once")
        code = run_predict_views(ref, paths, k, photos if views or not (locations or any(named.values())) else None,
                                 named, locations, out, as_json)
        raise typer.Exit(code)
    from geolocate.inference.run import run_predict

    if (lat is None) != (lon is None):
        raise UserError("give both --lat and --lon, or neither")
    if not photos:
        raise UserError("no photo given; usage: geolocate predict photo.jpg [--top 5]")
    code = run_predict(ref, paths, photos, k, cfg.predict.batch_size, (lat, lon) if lat is not None else None, out, as_json)
    raise typer.Exit(code)
