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
    locations: Optional[Path] = typer.Option(None, "--locations", help="Four-view batch: a locations table (id, north/east/south/west or front/right/back/left + azimuth, optional lat/lon), as for import-locations."),
) -> None:
    """Predict where photos (or four-view locations) were taken. Exits 1 when any input could not be read (the others are still predicted)."""
    from geolocate.api import Geolocator
    from geolocate.data.images import IMAGE_SUFFIXES
    from geolocate.files import refuse_outputs_over_inputs
    from geolocate.inference.run import check_out, run_predict
    from geolocate.systems import predict_inputs

    if model is not None:
        deprecated("predict --model", "--checkpoint (--model names a registered architecture)")
        checkpoint = checkpoint or model
    named = {"north": north, "east": east, "south": south, "west": west}
    as_views = bool(views or locations or any(named.values()))
    truth, k, batch = _truth(lat, lon), top or inv.cfg.predict.top, batch_size or inv.cfg.predict.batch_size
    check_out(out)
    given = [*(photos or []), *(p for p in named.values() if p), *([locations] if locations else [])]
    refuse_outputs_over_inputs({"--out": out, "--geojson": geojson}, given, IMAGE_SUFFIXES)  # before any model loads
    located = Geolocator.locate(checkpoint or inv.cfg.predict.checkpoint, paths=inv.paths,
                                four_view=as_views or _four_view_default(inv, checkpoint))  # a missing model is said first
    inputs = predict_inputs(located[0], photos, named, locations, truth)  # then a bad input, before the load
    device = checked_device(device, inv.cfg.predict.device)
    # The model is a temporary: no frame of the exit below holds it (an ONNX session's threads end with it).
    code = run_predict(Geolocator.open(located, engine=engine, device=device, paths=inv.paths), inputs, k, batch, out, inv.as_json, geojson)
    raise typer.Exit(code)


def _truth(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    from geolocate.geo import is_position

    if (lat is None) != (lon is None):
        raise UserError("give both --lat and --lon, or neither")
    if lat is not None and not is_position(lat, lon):
        raise UserError(f"--lat {lat} --lon {lon} is not a position: latitude within ±90, longitude within ±180")
    return (lat, lon) if lat is not None else None


def _four_view_default(inv: Invocation, checkpoint: str | None) -> bool | None:
    """Without --checkpoint, a four-view profile means its own best model (`models/scout-sniper/`)."""
    from geolocate.systems import SCOUT_SNIPER, system_of

    return True if checkpoint is None and system_of(inv.cfg) == SCOUT_SNIPER else None
