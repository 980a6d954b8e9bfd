"""`run_cells`: manifest → H3 cells → sparse policy → cells.parquet, labels.parquet, KPI history."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from geolocate import atomic
from geolocate.manifest import read_manifest, training_photos
from geolocate.cells.assign import apply_sparse_policy, latlng_to_cells, suggest_min_samples, valid_position
from geolocate.cells.kpi import append_kpi_history, batches_present, compute_kpis
from geolocate.cells.tables import cells_table, labelled_photos, labels_table
from geolocate.cells.recorded import STAGE_KEYS, record_settings
from geolocate.cells.resolution import FINEST, AutoClasses, auto_classes
from geolocate.config import AUTO, CellsConfig
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.lock import locks_data

# Above this resolution cells are small (res 8 ≈ 0.7 km²): only a large data set fills them.
FINE_RESOLUTION = 8


@dataclass
class CellsResult:
    """What `run_cells` wrote and decided."""

    resolution: int
    cells: pl.DataFrame
    labels: pl.DataFrame
    kpis: dict
    merged: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    invalid_positions: int = 0
    min_samples: int = 0
    auto: AutoClasses | None = None  # what the rule said, when resolution or min_samples was "auto"
    joined: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # manifest rows → photos to label (see `photo_counts`)
    imported: str | None = None  # why the profile's class sizes gave way to the auto rule (imported photos)

    @property
    def dropped_photos(self) -> int:
        return sum(d["n"] for d in self.dropped)

    @property
    def joined_photos(self) -> int:
        return sum(j["n"] for j in self.joined)

    def summary(self) -> dict:
        """JSON-ready summary (for `--json`)."""
        return {
            "resolution": self.resolution,
            "min_samples": self.min_samples,
            "auto": vars(self.auto) if self.auto else None,
            "kpis": {k: (v.isoformat() if k == "timestamp" else v) for k, v in self.kpis.items()},
            "merged": self.merged,
            "joined_nearest": self.joined,
            "dropped": self.dropped,
            "dropped_photos": self.dropped_photos,
            "invalid_positions": self.invalid_positions,
            "counts": self.counts,
        }


def check_resolution(resolution: int, photos: int, cfg: CellsConfig, force: bool) -> None:
    """Refuse resolution ≥ 8 on a data set smaller than `cfg.res8_min_images`, unless forced."""
    if resolution >= FINE_RESOLUTION and photos < cfg.res8_min_images and not force:
        raise UserError(
            f"resolution {resolution} needs at least {cfg.res8_min_images:,} photos (cells.res8_min_images) "
            f"and the manifest has {photos:,}; fetch more batches, use --res 7, or pass --force"
        )


def resolve_classes(cfg: CellsConfig, lat, lon, resolution: int | None = None) -> tuple[int, int, AutoClasses | None]:
    """(resolution, min_samples, the rule's figures or None): "auto" values chosen from the positions.

    Args:
        cfg: the `[cells]` config.
        lat, lon: the positions of the photos to label.
        resolution: the `--res` option, which beats `cfg.resolution`.
    """
    res = cfg.resolution if resolution is None else resolution
    if res != AUTO and not 0 <= res <= 15:
        raise UserError(f"--res {res} is not an H3 resolution; use 0 to 15 (7 ≈ 5 km² cells)")
    if res != AUTO and cfg.min_samples != AUTO:
        return res, cfg.min_samples, None
    finest = FINEST if len(lat) >= cfg.res8_min_images else FINE_RESOLUTION - 1
    auto = auto_classes(lat, lon, finest)
    return (auto.resolution if res == AUTO else res), (auto.min_samples if cfg.min_samples == AUTO else cfg.min_samples), auto


def photo_counts(manifest: pl.DataFrame, training: int, located: int) -> dict:
    """Why the photos to label differ from the manifest's rows: views cut from 360° captures, positions.

    Args:
        manifest: every manifest row (with `parent_id`).
        training: photos that become samples (`training_photos`).
        located: those of them with a valid position.
    """
    views = manifest.filter(pl.col("parent_id").is_not_null())
    return {"manifest_rows": manifest.height, "originals": manifest.height - views.height,
            "captures_cut": views["parent_id"].n_unique(), "views": views.height,
            "photos": training, "invalid_positions": training - located}


@locks_data("cells")
def run_cells(cfg: CellsConfig, data: DataPaths, resolution: int | None = None, force: bool = False,
              given: tuple[str, ...] = (), profile_fixed: dict | None = None) -> CellsResult:
    """Label every manifest photo with its class cell and write the cells, labels and KPI tables.

    Args:
        cfg: the `[cells]` config.
        data: where the manifest lives and the tables go.
        resolution: overrides `cfg.resolution` (the `--res` option).
        force: allow a fine resolution on a small data set.
        given: the dotted keys set on the command line (they beat `cells.imported`).
        profile_fixed: what the active profile sets in `[cells]` (`config.profile_values`): only
            those values give way to the auto rule on imported photos, never the user's own.

    Raises:
        UserError: no manifest, a refused resolution, or no cell reaching the minimum.
    """
    everything = read_manifest(data, required=True, columns=["image_id", "lat", "lon", "city", "batch", "parent_id", "source"])
    cfg, imported = _for_imported(cfg, everything, given if resolution is None else (*given, "cells.resolution"),
                                  profile_fixed or {})
    manifest = training_photos(everything)
    photos = manifest.drop("batch", "parent_id").filter(valid_position(pl.col("lat"), pl.col("lon")))
    res, minimum, auto = resolve_classes(cfg, photos["lat"].to_numpy(), photos["lon"].to_numpy(), resolution)
    check_resolution(res, manifest.height, cfg, force)
    photos = photos.with_columns(cell=pl.Series(latlng_to_cells(photos["lat"].to_numpy(), photos["lon"].to_numpy(), res)))
    counts = photos.group_by("cell").agg(n=pl.len())
    outcome = apply_sparse_policy(counts, res, minimum, cfg.sparse, cfg.max_merge_levels)
    labelled = labelled_photos(photos, outcome.mapping)
    if labelled.is_empty():
        raise UserError(
            f"no cell reaches cells.min_samples = {minimum} photos at resolution {res} "
            f"({photos.height:,} photos with a position); {_too_few(auto, photos.height)}"
        )
    cells, labels = cells_table(labelled), labels_table(labelled)
    if cells.height < 2:
        raise UserError(
            f"only 1 cell reaches cells.min_samples = {minimum} at resolution {res}: one class teaches nothing; "
            f"use --set cells.min_samples={suggest_min_samples(counts['n'].to_list())} or a finer --res"
        )
    atomic.write_parquet(data.cells, cells)
    atomic.write_parquet(data.labels, labels)
    kpis = compute_kpis(cells, batches_present(manifest))
    append_kpi_history(data, kpis)
    used = {key: getattr(cfg, key.partition(".")[2]) for key in STAGE_KEYS["cells"]}
    record_settings(data, "cells", {**used, "cells.resolution": res, "cells.min_samples": minimum})
    return CellsResult(res, cells, labels, kpis, outcome.merged, outcome.dropped, manifest.height - photos.height,
                       minimum, auto, outcome.joined, photo_counts(everything, manifest.height, photos.height), imported)


# The keys a profile may fix for its own catalog, and what imported photos get instead.
_FOR_IMPORTED = {"resolution": AUTO, "min_samples": AUTO, "max_merge_levels": 15}


def _for_imported(cfg: CellsConfig, manifest: pl.DataFrame, given, profile_fixed: dict) -> tuple[CellsConfig, str | None]:
    """`cfg` with auto class sizes when the photos were imported (`cells.imported = "auto"`), and the sentence that says so.

    France v1's resolution 7 and 150 photos were chosen for its 50-city catalog; on a user's own
    photos (46 of them, or 1,600 across the world) they refuse everything. Only values the profile
    fixed give way: keys given on the command line, or set to another value in the project's file, are kept.
    """
    from geolocate.manifest import IMPORTED_SOURCES

    sources = set(manifest["source"].drop_nulls().unique().to_list()) if "source" in manifest.columns else set()
    if cfg.imported != "auto" or not sources & set(IMPORTED_SOURCES):
        return cfg, None
    update = {k: v for k, v in _FOR_IMPORTED.items()
              if f"cells.{k}" not in given and k in profile_fixed and getattr(cfg, k) == profile_fixed[k] != v}
    if not update:
        return cfg, None
    fixed = ", ".join(f"{k} {getattr(cfg, k)}" for k in update)
    return cfg.model_copy(update=update), (f"imported photos: classes sized by the auto rule, not the profile's {fixed} "
                                           "(cells.imported = auto; --res or --set cells.imported=as-set keeps them)")


def _too_few(auto: AutoClasses | None, photos: int) -> str:
    """The advice when no class forms: the auto rule has nothing coarser to offer."""
    if auto is not None:
        return (f"{photos:,} photos at {auto.places:,} places are too few for two classes of {auto.min_samples} photos "
                "even at the coarsest resolution; add photos (several per place and area)")
    return "fetch more photos or lower it (--set cells.min_samples=N)"
