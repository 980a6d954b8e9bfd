"""`geolocate predict`: where was this photo taken? Top-k cells, a position, a confidence."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geolocate.cli.app import Invocation, checked_device, command, default_of, deprecated
from geolocate.errors import UserError


@command("predict")
def predict_command(
    inv: Invocation,
    photos: list[Path] = typer.Argument(None, help="Photos or directories of photos.", show_default=False),
    top: Optional[int] = typer.Option(None, "--top", min=1, help=f"Classes to show ({default_of('predict.top')}).", show_default=False),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help=f"Trained model: a run, a release, 'best' or a checkpoint file ({default_of('predict.checkpoint')}).", show_default=False),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=f"Photos per forward pass ({default_of('predict.batch_size')}).", show_default=False),
    device: Optional[str] = typer.Option(None, "--device", help=f"auto, cpu, cuda, cuda:N or mps ({default_of('predict.device')}).", show_default=False),
    model: Optional[str] = typer.Option(None, "--model", "-m", hidden=True, help="Deprecated spelling of --checkpoint."),
    lat: Optional[float] = typer.Option(None, "--lat", help="True latitude, to report the error in km."),
    lon: Optional[float] = typer.Option(None, "--lon", help="True longitude, to report the error in km."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write one row per photo to a .csv or .parquet file."),
    views: bool = typer.Option(False, "--views", help="Scout-sniper: the photos are up to four views of one location, in N, E, S, W order (--views n.jpg e.jpg s.jpg w.jpg)."),
    north: Optional[Path] = typer.Option(None, "--north", help="Scout-sniper: the north view."),
    east: Optional[Path] = typer.Option(None, "--east", help="Scout-sniper: the east view."),
    south: Optional[Path] = typer.Option(None, "--south", help="Scout-sniper: the south view."),
    west: Optional[Path] = typer.Option(None, "--west", help="Scout-sniper: the west view."),
    engine: str = typer.Option("auto", "--engine", help="auto (the exported ONNX graph when the model has one, else torch), onnx or torch."),
    geojson: Optional[Path] = typer.Option(None, "--geojson", help="Also write the predictions as GeoJSON: top-k cells, point, credible circle, truth."),
    locations: Optional[Path] = typer.Option(None, "--locations", help="Scout-sniper batch: a locations CSV; writes a submission CSV to --out."),
) -> None:
    """Predict where photos were taken. Exits 1 when any photo could not be read (the others are still predicted)."""
    cfg, paths = inv.cfg, inv.paths
    if model is not None:
        deprecated("predict --model", "--checkpoint (--model names a registered architecture)")
        checkpoint = checkpoint or model
    ref, k, batch = checkpoint or cfg.predict.checkpoint, top or cfg.predict.top, batch_size or cfg.predict.batch_size
    named = {"north": north, "east": east, "south": south, "west": west}
    from geolocate.systems import predicts_views

    if predicts_views(Path(ref) if checkpoint else None, bool(views or locations or any(named.values()))):
        from geolocate.scout.predict import run_predict_views

        if photos and (locations or any(named.values())):
            raise UserError("give views either by position (--views n.jpg e.jpg …) or by name (--north …), "
                            "or a --locations table, not several at once")
        code = run_predict_views(ref, paths, k, photos if views or not (locations or any(named.values())) else None,
                                 named, locations, out, inv.as_json, batch)
        raise typer.Exit(code)
    from geolocate.inference.run import run_predict

    if (lat is None) != (lon is None):
        raise UserError("give both --lat and --lon, or neither")
    from geolocate.geo import is_position

    if lat is not None and not is_position(lat, lon):
        raise UserError(f"--lat {lat} --lon {lon} is not a position: latitude within ±90, longitude within ±180")
    if not photos:
        raise UserError("no photo given; usage: geolocate predict photo.jpg [--top 5]")
    truth = (lat, lon) if lat is not None else None
    code = run_predict(ref, paths, photos, k, batch, truth, out, inv.as_json, engine, geojson,
                       device=checked_device(device, cfg.predict.device))
    raise typer.Exit(code)
