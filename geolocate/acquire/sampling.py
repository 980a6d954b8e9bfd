"""Spread a sample over an area: `--max-per-city N` takes N photos from everywhere, not the first N.

The priority order interleaves spatial bins (one search tile each) round-robin, and inside a bin
interleaves sequences round-robin, each level shuffled with the seed. Taking the first N of that
order gives every bin about N / bins photos (a bin with fewer gives all it has), drawn from as
many different sequences as possible. The order depends only on the pool and the seed, so a
re-run with the same pool picks the same photos and finds them already on disk.
"""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import zip_longest
from typing import Iterable, Sequence

import polars as pl

from geolocate.acquire.tiling import spatial_bin


def spread_order(pool: pl.DataFrame, bin_deg: float, seed: int) -> list[str]:
    """Every image_id of `pool`, in the order a spread-out sample should take them.

    Args:
        pool: candidate rows with image_id, sequence_id, lat, lon.
        bin_deg: side of the spatial bins in degrees (the search tile size).
        seed: shuffle seed.
    """
    rng = random.Random(seed)
    bins: dict[tuple[int, int], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in pool.sort("image_id").iter_rows(named=True):
        key = spatial_bin(row["lon"], row["lat"], bin_deg)
        bins[key][row["sequence_id"] or f"none:{row['image_id']}"].append(row["image_id"])
    per_bin = []
    for key in sorted(bins):
        sequences = [ids for _, ids in sorted(bins[key].items())]
        for ids in sequences:
            rng.shuffle(ids)
        rng.shuffle(sequences)
        per_bin.append(_round_robin(sequences))
    rng.shuffle(per_bin)
    return _round_robin(per_bin)


def _round_robin(groups: Sequence[Iterable[str]]) -> list[str]:
    """One from each group in turn until all are exhausted."""
    sentinel = object()
    return [item for layer in zip_longest(*groups, fillvalue=sentinel) for item in layer if item is not sentinel]
