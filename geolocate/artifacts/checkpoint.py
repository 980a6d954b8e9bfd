"""Self-describing checkpoints: `<stem>.safetensors` (weights) + `<stem>.json` (sidecar).

Nothing is unpickled. Weights are safetensors; a legacy `.pt/.pth/.ckpt/.bin` state dict is
read only through `torch.load(weights_only=True)` and only next to a sidecar, so a pickle that
carries code is refused before any of it runs.

Weights and sidecar are two files, replaced one after the other (weights first). To make sure a
reader never pairs the weights of one checkpoint with the sidecar of another (a promotion of
`models/best` happening while `predict` starts), each save draws a random `weights_id` that goes
into both the sidecar and the safetensors header; a reader that sees different ids re-reads
until they agree, and fails with a clear message if they never do (a write was interrupted).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

from geolocate.artifacts.resolve import COMPANION_SUFFIXES, HOW_TO_CREATE, PICKLE_SUFFIXES, file_of, resolve_checkpoint
from geolocate.artifacts.secret_scan import check_text
from geolocate.artifacts.sidecar import build_sidecar, dump_sidecar, parse_sidecar
from geolocate.artifacts.sidecar_schema import check_model_spec
from geolocate.atomic import atomic_path, write_text
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths

_ID_KEY = "geolocate.weights_id"
_READ_ATTEMPTS = 40
_READ_PAUSE_S = 0.05
_MAX_HEADER = 100 << 20  # safetensors caps its header at 100 MB too


def weights_file(stem: Path | str) -> Path:
    """The weights next to a sidecar: `<stem>.safetensors`, else a legacy state-dict file."""
    for suffix in (".safetensors", *PICKLE_SUFFIXES):
        if file_of(stem, suffix).is_file():
            return file_of(stem, suffix)
    raise UserError(f"checkpoint {stem}: {file_of(stem, '.json')} has no weights file beside it ({file_of(stem, '.safetensors')})")


# ---------------------------------------------------------------- saving


def save_checkpoint(stem: Path | str, model: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write `<stem>.safetensors` and `<stem>.json` atomically; return the sidecar written.

    Args:
        stem: path without suffix, e.g. `runs/<id>/best`.
        model: an `nn.Module` from the registry (or a state dict when `meta["model"]` says
            what it is).
        meta: sidecar fields (classes, config, metrics, epoch, run_id, data_fingerprint, ...).
    """
    sidecar = build_sidecar(model, meta)
    state = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    return write_checkpoint(stem, state, sidecar)


def write_checkpoint(stem: Path | str, state: Mapping[str, Any], sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """Write a state dict and a ready sidecar as a checkpoint pair (weights first, sidecar last)."""
    from safetensors.torch import save_file

    sidecar = {**sidecar, "weights_id": uuid.uuid4().hex}
    text = dump_sidecar(sidecar)
    check_text(text, file_of(stem, ".json"))
    with atomic_path(file_of(stem, ".safetensors")) as tmp:
        save_file(_storable(state), str(tmp), metadata={"format": "pt", _ID_KEY: sidecar["weights_id"]})
    write_text(file_of(stem, ".json"), text)
    return sidecar


def update_sidecar(stem: Path | str, update: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Change a checkpoint's sidecar in place (e.g. evaluate's temperature), leaving the weights alone.

    The `weights_id` is kept, so the pair still matches; the weights file is not rewritten
    (a StreetCLIP-L checkpoint is over a gigabyte).
    """
    path = file_of(resolve_checkpoint(stem), ".json")
    sidecar = _read_sidecar_file(path)
    update(sidecar)
    text = dump_sidecar(sidecar)
    check_text(text, path)
    write_text(path, text)
    return sidecar


def _storable(state: Mapping[str, Any]) -> dict[str, Any]:
    """CPU, contiguous tensors with no two sharing memory (safetensors refuses shared storage:
    tied weights are stored twice and tied again by `load_state_dict`)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in state.items():
        tensor = tensor.detach().to("cpu")
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else 0
        if pointer and pointer in seen:
            tensor = tensor.clone()
        seen.add(pointer)
        out[name] = tensor.contiguous()
    return out


def copy_checkpoint(
    source: Path | str, target: Path | str, update: Callable[[dict], dict] | None = None
) -> dict[str, Any]:
    """Copy a checkpoint pair to `target`, byte for byte, optionally editing its sidecar.

    The weights are copied first and their id checked against the sidecar read just before, so
    a pair being replaced while we copy is never mixed; the sidecar lands last.
    """
    if weights_file(source).suffix != ".safetensors":  # legacy weights: re-save as safetensors
        sidecar, state = read_checkpoint(source)
        return write_checkpoint(target, state, update(dict(sidecar)) if update else sidecar)
    for _ in range(_READ_ATTEMPTS):
        sidecar = _read_sidecar_file(file_of(source, ".json"))
        try:
            with atomic_path(file_of(target, ".safetensors")) as tmp:
                shutil.copyfile(file_of(source, ".safetensors"), tmp)
                if sidecar.get("weights_id") not in (None, read_weights_id(tmp)):
                    raise _Mismatch
        except _Mismatch:
            time.sleep(_READ_PAUSE_S)
            continue
        sidecar = update(dict(sidecar)) if update else sidecar
        text = dump_sidecar(sidecar)
        check_text(text, file_of(target, ".json"))
        _copy_companions(source, target)
        write_text(file_of(target, ".json"), text)
        return sidecar
    raise UserError(f"checkpoint {source} kept changing while it was copied; try again")


def _copy_companions(source: Path | str, target: Path | str) -> None:
    """The graph and index travel with the weights; a target's stale ones (another run's) go.

    Readers only use a companion whose weights id matches the sidecar, so a reader racing this
    copy falls back to torch (graph) or to the classifier's position (index) rather than mixing runs.
    """
    for suffix in COMPANION_SUFFIXES:
        if file_of(source, suffix).is_file():
            with atomic_path(file_of(target, suffix)) as tmp:
                shutil.copyfile(file_of(source, suffix), tmp)
        else:
            file_of(target, suffix).unlink(missing_ok=True)


class _Mismatch(Exception):
    """The weights copied are not the ones the sidecar describes (a concurrent replace)."""


def read_weights_id(path: Path | str) -> str | None:
    """The `weights_id` in a safetensors header, read without torch (None when absent)."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if not 0 < length <= _MAX_HEADER:
            raise UserError(f"{path} is not a safetensors file (bad header length); save the checkpoint again")
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            raise UserError(f"{path} is not a safetensors file (unreadable header); save the checkpoint again") from None
    return (header.get("__metadata__") or {}).get(_ID_KEY)


# ---------------------------------------------------------------- reading


def read_checkpoint(stem: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sidecar, state dict) of one checkpoint, the two guaranteed to belong together."""
    sidecar_path = file_of(stem, ".json")
    for _ in range(_READ_ATTEMPTS):
        sidecar = _read_sidecar_file(sidecar_path)
        path = weights_file(stem)
        if path.suffix in PICKLE_SUFFIXES:  # legacy: no id to match
            return sidecar, _read_pickled_state(path)
        state, weights_id = _read_safetensors(path)
        expected = sidecar.get("weights_id")
        if expected is None or weights_id == expected:
            return sidecar, state
        time.sleep(_READ_PAUSE_S)  # a writer is between its two replaces: read again
    raise UserError(
        f"checkpoint {stem}: the weights and the sidecar come from different saves (an interrupted write?); "
        f"save it again or pick another checkpoint"
    )


def _read_sidecar_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"checkpoint sidecar {path} not found; {HOW_TO_CREATE}") from None
    return parse_sidecar(text, path)


def _read_safetensors(path: Path) -> tuple[dict[str, Any], str | None]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            weights_id = (handle.metadata() or {}).get(_ID_KEY)
            return {key: handle.get_tensor(key) for key in handle.keys()}, weights_id
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc}); save the checkpoint again") from None


def _read_pickled_state(path: Path) -> dict[str, Any]:
    """A legacy state dict through torch's weights-only unpickler: tensors and plain values only."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever the file holds, the answer is a refusal
        raise UserError(
            f"refusing to load {path}: {_refusal_reason(exc)}; checkpoints are never unpickled, "
            f"convert a trusted copy to safetensors"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"refusing to load {path}: expected a dict of tensors (a state dict)")
    return obj


def _refusal_reason(exc: Exception) -> str:
    """Why torch's weights-only unpickler said no, in a few words (its message is a page long)."""
    import pickle
    import re

    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        return f"it is a pickle holding Python objects beyond tensors{what}, which could run code"
    return f"it is not a readable state dict ({type(exc).__name__})"


def read_sidecar(ref: Path | str, project_paths: ProjectPaths | None = None) -> dict[str, Any]:
    """The (migrated) sidecar of any checkpoint reference `resolve_checkpoint` accepts."""
    return _read_sidecar_file(file_of(resolve_checkpoint(ref, project_paths), ".json"))


def load_checkpoint(
    ref: Path | str,
    project_paths: ProjectPaths | None = None,
    device: str = "cpu",
    factory: Callable[..., Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights.

    Args:
        ref: anything `resolve_checkpoint` accepts ("best", a run, a release, a file, a stem).
        project_paths: where "best", "latest" and run ids live (default: the default paths).
        device: where the model goes.
        factory: `create_model`-like callable (default: `geolocate.models.create_model`).

    Returns:
        (model in eval mode, sidecar).
    """
    stem = resolve_checkpoint(ref, project_paths)
    sidecar, state = read_checkpoint(stem)
    if factory is None:
        from geolocate.models import create_model as factory
    spec = check_model_spec(sidecar, state, file_of(stem, ".json"))
    kwargs = {k: v for k, v in spec.kwargs.items() if k not in ("pretrained", "weights", "num_classes")}
    try:
        model = factory(spec.name, num_classes=spec.num_classes, pretrained=False, **kwargs)
    except (TypeError, ValueError, KeyError) as exc:  # an option the builder does not take, or a bad value
        raise UserError(f"checkpoint {stem}: model {spec.name!r} cannot be built with {kwargs} ({str(exc)[:200]})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise UserError(f"checkpoint {stem} does not fit model {spec.name!r}: {first}") from None
    return model.to(device).eval(), sidecar
