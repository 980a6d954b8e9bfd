"""The four-view (scout-sniper) predictor: a location's views in, a `Result`'s fields out.

A location is up to four photos, given by compass direction (north, east, south, west) or by face
relative to the vehicle (front, right, back, left) with its heading (`azimuth`); faces are turned
into compass views by `acquire.locations_table.compass_slots`, the code `import-locations` uses, so a table
means the same to both. Each view is decoded once (paths, bytes, PIL images or arrays, as for
single photos); each scout embeds it with its own preprocessing (CLIP and ImageNet normalisations
differ) and fuses the views with a mask for the missing ones; the ensemble and the sniper give a
region ranking and a position (`scout.bundle.combine`, the code evaluation uses). When the ensemble
phase kept the test-time views (bundle `tta`), each view photo runs as its views (rows of the same
backbone pass) and its feature is their mean, as evaluation computed it. Rows carry the
fields of single-photo predictions: confidence, credible radius (the bundle's conformal table,
fitted on val by `evaluate`), top-k regions, truth and error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geolocate.data.images import BadImage
from geolocate.errors import UserError
from geolocate.inference.result import Failure
from geolocate.inference.sources import Decoded, decode
from geolocate.schemas import VIEWS
from geolocate.acquire.locations_table import FACES, compass_slots

EMBED_ROWS = 64  # view photos (or their test-time views) per backbone pass in predict


def resolve_bundle(ref: str | Path, paths) -> Path:
    """Directory holding a scout-sniper bundle: `best` (models/scout-sniper), a run, or a directory."""
    from geolocate.artifacts.rundir import resolve_run
    from geolocate.scout.bundle import bundle_path

    if str(ref) == "best":
        if bundle_path(paths.scout_best).is_file():
            return paths.scout_best
        raise UserError(f"no scout-sniper model yet ({paths.scout_best}/); train one with "
                        "`geolocate train --profile scout-sniper`, or pass --checkpoint RUN")
    path = Path(ref)
    root = path if path.is_dir() and bundle_path(path).is_file() else resolve_run(ref, paths).root
    if not bundle_path(root).is_file():
        raise UserError(f"{root} holds no scout-sniper bundle ({bundle_path(root).name}); pass a scout-sniper run")
    return root


def verify_bundle_files(root: Path) -> None:
    """Refuse a bundle whose files are links, FIFOs or, in a release, not the ones `freeze` hashed.

    Every file the predictor reads (the bundle, each phase's sidecar and weights) is checked
    against the release's `SHA256SUMS` before any of them is parsed, as a single-photo release's.

    Raises:
        UserError: one line naming the first file that is wrong.
    """
    from geolocate.artifacts.integrity import verify_checkpoint, verify_file
    from geolocate.scout.bundle import SCOUT_PHASES, SNIPER, bundle_path

    verify_file(bundle_path(root))
    for phase in (*SCOUT_PHASES, SNIPER):
        verify_checkpoint(Path(root) / phase)


def location_views(item: Any) -> dict[str, Any]:
    """A location as {compass view: photo}: from a dict (compass views, or faces with `azimuth`),
    a list in N, E, S, W order, or one photo (taken as the north view)."""
    if isinstance(item, dict):
        if any(item.get(face) is not None for face in FACES) and item.get("azimuth") is None:
            raise UserError("front/right/back/left views need an 'azimuth' (the vehicle's heading, degrees from north)")
        return {view: item[column] for view, _, column in compass_slots(item)}
    if isinstance(item, (list, tuple)):
        if len(item) > len(VIEWS):
            raise UserError(f"a location has at most four views (north, east, south, west), got {len(item)}")
        return {view: photo for view, photo in zip(VIEWS, item) if photo is not None}
    return {VIEWS[0]: item}


@dataclass
class _Location:
    """One location's decoded views (None where missing or unreadable) and its EXIF truth."""

    views: list[Decoded | None]
    names: dict[str, str] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return any(v is not None for v in self.views)

    @property
    def gps(self) -> tuple[float, float] | None:
        return next((v.gps for v in self.views if v is not None and v.gps), None)


class ScoutSniperPredictor:
    """The scouts (multi-view models), the ensemble weights, the sniper and the regions of a bundle."""

    engine = "torch"
    four_view = True

    def __init__(self, scouts: list, weights: list[float], sniper, meta: dict, bundle: dict, device: str = "cpu") -> None:
        from geolocate.inference.preprocess import Preprocess
        from geolocate.models.features import preprocessing_of
        from geolocate.scout.bundle import position_of, tta_crops

        self.scouts, self.weights, self.sniper, self.meta = scouts, weights, sniper, meta
        self.regions = meta["classes"]
        self.centroids = np.array([[r["centroid_lat"], r["centroid_lon"]] for r in self.regions])
        self.position = position_of(bundle)
        self.radius = bundle.get("radius")
        self.device = torch.device(device)
        self.preprocess = [Preprocess(preprocessing_of(model)) for model in scouts]
        self.phases = list(bundle["scouts"])
        self.crops = tta_crops(bundle)  # 0: one centre crop a view
        self.provenance = bundle.get("provenance")  # evaluate records it in the bundle, not in the scouts' sidecars

    @classmethod
    def load(cls, root: Path, engine: str = "auto", device: str = "cpu") -> "ScoutSniperPredictor":
        from geolocate.artifacts.checkpoint import load_checkpoint
        from geolocate.device import resolve_device
        from geolocate.scout.bundle import SNIPER, load_sniper, require_bundle

        if engine == "onnx":
            raise UserError("four-view models have no ONNX graph yet; use --engine auto or torch")
        verify_bundle_files(root)  # links and a release's SHA256SUMS, before anything is parsed
        device = str(resolve_device(device))
        bundle = require_bundle(root)
        loaded = [load_checkpoint(root / phase, device=device) for phase in bundle["scouts"]]
        sniper, _ = load_sniper(root / SNIPER)
        return cls([model for model, _ in loaded], bundle["weights"], sniper, loaded[0][1], bundle, device)

    def describe(self) -> dict:
        from geolocate.inference.provenance import describe_model

        meta = {**self.meta, "provenance": self.meta.get("provenance") or self.provenance}
        return describe_model(meta, self.engine, model=f"scout-sniper ({' + '.join(self.phases)} + sniper)")

    def predict_items(self, items: list, top: int = 5, batch_size: int = 32, truths=None,
                      names=None) -> tuple[list[dict], list[Failure]]:
        """Rows for locations (see `location_views`); a location with no readable view becomes a `Failure`.

        Each unreadable view is a `Failure` too, and its location is predicted from the others.
        """
        names = list(names) if names is not None else [f"location {i + 1}" for i in range(len(items))]
        truths = list(truths) if truths is not None else [None] * len(items)
        rows, failures = [], []
        for start in range(0, len(items), batch_size):
            chunk = range(start, min(start + batch_size, len(items)))
            locations = [self._decode(location_views(items[i]), names[i], failures) for i in chunk]
            good = [(i, loc) for i, loc in zip(chunk, locations) if loc.readable]
            failures += [Failure(names[i], f"{names[i]}: no readable view") for i, loc in zip(chunk, locations) if not loc.readable]
            if good:
                rows += self._rows([loc for _, loc in good], [names[i] for i, _ in good],
                                   [truths[i] for i, _ in good], top)
        return rows, failures

    def _decode(self, views: dict[str, Any], name: str, failures: list[Failure]) -> _Location:
        side = max(p.resize for p in self.preprocess)
        decoded: list[Decoded | None] = []
        for view in VIEWS:
            photo = views.get(view)
            try:
                decoded.append(None if photo is None else decode(photo, side))
            except BadImage as exc:
                failures.append(Failure(name, f"{name}, {view} view: {exc}"))
                decoded.append(None)
        return _Location(decoded, {v: str(p) for v, p in views.items() if isinstance(p, (str, Path))})

    def _rows(self, locations: list[_Location], names: list[str], truths: list, top: int) -> list[dict]:
        from geolocate.evaluate.conformal import radius_for
        from geolocate.inference.photo_predictor import prediction_row
        from geolocate.scout.bundle import combine

        mask = torch.tensor([[v is not None for v in loc.views] for loc in locations])
        logits, fused = [], []
        for model, preprocess in zip(self.scouts, self.preprocess):
            z, f = self._scout_outputs(model, preprocess, locations, mask)
            logits.append(z)
            fused.append(f)
        result = combine(logits, fused, self.weights, self.centroids, self.sniper, **self.position)
        placed, how = (result.after, "sniper") if result.after is not None else (result.before, self.position["position"])
        radius = radius_for(result.confidence, self.radius) if self.radius else [None] * len(locations)
        rows = []
        for i, loc in enumerate(locations):
            row = prediction_row(names[i], result.probs[i], placed[i], how, radius[i], self.regions, top, truths[i] or loc.gps)
            rows.append({**row, "views": loc.names or None})
        return rows

    def _scout_outputs(self, model, preprocess, locations: list[_Location], mask: torch.Tensor):
        """(logits, fused features) of one scout for the locations' readable views."""
        from geolocate.data.tta import average_views, flatten_views, n_views
        from geolocate.data.views import ViewSet
        from geolocate.models.multiview import head_outputs

        slots = [(i, v) for i, loc in enumerate(locations) for v, d in enumerate(loc.views) if d is not None]
        batch = np.stack([preprocess.pixels(locations[i].views[v].image, self.crops) for i, v in slots])
        embedded = self._embed(model, flatten_views(batch) if self.crops else batch)
        if self.crops:  # each view's test-time views were consecutive rows: their mean is the view's feature
            embedded = average_views(embedded, n_views(self.crops))
        features = torch.zeros(len(locations), len(VIEWS), embedded.shape[1])
        for row, (i, v) in enumerate(slots):
            features[i, v] = embedded[row]
        n = len(locations)
        views = ViewSet([str(i) for i in range(n)], features, mask, torch.zeros(n, dtype=torch.long), torch.zeros(n, 2))
        return head_outputs(model.head.cpu(), views)

    def _embed(self, model, batch: np.ndarray) -> torch.Tensor:
        """Per-view embeddings [B, D] of a preprocessed batch [B, 3, S, S], `EMBED_ROWS` rows a backbone pass
        (with test-time views a batch of 32 locations is 768 rows: at once, a CLIP ViT-L would not fit)."""
        from geolocate.models.features import embedding_fn

        embed = embedding_fn(model)
        with torch.inference_mode():
            return torch.cat([embed(torch.from_numpy(batch[i:i + EMBED_ROWS]).to(self.device)).float().cpu()
                              for i in range(0, len(batch), EMBED_ROWS) or range(1)])  # an empty batch: one empty pass, as before


def location_inputs(photos: list[Path] | None, named: dict[str, Path | None], table: Path | None,
                    truth: tuple[float, float] | None):
    """`predict`'s four-view inputs: one location from the options (`--views` in N, E, S, W order,
    overridden by --north…), or every row of a locations table (the `import-locations` layout,
    given as --locations or as the folder holding its locations.csv)."""
    from geolocate.inference.run import Inputs

    if table is None and photos and len(photos) == 1 and Path(photos[0]).is_dir():
        table, photos = _folder_table(Path(photos[0])), None
    if table is not None:
        if photos or any(named.values()):
            raise UserError("give views either by position (--views n.jpg e.jpg …) or by name (--north …), "
                            "or a --locations table, not several at once")
        return _table_inputs(Path(table), truth)
    location = location_views(list(photos or []))
    location.update({view: path for view, path in named.items() if path is not None})
    if not location:
        raise UserError("no view given; usage: geolocate predict --views north.jpg east.jpg south.jpg west.jpg")
    return Inputs([location], ["location"], [truth], noun="locations")


def _folder_table(folder: Path) -> Path:
    """A folder of four-view locations is the folder of its locations table."""
    table = folder / "locations.csv"
    if not table.is_file():
        raise UserError(f"{folder} is a folder: a four-view model reads its locations.csv (an id and view columns, "
                        "as for import-locations), and there is none; give --locations TABLE or the views")
    return table


def _table_inputs(table: Path, truth: tuple[float, float] | None):
    """Every row of a locations table: its views (paths relative to the table), its id and its lat/lon truth."""
    from geolocate.inference.run import Inputs
    from geolocate.acquire.locations_table import check_rows, read_table, view_paths

    rows = [row for row in read_table(table) if row["id"]]
    base = table.parent
    check_rows(rows, table, base, verdict="nothing predicted")
    items = [{view: base / name for view, _, name in view_paths(row)} for row in rows]
    truths = [truth or _row_truth(row) for row in rows]
    return Inputs(items, [row["id"] for row in rows], truths, {row["id"]: row["id"] for row in rows}, noun="locations",
                  guarded=[table])


def _row_truth(row: dict) -> tuple[float, float] | None:
    lat, lon = (row.get("lat") or "").strip(), (row.get("lon") or "").strip()
    return (float(lat), float(lon)) if lat and lon else None  # `check_rows` refused anything else
