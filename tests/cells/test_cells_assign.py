"""H3 assignment and the sparse-cell policy on hand-built cells, plus a property test."""

from __future__ import annotations

import h3
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geolocate.cells.assign import apply_sparse_policy, cell_ids, latlng_to_cells
from geolocate.errors import UserError

GRAND = h3.latlng_to_cell(48.8566, 2.3522, 5)  # a res-5 cell; its res-6 children hold res-7 cells
PARENTS = sorted(h3.cell_to_children(GRAND, 6))
P1, P2 = PARENTS[0], PARENTS[1]
C1 = sorted(h3.cell_to_children(P1, 7))
C2 = sorted(h3.cell_to_children(P2, 7))


def counts(spec: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame({"cell": [h3.str_to_int(c) for c in spec], "n": list(spec.values())}, schema={"cell": pl.Int64, "n": pl.UInt32})


def labels_of(outcome) -> dict[str, str | None]:
    rows = outcome.mapping.sort("cell").iter_rows(named=True)
    return {h3.int_to_str(r["cell"]): (h3.int_to_str(r["label"]) if r["label"] is not None else None) for r in rows}


def test_latlng_to_cells_matches_the_scalar_h3_call():
    lat, lon = np.array([48.85, 45.76, -33.9]), np.array([2.35, 4.83, 151.2])
    got = cell_ids(latlng_to_cells(lat, lon, 7))
    assert got == [h3.latlng_to_cell(a, b, 7) for a, b in zip(lat, lon)]


def test_sparse_siblings_pool_into_their_parent_and_a_large_sibling_keeps_its_resolution():
    outcome = apply_sparse_policy(counts({C1[0]: 30, C1[1]: 30, C1[2]: 100}), 7, 50, "merge-parent", 2)
    assert labels_of(outcome) == {C1[0]: P1, C1[1]: P1, C1[2]: C1[2]}
    assert outcome.merged == [{"parent": P1, "resolution": 6, "children": sorted([C1[0], C1[1]]), "n": 60}]
    assert outcome.dropped == []


def test_groups_too_small_at_one_level_climb_to_the_next():
    # Under P1: 20 + 10 = 30 < 50; under P2: 25 < 50. Together under GRAND: 55.
    outcome = apply_sparse_policy(counts({C1[0]: 20, C1[1]: 10, C2[0]: 25}), 7, 50, "merge-parent", 2)
    assert set(labels_of(outcome).values()) == {GRAND}
    assert [m["parent"] for m in outcome.merged] == [GRAND] and outcome.merged[0]["resolution"] == 5


def test_merge_stops_after_max_merge_levels_and_drops_the_rest():
    outcome = apply_sparse_policy(counts({C1[0]: 20, C1[1]: 10, C2[0]: 25, C2[1]: 80}), 7, 50, "merge-parent", 1)
    assert labels_of(outcome) == {C1[0]: None, C1[1]: None, C2[0]: None, C2[1]: C2[1]}
    assert sorted(d["cell_id"] for d in outcome.dropped) == sorted([C1[0], C1[1], C2[0]])
    assert sum(d["n"] for d in outcome.dropped) == 55


def test_merge_never_climbs_above_resolution_zero():
    res0 = h3.cell_to_parent(C1[0], 0)
    outcome = apply_sparse_policy(counts({res0: 5}), 0, 50, "merge-parent", 3)
    assert outcome.merged == [] and outcome.dropped == [{"cell_id": res0, "n": 5}]


def test_drop_policy_drops_every_sparse_cell():
    outcome = apply_sparse_policy(counts({C1[0]: 30, C1[1]: 30, C1[2]: 100}), 7, 50, "drop", 2)
    assert labels_of(outcome) == {C1[0]: None, C1[1]: None, C1[2]: C1[2]}
    assert outcome.merged == [] and len(outcome.dropped) == 2


def test_unknown_policy_is_a_user_error():
    with pytest.raises(UserError, match="merge-parent"):
        apply_sparse_policy(counts({C1[0]: 3}), 7, 50, "bogus", 2)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 120), min_size=1, max_size=40),
    picks=st.randoms(use_true_random=False),
    minimum=st.integers(1, 150),
    levels=st.integers(0, 3),
    policy=st.sampled_from(["merge-parent", "drop"]),
)
def test_every_class_reaches_the_minimum_and_no_photo_is_lost(sizes, picks, minimum, levels, policy):
    pool = sorted({c for p in PARENTS for c in h3.cell_to_children(p, 7)})
    cells = picks.sample(pool, len(sizes))
    outcome = apply_sparse_policy(counts(dict(zip(cells, sizes))), 7, minimum, policy, levels)
    mapping = outcome.mapping
    kept = mapping.filter(pl.col("label").is_not_null())
    per_class = kept.group_by("label").agg(pl.col("n").sum())
    assert (per_class["n"] >= minimum).all()
    assert kept["n"].sum() + sum(d["n"] for d in outcome.dropped) == sum(sizes)
    for row in mapping.iter_rows(named=True):
        cell = h3.int_to_str(row["cell"])
        if row["n"] >= minimum:  # a large cell keeps its own resolution
            assert row["label"] == row["cell"]
        elif row["label"] is not None:  # a merged cell lands on one of its ancestors, within the levels allowed
            label = h3.int_to_str(row["label"])
            assert policy == "merge-parent" and 7 - levels <= h3.get_resolution(label) < 7
            assert h3.cell_to_parent(cell, h3.get_resolution(label)) == label
