"""Import a locations table (one row per location), the layout street-view competitions use.

Columns: an id (`id` or `location_id`), one path per view (`north`, `east`, `south`, `west`;
relative to `--images-dir`, empty when the view is missing), and optionally `lat`, `lon` and a
region column. Views may instead be vehicle-relative faces (`front`, `right`, `back`, `left`) with
an `azimuth` column (the vehicle's heading, degrees from north): each face goes to the compass view
it looks at most nearly. A group column (`group`, `sequence` or `collection`) names the capture
sequence: neighbouring captures of one sequence then share a `sequence_id` and never straddle
splits; without one, every location is a group of its own. Every readable view is re-encoded as JPEG into `data/raw/<image_id>.jpg` and
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
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from geolocate.errors import UserError
from geolocate.files import named_in, not_regular_reason
from geolocate.geo import is_position
from geolocate.schemas import LOCATIONS, VIEWS, conform
from geolocate.lock import locks_data

ID_COLUMNS = ("id", "location_id")
GROUP_COLUMNS = ("group", "sequence", "collection")
FACES = ("front", "right", "back", "left")  # clockwise from the vehicle's heading


@dataclass
class ImportResult:
    """What an import did."""

    locations: int = 0
    views: int = 0
    unreadable: list[dict] = field(default_factory=list)  # {"location_id", "view", "path", "reason", "line"}


def read_table(csv_path: Path) -> list[dict[str, str]]:
    """Rows of the CSV as dicts, each with its `line` number; UserError when the file is missing,
    is not a regular file, has no id/view columns or no rows."""
    reason = not_regular_reason(csv_path)
    if reason is not None:
        raise UserError(f"locations table {csv_path}: {reason}")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = [{**row, "line": reader.line_num} for row in reader]
            header = [c for c in reader.fieldnames or [] if isinstance(c, str)]
    except UnicodeDecodeError:
        raise UserError(f"{csv_path}: not UTF-8 text; save the locations table as UTF-8 CSV") from None
    except (OSError, csv.Error) as exc:
        raise UserError(f"cannot read locations table {csv_path}: {getattr(exc, 'strerror', None) or exc}") from None
    id_column = next((c for c in ID_COLUMNS if c in header), None)
    if id_column is None or not any(v in header for v in (*VIEWS, *FACES)):
        raise UserError(f"{csv_path}: expected an 'id' column and view columns (north, east, south, west, "
                        f"or front, right, back, left with azimuth); got {', '.join(header) or 'nothing'}")
    if any(f in header for f in FACES) and "azimuth" not in header:
        raise UserError(f"{csv_path}: front/right/back/left faces need an 'azimuth' column (the vehicle's heading, degrees from north)")
    if not rows:
        raise UserError(f"{csv_path}: no rows (only the header); add one row per location")
    return [{**row, "id": (row[id_column] or "").strip()} for row in rows]


def check_rows(rows: list[dict], csv_path: Path, base: Path, verdict: str = "nothing imported") -> None:
    """Refuse view paths leaving `base`, positions off the globe and ids given twice, naming
    the lines; nothing is imported from such a table.

    A table is often someone else's: a view `../../.ssh/id_rsa.png` must not reach the importer's
    other files. A NaN or a latitude of 91 would only fail later, deep inside H3 (`geolocate
    regions`); a duplicate id would keep one row and orphan the other row's photos.
    """
    problems, first_line = [], {}
    for row in rows:
        if row["id"] in first_line:
            problems.append(f"line {row['line']}: id {row['id']!r} already on line {first_line[row['id']]}")
        first_line.setdefault(row["id"], row["line"])
        problem = position_problem(row.get("lat"), row.get("lon"))
        if problem:
            problems.append(f"line {row['line']}: {problem}")
        if (azimuth := azimuth_problem(row.get("azimuth"))) is not None:
            problems.append(f"line {row['line']}: {azimuth}")
        for view in (*VIEWS, *FACES):  # vehicle faces are paths too
            name = (row.get(view) or "").strip()
            if name and isinstance(refused := confined_view(base, name), str):
                problems.append(f"line {row['line']}: {view} {refused}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UserError(f"{csv_path}: {'; '.join(problems[:3])}{more}; {verdict}")


def azimuth_problem(text: str | None) -> str | None:
    """Why an azimuth cell is not a finite heading in degrees, or None (empty is fine)."""
    if (text or "").strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return f"azimuth {text!r} is not a number"
    return None if math.isfinite(value) else f"azimuth {text!r} is not finite"


def position_problem(lat_text: str | None, lon_text: str | None) -> str | None:
    """Why (lat, lon) is not a position on Earth, or None (both empty is fine: no position)."""
    if (lat_text or "").strip() == "" and (lon_text or "").strip() == "":
        return None
    try:
        lat, lon = float(lat_text), float(lon_text)
    except (TypeError, ValueError):
        return f"lat/lon {lat_text!r}, {lon_text!r} are not numbers (leave both empty when unknown)"
    if not is_position(lat, lon):
        return f"lat/lon {lat_text!r}, {lon_text!r} are not a position (lat within ±90, lon within ±180)"
    return None


def confined_view(base: Path, name: str) -> Path | str:
    """The view's file under `base`, or why it is refused (`files.named_in`: absolute, `..`, a link).

    A table is often someone else's: its paths must not reach the importer's other files.
    """
    found = named_in(base, name, "--images-dir")
    return found if isinstance(found, Path) else f"path {name!r}: {found}"


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


def compass_slots(row: dict) -> list[tuple[str, float, str]]:
    """(compass view, bearing, column) of every filled view column of a row (a table's or a caller's dict).

    Vehicle-relative faces turn with the row's azimuth: a face looking at `azimuth + 90·k` goes to
    the cardinal view nearest that bearing (four faces 90° apart land on four distinct views).
    `import-locations` and `predict` both read views here, so a table means the same to both.
    """
    out = [(view, 90.0 * k, view) for k, view in enumerate(VIEWS)]
    azimuth = _float(row.get("azimuth"))
    if azimuth is not None:
        for k, face in enumerate(FACES):
            bearing = (azimuth + 90.0 * k) % 360.0
            slot = int(math.floor(bearing / 90.0 + 0.5)) % 4  # floor(x + .5): same rounding for every face
            out.append((VIEWS[slot], bearing, face))
    return [(view, angle, column) for view, angle, column in out if _filled(row.get(column))]


def view_paths(row: dict[str, str]) -> list[tuple[str, float, str]]:
    """(compass view, compass angle, path) of every non-empty view of a table row."""
    return [(view, angle, str(row[column]).strip()) for view, angle, column in compass_slots(row)]


def _filled(value) -> bool:
    return value is not None and (not isinstance(value, str) or value.strip() != "")


def group_of(row: dict[str, str]) -> str:
    """The row's sequence id: its group column when it has one, else its own location id."""
    group = next((row[c].strip() for c in GROUP_COLUMNS if (row.get(c) or "").strip()), None)
    return f"import:group:{group}" if group else f"import:{row['id']}"


def _float(text: str | float | None) -> float | None:
    if isinstance(text, (int, float)):
        return float(text)
    return float(text) if (text or "").strip() else None  # checked by `position_problem` first


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
    rows = [row for row in read_table(Path(csv_path)) if row["id"]]
    check_rows(rows, Path(csv_path), base)
    for row in rows:
        location = {"location_id": row["id"], "lat": _float(row.get("lat")), "lon": _float(row.get("lon")),
                    "region": (row.get(region_column) or "").strip() or None, "sequence_id": group_of(row)}
        for view, compass, name in view_paths(row):
            try:
                data_bytes, width, height = _jpeg(base / name)  # confined by `check_rows`
            except BadImage as exc:
                result.unreadable.append({"location_id": row["id"], "view": view, "path": name, "reason": str(exc), "line": row["line"]})
                continue
            image_id = import_id(row["id"], view, data_bytes)
            atomic.write_bytes(data.raw_photo(image_id), data_bytes)
            location[view] = image_id
            photos.append(_manifest_row(image_id, location, compass, width, height, len(data_bytes), data))
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
