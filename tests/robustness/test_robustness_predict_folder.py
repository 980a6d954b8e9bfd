"""`predict FOLDER` reads the regular photos inside the folder, as `import` does (`files.files_under`).

A link inside the folder (to a photo elsewhere, to a photo beside it, to a directory) and a FIFO
are skipped with their reason, listed and counted like unreadable photos, and never opened: a
FIFO's open would block forever, a link could lead predict to a photo of someone else's. What
the user names on the command line stays the user's word: a linked photo given by name is read,
a FIFO given by name is still refused from `stat`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.robustness.conftest import child_env
from tests.robustness.hostile import CKPT
from tests.robustness.test_robustness_hostile import CHILD_LIMIT_S
from tests.robustness.test_robustness_hostile import project, template  # noqa: F401 - fixtures
from tests.robustness.test_robustness_round2 import run

SKIPPED = ("photos/outside.jpg", "photos/beside.jpg", "photos/elsewhere", "photos/pipe.jpg")


def _hostile_folder(project: Path) -> None:
    """photos/: two photos, links out, in and to a directory, and a FIFO; beside it a named link and FIFO."""
    photos, outside = project / "photos", project.parent / "outside"
    shutil.copyfile(photos / "ok.jpg", photos / "b.jpg")
    (photos / "outside.jpg").symlink_to(outside / "secret.png")
    (photos / "beside.jpg").symlink_to(photos / "ok.jpg")
    (photos / "elsewhere").symlink_to(outside, target_is_directory=True)
    os.mkfifo(photos / "pipe.jpg")
    (project / "named.jpg").symlink_to(photos / "ok.jpg")
    os.mkfifo(project / "named-pipe.jpg")


def test_expanding_a_folder_skips_its_links_and_pipes_with_their_reason(project):
    from geolocate.inference.run import photo_inputs

    _hostile_folder(project)
    inputs = photo_inputs([Path("photos"), Path("named.jpg")], None)
    assert inputs.names == ["photos/b.jpg", "photos/ok.jpg", "named.jpg"]
    reasons = {f.file: f.reason for f in inputs.skipped}
    assert sorted(reasons) == sorted(SKIPPED) and inputs.count == 7
    assert "symbolic link" in reasons["photos/outside.jpg"] and "symbolic link" in reasons["photos/elsewhere"]
    assert "FIFO" in reasons["photos/pipe.jpg"]


def test_predict_on_a_folder_reads_only_its_regular_photos(project):
    """The real entry point in a child with a timeout: a FIFO opened by mistake would block for ever."""
    _hostile_folder(project)
    argv = ["predict", "photos", "named.jpg", "named-pipe.jpg", "--checkpoint", CKPT, "--json"]
    try:
        done = subprocess.run([sys.executable, "-m", "geolocate", *argv], cwd=project, capture_output=True, text=True,
                              env=child_env(GIT_CEILING_DIRECTORIES=str(project.parent)), timeout=CHILD_LIMIT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"predict hung (no answer after {CHILD_LIMIT_S:.0f} s): a FIFO was opened") from None
    assert done.returncode == 1, done.stderr  # as for any unreadable photo: the others are predicted
    answer = json.loads(done.stdout)
    assert [p["file"] for p in answer["predictions"]] == ["photos/b.jpg", "photos/ok.jpg", "named.jpg"]
    failures = {f["file"]: f["reason"] for f in answer["failures"]}
    assert sorted(failures) == sorted([*SKIPPED, "named-pipe.jpg"])
    assert all("skipped" in failures[name] for name in SKIPPED) and "not a regular file" in failures["named-pipe.jpg"]
    assert all(name in done.stderr for name in SKIPPED) and "Traceback" not in done.stderr


def test_a_folder_holding_only_links_predicts_nothing_and_says_why(project, runner):
    only = project / "only"
    only.mkdir()
    (only / "a.jpg").symlink_to(project / "photos" / "ok.jpg")
    result = run(runner, ["predict", "only", "--checkpoint", CKPT])
    assert result.exit_code == 2 and "symbolic link" in result.stderr, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
