"""Checkpoints: round trip, sidecar contract, the forms a reference takes, versions, pickles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from geolocate.artifacts.checkpoint import (
    load_checkpoint,
    read_checkpoint,
    read_sidecar,
    resolve_checkpoint,
    save_checkpoint,
)
from geolocate.artifacts.rundir import RunDir
from geolocate.artifacts.sidecar import VERSION, migrate_sidecar
from geolocate.errors import UserError


def _inputs():
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_round_trip_gives_the_same_outputs(tmp_path, make_model, meta, factory):
    model = make_model(seed=3)
    save_checkpoint(tmp_path / "ckpt", model, meta)
    loaded, sidecar = load_checkpoint(tmp_path / "ckpt", factory=factory)
    assert not loaded.training
    assert torch.equal(loaded(_inputs()), model(_inputs()))
    assert torch.equal(loaded.features[1].running_mean, model.features[1].running_mean)
    assert sidecar["epoch"] == 3


def test_a_differently_seeded_model_differs(tmp_path, make_model, meta, factory):
    """Guards the round-trip test: the tiny model's output does depend on its weights."""
    save_checkpoint(tmp_path / "ckpt", make_model(seed=3), meta)
    loaded, _ = load_checkpoint(tmp_path / "ckpt", factory=factory)
    assert not torch.equal(loaded(_inputs()), make_model(seed=4)(_inputs()))


def test_shared_tensors_are_saved_and_stay_tied(tmp_path, make_model, meta, factory):
    model = make_model(tie=True)
    save_checkpoint(tmp_path / "tied", model, meta)
    loaded, _ = load_checkpoint(tmp_path / "tied", factory=factory)
    assert loaded.head2.weight is loaded.head.weight
    assert torch.equal(loaded.head.weight, model.head.weight)


def test_sidecar_follows_the_contract(tmp_path, make_model, meta):
    save_checkpoint(tmp_path / "ckpt", make_model(), meta)
    doc = json.loads((tmp_path / "ckpt.json").read_text())
    assert doc["format"] == "geolocate.checkpoint" and doc["version"] == VERSION
    assert doc["model"] == {"name": "tiny_test", "kwargs": {"width": 4, "tie": False}, "num_classes": 3}
    assert doc["classes"] == meta["classes"]
    assert doc["preprocessing"]["input_size"] == [3, 16, 16] and doc["preprocessing"]["mean"] == [0.5] * 3
    assert doc["temperature"] == 1.0 and doc["position"] == "top1" and doc["weighted_topk"] == 5
    assert doc["config"] == meta["config"] and doc["metrics"] == meta["metrics"]
    assert doc["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert set(doc["versions"]) >= {"geolocate", "torch", "safetensors"}
    assert (doc["data_fingerprint"], doc["epoch"], doc["run_id"]) == (meta["data_fingerprint"], 3, meta["run_id"])
    assert len(doc["weights_id"]) == 32


def test_sidecar_refuses_the_token(tmp_path, make_model, meta, monkeypatch):
    monkeypatch.setenv("MAPILLARY_TOKEN", "MLY|1234567|abcdef0123")
    meta["config"] = {"fetch": {"note": "MLY|1234567|abcdef0123"}}
    with pytest.raises(UserError, match="MAPILLARY_TOKEN"):
        save_checkpoint(tmp_path / "ckpt", make_model(), meta)
    assert not (tmp_path / "ckpt.json").exists()


@pytest.mark.parametrize("form", ["safetensors", "json", "stem", "run", "latest_word", "latest_path", "best", "release", "tag"])
def test_every_reference_form_resolves(project, make_model, meta, form, monkeypatch):
    run = RunDir.create(project, "tiny")
    save_checkpoint(run.best, make_model(), meta)
    save_checkpoint(project.models / "best", make_model(), meta)
    (project.releases / "v1.0").mkdir(parents=True)
    save_checkpoint(project.releases / "v1.0" / "model", make_model(), meta)
    monkeypatch.chdir(project.runs.parent)
    refs = {
        "safetensors": (f"{run.best}.safetensors", run.best),
        "json": (f"{run.best}.json", run.best),
        "stem": (str(run.best), run.best),
        "run": (str(run.root), run.best),
        "latest_word": ("latest", run.best),
        "latest_path": (str(project.runs / "latest"), run.best),
        "best": ("best", project.models / "best"),
        "release": (str(project.releases / "v1.0"), project.releases / "v1.0" / "model"),
        "tag": ("v1.0", project.releases / "v1.0" / "model"),
    }
    ref, expected = refs[form]
    assert Path(resolve_checkpoint(ref, project)).resolve() == expected.resolve()


@pytest.mark.parametrize("ref, needle", [("best", "no global best model yet"), ("latest", "no runs yet"),
                                         ("nowhere/ckpt.safetensors", "no checkpoint at")])
def test_nothing_there_says_how_to_create_it(project, ref, needle):
    with pytest.raises(UserError, match=needle) as info:
        resolve_checkpoint(ref, project)
    assert "geolocate train" in str(info.value)


def test_newer_sidecar_names_the_version_that_wrote_it(tmp_path, make_model, meta):
    save_checkpoint(tmp_path / "ckpt", make_model(), meta)
    doc = json.loads((tmp_path / "ckpt.json").read_text())
    doc.update(version=VERSION + 1, versions={"geolocate": "9.9.0"})
    (tmp_path / "ckpt.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"written by geolocate 9\.9\.0 .*version 2"):
        read_sidecar(tmp_path / "ckpt")


def test_unknown_format_is_refused(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"format": "something.else", "version": 1}))
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="unknown format 'something.else'"):
        read_sidecar(tmp_path / "x")


def test_version_zero_sidecar_is_migrated_and_loads(tmp_path, make_model, meta, factory):
    model = make_model(seed=5)
    save_checkpoint(tmp_path / "old", model, meta)
    v0 = {"model": "tiny_test", "model_kwargs": {"width": 4}, "num_classes": 3, "classes": ["a", "b", "c"], "epoch": 2}
    (tmp_path / "old.json").write_text(json.dumps(v0))
    loaded, sidecar = load_checkpoint(tmp_path / "old.json", factory=factory)
    assert sidecar["format"] == "geolocate.checkpoint" and sidecar["version"] == 1
    assert sidecar["model"] == {"name": "tiny_test", "kwargs": {"width": 4}, "num_classes": 3}
    assert sidecar["classes"][1] == {"cell_id": "b"} and sidecar["epoch"] == 2 and sidecar["temperature"] == 1.0
    assert torch.equal(loaded(_inputs()), model(_inputs()))


def test_migration_refuses_a_document_that_is_no_sidecar():
    with pytest.raises(UserError, match="neither 'format' nor 'model'"):
        migrate_sidecar({"epoch": 1})


def test_weights_from_another_save_are_detected(tmp_path, make_model, meta, monkeypatch):
    import geolocate.artifacts.checkpoint as checkpoint

    save_checkpoint(tmp_path / "a", make_model(seed=1), meta)
    save_checkpoint(tmp_path / "b", make_model(seed=2), meta)
    os.replace(tmp_path / "b.safetensors", tmp_path / "a.safetensors")  # a.json now sits beside b's weights
    monkeypatch.setattr(checkpoint, "_READ_ATTEMPTS", 2)
    with pytest.raises(UserError, match="different saves"):
        read_checkpoint(tmp_path / "a")


class _Payload:
    """Unpickling this runs `Path.touch(marker)`: the code execution a pickle checkpoint allows."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_without_running(tmp_path, make_model, meta, factory):
    marker = tmp_path / "pwned"
    save_checkpoint(tmp_path / "evil", make_model(), meta)
    (tmp_path / "evil.safetensors").unlink()
    torch.save({"head.weight": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="refusing to load .*evil.pt.*never unpickled"):
        load_checkpoint(tmp_path / "evil.pt", factory=factory)
    assert not marker.exists()
    torch.load(tmp_path / "evil.pt", weights_only=False)  # proves the payload is real: unpickling runs it
    assert marker.exists()


def test_pickle_without_sidecar_is_refused_before_reading(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"x": _Payload(marker)}, tmp_path / "lone.pt")
    with pytest.raises(UserError, match="no sidecar"):
        load_checkpoint(tmp_path / "lone.pt")
    assert not marker.exists()


def test_plain_state_dict_pickle_with_sidecar_loads(tmp_path, make_model, meta, factory):
    model = make_model(seed=7)
    save_checkpoint(tmp_path / "legacy", model, meta)
    (tmp_path / "legacy.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "legacy.pth")
    loaded, _ = load_checkpoint(tmp_path / "legacy.pth", factory=factory)
    assert torch.equal(loaded(_inputs()), model(_inputs()))


def test_update_sidecar_keeps_the_weights_and_their_pairing(tmp_path, make_model, meta, factory):
    from geolocate.artifacts.checkpoint import update_sidecar

    model = make_model(seed=5)
    save_checkpoint(tmp_path / "ckpt", model, meta)
    weights = (tmp_path / "ckpt.safetensors").read_bytes()
    update_sidecar(tmp_path / "ckpt", lambda s: s.update(temperature=1.7, position="weighted"))
    assert (tmp_path / "ckpt.safetensors").read_bytes() == weights
    loaded, sidecar = load_checkpoint(tmp_path / "ckpt", factory=factory)  # the pair still matches
    assert sidecar["temperature"] == 1.7 and sidecar["position"] == "weighted"
    assert torch.equal(loaded(_inputs()), model(_inputs()))
