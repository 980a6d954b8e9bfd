"""The Mapillary token never lands in a file the tool writes, nor in what it prints.

A whole batch runs against the fake API with a recognisable token: fetch → prepare → cells →
split → sanity → train → export, then a forced freeze. Then every file of the project (data,
runs, models, exports, releases) is searched: raw bytes, the string columns of every parquet
file (its pages are compressed, a byte search would miss them), and every archive member.
"""

from __future__ import annotations

import tarfile

import polars as pl
import pytest

import geolocate.acquire.http as http
from geolocate.acquire.catalog import batch_areas
from tests.fakes.mapillary import FakeImage, FakeMapillary

TOKEN = "MLY|123|SECRETSECRET"
NEEDLES = [TOKEN, "SECRETSECRET"]


def _batch_world() -> FakeMapillary:
    """60 photos near the centre of each batch-01 city, in sequences of 6."""
    fake = FakeMapillary(token=TOKEN)
    for k, area in enumerate(batch_areas("01")):
        lon, lat = (area.bbox[0] + area.bbox[2]) / 2, (area.bbox[1] + area.bbox[3]) / 2
        city = FakeMapillary.grid((lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01), n=60, seed=k, per_sequence=6)
        for i, image in enumerate(city.images.values()):
            fake.add_image(FakeImage(**{**vars(image), "id": str(5_000_000 + 1000 * k + i), "sequence": f"c{k}{image.sequence}"}))
    return fake


def _leaks(root) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        found += [f"{path}: bytes" for needle in NEEDLES if needle.encode() in body]
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            for column in (c for c, t in frame.schema.items() if t == pl.Utf8):
                found += [f"{path}:{column}" for needle in NEEDLES if frame[column].str.contains(needle, literal=True).any()]
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    data = tar.extractfile(member).read() if member.isfile() else b""
                    found += [f"{path}!{member.name}" for needle in NEEDLES if needle.encode() in data]
    return found


@pytest.mark.slow
def test_no_file_or_output_holds_the_token_after_a_fetched_batch(workdir, cli, monkeypatch):
    fake = _batch_world()
    monkeypatch.setattr(http, "transport_factory", fake.transport)
    monkeypatch.setenv("MAPILLARY_TOKEN", TOKEN)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(workdir.parent))
    sets = ["fetch.api_url=" + fake.api_url, "fetch.requests_per_minute=10000000", "cells.min_samples=10",
            "train.epochs=2", "train.max_steps_per_epoch=2",
            # gates wide open: a run failing them is never promoted, and models/ must hold a copy to scan
            "eval.gates.accuracy_min=0", "eval.gates.median_km_max=1e6", "eval.gates.p90_km_max=1e6",
            "eval.gates.max_std_km=1e6", "eval.gates.max_std_share=1e6", "eval.gates.beat_baselines=false",
            "eval.stability_last_k=2"]
    options = ["--profile", "tiny", *[a for s in sets for a in ("--set", s)]]

    batch = cli("batch", "01", *options)
    assert batch.exit_code == 0, batch.output
    assert "7 steps ran, 0 skipped" in " ".join(batch.stdout.split())  # fetch … export all ran
    frozen = cli("freeze", "--tag", "leak-check", "--force", *options)
    assert frozen.exit_code == 0, frozen.output

    assert len(fake.api_requests()) > 0 and (workdir / "releases" / "leak-check").is_dir()
    for folder in ("data", "runs", "models", "exports", "releases"):
        assert any((workdir / folder).rglob("*")), f"{folder}/ is empty: the check would prove nothing"
    assert _leaks(workdir) == []
    for needle in NEEDLES:
        assert needle not in batch.output and needle not in frozen.output
