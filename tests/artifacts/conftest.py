"""Fixtures for the artifacts tests: a tiny registry-like model and project paths in tmp."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geolocate.paths import ProjectPaths


class TinyNet(nn.Module):
    """A two-layer stand-in for a registry model: it describes itself like `create_model` output."""

    def __init__(self, num_classes: int, width: int = 4, tie: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(width, num_classes)
        if tie:  # shared parameters, as tied embeddings are: safetensors refuses them as-is
            self.head2 = nn.Linear(width, num_classes)
            self.head2.weight = self.head.weight
        self.model_name = "tiny_test"
        self.model_kwargs = {"width": width, "tie": tie}
        self.num_classes = num_classes
        self.data_config = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                            "interpolation": "bilinear", "crop_pct": 0.875}

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def tiny_factory(name, num_classes, pretrained=False, **kwargs):
    assert name == "tiny_test" and pretrained is False
    return TinyNet(num_classes, **kwargs)


CLASSES = [
    {"cell_id": "871fb4670ffffff", "centroid_lat": 48.85, "centroid_lon": 2.35, "city": "Paris"},
    {"cell_id": "871fb4671ffffff", "centroid_lat": 48.86, "centroid_lon": 2.36, "city": "Paris"},
    {"cell_id": "87396c0a3ffffff", "centroid_lat": 45.76, "centroid_lon": 4.83, "city": "Lyon"},
]


@pytest.fixture
def make_model():
    def make(seed: int = 0, **kwargs) -> TinyNet:
        torch.manual_seed(seed)
        model = TinyNet(len(CLASSES), **kwargs)
        model.features[1].running_mean.uniform_()  # buffers must round-trip too
        return model.eval()

    return make


@pytest.fixture
def factory():
    return tiny_factory


@pytest.fixture
def meta():
    return {"classes": CLASSES, "config": {"train": {"epochs": 2}}, "metrics": {"val": {"median_km": 1.5}},
            "data_fingerprint": "ab" * 32, "epoch": 3, "run_id": "20261121-213000-tiny-abcd"}


@pytest.fixture
def project(tmp_path) -> ProjectPaths:
    root = tmp_path / "project"
    return ProjectPaths(root / "data", root / "runs", root / "models", root / "releases", root / "exports")


@pytest.fixture
def populated(project, make_model, meta):
    """A project after fetch → cells → split → train → evaluate, built from small committed tables."""
    import json

    import polars as pl

    from geolocate import schemas
    from geolocate.artifacts.best import maybe_promote
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.rundir import RunDir

    data = project.data
    data.processed.mkdir(parents=True)
    ids = ["101", "102", "103"]
    manifest = pl.DataFrame({"image_id": ids, "sequence_id": ["s1", "s1", "s2"], "creator_username": ["ann", "ann", "bob"],
                             "lat": [48.85, 48.86, 45.76], "lon": [2.35, 2.36, 4.83], "city": ["Paris", "Paris", "Lyon"],
                             "processed_path": [f"processed/{i}.jpg" for i in ids]})
    schemas.conform(manifest, schemas.MANIFEST).write_parquet(data.manifest)
    schemas.conform(pl.DataFrame(CLASSES), schemas.CELLS).write_parquet(data.cells)
    pl.DataFrame({"image_id": ids, "cell_id": [c["cell_id"] for c in CLASSES]}).write_parquet(data.labels)
    pl.DataFrame({"image_id": ids, "split": ["train", "val", "test"]}).write_parquet(data.split)
    data.split_report.write_text(json.dumps({"leaks": 0}))
    schemas.empty(schemas.KPI).write_parquet(data.kpi_history)
    for image_id in ids:
        data.processed_photo(image_id).write_bytes(b"\xff\xd8\xff\xe0 jpeg " + image_id.encode())
    run = RunDir.create(project, "tiny")
    run.config.write_text(json.dumps({"train": {"epochs": 2}}))
    save_checkpoint(run.best, make_model(seed=11), {**meta, "run_id": run.run_id})
    run.append_metrics_row({"epoch": 1, "val_median_km": 1.2})
    run.report.write_text("# Run report\n\nall gates pass\n")
    for plot in run.plots:
        plot.write_bytes(b"\x89PNG\r\n fake plot " + plot.name.encode())
    write_gates(run, passed=True)
    maybe_promote(run.best, {"median_km": 1.2, "p90_km": 4.0}, project, gates_pass=True)
    return project, run


def write_gates(run, passed: bool) -> None:
    """metrics.json as `geolocate evaluate` writes it: gate rows with `passed` and `status`."""
    import json

    rows = [{"name": "accuracy", "value": 0.6, "threshold": 0.5, "comparison": ">=", "passed": True, "status": "PASS"},
            {"name": "median_km", "value": 1.2 if passed else 9.0, "threshold": 8.0, "comparison": "<",
             "passed": passed, "status": "PASS" if passed else "FAIL"}]
    run.metrics_json.write_text(json.dumps({"run_id": run.run_id, "gates": rows, "gates_pass": passed}))


@pytest.fixture
def cfg(project):
    from geolocate.config import GeolocateConfig

    paths = {"data": project.data_root, "runs": project.runs, "models": project.models,
             "releases": project.releases, "exports": project.exports}
    return GeolocateConfig.model_validate({"paths": paths})


@pytest.fixture(autouse=True)
def no_enclosing_git(tmp_path, monkeypatch):
    """Run in tmp, and let git never find a repository above it: `freeze` tags the repository of
    the working directory, which must not be the project's own checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


@pytest.fixture
def set_gates():
    return write_gates
