"""The photo manifest: one row per photo, schema `schemas.MANIFEST`, written atomically.

Every writer (fetch, synth, prepare, clean-raw) goes through `merge_manifest` / `write_manifest`,
so re-running a step never duplicates rows: rows are keyed by `image_id`, the newer row wins.
"""

from __future__ import annotations

import polars as pl

from geolocate import atomic
from geolocate.errors import UserError
from geolocate.paths import ID_PATTERN, DataPaths
from geolocate.schemas import MANIFEST, conform, empty

# Written into the manifest's parquet key-value metadata, with the geolocate version: a manifest
# from a newer format is refused (naming its writer); an older one is conformed (new columns null)
# and migrated. Format 2: `license` and `parent_id` columns, source-qualified ids (`panoramax:…`).
MANIFEST_VERSION = 2
# `source`s of photos a user brought (`geolocate import`, `import-locations`): their area is theirs.
IMPORTED_SOURCES = ("local", "import")
MAPILLARY_LICENSE = "CC-BY-SA-4.0"  # all Mapillary imagery: what format-1 Mapillary rows are given


# Always read with any column subset: `check_manifest_rows` needs them to refuse unsafe rows
# (and `_migrate` needs `source`).
_GUARDED = ["image_id", "path", "processed_path", "source"]


def read_manifest(data: DataPaths, required: bool = False, columns: list[str] | None = None) -> pl.DataFrame:
    """The manifest, or an empty frame when there is none yet (UserError when `required`).

    Args:
        data: where the manifest lives.
        required: raise instead of returning an empty frame when there is no manifest.
        columns: read only these (reading 5 of the 19 columns is ~3× faster on 1M rows); the
            version and row guards still run, on the id and path columns read alongside.

    Raises:
        UserError: no manifest (when required), an unreadable or newer one, or unsafe rows.
    """
    schema = MANIFEST if columns is None else {c: MANIFEST[c] for c in dict.fromkeys(_GUARDED + columns)}
    if not data.manifest.exists():
        if required:
            raise UserError(f"no manifest at {data.manifest}; run `geolocate fetch` (or `geolocate synth`) first")
        return empty(MANIFEST if columns is None else {c: MANIFEST[c] for c in columns})
    try:
        version = check_manifest_version(data)
        manifest = _migrate(conform(pl.read_parquet(data.manifest, columns=_present(data, list(schema))), schema), version)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"cannot read {data.manifest} ({exc}); restore it from an export or re-run fetch") from None
    check_manifest_rows(manifest, data)
    return manifest if columns is None else manifest.select(columns)


def _present(data: DataPaths, wanted: list[str]) -> list[str]:
    """The `wanted` columns the file has (an older manifest lacks some; `conform` adds them null)."""
    have = set(pl.read_parquet_schema(data.manifest))
    return [c for c in wanted if c in have]


def check_manifest_rows(manifest: pl.DataFrame, data: DataPaths) -> None:
    """Refuse rows whose id or paths could name a file outside the data directory.

    geolocate writes ids matching `paths.ID_PATTERN` and `raw/<stem>.jpg` / `processed/<stem>.jpg`
    paths (`paths.photo_stem`); anything else (`../../etc/passwd`, an absolute path) came from
    elsewhere and is never opened.
    """
    if "image_id" not in manifest.columns:
        return
    image_id = pl.col("image_id")
    unsafe = ~image_id.str.contains(ID_PATTERN).fill_null(False)
    stem = image_id.str.replace(":", "_", literal=True)  # `paths.photo_stem`, on a whole column
    for column, folder in (("path", "raw/"), ("processed_path", "processed/")):  # those of them present
        if column in manifest.columns:
            value = pl.col(column)
            unsafe = unsafe | (value.is_not_null() & (value != "") & (value != folder + stem + ".jpg")).fill_null(True)
    bad = manifest.filter(unsafe)
    if bad.height:
        example = bad.row(0, named=True)
        raise UserError(f"{data.manifest}: {bad.height} rows have an image id or path that could leave {data.root} "
                        f"(e.g. image_id {example['image_id']!r}, path {example.get('path')!r}); remove them: geolocate "
                        "writes <source>:<id> ids and raw/<id>.jpg paths")


def write_manifest(data: DataPaths, df: pl.DataFrame) -> None:
    """Replace the manifest atomically with `df` (conformed, one row per image_id, sorted)."""
    from geolocate import __version__

    df = conform(df, MANIFEST).unique("image_id", keep="last", maintain_order=True).sort("image_id")
    with atomic.atomic_path(data.manifest) as tmp:
        df.write_parquet(tmp, metadata={"geolocate.manifest_version": str(MANIFEST_VERSION), "geolocate_version": __version__})


def _migrate(manifest: pl.DataFrame, version: int) -> pl.DataFrame:
    """Format 1 → 2: Mapillary rows get their licence (ids need nothing: bare digits stay valid)."""
    if version >= 2 or not {"license", "source"} <= set(manifest.columns):
        return manifest
    mapillary = (pl.col("source") == "mapillary") & pl.col("license").is_null()
    return manifest.with_columns(license=pl.when(mapillary).then(pl.lit(MAPILLARY_LICENSE)).otherwise(pl.col("license")))


def check_manifest_version(data: DataPaths) -> int:
    """The manifest's format; refuses one written by a newer geolocate (no key: it predates versioning)."""
    meta = pl.read_parquet_metadata(data.manifest)
    version = meta.get("geolocate.manifest_version", "0")
    if not version.isdigit() or int(version) > MANIFEST_VERSION:
        writer = f"geolocate {meta['geolocate_version']}" if "geolocate_version" in meta else "an unknown geolocate"
        raise UserError(f"{data.manifest} was written by {writer} (manifest format {version}); this geolocate "
                        f"reads up to format {MANIFEST_VERSION}: upgrade geolocate to use it")
    return int(version)


def training_photos(manifest: pl.DataFrame) -> pl.DataFrame:
    """The photos that become labelled samples: all but the 360° captures cut into views (their views stand in)."""
    if "parent_id" not in manifest.columns:
        return manifest
    cut = manifest["parent_id"].drop_nulls().unique()
    return manifest.filter(~pl.col("image_id").is_in(cut.to_list()))


def merge_manifest(data: DataPaths, new_rows: pl.DataFrame) -> pl.DataFrame:
    """Add or update rows by image_id (new rows win) and write; returns the merged manifest."""
    merged = pl.concat([read_manifest(data), conform(new_rows, MANIFEST)], how="vertical")
    merged = merged.unique("image_id", keep="last", maintain_order=True).sort("image_id")
    write_manifest(data, merged)
    return merged
