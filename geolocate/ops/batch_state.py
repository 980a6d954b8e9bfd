"""What `geolocate batch` remembers between attempts: `data/batches/<batch>.json`.

Each finished step records a *key*: a SHA-256 of what it depends on, taken when it finished.
A step is skipped only when its key, computed again now, is the same, so a manifest that changed
since (another batch fetched, photos re-prepared), a deleted table or a different config makes
that step and those downstream of it run again, like `make`. The keys of every finished step are
refreshed after each step, because a later step may legitimately rewrite an earlier one's files
(split drops classes without a train photo from cells.parquet).

Inputs are hashed by content, not by modification time: a parquet file is hashed on the columns
the step reads, so `clean-raw` clearing the manifest's `path` column does not re-run training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from geolocate import atomic
from geolocate.artifacts.versions import upgrade
from geolocate.config import GeolocateConfig
from geolocate.ops.clean_raw import raw_files
from geolocate.paths import ProjectPaths, safe_name

FORMAT = "geolocate.batch"
VERSION = 1

# (file, columns) each step's result depends on; columns None = the whole file's bytes.
_M = "manifest"
_INPUTS: dict[str, list[tuple[str, tuple[str, ...] | None]]] = {
    "fetch": [],
    "synth": [],
    "prepare": [(_M, ("image_id", "processed_path"))],
    "cells": [(_M, ("image_id", "lat", "lon", "city", "batch")), ("cells", None), ("labels", None)],
    "split": [(_M, ("image_id", "sequence_id", "creator_id", "captured_at", "lat", "lon")), ("cells", None),
              ("labels", None), ("split", None)],
    "sanity": [(_M, ("image_id", "sequence_id", "processed_path")), ("cells", None), ("labels", None), ("split", None)],
    "locations": [(_M, ("image_id", "processed_path", "lat", "lon", "compass_angle", "sequence_id", "creator_id", "captured_at"))],
    "regions": [("locations", None), ("regions", None), ("location_split", None)],
    # a four-view run reads the locations, regions and their split; a v1 run the cells, labels and split
    "train": [(_M, ("image_id", "processed_path", "lat", "lon")), ("cells", None), ("labels", None), ("split", None),
              ("locations", None), ("regions", None), ("location_split", None)],
    "export": [],
    "clean-raw": [],
}
# Config tables (or dotted keys) each step's result depends on.
_CONFIG: dict[str, tuple[str, ...]] = {
    "fetch": ("fetch",),
    "synth": ("synth",),
    "prepare": ("data.max_size", "data.jpeg_quality"),
    "cells": ("cells",),
    "split": ("split", "cells"),
    "sanity": ("cells",),
    "locations": ("views",),
    "regions": ("regions", "split"),
    "train": ("model", "train", "data", "eval"),
    "export": (),
    "clean-raw": (),
}


@dataclass
class BatchState:
    """The state file of one batch: {step: {key, finished, detail, ...}}."""

    path: Path
    batch: str
    steps: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, paths: ProjectPaths, batch: str) -> "BatchState":
        path = paths.data.root / "batches" / f"{safe_name(batch, 'batch')}.json"
        steps: dict[str, dict[str, Any]] = {}
        if path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                doc = {}  # unreadable (hand-edited): start over, every step re-checks its inputs
            if doc:
                steps = dict(upgrade(doc, fmt=FORMAT, current=VERSION, migrations={}, source=path).get("steps", {}))
        return cls(path, batch, steps)

    def save(self) -> None:
        from geolocate import __version__

        atomic.write_json(self.path, {"format": FORMAT, "version": VERSION, "versions": {"geolocate": __version__},
                                      "batch": self.batch, "steps": self.steps})

    def forget(self, step: str) -> None:
        """Drop `step`'s record before running it: a step that fails midway is not done."""
        if self.steps.pop(step, None) is not None:
            self.save()


def step_key(step: str, cfg: GeolocateConfig, paths: ProjectPaths, record: dict[str, Any]) -> str:
    """The SHA-256 of everything `step`'s result depends on, as it is now."""
    digest = hashlib.sha256(step.encode())
    config = cfg.model_dump(mode="json")
    four_view = step == "train" and cfg.train.phase  # the scout-sniper's settings train it too
    for dotted in _CONFIG[step] + (("scout",) if four_view else ()):
        digest.update(f"{dotted}={json.dumps(_get(config, dotted), sort_keys=True)}".encode())
    data = paths.data
    for name, columns in _INPUTS[step]:
        digest.update(f"{name}:{file_digest(getattr(data, name), columns)}".encode())
    for extra in _outputs(step, paths, record):
        digest.update(f"{extra}:{file_digest(extra, None)}".encode())
    if step in ("fetch", "synth"):  # done while the manifest holds the same photos of these batches
        digest.update(batch_photos_digest(data.manifest, record.get("batches") or []).encode())
    if step == "clean-raw":  # done while raw/ holds nothing new
        digest.update(json.dumps(sorted(p.name for p in raw_files(data))).encode())
    digest.update(json.dumps({k: record.get(k) for k in ("batches", "run_id", "export")}, sort_keys=True).encode())
    return digest.hexdigest()


def _outputs(step: str, paths: ProjectPaths, record: dict[str, Any]) -> list[Path]:
    """Files a step produced that must still be there, unchanged, for it to count as done."""
    if step == "train" and record.get("run_id"):
        return [paths.run(record["run_id"]) / "metrics.json"]
    if step == "export" and record.get("export"):
        return [Path(record["export"])]
    return []


def file_digest(path: Path, columns: tuple[str, ...] | None) -> str:
    """SHA-256 of a file, or of some columns of a parquet file ('absent' when there is none)."""
    if not path.is_file():
        return "absent"
    if columns is None:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    present = set(pl.read_parquet_schema(path))
    frame = pl.read_parquet(path, columns=[c for c in columns if c in present])
    frame = frame.select([pl.col(c) if c in present else pl.lit(None).alias(c) for c in columns])
    # hash_rows is stable within one polars version; an upgrade only re-runs the steps once.
    rows = frame.hash_rows(seed=0).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()


def batch_photos_digest(manifest: Path, batches: list[str | None]) -> str:
    """SHA-256 of the sorted image ids of `batches` in the manifest ('absent' without one)."""
    if not manifest.is_file():
        return "absent"
    frame = pl.read_parquet(manifest, columns=["image_id", "batch"])
    ids = frame.filter(pl.col("batch").is_in([b for b in batches if b])).sort("image_id")["image_id"].to_list()
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
