"""Training state for `--resume`: epoch, optimizer, scheduler and RNG, in `<run>/state.pt`.

Saved with `torch.save` but holding tensors and plain Python values only, checked before it is
written, so it loads with `torch.load(weights_only=True)`: resuming never unpickles code.
NumPy's RNG state (an array inside a tuple) is stored as a list for the same reason.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from geolocate.artifacts.versions import library_versions, upgrade
from geolocate.atomic import atomic_path
from geolocate.errors import UserError

FORMAT = "geolocate.train_state"
VERSION = 1


def capture_rng_state() -> dict[str, Any]:
    """The Python, NumPy, torch (and CUDA, when present) generator states, as plain values."""
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what `capture_rng_state` returned (CUDA only when it was saved and is present)."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    path: Path | str,
    epoch: int,
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any] | None,
    rng_state: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the training state atomically.

    Raises:
        TypeError: a value that `torch.load(weights_only=True)` could not read back (named by
            its key path), caught here rather than when the user resumes.
    """
    import torch

    doc = {
        "format": FORMAT,
        "version": VERSION,
        "versions": library_versions(),
        "epoch": int(epoch),
        "optimizer": optimizer_state,
        "scheduler": scheduler_state,
        "rng": rng_state,
        "extra": extra or {},
    }
    doc = _plain(doc, "state")
    with atomic_path(path) as tmp:
        torch.save(doc, tmp)


def load_state(path: Path | str) -> dict[str, Any]:
    """The dict `save_state` wrote (keys epoch, optimizer, scheduler, rng, extra).

    Raises:
        UserError: no state file (nothing to resume), or a file that is not a plain state.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no training state at {path}: nothing to resume; run without --resume to start over")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or hostile file is refused, never unpickled
        raise UserError(f"cannot resume from {path}: not a plain training state ({type(exc).__name__}); run without --resume") from None
    return upgrade(doc, fmt=FORMAT, current=VERSION, migrations={}, source=path)


_SCALARS = (int, float, str, bool, bytes, type(None))


def _plain(value: Any, where: str) -> Any:
    """`value` with NumPy values turned into Python ones; anything else unloadable is an error."""
    import torch

    if isinstance(value, (torch.Tensor, *_SCALARS)):
        return value
    if isinstance(value, dict):
        return {key: _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a training state (tensors and plain values only)")
