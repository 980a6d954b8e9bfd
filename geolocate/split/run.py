"""`run_split`: labels ⨝ manifest → grouped stratified split → dominance cap → audit → files.

split.parquet lists the photos training may use, each with its split. Train rows left out by
the dominance cap are *not* in it (their count is in split_report.json), so a reader that joins
split.parquet with labels.parquet gets exactly the capped training set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from geolocate import atomic
from geolocate.manifest import read_manifest
from geolocate.cells.recorded import UPSTREAM, judged_config, record_settings, stage_values
from geolocate.cells.tables import train_centroids
from geolocate.config import GeolocateConfig, SplitConfig
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.schemas import CELLS, LABELS, SPLIT, SPLITS, conform
from geolocate.split.audit import audit, buffer_train
from geolocate.split.dominance import cap_dominance
from geolocate.split.grouped import assign_splits, with_groups
from geolocate.lock import locks_data


@dataclass
class SplitResult:
    """The split written and its report (the content of split_report.json)."""

    split: pl.DataFrame
    report: dict


def check_ratios(cfg: SplitConfig) -> None:
    """The three ratios must sum to 1."""
    total = cfg.train + cfg.val + cfg.test
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise UserError(
            f"split ratios train={cfg.train} + val={cfg.val} + test={cfg.test} sum to {total:g}, not 1; "
            "fix them, e.g. --set split.val=0.1 --set split.test=0.1"
        )


def read_labelled(data: DataPaths) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(cells table, labels ⨝ manifest with the columns the split needs)."""
    for path in (data.cells, data.labels):
        if not path.exists():
            raise UserError(f"no {path}; run `geolocate cells` first")
    cells = conform(pl.read_parquet(data.cells), CELLS)
    labels = conform(pl.read_parquet(data.labels), LABELS)
    manifest = read_manifest(data, required=True, columns=["image_id", "sequence_id", "creator_id", "captured_at", "lat", "lon"])
    labels = labels.join(cells.select("cell_id"), on="cell_id", how="semi")  # classes that exist
    frame = labels.join(manifest, on="image_id", how="inner")
    if frame.is_empty():
        raise UserError(f"no photo of {data.labels} is in the manifest; run `geolocate cells` again")
    return cells, frame


def drop_untrained_cells(data: DataPaths, cells: pl.DataFrame, frame: pl.DataFrame) -> list[str]:
    """Remove from cells.parquet and labels.parquet the classes without a train photo.

    With the train-coverage repair this only happens when a class lost all its photos (the
    manifest changed since `geolocate cells`); a class with no train photo could never be learnt.
    """
    trained = frame.filter(pl.col("split") == "train")["cell_id"].unique()
    dropped = cells.filter(~pl.col("cell_id").is_in(trained.implode()))["cell_id"].sort().to_list()
    if dropped:
        atomic.write_parquet(data.cells, cells.filter(pl.col("cell_id").is_in(trained.implode())))
        labels = conform(pl.read_parquet(data.labels), LABELS)
        atomic.write_parquet(data.labels, labels.filter(~pl.col("cell_id").is_in(dropped)))
    return dropped


@locks_data("split")
def run_split(cfg: GeolocateConfig, data: DataPaths, given: Iterable[str] = ()) -> SplitResult:
    """Split the labelled photos, cap the dominant classes, audit leakage, write split + report.

    The `[cells]` values come from what `geolocate cells` recorded (`cells.recorded`), so the
    dominance cap it was given holds here too.

    Args:
        cfg: the resolved config.
        data: the data directory.
        given: the dotted keys set on the command line (a contradiction with a recorded one is refused).

    Raises:
        UserError: bad ratios, missing manifest / cells / labels, a contradicted recorded setting,
            or too few groups for a val and a test group.
    """
    cfg = judged_config(cfg, data, UPSTREAM["split"], given)
    scfg = cfg.split
    check_ratios(scfg)
    cells, frame = read_labelled(data)
    labelled = frame.height
    frame = with_groups(frame, scfg.group_by)
    frame = assign_splits(frame, scfg.val, scfg.test, scfg.seed, scfg.group_by)
    # Before the cells without train and the dominance cap: both must see the train the buffer leaves.
    frame, buffered = buffer_train(frame, scfg.near_m) if scfg.buffer else (frame, 0)
    dropped_cells = drop_untrained_cells(data, cells, frame)
    untrained = frame.filter(pl.col("cell_id").is_in(dropped_cells)).height
    frame = frame.filter(~pl.col("cell_id").is_in(dropped_cells))
    check_held_out(frame, "the spatial buffer (split.buffer) left some classes without train photos")
    train = frame.filter(pl.col("split") == "train")
    dominance = cap_dominance(train, cfg.cells.max_dominance, scfg.seed)
    frame = frame.join(dominance.removed, on="image_id", how="anti")
    split = conform(frame, SPLIT).sort("image_id")
    report = {**_report(scfg, frame, cells, dropped_cells, dominance.report()), "buffer_dropped": buffered,
              "labelled": labelled, "untrained_dropped": untrained}
    kept_cells = cells.filter(~pl.col("cell_id").is_in(dropped_cells)).sort("cell_id")
    atomic.write_parquet(data.cells, train_centroids(kept_cells, frame))
    atomic.write_parquet(data.split, split)
    atomic.write_json(data.split_report, report)
    record_settings(data, "split", stage_values(cfg, "split"))
    return SplitResult(split, report)


def left_out(report: dict) -> list[str]:
    """Why labelled photos are not in the split, one phrase per reason that left any out
    ("31 train photos left out under the dominance cap (cells.max_dominance)"), from a split report."""
    reasons = [((report.get("dominance") or {}).get("downsampled_rows", 0), "train photos left out under the dominance cap (cells.max_dominance)"),
               (report.get("buffer_dropped", 0), "train photos dropped by the spatial buffer (split.buffer)"),
               (report.get("untrained_dropped", 0), "photos of classes left without a train photo")]
    return [f"{n:,} {why}" for n, why in reasons if n]


def locations_left_out(report: dict) -> list[str]:
    """`left_out` of the four-view locations, from a `regions` report (`scout.regions.run_regions`)."""
    kept = sum((report.get("locations") or {}).values())
    located, buffered = report.get("located", 0), report.get("buffer_dropped", 0)
    reasons = [(report.get("table_locations", located) - located, "locations without a position or in a sparse region (regions.min_samples)"),
               (buffered, "train locations dropped by the spatial buffer (split.buffer)"),
               (located - buffered - kept, "locations of regions left without a train location")]
    return [f"{n:,} {why}" for n, why in reasons if n > 0]


def check_held_out(frame: pl.DataFrame, why: str) -> None:
    """Refuse a split whose val or test is empty (evaluation would have nothing to measure)."""
    empty = [s for s in ("val", "test") if frame.filter(pl.col("split") == s).is_empty()]
    if empty:
        raise UserError(f"{' and '.join(empty)} would be empty: {why}; add photos from more sequences")


def _report(scfg: SplitConfig, frame: pl.DataFrame, cells: pl.DataFrame, dropped: list[str], dominance: dict) -> dict:
    def counts(column: str) -> dict:
        return {s: frame.filter(pl.col("split") == s)[column].n_unique() for s in SPLITS}

    def cells_without(split: str) -> int:
        present = frame.filter(pl.col("split") == split)["cell_id"].n_unique()
        return cells.height - len(dropped) - present

    return {
        "group_by": scfg.group_by,
        "seed": scfg.seed,
        "ratios": {"train": scfg.train, "val": scfg.val, "test": scfg.test},
        "photos": counts("image_id"),
        "groups": counts("group"),
        "cells": cells.height - len(dropped),
        "cells_without_val": cells_without("val"),
        "cells_without_test": cells_without("test"),
        "cells_dropped": dropped,
        "dominance": dominance,
        "leakage": audit(frame, scfg.near_m),
    }
