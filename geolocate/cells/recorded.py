"""The settings a stage ran with, recorded beside its tables, and the config later stages judge by.

`cells`, `split`, `regions` and `locations` write the values they used (with "auto" resolved:
the resolution `cells` chose, not "auto") to `data/stage_settings.json`, one entry per stage.
A later stage that reads their tables calls `judged_config`: the recorded values replace the
config's, so `geolocate sanity` after `geolocate cells --res 3 --set cells.min_samples=1` checks
the minimum the classes were built with, not the default. A value given on the command line
(`--set`) that contradicts a recorded one is a one-line error naming both: the tables on disk
were not built that way, and silently judging them by another value would be a lie.

A stage re-running itself uses the config it is given and overwrites its own entry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from geolocate import atomic
from geolocate.config import AUTO, GeolocateConfig, parse_override
from geolocate.errors import UserError
from geolocate.paths import DataPaths

_SPLIT = ("split.train", "split.val", "split.test", "split.seed", "split.group_by", "split.buffer", "split.near_m")
# The keys each stage records: those it reads to build its tables.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "cells": ("cells.resolution", "cells.min_samples", "cells.sparse", "cells.max_merge_levels", "cells.res8_min_images"),
    "split": (*_SPLIT, "cells.max_dominance"),  # the cap is a [cells] key that `split` applies
    "regions": ("regions.source", "regions.column", "regions.h3_resolution", "regions.min_samples", *_SPLIT),
    "locations": ("views.radius_m", "views.tolerance_deg"),
}
# What a stage's tables were built from, in pipeline order: a reader of split.parquet judges by both.
UPSTREAM = {"split": ("cells",), "sanity": ("cells", "split"), "train": ("cells", "split"), "evaluate": ("cells", "split"),
            "regions": ("locations",), "scout": ("locations", "regions")}


def config_value(cfg: GeolocateConfig, key: str) -> Any:
    """The value of a dotted key ('cells.min_samples') in `cfg`."""
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def stage_values(cfg: GeolocateConfig, stage: str, resolved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values of `STAGE_KEYS[stage]`: `resolved` ones (e.g. the resolution "auto" chose), else `cfg`'s."""
    resolved = resolved or {}
    return {key: resolved.get(key, config_value(cfg, key)) for key in STAGE_KEYS[stage]}


def record_settings(data: DataPaths, stage: str, values: dict[str, Any]) -> None:
    """Record the dotted `values` `stage` ran with (replacing what it recorded before)."""
    atomic.write_json(data.stage_settings, {**recorded_settings(data), stage: values})


def recorded_settings(data: DataPaths) -> dict[str, dict[str, Any]]:
    """Every stage's recorded settings ({} when none ran since settings were recorded)."""
    if not data.stage_settings.exists():
        return {}
    try:
        settings = json.loads(data.stage_settings.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {data.stage_settings} ({exc}); run `geolocate cells` and `geolocate split` again") from None
    return settings if isinstance(settings, dict) else {}


def given_keys(sets: Iterable[str] | None) -> set[str]:
    """The dotted keys a command's `--set` options name."""
    return {parse_override(item)[0] for item in sets or ()}


def judged_config(cfg: GeolocateConfig, data: DataPaths, stages: Iterable[str], given: Iterable[str] = ()) -> GeolocateConfig:
    """`cfg` with the settings `stages` recorded in place of its own.

    Args:
        cfg: the resolved config of the command.
        data: the data directory holding the recorded settings.
        stages: the stages whose tables the command reads, in pipeline order (`UPSTREAM[command]`).
        given: the dotted keys set on the command line (`given_keys(inv.sets)`).

    Raises:
        UserError: a given key whose value contradicts the recorded one (one line naming both).
    """
    recorded, given = recorded_settings(data), set(given)
    updates: dict[str, Any] = {}
    for stage in stages:
        for key, value in (recorded.get(stage) or {}).items():
            if key in given and not _agree(config_value(cfg, key), value):
                raise UserError(f"{key}: `geolocate {stage}` ran with {value!r} but --set gives {config_value(cfg, key)!r}; "
                                f"run `geolocate {stage} --set {key}=...` again to change it, or drop the --set")
            updates[key] = value
    return _with_values(cfg, updates)


def _agree(given: Any, recorded: Any) -> bool:
    if given == AUTO:  # "auto" means whatever fitted the data, which the stage resolved and recorded
        return True
    if isinstance(given, float) or isinstance(recorded, float):
        return isinstance(recorded, (int, float)) and math.isclose(float(given), float(recorded), rel_tol=1e-9)
    return given == recorded


def _with_values(cfg: GeolocateConfig, updates: dict[str, Any]) -> GeolocateConfig:
    """A copy of `cfg` with the dotted `updates` (two levels: table.key) applied and validated."""
    tables: dict[str, dict[str, Any]] = {}
    for key, value in updates.items():
        table, _, leaf = key.partition(".")
        tables.setdefault(table, {})[leaf] = value
    changed = {}
    for table, values in tables.items():
        current = getattr(cfg, table)
        try:
            changed[table] = current.model_validate({**current.model_dump(), **values})
        except ValueError as exc:
            raise UserError(f"recorded settings for [{table}] are not valid ({exc.__class__.__name__}); "
                            f"run the stage that wrote {table}.* again") from None
    return cfg.model_copy(update=changed)
