"""Two commands writing one data directory: the second gets a clear error; a stale lock is taken over.

The lock itself is tested in tests/artifacts/test_artifacts_lock.py; here the real commands
meet it, with the holder in another process (within one process the lock is re-entrant).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from tests.robustness.conftest import child_env, wait_for

HOLD = """
import sys, time
from geolocate.lock import DataLock
with DataLock(sys.argv[1], command="geolocate fetch"):
    print("held", flush=True)
    time.sleep(60)
"""


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture
def holder(project):
    """Another process holding data/.lock, as a running `geolocate fetch` would."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(project / "data" / ".lock")], env=child_env(),
                             stdout=subprocess.PIPE, text=True)
    wait_for(lambda: (project / "data" / ".lock").is_file(), 20, "the holder to take the lock", child)
    yield child
    child.kill()
    child.wait()


@pytest.mark.parametrize("command", [
    ["cells", "--profile", "tiny"],
    ["split", "--profile", "tiny"],
    ["clean-raw"],
    ["batch", "01", "--synthetic", "--profile", "tiny"],
    ["export"],
])
def test_a_second_command_gets_a_clear_lock_error_and_changes_nothing(project, holder, cli, command):
    before = _digests(project / "data")
    result = cli(*command)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    message = " ".join(lines)
    assert "is locked by pid" in message and f"{holder.pid}" in message and "geolocate fetch" in message
    assert _digests(project / "data") == before
    assert not (project / "exports").exists() and not (project / "data" / "batches").exists()


def test_a_stale_lock_of_a_killed_process_is_taken_over(project, cli):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid no longer runs: the lock it "left" is stale
    lock = project / "data" / ".lock"
    import socket

    lock.write_text(json.dumps({"pid": dead.pid, "hostname": socket.gethostname(), "command": "geolocate fetch",
                                "started": "2026-01-01 00:00:00 UTC"}))
    result = cli("clean-raw", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] > 0
    assert not lock.exists()  # taken over, then released
