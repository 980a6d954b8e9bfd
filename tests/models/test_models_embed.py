"""`geolocate embed`: one row per readable photo, the model's preprocessing, bad photos reported."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import torch
from PIL import Image
from safetensors.torch import save_file

from geolocate.data.images import load_rgb
from geolocate.data.transforms import eval_transform
from geolocate.models import create_model


def _photos(folder, count=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return folder


def test_embed_writes_one_row_per_photo_with_the_backbone_embedding(cli, workdir):
    model = create_model("tiny_resnet").eval()
    save_file({k: v.contiguous() for k, v in model.backbone.state_dict().items()}, str(workdir / "w.safetensors"))
    folder = _photos(workdir / "photos")
    (workdir / "broken.jpg").write_bytes(b"not a jpeg")
    result = cli("embed", folder, workdir / "broken.jpg", workdir / "missing.jpg", "--model", "tiny_resnet",
                 "--weights", "w.safetensors", "--out", "emb.parquet", "--batch-size", "2", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"model": "tiny_resnet", "out": "emb.parquet", "rows": 3, "dim": model.num_features, "bad": 2}
    assert "broken.jpg" in result.stderr and "missing.jpg" in result.stderr
    table = pl.read_parquet(workdir / "emb.parquet")
    assert table["name"].to_list() == ["0.jpg", "1.jpg", "2.jpg"]
    first = eval_transform(model.data_config)(load_rgb(folder / "0.jpg")).unsqueeze(0)
    with torch.no_grad():
        expected = model.forward_features(first)[0]
    assert torch.allclose(torch.tensor(table["embedding"][0].to_list()), expected, atol=1e-5)


def test_embed_with_no_readable_photo_is_one_line_error(cli, workdir):
    (workdir / "bad.png").write_bytes(b"nope")
    result = cli("embed", workdir / "bad.png", "--profile", "tiny", "--out", "e.parquet")
    assert result.exit_code != 0
    assert "none of the 1 photos" in result.stderr and not (workdir / "e.parquet").exists()
