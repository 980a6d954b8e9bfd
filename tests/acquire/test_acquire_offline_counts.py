"""Offline: the hint names the source's own API key, and boxes never searched are not called failed."""

from __future__ import annotations

import json

import httpx
import pytest

import geolocate.acquire.http as http_module


@pytest.fixture
def attempts(monkeypatch):
    seen = []

    def no_network(request):
        seen.append(request.url.host)
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    monkeypatch.setattr(http_module, "transport_factory", lambda: httpx.MockTransport(no_network))
    monkeypatch.delenv("MAPILLARY_TOKEN", raising=False)
    return seen


def test_panoramax_offline_names_its_key_and_counts_what_was_tried(cli, workdir, attempts):
    result = cli("fetch", "--source", "panoramax", "--city", "Lyon", "--set", "fetch.backoff_s=0", env={"COLUMNS": "200"})
    assert result.exit_code == 1
    text = " ".join(result.stderr.split())
    assert "fetch.panoramax.api_url" in text and "or fetch.api_url)" not in text
    assert "boxes failed" not in text  # nothing answered: the boxes were not searched, not failed
    assert f"fetch: {len(attempts)} requests" in result.stdout
    again = json.loads(cli("fetch", "--source", "panoramax", "--city", "Lyon", "--set", "fetch.backoff_s=0", "--json").stdout)
    area = again["areas"][0]
    assert area["boxes_failed"] == 0 and area["boxes_done"] == 0
    assert area["boxes_unreachable"] == area["boxes"] > len(attempts) > 0  # every box counted, few requests
    assert again["complete"] is False


def test_mapillary_offline_keeps_its_own_key(cli, workdir, attempts, monkeypatch):
    monkeypatch.setenv("MAPILLARY_TOKEN", "MLY|123|abcdef0123456789")
    result = cli("fetch", "--city", "Lyon", "--set", "fetch.backoff_s=0", env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "or fetch.api_url)" in " ".join(result.stderr.split())
