"""Import a locations table (one row per location), the layout street-view competitions use.

Columns: an id (`id` or `location_id`), one path per view (`north`, `east`, `south`, `west`;
relative to `--images-dir`, empty when the view is missing), and optionally `lat`, `lon` and a
region column. Every readable view is re-encoded as JPEG into `data/raw/<image_id>.jpg` and
registered in the manifest (source `import`); the location goes into `data/locations.parquet`.
A view that cannot be read is reported and left empty: the rest of the table still imports.

Image ids are digits (they become file names): "8" and 18 digits of a SHA-256 of the location id,
the view and the photo's bytes, so importing the same table twice gives the same ids and two
different photos practically never share one.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from geolocate.errors import UserError
from geolocate.schemas import LOCATIONS, VIEWS, conform
from geolocate.lock import locks_data

ID_COLUMNS = ("id", "location_id")


@dataclass
class ImportResult:
    """What an import did."""

    locations: int = 0
    views: int = 0
    unreadable: list[dict] = field(default_factory=list)  # {"location_id", "view", "path", "reason"}


def read_table(csv_path: Path) -> list[dict[str, str]]:
    """Rows of the CSV as dicts; UserError when it is missing or has no id/view columns."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise UserError(f"no locations table at {csv_path}") from None
    except UnicodeDecodeError:
        raise UserError(f"{csv_path}: not UTF-8 text; save the locations table as UTF-8 CSV") from None
    except (OSError, csv.Error) as exc:
        raise UserError(f"cannot read locations table {csv_path}: {getattr(exc, 'strerror', None) or exc}") from None
    id_column = next((c for c in ID_COLUMNS if c in header), None)
    if id_column is None or not any(v in header for v in VIEWS):
        raise UserError(f"{csv_path}: expected an 'id' column and view columns (north, east, south, west); got {', '.join(header) or 'nothing'}")
    return [{**row, "id": (row[id_column] or "").strip()} for row in rows]


def import_id(location_id: str, view: str, data: bytes) -> str:
    """A stable digit id for one imported view."""
    digest = hashlib.sha256(f"{location_id}\0{view}\0".encode() + hashlib.sha256(data).digest()).hexdigest()
    return "8" + str(int(digest[:16], 16) % 10**18).zfill(18)


def _jpeg(path: Path) -> tuple[bytes, int, int]:
    """The photo re-encoded as JPEG (EXIF-rotated, RGB); raises BadImage when unreadable."""
    from geolocate.data.images import load_rgb

    image = load_rgb(path)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), image.width, image.height


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


@locks_data("import-locations")
def import_locations(csv_path: Path, images_dir: Path | None, data, region_column: str = "region") -> ImportResult:
    """Copy the views of every row into `data` and add the locations and manifest rows.

    Args:
        csv_path: the table.
        images_dir: base of relative view paths (default: the table's directory).
        data: `DataPaths` of the project.
        region_column: the table's column holding the region label, when it has one.
    """
    from geolocate import atomic
    from geolocate.manifest import merge_manifest
    from geolocate.data.images import BadImage

    base = Path(images_dir) if images_dir else Path(csv_path).parent
    result, photos, locations = ImportResult(), [], []
    for row in read_table(Path(csv_path)):
        if not row["id"]:
            continue
        location = {"location_id": row["id"], "lat": _float(row.get("lat")), "lon": _float(row.get("lon")),
                    "region": (row.get(region_column) or "").strip() or None, "sequence_id": f"import:{row['id']}"}
        for degrees, view in enumerate(VIEWS):
            name = (row.get(view) or "").strip()
            if not name:
                continue
            try:
                data_bytes, width, height = _jpeg(base / name)
            except BadImage as exc:
                result.unreadable.append({"location_id": row["id"], "view": view, "path": str(base / name), "reason": str(exc)})
                continue
            image_id = import_id(row["id"], view, data_bytes)
            atomic.write_bytes(data.raw_photo(image_id), data_bytes)
            location[view] = image_id
            photos.append(_manifest_row(image_id, location, 90.0 * degrees, width, height, len(data_bytes), data))
            result.views += 1
        locations.append(location)
    result.locations = len(locations)
    if photos:
        merge_manifest(data, pl.DataFrame(photos))
    table = conform(pl.DataFrame(locations, infer_schema_length=None), LOCATIONS)
    _write_locations(data, table.unique("location_id", keep="last"))
    return result


def _manifest_row(image_id: str, location: dict, compass: float, width: int, height: int, size: int, data) -> dict:
    return {
        "image_id": image_id, "sequence_id": location["sequence_id"], "lat": location["lat"], "lon": location["lon"],
        "compass_angle": compass, "is_pano": False, "source": "import", "city": location["region"],
        "path": str(data.raw_photo(image_id).relative_to(data.root)), "width": width, "height": height, "bytes": size,
    }


def _write_locations(data, imported: pl.DataFrame) -> None:
    """Imported rows replace rows of the same id; grouped (manifest) locations are kept."""
    from geolocate import atomic

    if data.locations.exists():
        old = conform(pl.read_parquet(data.locations), LOCATIONS)
        imported = pl.concat([old.join(imported.select("location_id"), on="location_id", how="anti"), imported])
    atomic.write_parquet(data.locations, imported.sort("location_id"))
