"""`geolocate predict --views …` and `--locations table.csv`: the scout-sniper from up to four views.

A location is up to four photos (north, east, south, west; any subset). Each scout embeds the
views with its own preprocessing (CLIP and ImageNet normalisations differ), fuses them with a
mask for the missing ones, and the ensemble and the sniper give a region ranking and a position
(`scout.bundle.combine`, the same code evaluation uses). Unreadable views are reported and
treated as missing; a location left with no view cannot be predicted and is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from geolocate import atomic
from geolocate.console import console, csv_safe, emit, inert, stdout
from geolocate.data.images import IMAGE_SUFFIXES
from geolocate.errors import UserError
from geolocate.files import refuse_outputs_over_inputs
from geolocate.schemas import VIEWS


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


@dataclass
class ScoutSniperPredictor:
    """The scouts (multi-view models), the ensemble weights, the sniper and the regions of a bundle."""

    scouts: list
    weights: list[float]
    sniper: torch.nn.Module
    regions: list[dict]
    position: dict = field(default_factory=dict)  # `combine`'s position arguments, from the bundle

    @classmethod
    def load(cls, root: Path) -> "ScoutSniperPredictor":
        from geolocate.artifacts.checkpoint import load_checkpoint
        from geolocate.scout.bundle import SNIPER, load_sniper, position_of, require_bundle

        bundle = require_bundle(root)
        loaded = [load_checkpoint(root / phase) for phase in bundle["scouts"]]
        sniper, _ = load_sniper(root / SNIPER)
        return cls([model for model, _ in loaded], bundle["weights"], sniper, loaded[0][1]["classes"], position_of(bundle))

    def predict(self, locations: list[dict[str, Path | None]], top: int, batch_size: int = 32) -> tuple[list[dict], list[dict]]:
        """One row per location with at least one readable view; failures per unreadable view."""
        from geolocate.scout.bundle import combine
        from geolocate.scout.heads import head_outputs

        logits, fused, failures, mask = [], [], [], None
        for model in self.scouts:
            views, bad = _location_features(model, locations, batch_size)
            mask = views.mask if mask is None else mask & views.mask
            failures = bad  # the same files fail for every scout: keep one report
            z, f = head_outputs(model.head, views)
            logits.append(z)
            fused.append(f)
        centroids = np.array([[r["centroid_lat"], r["centroid_lon"]] for r in self.regions])
        result = combine(logits, fused, self.weights, centroids, self.sniper, **self.position)
        ok = mask.any(dim=1).numpy()
        rows = [self._row(i, result, top) for i in range(len(locations)) if ok[i]]
        failures += [{"location": i, "view": None, "reason": "no readable view"} for i in np.flatnonzero(~ok)]
        return rows, failures

    def _row(self, i: int, result, top: int) -> dict:
        from geolocate.evaluate.metrics import topk_indices

        best = topk_indices(result.probs[i:i + 1], top)[0]
        return {"location": i, "lat": float(result.after[i, 0]), "lon": float(result.after[i, 1]),
                "region": self.regions[int(result.top1[i])]["cell_id"], "confidence": float(result.confidence[i]),
                "centroid_lat": float(result.before[i, 0]), "centroid_lon": float(result.before[i, 1]),
                "top": [self._region_entry(rank, int(k), float(result.probs[i, k])) for rank, k in enumerate(best, 1)]}

    def _region_entry(self, rank: int, k: int, prob: float) -> dict:
        """One top-k entry, keyed like single-photo predictions (`region` in place of `cell_id`)."""
        r = self.regions[k]
        return {"rank": rank, "region": r["cell_id"], "lat": r["centroid_lat"], "lon": r["centroid_lon"], "prob": prob}


def _location_features(model, locations: list[dict], batch_size: int):
    """A `ViewSet` of the locations' view embeddings by `model` (unreadable views masked out)."""
    from geolocate.models.features import embed_images
    from geolocate.scout.data import ViewSet

    slots = [(i, v, loc[view]) for i, loc in enumerate(locations) for v, view in enumerate(VIEWS) if loc.get(view)]
    feats, bad = embed_images(model, [path for _, _, path in slots], batch_size)
    bad_rows = {index: reason for index, reason in bad}
    features = torch.zeros(len(locations), len(VIEWS), feats.shape[1])
    mask = torch.zeros(len(locations), len(VIEWS), dtype=torch.bool)
    for row, (i, v, _) in enumerate(slots):
        if row not in bad_rows:
            features[i, v], mask[i, v] = feats[row], True
    failures = [{"location": slots[r][0], "view": VIEWS[slots[r][1]], "reason": reason} for r, reason in bad_rows.items()]
    n = len(locations)
    return ViewSet([str(i) for i in range(n)], features, mask, torch.zeros(n, dtype=torch.long), torch.zeros(n, 2)), failures


def views_from_options(views: list[Path] | None, named: dict[str, Path | None]) -> dict[str, Path | None]:
    """The location the options describe: `--views` in N, E, S, W order, overridden by --north… ."""
    if views and len(views) > len(VIEWS):
        raise UserError(f"--views takes at most four photos (north, east, south, west), got {len(views)}")
    location = {view: None for view in VIEWS}
    location.update(dict(zip(VIEWS, views or [])))
    location.update({k: v for k, v in named.items() if v is not None})
    if not any(location.values()):
        raise UserError("no view given; usage: geolocate predict --views north.jpg east.jpg south.jpg west.jpg")
    return location


def read_locations_csv(path: Path) -> tuple[list[str], list[dict[str, Path | None]]]:
    """(ids, locations) of a competition-style table; view paths are relative to the table's directory."""
    from geolocate.scout.import_csv import read_table

    rows = read_table(Path(path))
    base = Path(path).parent
    locations = [{view: _view_path(base, row, view) for view in VIEWS} for row in rows]
    return [row["id"] for row in rows], locations


def _view_path(base: Path, row: dict, view: str) -> Path | None:
    from geolocate.scout.import_csv import confined_view

    name = (row.get(view) or "").strip()
    if not name:
        return None
    path = confined_view(base, name)
    if isinstance(path, str):
        raise UserError(f"line {row['line']}: {path.replace('--images-dir', 'the table directory')}")
    return path


def run_predict_views(ref, paths, top: int, views, named_views: dict, locations_csv, out, as_json: bool,
                      batch_size: int = 32) -> int:
    """Predict one location (from options) or a table of them; returns the exit code (1 when a view failed)."""
    if locations_csv is None:
        ids, locations = ["location"], [views_from_options(views, named_views)]
    else:
        if out is None or Path(out).suffix.lower() != ".csv":
            raise UserError("--locations needs --out submission.csv (the submission is written there)")
        ids, locations = read_locations_csv(locations_csv)
        refuse_outputs_over_inputs({"--out": Path(out)}, [Path(locations_csv), *(p for loc in locations for p in loc.values() if p)], IMAGE_SUFFIXES)
    predictor = ScoutSniperPredictor.load(resolve_bundle(ref, paths))
    rows, failures = predictor.predict(locations, top, batch_size)
    for row in rows:
        row["id"] = ids[row.pop("location")]
    for failure in failures:
        failure["id"] = ids[failure.pop("location")]
        console.print(f"[red]error:[/] {inert(failure['id'])} {failure['view'] or ''}: {inert(failure['reason'])}", soft_wrap=True)
    if len(locations) == 1 and not rows:
        raise UserError(f"no readable view: {failures[0]['reason'] if failures else 'nothing to predict'}")
    if out is not None:  # written before anything is printed: a printing error must not lose the batch
        write_submission(Path(out), rows)
    _show(rows, failures, as_json, locations_csv is None)
    if out is not None:
        console.print(f"[green]✓[/] {len(rows)} locations → {out}")
    return 1 if failures else 0


def write_submission(out: Path, rows: list[dict]) -> None:
    """id, lat, lon, region, top-k regions (space-separated, best first)."""
    frame = pl.DataFrame({"id": [r["id"] for r in rows], "lat": [r["lat"] for r in rows], "lon": [r["lon"] for r in rows],
                          "region": [r["region"] for r in rows],
                          "top_regions": [" ".join(t["region"] for t in r["top"]) for r in rows]},
                         schema={"id": pl.Utf8, "lat": pl.Float64, "lon": pl.Float64, "region": pl.Utf8, "top_regions": pl.Utf8})
    with atomic.atomic_path(out) as tmp:
        csv_safe(frame).write_csv(tmp)


def _show(rows: list[dict], failures: list[dict], as_json: bool, single: bool) -> None:
    if as_json:
        emit({"predictions": rows, "failures": failures}, as_json)
        return
    from rich.table import Table

    for row in rows if single else []:
        table = Table(title=f"{row['lat']:.5f}, {row['lon']:.5f} (region {inert(row['region'])}, sniper moved it from "
                            f"{row['centroid_lat']:.4f}, {row['centroid_lon']:.4f})")
        table.add_column("#", justify="right")
        table.add_column("region")
        table.add_column("probability", justify="right")
        for item in row["top"]:
            table.add_row(str(item["rank"]), inert(item["region"]), f"{item['prob']:.1%}")
        stdout.print(table)
    if not single:
        console.print(f"{len(rows)} locations predicted, {len(failures)} unreadable views")
