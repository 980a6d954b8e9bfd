"""`geolocate export`: a complete snapshot, verified by hash; hostile archives and secrets refused."""

from __future__ import annotations

import io
import json
import os
import tarfile

import polars as pl
import pytest

from geolocate.artifacts.digest import verify_sha256sums
from geolocate.artifacts.export import run_export
from geolocate.lock import DataLock
from geolocate.artifacts.verify import extract_export, verify_export
from geolocate.errors import UserError

TOKEN = "MLY|4242424242|0123456789abcdef0123456789abcdef"


def _names(path):
    with tarfile.open(path) as tar:
        return tar.getnames()


def _rewrite(source, target, change=None, drop=None, extra=None):
    """Copy an archive member by member, changing, dropping or adding one (a tampered export)."""
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            if member.name == drop:
                continue
            data = src.extractfile(member).read()
            if member.name == change:
                data = data[:-1] + bytes([data[-1] ^ 1])
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        if extra:
            info = tarfile.TarInfo(extra)
            info.size = 3
            dst.addfile(info, io.BytesIO(b"new"))


def test_export_holds_the_project_state_and_verifies(populated, cfg):
    project, run = populated
    result = run_export(cfg, project)
    assert result.path.parent == project.exports and result.path.name.startswith("snapshot-")
    names = set(_names(result.path))
    expected = {f"data/{n}" for n in ("manifest.parquet", "cells.parquet", "labels.parquet", "split.parquet",
                                      "split_report.json", "kpi_history.parquet")}
    expected |= {"config.json", "models/best.safetensors", "models/best.json", "manifest.json", "SHA256SUMS"}
    expected |= {f"runs/{run.run_id}/{n}" for n in ("REPORT.md", "confusion_matrix.png", "geo_error.png", "error_map.png",
                                                    "metrics.csv", "metrics.json", "config.json",
                                                    "best.safetensors", "best.json")}
    assert names == expected and result.skipped == []
    assert not any(n.startswith("data/processed") for n in names)
    assert verify_export(result.path) == []
    with tarfile.open(result.path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        best = json.load(tar.extractfile("models/best.json"))
    sizes = {m["name"]: m["size"] for m in manifest["members"]}
    assert sizes["data/split_report.json"] == project.data.split_report.stat().st_size
    assert manifest["format"] == "geolocate.export" and best["run_id"] == run.run_id


def test_export_of_a_named_run_describes_that_run(populated, cfg):
    """freeze exports the run it releases, not whatever runs/latest points at."""
    from geolocate.artifacts.rundir import RunDir

    project, run = populated
    newer = RunDir.create(project, "tiny")  # runs/latest now points at an empty newer run
    names = set(_names(run_export(cfg, project, run_ref=run.run_id).path))
    assert f"runs/{run.run_id}/best.json" in names and f"runs/{run.run_id}/REPORT.md" in names
    assert not any(n.startswith(f"runs/{newer.run_id}") for n in names)


def test_images_only_with_the_flag(populated, cfg):
    project, _ = populated
    names = _names(run_export(cfg, project, with_images=True).path)
    assert sorted(n for n in names if n.startswith("data/processed/")) == [f"data/processed/{i}.jpg" for i in ("101", "102", "103")]


def test_missing_optional_parts_are_listed_as_skipped(project, cfg):
    project.data_root.mkdir(parents=True)
    project.data.split_report.write_text("{}")
    result = run_export(cfg, project)
    skipped = {s["name"] for s in result.skipped}
    assert {"data/manifest.parquet", "models/best.safetensors", "runs/latest"} <= skipped  # "no such run"
    assert verify_export(result.path) == []


def test_extracted_export_checks_with_sha256sums(populated, cfg, tmp_path):
    project, _ = populated
    target = extract_export(run_export(cfg, project).path, tmp_path / "restored")
    assert verify_sha256sums(target) == []
    assert (target / "data" / "cells.parquet").read_bytes() == project.data.cells.read_bytes()


def test_verify_names_a_tampered_a_missing_and_an_extra_member(populated, cfg, tmp_path):
    project, _ = populated
    good = run_export(cfg, project).path
    _rewrite(good, tmp_path / "changed.tar.gz", change="data/cells.parquet")
    _rewrite(good, tmp_path / "dropped.tar.gz", drop="models/best.safetensors")
    _rewrite(good, tmp_path / "added.tar.gz", extra="data/bonus.txt")
    (changed,) = verify_export(tmp_path / "changed.tar.gz")
    assert changed.startswith("data/cells.parquet: SHA-256 mismatch")
    assert verify_export(tmp_path / "dropped.tar.gz") == ["models/best.safetensors: listed in manifest.json but missing from the archive"]
    assert verify_export(tmp_path / "added.tar.gz") == ["data/bonus.txt: not listed in manifest.json (extra member)"]


def test_verify_rejects_escaping_members_and_writes_nothing(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    absolute = tmp_path / "abs_evil"
    archive = tmp_path / "hostile.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("../evil", str(absolute)):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("innocent")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        device = tarfile.TarInfo("dev")
        device.type = tarfile.CHRTYPE
        tar.addfile(device)
    problems = verify_export(archive)
    assert "member '../evil': path leaves the archive's directory (rejected)" in problems
    assert f"member '{absolute}': absolute path (rejected)" in problems
    assert any("innocent" in p and "link" in p for p in problems)
    assert any("'dev'" in p and "special file" in p for p in problems)
    with pytest.raises(UserError, match="did not verify"):
        extract_export(archive, work / "out")
    assert not (tmp_path / "evil").exists() and not absolute.exists() and not (work / "out").exists()
    assert sorted(os.listdir(work)) == []


def test_verify_of_garbage_says_so(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"not an archive at all")
    (problem,) = verify_export(tmp_path / "x.tar.gz")
    assert "not a readable tar.gz archive" in problem


@pytest.mark.parametrize("where", ["split_report", "report_prefix", "parquet_column"])
def test_export_refuses_the_token(populated, cfg, monkeypatch, where):
    project, run = populated
    monkeypatch.setenv("MAPILLARY_TOKEN", TOKEN)
    if where == "split_report":
        project.data.split_report.write_text(json.dumps({"url": f"https://x/?access_token={TOKEN}"}))
    elif where == "report_prefix":
        run.report.write_text("debug: MLY|leaked\n")
    else:
        frame = pl.read_parquet(project.data.manifest).with_columns(pl.lit(TOKEN).alias("creator_username"))
        frame.write_parquet(project.data.manifest)
    with pytest.raises(UserError, match="refusing to export"):
        run_export(cfg, project)
    assert not project.exports.exists() or list(project.exports.iterdir()) == []


def test_export_waits_for_no_one_while_data_is_locked(populated, cfg):
    project, _ = populated
    info = {"pid": os.getppid(), "hostname": __import__("socket").gethostname(), "command": "geolocate fetch", "started": "now"}
    project.data.lock.write_text(json.dumps(info))
    with pytest.raises(UserError, match="is locked by pid"):
        run_export(cfg, project)
    project.data.lock.unlink()
    with DataLock(project.data.lock):  # the same process may export while it holds the lock (batch)
        assert verify_export(run_export(cfg, project).path) == []


def test_cli_export_then_verify(populated, cli, monkeypatch):
    project, _ = populated
    monkeypatch.chdir(project.data_root.parent)
    result = cli("export", "--json")
    assert result.exit_code == 0, result.output
    path = json.loads(result.stdout)["file"]
    verified = cli("export", "--verify", path)
    assert verified.exit_code == 0 and "every member verified" in verified.output
    tampered = project.data_root.parent / "tampered.tar.gz"
    _rewrite(path, tampered, change="config.json")
    failed = cli("export", "--verify", str(tampered))
    assert failed.exit_code == 1 and "config.json: SHA-256 mismatch" in failed.output


@pytest.mark.parametrize("where", ["data/split_report.json", "runs/REPORT.md", "models/best.json"])
def test_export_never_ships_a_link_target(populated, cfg, tmp_path, where):
    project, run = populated
    secret = tmp_path / "secret.json"
    secret.write_text('{"private": "the content of a private file"}\n')
    path = {"data/split_report.json": project.data.split_report, "runs/REPORT.md": run.report,
            "models/best.json": project.best_sidecar}[where]
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(UserError, match=f"{path.name}.*symbolic link"):
        run_export(cfg, project)
    assert not project.exports.exists() or not any(project.exports.iterdir())


def test_a_linked_parent_directory_is_refused_too(populated, cfg, tmp_path):
    project, run = populated
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "REPORT.md").write_text("private report\n")
    run.report.unlink()
    (run.root / "plots").mkdir(exist_ok=True)
    run.report.symlink_to(outside / "REPORT.md")
    with pytest.raises(UserError, match="REPORT.md"):
        run_export(cfg, project)


def test_the_archive_digest_is_the_trust_anchor(populated, cfg, tmp_path):
    """Members, manifest and SHA256SUMS rewritten together verify on their own; --sha256 catches it."""
    from geolocate.artifacts.digest import format_sha256sums, sha256_file

    project, _ = populated
    result = run_export(cfg, project)
    assert result.sha256 == sha256_file(result.path)
    assert verify_export(result.path, result.sha256) == []
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(result.path) as src:
        members = {m.name: src.extractfile(m).read() for m in src.getmembers()}
    members["data/split_report.json"] = b'{"leaks": 999}'
    manifest = json.loads(members["manifest.json"])
    for m in manifest["members"]:
        if m["name"] == "data/split_report.json":
            import hashlib

            m["sha256"], m["size"] = hashlib.sha256(members[m["name"]]).hexdigest(), len(members[m["name"]])
    members["manifest.json"] = json.dumps(manifest).encode()
    members["SHA256SUMS"] = format_sha256sums({m["name"]: m["sha256"] for m in manifest["members"]}).encode()
    with tarfile.open(forged, "w:gz") as dst:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    assert verify_export(forged) == []  # the members vouch only for themselves
    problems = verify_export(forged, result.sha256)
    assert len(problems) == 1 and "not the expected" in problems[0]
    with pytest.raises(UserError, match="64 hexadecimal"):
        verify_export(forged, "abc")


def test_a_size_that_disagrees_is_reported(populated, cfg, tmp_path):
    project, _ = populated
    result = run_export(cfg, project)
    with tarfile.open(result.path) as src:
        members = {m.name: src.extractfile(m).read() for m in src.getmembers()}
    manifest = json.loads(members["manifest.json"])
    manifest["members"][0]["size"] += 1
    members["manifest.json"] = json.dumps(manifest).encode()
    changed = tmp_path / "sizes.tar.gz"
    with tarfile.open(changed, "w:gz") as dst:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    assert any("size mismatch" in p for p in verify_export(changed))


@pytest.mark.parametrize("cut", ["truncated", "flipped"])
def test_a_corrupt_gzip_says_corrupt_archive(populated, cfg, tmp_path, cut):
    project, _ = populated
    data = bytearray(run_export(cfg, project).path.read_bytes())
    if cut == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    problems = verify_export(bad)
    assert any("corrupt archive" in p for p in problems), problems
    assert not any("manifest.json is missing" in p for p in problems)


@pytest.mark.parametrize("member", [{"name": ["a"], "sha256": "0" * 64, "size": 1}, {"name": "a", "sha256": 5, "size": 1},
                                    {"name": "a", "sha256": None, "size": 1}, {"name": "a", "sha256": "0" * 64, "size": True}])
def test_manifest_members_are_type_checked(populated, cfg, tmp_path, member):
    project, _ = populated
    archive = tmp_path / "typed.tar.gz"
    doc = {"format": "geolocate.export", "version": 1, "members": [member]}
    with tarfile.open(archive, "w:gz") as dst:
        for name, data in (("manifest.json", json.dumps(doc).encode()), ("SHA256SUMS", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    problems = verify_export(archive)
    assert problems and "no valid member list" in problems[0]
