"""Turn a folder of single photos with a `photos.csv` (file, lat, lon[, city]) into what
`bench_real.py` reads: a `locations.csv` with one view per place, photos copied beside it.

    python benchmarks/single_view_locations.py ../shared/real-photos/osv5m /tmp/osv5m-places
    python benchmarks/bench_real.py --photos /tmp/osv5m-places --out benchmarks/results/real-osv5m.md

Each photo is a place seen by one view (`north`, the column name does not matter for one view);
the `group` that keeps places of one capture together in a split is the `city` column when there
is one, else the photo itself. The copy (never a link: import refuses links out of its folder)
keeps the source folder untouched.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import polars as pl


def single_view_locations(source: Path, target: Path) -> int:
    """Write `target/locations.csv` and the photos; returns the number of places."""
    photos = pl.read_csv(source / "photos.csv", infer_schema_length=None)
    group = pl.col("city").cast(pl.Utf8) if "city" in photos.columns else pl.col("file")
    table = photos.select(pl.col("file").str.replace(r"\.[^.]+$", "").alias("id"), "lat", "lon",
                          pl.col("file").alias("north"), group.alias("group"))
    target.mkdir(parents=True, exist_ok=True)
    for name in table["north"]:
        shutil.copyfile(source / name, target / name)
    table.write_csv(target / "locations.csv")
    return table.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    print(f"{single_view_locations(args.source, args.target)} places → {args.target / 'locations.csv'}")


if __name__ == "__main__":
    main()
