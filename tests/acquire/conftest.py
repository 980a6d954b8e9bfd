"""Fixtures of the acquire tests: a fake Mapillary world, the fake token, a sleep that only records."""

from __future__ import annotations

import pytest

from tests.fakes.mapillary import FAKE_TOKEN, FakeMapillary, RecordingSleep

AREA_BBOX = (2.30, 48.85, 2.32, 48.87)  # 2 × 2 search tiles of 0.01°


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    return FAKE_TOKEN


@pytest.fixture
def sleeps():
    return RecordingSleep()


@pytest.fixture
def fake():
    """128 images in 16 sequences over AREA_BBOX (2 × 2 tiles), the first 4 of them panoramas."""
    return FakeMapillary.grid(AREA_BBOX, n=128, seed=3, per_sequence=8, panos=4)
