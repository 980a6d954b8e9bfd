"""`geolocate fetch` through the CLI: area selection, listing, the token error, the JSON summary."""

from __future__ import annotations

import json

import httpx
import pytest

import geolocate.acquire.http as http_module
from geolocate.acquire.catalog import find_area
from tests.fakes.mapillary import FAKE_TOKEN, FakeMapillary


@pytest.fixture
def fake_api(monkeypatch):
    """Route the CLI's HTTP through a fake world over 2 × 2 tiles at the centre of Saint-Étienne."""
    lat, lon = find_area("Saint-Étienne").center
    fake = FakeMapillary.grid((lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01), n=60, seed=5)
    monkeypatch.setattr(http_module, "transport_factory", fake.transport)
    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    return fake


def _sets(fake, *extra):
    return [arg for kv in (f"fetch.api_url={fake.api_url}", "fetch.backoff_s=0", *extra) for arg in ("--set", kv)]


def test_missing_token_is_one_line_and_non_zero(cli, workdir, monkeypatch):
    monkeypatch.delenv("MAPILLARY_TOKEN", raising=False)
    result = cli("fetch", "--city", "Lyon")
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1
    assert "export MAPILLARY_TOKEN=MLY|" in lines[0] and "Traceback" not in result.output


def test_list_prints_the_french_catalog(cli, workdir):
    result = cli("fetch", "--list", "--json")
    rows = json.loads(result.stdout)
    assert result.exit_code == 0 and len(rows) == 50
    assert sorted({r["batch"] for r in rows}) == [f"{i:02d}" for i in range(1, 11)]
    assert "Saint-Étienne" in cli("fetch", "--list").stdout


def test_list_us_has_every_contiguous_state_and_dc(cli, workdir):
    rows = json.loads(cli("fetch", "--list", "--catalog", "us", "--json").stdout)
    assert len({r["region"] for r in rows}) == 49 and "DC" in {r["region"] for r in rows}
    assert {"AK", "HI"}.isdisjoint({r["region"] for r in rows})


def test_city_resolves_case_and_accent_insensitively_and_fetches(cli, workdir, fake_api):
    result = cli("fetch", "--city", "saint-etienne", "--max-per-city", "25", "--json", *_sets(fake_api))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    area = summary["areas"][0]
    assert area["area"] == "Saint-Étienne" and area["batch"] == "03" and area["photos_new"] == 25
    assert summary["complete"] and len(list((workdir / "data" / "raw").iterdir())) == 25
    assert (workdir / "data" / "fetch_state" / "saint-etienne.json").exists()


def test_us_catalog_city(cli, workdir, monkeypatch):
    lat, lon = find_area("Denver", "us").center
    fake = FakeMapillary.grid((lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005), n=12, seed=2)
    monkeypatch.setattr(http_module, "transport_factory", fake.transport)
    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    result = cli("fetch", "--catalog", "us", "--city", "Denver", "--json", *_sets(fake))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["areas"][0]["photos_new"] == 12


def test_bbox_with_name_fetches_any_area(cli, workdir, fake_api):
    lat, lon = find_area("Saint-Étienne").center
    bbox = f"{lon - 0.01},{lat - 0.01},{lon},{lat}"
    result = cli("fetch", "--bbox", bbox, "--name", "My Corner", "--json", *_sets(fake_api))
    assert result.exit_code == 0, result.output
    area = json.loads(result.stdout)["areas"][0]
    assert area["area"] == "My Corner" and area["boxes"] == 1 and area["photos_new"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--city", "Atlantis"], "no city 'Atlantis'"),
        (["--batch", "42"], "no batch '42'"),
        (["--bbox", "1,2,3"], "four numbers"),
        (["--bbox", "2.3,48.8,2.4,48.9"], "--bbox needs --name"),
        (["--city", "Lyon", "--batch", "01"], "exactly one of"),
        (["--catalog", "de", "--city", "Berlin"], "unknown catalog"),
    ],
)
def test_selection_mistakes_are_one_line(cli, workdir, args, message, monkeypatch):
    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    result = cli("fetch", *args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_offline_fetch_stops_early_and_says_what_failed(cli, workdir, monkeypatch):
    """DNS/connect errors: a handful of attempts, not five retries for each of hundreds of boxes."""
    attempts = []

    def no_network(request):
        attempts.append(request.url.host)
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    monkeypatch.setattr(http_module, "transport_factory", lambda: httpx.MockTransport(no_network))
    monkeypatch.setenv("MAPILLARY_TOKEN", FAKE_TOKEN)
    result = cli("fetch", "--batch", "01", "--set", "fetch.backoff_s=0", env={"COLUMNS": "80"})
    assert result.exit_code == 1
    assert 0 < len(attempts) <= 2 * 16  # about the first wave of `concurrency` requests, not 6 × every box
    text = " ".join(result.stderr.split())
    assert "cannot reach graph.mapillary.com" in text and "offline" in text and "once online" in text
    assert "not started:" in text  # the batch's other areas are not even tried
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "failed" in result.stdout
