"""`run_cells`: manifest → H3 cells → sparse policy → cells.parquet, labels.parquet, KPI history."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from geolocate import atomic
from geolocate.manifest import read_manifest, training_photos
from geolocate.cells.assign import apply_sparse_policy, latlng_to_cells, suggest_min_samples, valid_position
from geolocate.cells.kpi import append_kpi_history, batches_present, compute_kpis
from geolocate.cells.tables import cells_table, labelled_photos, labels_table
from geolocate.config import CellsConfig
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

    @property
    def dropped_photos(self) -> int:
        return sum(d["n"] for d in self.dropped)

    def summary(self) -> dict:
        """JSON-ready summary (for `--json`)."""
        return {
            "resolution": self.resolution,
            "kpis": {k: (v.isoformat() if k == "timestamp" else v) for k, v in self.kpis.items()},
            "merged": self.merged,
            "dropped": self.dropped,
            "dropped_photos": self.dropped_photos,
            "invalid_positions": self.invalid_positions,
        }


def check_resolution(resolution: int, photos: int, cfg: CellsConfig, force: bool) -> None:
    """Refuse resolution ≥ 8 on a data set smaller than `cfg.res8_min_images`, unless forced."""
    if resolution >= FINE_RESOLUTION and photos < cfg.res8_min_images and not force:
        raise UserError(
            f"resolution {resolution} needs at least {cfg.res8_min_images:,} photos (cells.res8_min_images) "
            f"and the manifest has {photos:,}; fetch more batches, use --res 7, or pass --force"
        )


@locks_data("cells")
def run_cells(cfg: CellsConfig, data: DataPaths, resolution: int | None = None, force: bool = False) -> CellsResult:
    """Label every manifest photo with its class cell and write the cells, labels and KPI tables.

    Args:
        cfg: the `[cells]` config.
        data: where the manifest lives and the tables go.
        resolution: overrides `cfg.resolution` (the `--res` option).
        force: allow a fine resolution on a small data set.

    Raises:
        UserError: no manifest, a refused resolution, or no cell reaching the minimum.
    """
    res = cfg.resolution if resolution is None else resolution
    if not 0 <= res <= 15:
        raise UserError(f"--res {res} is not an H3 resolution; use 0 to 15 (7 ≈ 5 km² cells)")
    manifest = training_photos(read_manifest(data, required=True, columns=["image_id", "lat", "lon", "city", "batch", "parent_id"]))
    check_resolution(res, manifest.height, cfg, force)
    photos = manifest.drop("batch", "parent_id").filter(valid_position(pl.col("lat"), pl.col("lon")))
    photos = photos.with_columns(cell=pl.Series(latlng_to_cells(photos["lat"].to_numpy(), photos["lon"].to_numpy(), res)))
    counts = photos.group_by("cell").agg(n=pl.len())
    outcome = apply_sparse_policy(counts, res, cfg.min_samples, cfg.sparse, cfg.max_merge_levels)
    labelled = labelled_photos(photos, outcome.mapping)
    if labelled.is_empty():
        raise UserError(
            f"no cell reaches cells.min_samples = {cfg.min_samples} photos at resolution {res} "
            f"({manifest.height:,} photos); fetch more photos or lower it (--set cells.min_samples=N)"
        )
    cells, labels = cells_table(labelled), labels_table(labelled)
    if cells.height < 2:
        raise UserError(
            f"only 1 cell reaches cells.min_samples = {cfg.min_samples} at resolution {res}: one class teaches nothing; "
            f"use --set cells.min_samples={suggest_min_samples(counts['n'].to_list())} or a finer --res"
        )
    atomic.write_parquet(data.cells, cells)
    atomic.write_parquet(data.labels, labels)
    kpis = compute_kpis(cells, batches_present(manifest))
    append_kpi_history(data, kpis)
    return CellsResult(res, cells, labels, kpis, outcome.merged, outcome.dropped, manifest.height - photos.height)
