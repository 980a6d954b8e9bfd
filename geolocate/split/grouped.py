"""Grouped, cell-stratified split: a group (sequence or drive) never straddles two splits.

Each group is stratified by its *primary cell*, the cell holding most of its photos (ties go to
the smallest cell id). Within a primary cell the groups are shuffled with `split.seed` and dealt
out by the ratios (shares of groups): a cell with at least three groups always gets at least one
val and one test group, fewer than three all go to train. Some cells are nobody's primary cell
(their photos sit at the edge of sequences centred elsewhere); for each of them that ended up
without a train photo, the group holding most of its photos is moved to train.

Few groups (a handful of sequences, or cells of one or two each) would leave val or test empty.
Then one train group whose cells all keep another train group is moved there (drawn with the
seed), so val and test hold at least one group each; when no group can be spared, the split
refuses in one line instead of writing an empty val or test.

Everything is keyed on sorted ids before shuffling, so the split depends on the seed and the
data only, never on row order.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from geolocate.errors import UserError

SEQUENCE, DRIVE = "sequence", "drive"
# A cell needs this many groups before it can give one to val and one to test and keep one.
MIN_GROUPS_FOR_EVAL = 3


def sequence_key() -> pl.Expr:
    """The photo's sequence; a photo without one is a sequence of its own."""
    seq = pl.when(pl.col("sequence_id") == "").then(None).otherwise(pl.col("sequence_id"))
    return pl.coalesce(seq, pl.lit("photo:") + pl.col("image_id"))


def drive_key(day: pl.Expr) -> pl.Expr:
    """creator + UTC `day`; photos without a creator or a time fall back to their sequence."""
    drive = pl.col("creator_id") + pl.lit("/") + day.dt.date().cast(pl.Utf8)  # YYYY-MM-DD
    return pl.coalesce(drive, sequence_key())


def with_groups(frame: pl.DataFrame, group_by: str) -> pl.DataFrame:
    """Add `seq` (sequence key), `drive` (creator + the photo's UTC day) and `group`.

    A drive group is creator + the UTC day on which the *sequence* started, so a sequence that
    crosses midnight stays in one group and grouping by drive never splits a sequence.
    """
    day = pl.col("captured_at").dt.convert_time_zone("UTC")
    frame = frame.with_columns(seq=sequence_key(), drive=drive_key(day))
    if group_by == SEQUENCE:
        return frame.with_columns(group=pl.col("seq"))
    if group_by == DRIVE:
        return frame.with_columns(group=drive_key(day.min().over("seq")))
    raise ValueError(f"unknown group_by {group_by!r}")


def assign_splits(frame: pl.DataFrame, val: float, test: float, seed: int, unit: str = SEQUENCE) -> pl.DataFrame:
    """`frame` (image_id, cell_id, group) with a `split` column: train, val or test per group.

    Args:
        unit: what a group is ("sequence" or "drive"), for the refusal's wording.

    Raises:
        UserError: val and test cannot both get a group without a class losing its last train group.
    """
    groups = _primary_cells(frame)
    groups = _deal(groups, val, test, seed)
    groups = _repair_train_coverage(frame, groups)
    groups = _ensure_held_out(frame, groups, seed, unit)
    return frame.join(groups.select("group", "split"), on="group", how="left")


def _ensure_held_out(frame: pl.DataFrame, groups: pl.DataFrame, seed: int, unit: str) -> pl.DataFrame:
    """Move a spare train group to val, then to test, when the dealing left either empty."""
    rng = np.random.default_rng(seed)
    for split in ("val", "test"):
        if (groups["split"] == split).any():
            continue
        spare = spare_groups(frame, groups)
        if not spare:
            raise UserError(_no_spare(groups, frame["cell_id"].n_unique(), unit))
        pick = spare[int(rng.integers(len(spare)))]
        groups = groups.with_columns(split=pl.when(pl.col("group") == pick).then(pl.lit(split)).otherwise(pl.col("split")))
    return groups


def spare_groups(frame: pl.DataFrame, groups: pl.DataFrame) -> list[str]:
    """Train groups whose every cell keeps a train photo of another group (sorted)."""
    train = frame.select("group", "cell_id").unique().join(groups.filter(pl.col("split") == "train").select("group"), on="group")
    train = train.with_columns(others=pl.col("group").n_unique().over("cell_id") - 1)
    return train.group_by("group").agg(ok=(pl.col("others") >= 1).all()).filter(pl.col("ok"))["group"].sort().to_list()


def _no_spare(groups: pl.DataFrame, n_classes: int, unit: str) -> str:
    n_groups, n_train = groups.height, int((groups["split"] == "train").sum())
    if n_groups < 3:
        return (f"only {n_groups} {unit}(s): train, val and test need one each; "
                f"add photos from more {unit}s (an imported CSV can name them in a sequence_id column)")
    return (f"val and test need a {unit} each, but each of the {n_train} {unit}s left in train is the only train "
            f"{unit} of its class ({n_groups} {unit}s, {n_classes} classes in all); add photos from more {unit}s, "
            "or use fewer, larger classes (a coarser --res for `geolocate cells`)")


def _primary_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per group: the group and its primary cell, sorted by group."""
    return (
        frame.group_by("group", "cell_id")
        .agg(n=pl.len())
        .sort(["group", "n", "cell_id"], descending=[False, True, False])
        .group_by("group", maintain_order=True)
        .agg(primary=pl.col("cell_id").first())
        .sort("group")
    )


def _deal(groups: pl.DataFrame, val: float, test: float, seed: int) -> pl.DataFrame:
    """Shuffle groups within each primary cell and deal val, test, then train."""
    rng = np.random.default_rng(seed)
    groups = groups.with_columns(order=pl.Series(rng.permutation(groups.height)))
    groups = groups.with_columns(
        rank=pl.col("order").rank("ordinal").over("primary") - 1,
        n_groups=pl.len().over("primary"),
    )
    n_val, n_test = quotas(groups["n_groups"].to_numpy(), val, test)
    groups = groups.with_columns(n_val=pl.Series(n_val), n_test=pl.Series(n_test))
    split = (
        pl.when(pl.col("rank") < pl.col("n_val")).then(pl.lit("val"))
        .when(pl.col("rank") < pl.col("n_val") + pl.col("n_test")).then(pl.lit("test"))
        .otherwise(pl.lit("train"))
    )
    return groups.with_columns(split=split).select("group", "primary", "split")


def quotas(n_groups: np.ndarray, val: float, test: float) -> tuple[np.ndarray, np.ndarray]:
    """Groups given to val and to test for cells of `n_groups` groups.

    Rounded shares, at least one each (when its ratio is positive) for cells with enough groups,
    none below that, and always at least one group left for train.
    """
    g = np.asarray(n_groups, dtype=np.int64)
    enough = g >= MIN_GROUPS_FOR_EVAL
    n_val = np.where(enough, np.maximum(np.floor(g * val + 0.5), 1 if val > 0 else 0), 0).astype(np.int64)
    n_test = np.where(enough, np.maximum(np.floor(g * test + 0.5), 1 if test > 0 else 0), 0).astype(np.int64)
    excess = np.maximum(n_val + n_test - (g - 1), 0)
    take_test = np.minimum(excess, np.maximum(n_test - 1, 0))  # keep one test group if possible
    n_test, excess = n_test - take_test, excess - take_test
    take_val = np.minimum(excess, np.maximum(n_val - 1, 0))
    return n_val - take_val, n_test


def _repair_train_coverage(frame: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Move to train, for each cell without a train photo, the group holding most of its photos."""
    photos = frame.select("group", "cell_id").join(groups.select("group", "split"), on="group")
    in_train = photos.filter(pl.col("split") == "train").select("cell_id").unique()
    uncovered = photos.join(in_train, on="cell_id", how="anti")
    if uncovered.is_empty():
        return groups
    best = (
        uncovered.group_by("cell_id", "group")
        .agg(n=pl.len())
        .sort(["cell_id", "n", "group"], descending=[False, True, False])
        .group_by("cell_id", maintain_order=True)
        .agg(pl.col("group").first())
    )
    moved = best["group"].unique()
    return groups.with_columns(
        split=pl.when(pl.col("group").is_in(moved.implode())).then(pl.lit("train")).otherwise(pl.col("split"))
    )
