"""A project is a directory with a `config.toml`: `geolocate init` writes it, `config set` edits it.

Every command run in the directory reads that file (`config.default_config_path`), so the settings
given once at `init` stick for `import`, `cells`, `split`, `train`, `evaluate`… The file is
generated from the pydantic models: every key, with its description as a comment, at the value
the chosen profile and `--set` overrides resolve to. Keys the profile or `--set` named are marked,
so the file says where each non-default came from, and it never drifts from the models.
"""

from __future__ import annotations

import copy
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from geolocate import atomic
from geolocate.config import (
    GeolocateConfig, apply_overrides, config_keys, load_config, packaged_config_path, parse_override,
    project_config_path, suggest_key, validate_config,
)
from geolocate.errors import UserError

# Directories commands re-create or download. releases/ is left out on purpose: a frozen release
# is the thing a project keeps (and may commit or ship).
IGNORED_PATHS = ("data", "runs", "models", "exports")
_WIDTH = 100
_MARK = re.compile(r"^#\s*(profile \S+|--set|config set)$")  # the marks init and `config set` write


@dataclass
class InitResult:
    """What `init_project` wrote."""

    config: Path
    gitignore: Path
    profile: str | None
    changed: dict[str, str] = field(default_factory=dict)  # dotted key → "profile v1" or "--set"
    ignored: list[str] = field(default_factory=list)  # .gitignore lines added (none: all were there)


def init_project(directory: Path, profile: str | None = None, overrides: list[str] | None = None) -> InitResult:
    """Write `directory/config.toml` (and the `.gitignore` entries it needs); never overwrite a config.

    Raises:
        UserError: a config already there, a bad profile or override, or an unwritable directory.
    """
    directory = Path(directory)
    target = project_config_path(directory)
    if target.exists():
        inside = "" if directory.resolve() == Path.cwd().resolve() else f" (run inside {directory})"
        raise UserError(f"{target} already exists; change a key there with `geolocate config set KEY VALUE`{inside}, "
                        "or init another directory")
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file, not a directory; give a new or existing directory")
    cfg = load_config(packaged_config_path(), profile, overrides or [])
    marks = _marks(profile, overrides or [])
    _rebase_files(cfg, [key for key, mark in marks.items() if mark == "--set"], directory)
    command = " ".join(["geolocate init", *([f"--profile {profile}"] if profile else []), *(f"--set {o}" for o in overrides or [])])
    command = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], command)  # a newline would end the comment
    atomic.write_text(target, render_config(cfg, marks, command))
    gitignore, added = write_gitignore(directory, cfg)
    return InitResult(target, gitignore, profile, marks, added)


def _rebase_files(cfg: GeolocateConfig, keys: list[str], directory: Path) -> None:
    """A file named with `--set` (`model.weights=w.safetensors`) is relative to where init runs;
    commands run inside the project, so it is written relative to the project instead.
    `[paths]` are the project's own directories: relative to the project already."""
    for key in keys:
        *tables, leaf = key.split(".")
        if not tables or tables[0] == "paths":
            continue
        table = cfg
        for part in tables:
            table = getattr(table, part)
        value = getattr(table, leaf)
        if isinstance(value, Path) and not value.is_absolute():
            setattr(table, leaf, Path(os.path.relpath(Path.cwd() / value, directory.resolve())))


def _marks(profile: str | None, overrides: list[str]) -> dict[str, str]:
    """Dotted key → where its value came from: the profile's table, then `--set` (which wins)."""
    import tomllib

    marks: dict[str, str] = {}
    if profile:
        table = tomllib.loads(packaged_config_path().read_text(encoding="utf-8"))["profiles"][profile]
        marks |= {key: f"profile {profile}" for key in _leaves(table)}
    return marks | {parse_override(item)[0]: "--set" for item in overrides}


def _leaves(table: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in table.items():
        out += _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return out


# ---------------------------------------------------------------- rendering


def render_config(cfg: GeolocateConfig, marks: dict[str, str], command: str) -> str:
    """`cfg` as a commented TOML file; `tomllib.loads` of it validates back to `cfg` (a test checks)."""
    from geolocate import __version__

    header = [
        "geolocate project configuration. This directory is the project: every geolocate command run",
        "here reads this file, and the [paths] below are relative to it.",
        f"Made by: {command} (geolocate {__version__}).",
        'Keys marked "# profile …" come from that profile, "# --set" from the command line; every other',
        "key is geolocate's default, written out with its description so this project keeps it.",
        "Change a key: geolocate config set train.epochs 3 (checked; comments are kept).",
        "See the values: geolocate config show; every key explained: geolocate config --explain.",
        "The Mapillary token is never read from here: export MAPILLARY_TOKEN=MLY|...",
    ]
    lines = [f"# {line}" for line in header] + [""]
    _render_table(GeolocateConfig, cfg.model_dump(mode="json"), marks, "", lines)
    return "\n".join(lines).rstrip() + "\n"


def _render_table(model: type[BaseModel], values: dict[str, Any], marks: dict[str, str], prefix: str, lines: list[str]) -> None:
    """Leaves first (TOML puts a table's own keys before its sub-tables), each under its description."""
    import tomlkit

    tables = []
    for name, spec in model.model_fields.items():
        key = f"{prefix}{name}"
        if key == "source":
            continue  # where the values were read from: set when reading
        if _is_table(spec.annotation):
            tables.append((name, spec))
            continue
        lines += _comment(spec.description or "")
        value, mark = values.get(name), f"  # {marks[key]}" if key in marks else ""
        lines.append(f"# {name} =  (unset){mark}" if value is None else f"{name} = {tomlkit.item(value).as_string()}{mark}")
    for name, spec in tables:
        lines += ["", f"[{prefix}{name}]  # {spec.description}"]
        _render_table(spec.annotation, values.get(name) or {}, marks, f"{prefix}{name}.", lines)


def _is_table(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, _WIDTH - 2)]


def write_gitignore(directory: Path, cfg: GeolocateConfig) -> tuple[Path, list[str]]:
    """Add the project's generated directories to `directory/.gitignore` (kept lines stay; none twice)."""
    target = Path(directory) / ".gitignore"
    have = target.read_text(encoding="utf-8").splitlines() if target.is_file() else []
    present = {line.strip().strip("/") for line in have}
    wanted = [str(getattr(cfg.paths, name)) for name in IGNORED_PATHS]
    added = [f"/{p.strip('/')}/" for p in wanted if not Path(p).is_absolute() and ".." not in Path(p).parts
             and p.strip("/") not in present]
    if added:
        note = ["# geolocate: photos, runs, models and exports are re-created or downloaded, not versioned.",
                "# releases/ is not ignored on purpose: a frozen release is what a project keeps."]
        atomic.write_text(target, "\n".join([*have, *([""] if have else []), *note, *added]) + "\n")
    return target, added


# ---------------------------------------------------------------- editing


def set_config_key(path: Path, key: str, text: str) -> tuple[Any, Any]:
    """Set dotted `key` to the TOML value `text` in the config file `path`; returns (old, new).

    The whole file is validated with the new value before it is written (atomically); its comments
    and layout are kept. Setting a split share rescales the other two, as `--set` does.

    Raises:
        UserError: no such file, the packaged defaults, an unknown key (the nearest one suggested),
            or a value the config refuses.
    """
    import tomlkit

    current = _check_editable(path, key)
    before = current.model_dump(mode="json", exclude={"source", "profile"})
    after = copy.deepcopy(before)
    apply_overrides(after, [f"{key}={text}"])  # on the resolved values: shares the file omits rescale too
    validate_config(after, "config set")
    old, new = _flat(before), _flat(after)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    for dotted in (k for k in new if new[k] != old.get(k)):
        _set_in_doc(doc, dotted, new[dotted])
    atomic.write_text(path, tomlkit.dumps(doc))
    return old.get(key), new.get(key)


def _check_editable(path: Path, key: str) -> GeolocateConfig:
    """The file's config as it stands, once `key` is known to be settable in it."""
    if path.resolve() == packaged_config_path().resolve():
        raise UserError("refusing to edit geolocate's packaged defaults; make a project first: geolocate init [DIR]")
    if not path.is_file():
        raise UserError(f"no {path}: make this directory a project first (geolocate init), or pass --config FILE")
    if key in ("version", "profile"):
        raise UserError(f"{key} is written by geolocate init, not set; for another profile run with --profile NAME "
                        "or init a new project")
    if key in config_keys(tables=True) and key not in config_keys():
        example = next(k for k in config_keys() if k.startswith(key + "."))
        raise UserError(f"config set {key}: a table, not a key; set one of its keys, e.g. {example}")
    if key not in config_keys():
        raise UserError(f"config set: unknown key {key!r}{suggest_key(key)}; `geolocate config --explain` lists every key")
    return load_config(path)  # a file already broken is named as such, not blamed on the new value


def _flat(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _set_in_doc(doc, dotted: str, value: Any) -> None:
    """Set a leaf in a tomlkit document, creating missing tables; an init mark becomes `# config set`."""
    import tomlkit

    *parents, leaf = dotted.split(".")
    node = doc
    for part in parents:
        if part not in node:
            node.add(part, tomlkit.table())
        node = node[part]
    old = node.get(leaf)
    node[leaf] = value
    comment = old.trivia.comment if hasattr(old, "trivia") else ""
    if _MARK.match(comment):  # the value no longer comes from the profile or init's --set
        node[leaf].comment("config set")
        node[leaf].trivia.comment_ws = "  "
