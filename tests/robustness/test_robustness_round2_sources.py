"""Untrusted input, round two (issue 21): what `import` reads, what a server sends, what a kill leaves.

- `import` reads what it was named, what lies inside a named folder and what a table names
  inside its own folder; never a link out, never a FIFO or device; one bad row or photo never
  stops the others; nothing outside the project reaches `data/`.
- A server that drips, floods, bombs, nests or redirects is cut off within its bounds (a real
  HTTP stand-in on 127.0.0.1), and hostile records are skipped with a counted reason.
- Temporary files left by a killed run are removed by the next run of the stage.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.robustness.conftest import child_env
from tests.robustness.hostile import SECRET, plant_secret
from tests.robustness.hostile_round2 import HostileServer
from tests.robustness.test_robustness_hostile import leaked
from tests.robustness.test_robustness_hostile import project, template  # noqa: F401 - fixtures
from tests.robustness.test_robustness_round2 import LIMIT_S, run
from tests.sources.photo_factory import geotagged


@pytest.fixture
def area(tmp_path, monkeypatch) -> Path:
    """A project directory with two geotagged photos in `photos/` and the secret planted beside it."""
    root = tmp_path / "project"
    (root / "photos").mkdir(parents=True)
    geotagged(root / "photos" / "a.jpg", 45.1, 2.1, seed=1)
    geotagged(root / "photos" / "b.jpg", 45.2, 2.2, seed=2)
    outside = plant_secret(root)
    geotagged(outside / "secret.jpg", 48.0, 2.0, seed=9, artist=SECRET)  # an outside *photo*: the worst to copy
    monkeypatch.chdir(root)
    return root


def imported(root: Path) -> list[dict]:
    import polars as pl

    manifest = root / "data" / "manifest.parquet"
    return pl.read_parquet(manifest).to_dicts() if manifest.exists() else []


def assert_nothing_from_outside(root: Path, *outputs: str) -> None:
    assert leaked(root, *outputs) == [], "something from outside the project was read or copied"
    assert all(SECRET not in str(row.get("creator_username")) for row in imported(root))
    assert "Traceback" not in "".join(outputs)


# ---------------------------------------------------------------- import: confinement


def test_links_in_a_folder_are_never_followed(area, runner):
    (area / "photos" / "innocent.jpg").symlink_to(area.parent / "outside" / "secret.jpg")
    (area / "photos" / "more").symlink_to(area.parent / "outside", target_is_directory=True)
    result = run(runner, ["import", "photos"])
    assert result.exit_code == 0, result.stderr
    assert len(imported(area)) == 2
    assert "innocent.jpg" in result.stderr and "link" in result.stderr
    assert_nothing_from_outside(area, result.stdout, result.stderr)


def test_a_table_reads_only_inside_its_folder_one_refused_row_at_a_time(area, runner):
    os.mkfifo(area / "photos" / "pipe.jpg")
    (area / "photos" / "inner.jpg").symlink_to(area.parent / "outside" / "secret.jpg")
    rows = ["file,lat,lon", "a.jpg,45.1,2.1", "../outside/secret.jpg,45,2", f"{area.parent}/outside/secret.jpg,45,2",
            "/etc/passwd,45,2", "/no/such/file.jpg,45,2", "/dev/zero,45,2", "/proc/self/environ,45,2", "pipe.jpg,45,2",
            "inner.jpg,45,2", "b.jpg,45.2,2.2", "short.jpg"]
    (area / "photos" / "t.csv").write_text("\n".join(rows) + "\n")
    result = run(runner, ["import", "photos/t.csv"])
    assert result.exit_code == 0, result.stderr
    assert len(imported(area)) == 2
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 9, result.stderr
    reason = {line.split("'")[1]: line.rsplit(": ", 1)[1] for line in skipped if "'" in line}
    assert reason["/etc/passwd"] == reason["/no/such/file.jpg"]  # a refusal never says whether an outside file exists
    assert_nothing_from_outside(area, result.stdout, result.stderr)


def test_system_files_named_on_the_command_line_are_never_opened(area, runner):
    result = run(runner, ["import", "/proc/self/environ", "/dev/zero", "photos"])
    assert result.exit_code == 0 and len(imported(area)) == 2, result.stderr
    assert "system file" in result.stderr and "not a regular file" in result.stderr and "not an image" not in result.stderr


def test_a_nul_in_a_table_is_one_refused_row(area, runner):
    (area / "photos" / "t.csv").write_bytes(b"file,lat,lon\na.jpg,45.1,2.1\nx\x00.jpg,45,2\nb.jpg,45.2,2.2\n")
    result = run(runner, ["import", "photos/t.csv"])
    assert result.exit_code == 0 and len(imported(area)) == 2, result.stderr
    assert "NUL" in result.stderr


def test_allow_outside_reads_a_users_own_paths_but_never_a_link(area, runner):
    (area.parent / "outside" / "link.jpg").symlink_to(area.parent / "outside" / "secret.jpg")
    (area / "t.csv").write_text(f"file,lat,lon\n{area.parent}/outside/secret.jpg,45,2\n../outside/link.jpg,45,2\n")
    refused = run(runner, ["import", "t.csv"])
    assert refused.exit_code == 0 and imported(area) == []
    result = run(runner, ["import", "t.csv", "--allow-outside"])
    assert result.exit_code == 0, result.stderr
    assert len(imported(area)) == 1 and "link" in result.stderr


def test_a_photo_named_a_million_times_is_read_once(area, runner):
    with open(area / "photos" / "t.csv", "w") as handle:
        handle.write("file,lat,lon\n" + "a.jpg,45.1,2.1\n" * 1_000_000)
    start = time.perf_counter()
    result = run(runner, ["import", "photos/t.csv", "--json"])
    assert result.exit_code == 0, result.stderr
    assert time.perf_counter() - start < LIMIT_S
    assert json.loads(result.stdout)["counts"]["skipped: named again"] == 999_999 and len(imported(area)) == 1


def _jpeg_with_date(path: Path, when: str, offset: str, lat: float) -> None:
    geotagged(path, lat, 2.0, when=None, seed=int(lat * 100))
    with Image.open(path) as image:
        exif = image.getexif()
        exif.get_ifd(0x8769).update({36867: when, 36881: offset})
        exif[306] = when
        pixels = image.copy()
    pixels.save(path, exif=exif)


def test_one_impossible_exif_date_does_not_stop_a_folder(area, runner):
    _jpeg_with_date(area / "photos" / "year1.jpg", "0001:01:01 00:00:00", "+05:00", 45.3)
    _jpeg_with_date(area / "photos" / "year9999.jpg", "9999:12:31 23:59:59", "-05:00", 45.4)
    (area / "photos" / "t.csv").write_text("file,lat,lon,captured_at\na.jpg,45.1,2.1,9999-12-31T23:00:00-05:00\n")
    result = run(runner, ["import", "photos"])
    assert result.exit_code == 0, result.stderr
    assert len(imported(area)) == 4


def test_file_names_with_escapes_and_markup_are_printed_inert(area, runner):
    (area / "photos" / "\x1b]0;pwned\x07[bold]x.jpg").write_text("not a photo")
    (area / "photos" / "\x1b[2Jy.jpg").write_text("not a photo")
    result = run(runner, ["import", "photos"])
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stderr
    assert "[bold]x.jpg" in result.stderr


# ---------------------------------------------------------------- remote answers are bounded


def _client(**bounds):
    from geolocate.acquire.http import ApiClient, open_http
    from geolocate.config import FetchConfig

    cfg = FetchConfig(max_retries=0, timeout_s=5, **{"deadline_s": 2.0, "max_answer_mb": 1.0, "max_photo_mb": 1.0, **bounds})

    async def ask(kind: str, url: str):
        async with open_http(cfg, 4) as http:
            client = ApiClient(cfg, http, concurrency=4, requests_per_minute=10**6)
            return await (client.get_json(url, {}, "search") if kind == "json" else client.get_bytes(url, "photo"))

    return ask


@pytest.mark.parametrize("kind, path, says", [
    ("json", "/drip", "within 2 s"), ("json", "/huge", "limit"), ("bytes", "/huge", "limit"), ("json", "/bomb", "limit"),
    ("json", "/deep", "nested"), ("bytes", "/loop", "redirects"), ("json", "/loop", "redirects"), ("bytes", "/away", "another host"),
])
def test_a_hostile_server_is_cut_off_within_bounds(kind, path, says):
    from geolocate.acquire.http import RequestFailed

    ask = _client()
    with HostileServer(bomb_mb=64) as server:
        start = time.perf_counter()
        with pytest.raises(RequestFailed, match=says):
            asyncio.run(ask(kind, server.url(path)))
        assert time.perf_counter() - start < 10


def test_a_well_behaved_server_still_answers():
    """The bounds cut off nothing honest: a same-host redirect to a gzipped answer reads whole."""
    with HostileServer(bomb_mb=1) as server:
        answer = asyncio.run(_client()("json", server.url("/hop")))
    assert answer == {"features": [{"id": "x" * 1000}]}


@pytest.mark.parametrize("source, key", [("panoramax", "fetch.panoramax.api_url"), ("mapillary", "fetch.api_url")])
def test_fetch_against_a_dripping_server_ends(tmp_path, source, key):
    """The real command in a child: the API answers one byte every half second."""
    with HostileServer(bomb_mb=1) as server:
        argv = [sys.executable, "-m", "geolocate", "fetch", "--source", source, "--bbox", "2.0,45.0,2.005,45.005", "--name", "x",
                "--set", f"{key}={server.url('/drip')}", "--set", "fetch.deadline_s=3"]
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=tmp_path, env=child_env(MAPILLARY_TOKEN="MLY|0123456789abcdef"), capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr
    assert time.perf_counter() - start < 100
    assert done.returncode != 0 and "within 3 s" in done.stderr, done.stderr[-2000:]


def _hostile_items(fake) -> list[dict]:
    good = next(iter(fake.pictures.values())).item(fake.ASSET_HOST)

    def variant(**change) -> dict:
        item = json.loads(json.dumps(good))
        item["id"] = change.pop("id", item["id"][:-4] + f"{len(change):04x}")
        for key, value in change.items():
            item["properties"][key] = value
        return item

    bad_id = variant(id=good["id"][:-1] + "f\n")
    infinite = variant(**{"pers:interior_orientation": {"sensor_array_dimensions": [float("inf"), float("nan")]}})
    infinite["id"] = good["id"][:-4] + "aaaa"
    year1 = variant(datetime="0001-01-01T00:00:00+05:00")
    year1["id"] = good["id"][:-4] + "bbbb"
    year9999 = variant(datetime="9999-12-31T23:59:59-05:00")
    year9999["id"] = good["id"][:-4] + "cccc"
    away = variant()
    away["id"], away["geometry"]["coordinates"] = good["id"][:-4] + "dddd", [100.0, 10.0]
    return [bad_id, infinite, year1, year9999, away]


def test_hostile_records_are_skipped_with_a_counted_reason(tmp_path, monkeypatch):
    import httpx

    from geolocate.acquire.catalog import find_area
    from geolocate.acquire.fetch import run_fetch
    from geolocate.manifest import read_manifest
    from geolocate.paths import DataPaths
    from tests.fakes.mapillary import RecordingSleep
    from tests.fakes.panoramax import FakePanoramax

    monkeypatch.delenv("MAPILLARY_TOKEN", raising=False)
    lyon = find_area("Lyon", "fr")
    fake = FakePanoramax.grid(lyon.bbox, n=20, seed=1)
    extra = _hostile_items(fake)

    async def handle(request: httpx.Request) -> httpx.Response:
        response = await fake.handle(request)
        if request.url.path.endswith("/search") and "ids" not in request.url.params and response.status_code == 200:
            body = json.loads(response.content)
            body["features"] += extra
            return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        return response

    cfg = fake.fetch_config({"limit": 1000, "tile_deg": 0.5})
    report = run_fetch(cfg, DataPaths(tmp_path / "data"), [lyon], transport=httpx.MockTransport(handle), sleep=RecordingSleep())
    area = report.areas[0]
    ids = read_manifest(DataPaths(tmp_path / "data"))["image_id"].to_list()
    assert len(ids) == 21 and all(i == i.strip() for i in ids)  # the 20 good ones and the one with infinite sensor sizes
    assert len(area.bad_ids) >= 1
    reasons = " ".join(area.bad_records)
    assert reasons.count("(date)") >= 2 and "outside the asked box" in reasons


# ---------------------------------------------------------------- the token never reaches a run


def test_a_token_in_the_config_is_refused_before_a_run_is_written(labelled_data, tmp_path, monkeypatch, runner):
    """A trainable project: the old `train` wrote runs/<id>/config.json with the token, then refused last.json."""
    import shutil

    shutil.copytree(labelled_data, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAPILLARY_TOKEN", "MLY|1234567890abcdef")
    argv = ["train", "--profile", "tiny", "--set", "train.epochs=1",
            "--set", "fetch.api_url=https://graph.mapillary.com/?access_token=MLY|1234567890abcdef"]
    result = run(runner, argv)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "1234567890abcdef" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ---------------------------------------------------------------- what a killed run leaves behind


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_a_killed_run_are_removed_by_the_next_one(area, runner):
    pid = _dead_pid()
    (area / "data" / "raw").mkdir(parents=True)
    left = [area / "data" / f".manifest.parquet.{pid}.ab12cd.tmp", area / "data" / "raw" / f".local_1.jpg.{pid}.x9y8z7.tmp"]
    for path in left:
        path.write_bytes(b"half")
    alive = area / "data" / f".cells.parquet.{os.getpid()}.q1w2e3.tmp"  # a live writer's: never touched
    alive.write_bytes(b"in flight")
    result = run(runner, ["import", "photos"])
    assert result.exit_code == 0, result.stderr
    assert not any(p.exists() for p in left) and alive.exists()


def test_a_half_built_release_is_removed_by_the_next_freeze_whose_release_then_verifies(project, runner):
    stale = project / "releases" / f".v1.{_dead_pid()}.abcd1234.tmp"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"\0" * 1000)
    result = run(runner, ["freeze", "--tag", "v2", "--force", "--no-tag"])
    assert result.exit_code == 0, result.stderr
    assert not stale.exists() and sorted(p.name for p in (project / "releases").iterdir()) == ["v2"]
    answer = run(runner, ["predict", "photos/ok.jpg", "--checkpoint", "releases/v2", "--json"])
    assert answer.exit_code == 0, answer.stderr
    assert json.loads(answer.stdout)["model"]["engine"] == "onnx"  # the graph freeze exported, vouched for by SHA256SUMS


def test_atomic_writes_name_their_writer():
    from geolocate.atomic import temp_name

    assert f".{os.getpid()}." in temp_name(Path("releases/v1")).name
