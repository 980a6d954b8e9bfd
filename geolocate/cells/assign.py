"""H3 assignment of photos and the sparse-cell policy.

Every photo gets the H3 (v4) cell containing it at `cells.resolution`. A cell with fewer than
`cells.min_samples` photos is *sparse* and follows `cells.sparse`:

* `drop`: its photos get no class.
* `merge-parent`: sparse cells climb the hierarchy one level at a time, at most
  `cells.max_merge_levels` levels (and never above resolution 0). At level k, the sparse cells
  still unsettled are grouped by their ancestor k levels up; when the photos of such a group
  of *sparse siblings* reach the minimum together, every cell of the group is relabelled to that
  ancestor. A cell that already has enough photos keeps its own resolution and never lends
  photos to a parent, so a parent class holds only the photos of its sparse descendants (its
  centroid, the mean of those photos, says where they really are). Cells still sparse after
  the last level are dropped, except when the climb reached resolution 0 (the default,
  `max_merge_levels` ≥ the resolution): a base cell still too sparse there (a lone photo on an
  island) joins the class whose H3 centre is nearest, so every photo with a position has a class.

Cells are handled as int64 H3 indexes (the numpy-int API is ~1.5× faster than strings); only
the few thousand distinct classes are converted to the usual hex strings at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h3
import h3.api.numpy_int as h3int
import numpy as np
import polars as pl

from geolocate.errors import UserError
from geolocate.geo import pairwise_haversine_km, spherical_mean

SPARSE_POLICIES = ("merge-parent", "drop")


@dataclass
class SparseOutcome:
    """Which cells the sparse policy merged or dropped.

    Attributes:
        mapping: one row per populated fine cell: `cell` (int), `n` (photos), `label` (int class
            cell, null when dropped).
        merged: one row per parent class created: `parent` (hex), `resolution`, `children`
            (hex ids of the sparse cells pooled into it), `n` (photos).
        dropped: one row per dropped fine cell: `cell_id` (hex), `n`.
        joined: one row per fine cell still sparse at resolution 0 that joined the nearest
            class: `cell_id` (hex), `n`, `class` (hex).
    """

    mapping: pl.DataFrame
    merged: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    joined: list[dict] = field(default_factory=list)


def valid_position(lat: pl.Expr, lon: pl.Expr) -> pl.Expr:
    """True where (lat, lon) is a finite position on the globe (H3 would wrap or fail otherwise)."""
    return lat.is_not_null() & lon.is_not_null() & lat.is_between(-90.0, 90.0) & lon.is_between(-180.0, 180.0)


def latlng_to_cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cells (int64) of many points. The h3 v4 core has no vectorised call: a tight loop over
    plain floats costs ~1.4 s per million points, which is acceptable here."""
    to_cell = h3int.latlng_to_cell
    # H3 indexes use 63 bits, so they fit an int64 (polars joins them fast).
    return np.asarray([to_cell(a, b, resolution) for a, b in zip(lat.tolist(), lon.tolist())], dtype=np.int64)


def cell_ids(cells: np.ndarray | list[int]) -> list[str]:
    """Hex strings ('871fb4671ffffff') of int64 H3 cells."""
    return [h3.int_to_str(int(c)) for c in cells]


def _parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    return np.asarray([h3int.cell_to_parent(c, resolution) for c in np.asarray(cells).tolist()], dtype=np.int64)


def suggest_min_samples(counts: list[int], classes: int = 5) -> int:
    """The largest minimum that keeps at least `classes` groups of these sizes (fewer groups: all of them)."""
    ranked = sorted(counts, reverse=True)
    return int(ranked[min(classes, len(ranked)) - 1]) if ranked else 1


def apply_sparse_policy(
    counts: pl.DataFrame, resolution: int, min_samples: int, policy: str, max_merge_levels: int
) -> SparseOutcome:
    """Decide the class of every populated cell.

    Args:
        counts: `cell` (int64 H3 at `resolution`) and `n` (photos), one row per cell.
        resolution: resolution of `counts`.
        min_samples: photos a class needs.
        policy: "merge-parent" or "drop".
        max_merge_levels: how many levels a sparse cell may climb.

    Returns:
        The mapping cell → class cell (null = dropped) and what was merged and dropped.
    """
    if policy not in SPARSE_POLICIES:
        raise UserError(f"cells.sparse = {policy!r} is unknown; use one of {', '.join(SPARSE_POLICIES)}")
    mapping = counts.select("cell", "n").with_columns(
        label=pl.when(pl.col("n") >= min_samples).then(pl.col("cell")).otherwise(None)
    )
    merged: list[dict] = []
    levels = min(max_merge_levels, resolution) if policy == "merge-parent" else 0
    for level in range(1, levels + 1):
        mapping, created = _merge_level(mapping, resolution - level, min_samples)
        merged.extend(created)
    joined: list[dict] = []
    if policy == "merge-parent" and max_merge_levels >= resolution:
        mapping, joined = _join_nearest(mapping)
    dropped = mapping.filter(pl.col("label").is_null()).sort("cell")
    dropped_rows = [{"cell_id": cid, "n": n} for cid, n in zip(cell_ids(dropped["cell"]), dropped["n"].to_list())]
    return SparseOutcome(mapping=mapping, merged=merged, dropped=dropped_rows, joined=joined)


def _join_nearest(mapping: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """Give every cell still unsettled the class whose photos lie nearest to it (none: unchanged).

    A class's position is the mean of its member cells' centres weighted by their photos: a class
    pooled at resolution 0 may have its H3 centre in the ocean, far from the photos it holds.
    """
    unsettled = mapping.filter(pl.col("label").is_null()).sort("cell")
    members = mapping.filter(pl.col("label").is_not_null()).sort("label", "cell")
    if unsettled.is_empty() or members.is_empty():
        return mapping, []
    centres = _centres(members["cell"])
    members = members.with_columns(lat=pl.Series(centres[:, 0]), lon=pl.Series(centres[:, 1]))
    classes = members.group_by("label", maintain_order=True).agg("lat", "lon", "n")
    there = np.asarray([spherical_mean(np.asarray(a), np.asarray(b), np.asarray(w, dtype=np.float64))
                        for a, b, w in classes.select("lat", "lon", "n").iter_rows()], dtype=np.float64)
    here = _centres(unsettled["cell"])
    nearest = pairwise_haversine_km(here[:, 0], here[:, 1], there[:, 0], there[:, 1]).argmin(axis=1)
    relabel = unsettled.select("cell", new=pl.Series(classes["label"].to_numpy()[nearest], dtype=pl.Int64))
    mapping = mapping.join(relabel, on="cell", how="left").with_columns(label=pl.coalesce("label", "new")).drop("new")
    joined = [{"cell_id": cid, "n": int(n), "class": h3.int_to_str(int(c))}
              for cid, n, c in zip(cell_ids(unsettled["cell"]), unsettled["n"].to_list(), relabel["new"].to_list())]
    return mapping, joined


def _centres(cells: pl.Series) -> np.ndarray:
    """[N, 2] (lat, lon) of the H3 centres of int cells."""
    return np.asarray([h3int.cell_to_latlng(c) for c in cells.to_list()], dtype=np.float64).reshape(-1, 2)


def _merge_level(mapping: pl.DataFrame, parent_res: int, min_samples: int) -> tuple[pl.DataFrame, list[dict]]:
    """Pool the unsettled cells under their ancestor at `parent_res`; settle groups that reach the minimum."""
    unsettled = mapping.filter(pl.col("label").is_null())
    if unsettled.is_empty():
        return mapping, []
    unsettled = unsettled.with_columns(parent=pl.Series(_parents(unsettled["cell"].to_numpy(), parent_res)))
    pooled = unsettled.group_by("parent").agg(pl.col("n").sum().alias("pooled"), pl.col("cell").sort())
    winners = pooled.filter(pl.col("pooled") >= min_samples).sort("parent")
    relabel = unsettled.join(winners.select("parent"), on="parent", how="semi").select("cell", new=pl.col("parent"))
    mapping = (
        mapping.join(relabel, on="cell", how="left")
        .with_columns(label=pl.coalesce("label", "new"))
        .drop("new")
    )
    created = [
        {"parent": pid, "resolution": parent_res, "children": cell_ids(children), "n": int(n)}
        for pid, children, n in zip(cell_ids(winners["parent"]), winners["cell"].to_list(), winners["pooled"].to_list())
    ]
    return mapping, created
