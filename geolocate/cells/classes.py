"""The classes: the rows of cells.parquet sorted by cell_id; a photo's label is its row index."""

from __future__ import annotations

import polars as pl

from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.schemas import CELLS, conform


def load_classes(data: DataPaths) -> pl.DataFrame:
    """The class table: `label` (row index, UInt32) then the CELLS columns, sorted by cell_id.

    Raises:
        UserError: cells.parquet is missing or unreadable.
    """
    if not data.cells.exists():
        raise UserError(f"no {data.cells}; run `geolocate cells` first")
    try:
        cells = conform(pl.read_parquet(data.cells), CELLS)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"cannot read {data.cells} ({exc}); run `geolocate cells` again") from None
    return cells.sort("cell_id").with_row_index("label")


def cell_label(city: object, cell_id: str) -> str:
    """'Paris 4662': a class as a reader can tell it apart, its city and the H3 id's last
    significant hex digits (the trailing f's of an H3 index carry no information)."""
    return f"{city} {str(cell_id).rstrip('f')[-4:]}"
