"""The checkpoint sidecar: the JSON that makes a weights file self-describing.

It holds what `predict` needs besides the tensors (model name and kwargs, the classes with
their centroids, preprocessing, temperature, position) and what a human needs to trust it
(resolved config, metrics, library versions, data fingerprint, epoch, run id). Its contract is
in docs/ARCHITECTURE.md ("Checkpoints"); `weights_id` ties it to one weights file (see
`checkpoint.py`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from geolocate.artifacts.versions import library_versions, upgrade
from geolocate.errors import UserError

FORMAT = "geolocate.checkpoint"
VERSION = 1

_DEFAULTS: dict[str, Any] = {
    "classes": [],
    "preprocessing": None,
    "temperature": 1.0,
    "position": "top1",
    "weighted_topk": 5,
    "config": {},
    "metrics": {},
    "versions": {},
    "data_fingerprint": None,
    "epoch": None,
    "run_id": None,
}


def build_sidecar(model: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar of `model` saved with `meta` (classes, config, metrics, epoch, run_id, ...).

    `meta["model"]` wins when given; otherwise the model describes itself through `model_name`,
    `model_kwargs` and `num_classes` (the registry sets them). Preprocessing defaults to the
    model's `data_config`. Keys beyond the contract (a stage's own fields) are kept as they are.
    """
    extra = dict(meta)
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "model": _describe_model(model, extra)}
    for key, default in _DEFAULTS.items():
        doc[key] = extra.pop(key, default)
    extra.pop("num_classes", None)
    if doc["preprocessing"] is None:
        doc["preprocessing"] = getattr(model, "data_config", None)
    doc["versions"] = {**library_versions(), **(doc["versions"] or {})}
    doc.update(extra)
    return json.loads(dump_sidecar(doc))


def _describe_model(model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    given = dict(meta.pop("model", None) or {})
    name = given.get("name", getattr(model, "model_name", None))
    if name is None:
        raise ValueError("save_checkpoint needs meta['model'] or a model with `model_name` (create it with geolocate.models.create_model)")
    kwargs = given.get("kwargs", getattr(model, "model_kwargs", None)) or {}
    num_classes = given.get("num_classes", meta.get("num_classes", getattr(model, "num_classes", None)))
    if num_classes is None:
        num_classes = len(meta.get("classes") or [])
    return {**given, "name": name, "kwargs": dict(kwargs), "num_classes": int(num_classes)}


def dump_sidecar(doc: Mapping[str, Any]) -> str:
    """JSON text of a sidecar; numpy and torch scalars become numbers, NaN becomes null."""
    return json.dumps(_plain(doc), indent=2, allow_nan=False) + "\n"


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples → lists, numpy/torch scalars and arrays → Python, Paths → str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return _plain(value.tolist())
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint sidecar: {value!r:.80}")


def parse_sidecar(text: str, source: object) -> dict[str, Any]:
    """Parse and migrate sidecar text; an unknown format or a newer version is a UserError."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: not a valid checkpoint sidecar ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise UserError(f"{source}: not a valid checkpoint sidecar (nested too deeply)") from None
    return migrate_sidecar(doc, source)


def migrate_sidecar(meta: dict[str, Any], source: object = "checkpoint sidecar") -> dict[str, Any]:
    """Bring a sidecar of any known version up to `VERSION`.

    Raises:
        UserError: another format, or a version newer than this geolocate reads (the message
            names the geolocate that wrote it).
    """
    return upgrade(meta, fmt=FORMAT, current=VERSION, migrations={0: _v0_to_v1}, source=source)


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (before `format`): `model` was a bare name with `model_kwargs` and `num_classes`
    beside it, and `classes` could be a plain list of cell ids."""
    if "model" not in doc:
        raise UserError("not a geolocate checkpoint sidecar: it has neither 'format' nor 'model'")
    doc.pop("version", None)
    model = doc.pop("model")
    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, dict) or not isinstance(doc.get("classes") or [], list):
        raise UserError("not a geolocate checkpoint sidecar: 'model' must be a name or an object and 'classes' a list")
    model.setdefault("kwargs", doc.pop("model_kwargs", {}) or {})
    classes = [c if isinstance(c, dict) else {"cell_id": str(c)} for c in doc.get("classes") or []]
    model.setdefault("num_classes", doc.pop("num_classes", len(classes)))
    out = {"format": FORMAT, "version": 1, "model": model}
    out.update({key: doc.pop(key, default) for key, default in _DEFAULTS.items()})
    out["classes"] = classes
    out.update(doc)  # unknown keys are kept, not silently dropped
    return out
