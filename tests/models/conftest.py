"""Fixtures for the model tests: tiny models only, nothing downloaded."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded_single_thread():
    # Tiny models run faster on one thread, and the shared CI/dev machines are oversubscribed.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_network(monkeypatch):
    """Make any attempt to fetch pretrained weights from timm's hub fail like an offline machine."""
    import timm

    real = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load this file")
        return real(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
