"""The registry: names, tiny twins, data_config, kwargs round trip, offline errors, CLI listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from geolocate.errors import UserError
from geolocate.models import create_model, list_models, model_info
from geolocate.models.build import spec_data_config
from geolocate.models.registry import get_spec

TINY = list_models("tiny*")


def test_every_real_architecture_has_a_tiny_twin():
    assert set(TINY) == {"tiny_resnet", "tiny_clip", "tiny_convnext"}
    assert {"resnet18", "efficientnet_lite0", "streetclip", "convnextv2_large"} <= set(list_models())
    assert list_models("tiny_r*") == ["tiny_resnet"]


@pytest.mark.parametrize("name", TINY)
def test_tiny_forward_shapes_and_data_config(name):
    model = create_model(name, num_classes=7).eval()
    config = model.data_config
    assert set(config) >= {"input_size", "mean", "std", "interpolation", "crop_pct"}
    assert config["input_size"][0] == 3 and len(config["mean"]) == len(config["std"]) == 3
    x = torch.randn(2, *config["input_size"])
    features = model.forward_features(x)
    assert features.shape == (2, model.num_features)
    assert model(x).shape == (2, 7)


@pytest.mark.parametrize("name", TINY)
def test_data_config_without_building_matches_the_built_model(name):
    model = create_model(name)
    assert spec_data_config(get_spec(name)) == model.data_config
    assert model_info(name)["input_size"] == list(model.data_config["input_size"])


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("extra", [{"dropout": 0.1}, {"views": 4, "fusion": "transformer", "fusion_dim": 32, "fusion_heads": 2, "fusion_layers": 1}])
def test_name_and_kwargs_rebuild_the_same_architecture(name, extra):
    model = create_model(name, num_classes=5, **extra)
    again = create_model(model.model_name, num_classes=5, **model.model_kwargs)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in again.state_dict().items()}
    again.load_state_dict(model.state_dict(), strict=True)


def test_none_kwargs_mean_model_default():
    model = create_model("tiny_resnet", num_classes=3, dropout=None, train_last_n_blocks=None)
    assert model.model_kwargs == {}
    assert model.dropout.p == pytest.approx(0.3)  # the documented default


def test_unknown_name_suggests_the_nearest_and_lists_all():
    with pytest.raises(UserError) as err:
        create_model("resnet81")
    message = str(err.value)
    assert "did you mean 'resnet18'" in message and "tiny_clip" in message and "\n" not in message


def test_pretrained_offline_names_both_ways(no_network):
    with pytest.raises(UserError) as err:
        create_model("resnet18", num_classes=3, pretrained=True)
    message = str(err.value)
    assert "go online" in message and "model.weights" in message and "\n" not in message
    assert "model.pretrained=false" in message and "geolocate[offline-weights]" in message


def test_pretrained_without_any_source_is_refused_not_random():
    with pytest.raises(UserError, match="model.weights"):
        create_model("tiny_clip", pretrained=True)


def test_models_cli_lists_and_filters(cli):
    result = cli("models", "tiny*", "--json")
    assert result.exit_code == 0
    infos = json.loads(result.stdout)
    assert [i["name"] for i in infos] == TINY and all(i["tiny"] for i in infos)
    clip = next(i for i in infos if i["name"] == "tiny_clip")
    assert clip["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    table = cli("models").stdout
    assert "streetclip" in table and "336×336" in table


def test_cli_modules_do_not_import_torch():
    code = "import sys, geolocate.cli.models, geolocate.cli.embed, geolocate.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
