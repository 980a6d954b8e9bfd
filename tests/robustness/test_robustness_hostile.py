"""Every hostile input of the corpus (`hostile.py`) through the CLI: one line, exit 1 or 2, no
traceback, no hang, nothing read from or written outside the project.

The corpus runs in-process (`CliRunner`, torch imported once) with an alarm as the hang guard;
the FIFO cases, where a hang would be real, also run as `python -m geolocate` children with a
timeout, as a user would meet them.
"""

from __future__ import annotations

import gzip
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.robustness.conftest import child_env
from tests.robustness.hostile import SECRET, Case, build_template, corpus, plant_secret

TIME_LIMIT_S = 10.0  # in-process: the heaviest case (a predict) takes well under a second once torch is loaded
# A child pays the imports again (torch for predict: ~20 s on a two-core machine shared by a dozen
# processes). A FIFO read blocks forever, so a generous limit still tells a hang from a slow start.
CHILD_LIMIT_S = 90.0
CASES = corpus()


class Hung(Exception):
    """Raised by the alarm: the command did not finish in time."""


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    return build_template(tmp_path_factory.mktemp("hostile") / "template")


@pytest.fixture
def project(template, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the template as the working directory, with the secret planted beside it."""
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    plant_secret(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return root


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of everything under `root` (links not followed), minus `skip`."""
    out = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        status = path.lstat()
        out[path.relative_to(root).as_posix()] = (status.st_size, status.st_mtime_ns)
    return out


def leaked(project: Path, *texts: str) -> list[str]:
    """Where the secret turned up: in the command's output or in a file of the project (gzip opened)."""
    found = [f"output {i}" for i, text in enumerate(texts) if SECRET in text]
    for path in project.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass
        if SECRET.encode() in data:
            found.append(str(path.relative_to(project)))
    return found


def invoke_with_alarm(runner, argv: list[str], seconds: float):
    from geolocate.cli import app

    def ring(signum, frame):
        raise Hung(f"no answer after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return runner.invoke(app, argv, catch_exceptions=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_refused(code: int, stderr: str, stdout: str, seconds: float, limit: float) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr + stdout, stderr[-2000:]
    assert code in (1, 2), f"exit code {code}; stderr: {stderr[-1000:]}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{stderr[-2000:]}"
    assert seconds < limit, f"took {seconds:.1f} s"


def assert_contained(project: Path, before_outside: dict, before_around: set, *outputs: str) -> None:
    outside = project.parent / "outside"
    assert snapshot(outside) == before_outside, "a file outside the project was changed"
    assert {p.name for p in project.parent.iterdir()} == before_around, "a file was written next to the project"
    assert leaked(project, *outputs) == [], "the secret outside the project was read"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_in_one_line(case: Case, project: Path, runner):
    argv = case.build(project)
    before_outside, before_around = snapshot(project.parent / "outside"), {p.name for p in project.parent.iterdir()}
    start = time.perf_counter()
    result = invoke_with_alarm(runner, argv, TIME_LIMIT_S)
    seconds = time.perf_counter() - start
    if isinstance(result.exception, Hung):
        pytest.fail(f"{case.name}: hung ({result.exception})")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        pytest.fail(f"{case.name}: traceback\n{''.join(traceback.format_exception(result.exception))[-3000:]}")
    assert_refused(result.exit_code, result.stderr, result.stdout, seconds, TIME_LIMIT_S)
    assert_contained(project, before_outside, before_around, result.stdout, result.stderr)


CHILD_CASES = [c for c in CASES if c.kind in ("fifo", "link") or c.name == "config-deep-tables"]


@pytest.mark.parametrize("case", CHILD_CASES, ids=[c.name for c in CHILD_CASES])
def test_hostile_input_in_a_child_process(case: Case, project: Path):
    """The real entry point: what a user's shell sees, with a hard timeout as the hang guard."""
    argv = case.build(project)
    before_outside, before_around = snapshot(project.parent / "outside"), {p.name for p in project.parent.iterdir()}
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "geolocate", *argv], cwd=project, env=child_env(GIT_CEILING_DIRECTORIES=str(project.parent)),
                              capture_output=True, text=True, timeout=CHILD_LIMIT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.name}: hung (no answer after {CHILD_LIMIT_S:.0f} s)")
    assert_refused(done.returncode, done.stderr, done.stdout, time.perf_counter() - start, CHILD_LIMIT_S)
    assert_contained(project, before_outside, before_around, done.stdout, done.stderr)


def test_the_template_itself_is_accepted(project: Path, runner):
    """The corpus means something only if the untampered inputs work: same commands, exit 0."""
    result = invoke_with_alarm(runner, ["predict", "photos/ok.jpg", "--checkpoint", "ckpt/model", "--json"], TIME_LIMIT_S)
    assert result.exit_code == 0, result.stderr
    (project / "t.csv").write_text("id,north,lat,lon\nA,ok.jpg,45,2\n")
    result = invoke_with_alarm(runner, ["import-locations", "t.csv", "--images-dir", "photos"], TIME_LIMIT_S)
    assert result.exit_code == 0, result.stderr
    result = invoke_with_alarm(runner, ["export"], TIME_LIMIT_S)
    assert result.exit_code == 0, result.stderr
    archive = next((project / "exports").glob("*.tar.gz"))
    digest = result.stderr.split("sha256 ", 1)[1].split()[0]
    result = invoke_with_alarm(runner, ["export", "--verify", str(archive), "--sha256", digest], TIME_LIMIT_S)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("name", ["a[/]b.jpg", "[bold]c[/bold].jpg"])
def test_user_text_with_markup_is_printed_as_it_is(project: Path, runner, name):
    """A photo `photos/a[/]b.jpg` (a directory `a[` holding `]b.jpg`) is predicted, written to
    --out, and its name printed verbatim, like any other."""
    photo = project / "photos" / name
    photo.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project / "photos" / "ok.jpg", photo)
    result = invoke_with_alarm(runner, ["predict", str(photo.relative_to(project)), "--checkpoint", "ckpt/model", "--out", "o.csv"], TIME_LIMIT_S)
    assert result.exit_code == 0, result.stderr
    shown = f"photos/{name}"
    assert shown in (project / "o.csv").read_text() and shown in result.stdout, result.stdout
