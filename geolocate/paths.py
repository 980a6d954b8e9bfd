"""Every on-disk name in one place, and the guards that keep ids inside the data directory.

Photo ids become file names, so an id is accepted only when its source's pattern matches it:
bare digits (Mapillary and synthetic ids from before sources were named; still valid),
`mapillary:<digits>`, `synth:<digits>`, `panoramax:<uuid>`, `local:<hex sha-256 prefix>`, each
optionally followed by `@<azimuth>` for a perspective view cut from a 360° capture (`@090`).
`photo_stem` is the one place an id becomes a file name (the colon, awkward on some file
systems, becomes `_`). Names (cities, runs, tags) are slugged
to `[a-z0-9._-]` and may not start with a dot, so nothing the user or the API supplies can climb
out of the directory it belongs in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from geolocate.errors import UserError

if TYPE_CHECKING:  # pydantic and the config models stay out of CLI start-up (`--help`)
    from geolocate.config import PathsConfig

# Per source, the token after "<source>:"; the bare-digit form predates source-qualified ids.
SOURCE_TOKENS = {
    "mapillary": r"[0-9]{1,30}",
    "synth": r"[0-9]{1,30}",
    "panoramax": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "local": r"[0-9a-f]{16,64}",
}
VIEW_SUFFIX = r"(?:@[0-9]{3})?"
ID_PATTERN = "^(?:[0-9]{1,30}|" + "|".join(f"{s}:{t}" for s, t in SOURCE_TOKENS.items()) + ")" + VIEW_SUFFIX + "$"
_ID = re.compile(ID_PATTERN)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def is_valid_image_id(image_id: object) -> bool:
    """True when `image_id` matches its source's id pattern (safe as a file name once `photo_stem` maps it)."""
    return isinstance(image_id, str) and bool(_ID.fullmatch(image_id))  # `$` alone also matches before a final "\n"


def check_image_id(image_id: str) -> str:
    """Return `image_id` or raise ValueError when it could not safely name a file."""
    if not is_valid_image_id(image_id):
        raise ValueError(f"invalid image id {image_id!r}: expected digits or <source>:<id> (mapillary, panoramax, local, synth)")
    return image_id


def qualified_id(source: str, token: str) -> str:
    """`<source>:<token>`, checked against the source's pattern (ValueError otherwise)."""
    return check_image_id(f"{source}:{token}")


def photo_stem(image_id: str) -> str:
    """The file name stem of a (valid) id: 'panoramax:<uuid>' → 'panoramax_<uuid>', digits unchanged."""
    return check_image_id(image_id).replace(":", "_", 1)


def id_from_stem(stem: str) -> str | None:
    """The id a file stem names (inverse of `photo_stem`), None when it names none."""
    image_id = stem.replace("_", ":", 1)
    return image_id if is_valid_image_id(image_id) else None


def view_id(image_id: str, azimuth_deg: float) -> str:
    """The id of the perspective view at `azimuth_deg` cut from the 360° capture `image_id`."""
    return check_image_id(f"{image_id}@{round(azimuth_deg) % 360:03d}")


def slug(name: str) -> str:
    """ASCII lower-case slug: 'Saint-Étienne' → 'saint-etienne'. Also the matching key for city lookup."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return text


def safe_name(name: str, what: str = "name") -> str:
    """`slug(name)` when it is a usable path component; UserError otherwise."""
    out = slug(name)
    if not _NAME.fullmatch(out):
        raise UserError(f"{what} {name!r} cannot be used as a file name; use letters, digits, '-', '_' or '.'")
    return out


@dataclass(frozen=True)
class DataPaths:
    """Files under `paths.data`."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.parquet"

    @property
    def cells(self) -> Path:
        return self.root / "cells.parquet"

    @property
    def labels(self) -> Path:
        return self.root / "labels.parquet"

    @property
    def split(self) -> Path:
        return self.root / "split.parquet"

    @property
    def split_report(self) -> Path:
        return self.root / "split_report.json"

    @property
    def stage_settings(self) -> Path:
        """The settings `cells`, `split`, `regions` and `locations` ran with (later stages judge by them)."""
        return self.root / "stage_settings.json"

    @property
    def kpi_history(self) -> Path:
        return self.root / "kpi_history.parquet"

    @property
    def fetch_state(self) -> Path:
        return self.root / "fetch_state"

    @property
    def locations(self) -> Path:
        return self.root / "locations.parquet"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def regions(self) -> Path:
        """Scout-sniper classes: one row per region, centroid from train locations."""
        return self.root / "regions.parquet"

    @property
    def location_split(self) -> Path:
        """Scout-sniper split: location_id → region, split."""
        return self.root / "location_split.parquet"

    @property
    def location_split_report(self) -> Path:
        """What `regions` printed: the regions, the split's counts, what it left out, leakage."""
        return self.root / "location_split_report.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def raw_photo(self, image_id: str) -> Path:
        return self.raw / f"{photo_stem(image_id)}.jpg"

    def processed_photo(self, image_id: str) -> Path:
        return self.processed / f"{photo_stem(image_id)}.jpg"

    def relative(self, path: Path) -> str:
        """`path` as the manifest records it: relative to the data directory, '/'-separated."""
        return path.relative_to(self.root).as_posix()

    def source_state(self, source: str) -> Path:
        """Fetch state of one source; Mapillary's stays at the top (where it was before sources had names)."""
        return self.fetch_state if source == "mapillary" else self.fetch_state / safe_name(source, "source")

    def area_state(self, area: str, source: str = "mapillary") -> Path:
        return self.source_state(source) / f"{safe_name(area, 'area name')}.json"

    def area_candidates(self, area: str, source: str = "mapillary") -> Path:
        """Every image fetch found in `area` (metadata only, no URL), so done boxes need no re-query."""
        return self.source_state(source) / f"{safe_name(area, 'area name')}.candidates.parquet"


@dataclass(frozen=True)
class ProjectPaths:
    """The resolved `[paths]` table."""

    data_root: Path
    runs: Path
    models: Path
    releases: Path
    exports: Path

    @classmethod
    def from_config(cls, cfg: PathsConfig) -> "ProjectPaths":
        return cls(cfg.data, cfg.runs, cfg.models, cfg.releases, cfg.exports)

    @property
    def data(self) -> DataPaths:
        return DataPaths(self.data_root)

    @property
    def latest_run(self) -> Path:
        return self.runs / "latest"

    @property
    def best_weights(self) -> Path:
        return self.models / "best.safetensors"

    @property
    def best_sidecar(self) -> Path:
        return self.models / "best.json"

    @property
    def scout_best(self) -> Path:
        """The best scout-sniper bundle (its own directory: v1's models/best stays a v1 model)."""
        return self.models / "scout-sniper"

    def run(self, run_id: str) -> Path:
        return self.runs / safe_name(run_id, "run id")

    def release(self, tag: str) -> Path:
        return self.releases / safe_name(tag, "tag")
