"""The data-directory lock: contention between processes, stale locks, re-entry."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from geolocate.lock import DataLock, read_lock
from geolocate.errors import UserError

HOLDER = """
import sys, time
from geolocate.lock import DataLock
with DataLock(sys.argv[1], command="geolocate fetch"):
    print("locked", flush=True)
    sys.stdin.readline()
"""

RACER = """
import sys, time
from geolocate.lock import DataLock
from geolocate.errors import UserError
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
try:
    with DataLock(sys.argv[1], command="racer"):
        print("won", flush=True)
        time.sleep(1.5)
except UserError:
    print("busy", flush=True)
"""


def _hold(lock_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc):
    proc.stdin.write("\n")
    proc.stdin.flush()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_stale(lock_path, pid):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "hostname": socket.gethostname(), "command": "geolocate fetch", "started": "2026-11-21 20:00:00 UTC"}
    lock_path.write_text(json.dumps(info))


def test_second_process_gets_a_clear_error_then_the_lock(tmp_path):
    lock_path = tmp_path / "data" / ".lock"
    holder = _hold(lock_path)
    try:
        with pytest.raises(UserError) as info:
            with DataLock(lock_path):
                pass
        message = str(info.value)
        assert f"is locked by pid {holder.pid} (geolocate fetch, started " in message
        assert f"remove {lock_path} if that process is gone" in message
    finally:
        holder.communicate("\n", timeout=30)
    with DataLock(lock_path):
        assert read_lock(lock_path).pid == os.getpid()
    assert not lock_path.exists()


def test_waiting_gets_the_lock_once_released(tmp_path):
    lock_path = tmp_path / ".lock"
    holder = _hold(lock_path)
    threading.Timer(0.5, _release, args=(holder,)).start()
    with DataLock(lock_path, wait_s=20):
        assert read_lock(lock_path).pid == os.getpid()
    holder.wait(timeout=30)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    lock_path = tmp_path / ".lock"
    _write_stale(lock_path, _dead_pid())
    with DataLock(lock_path, command="geolocate cells"):
        assert read_lock(lock_path).command == "geolocate cells"
    assert not lock_path.exists()


def test_lock_of_another_host_is_not_taken(tmp_path):
    lock_path = tmp_path / ".lock"
    lock_path.write_text(json.dumps({"pid": _dead_pid(), "hostname": "elsewhere", "command": "geolocate fetch", "started": "x"}))
    with pytest.raises(UserError, match="on elsewhere"):
        with DataLock(lock_path):
            pass


def test_many_processes_breaking_one_stale_lock_yield_one_holder(tmp_path):
    lock_path = tmp_path / ".lock"
    _write_stale(lock_path, _dead_pid())
    start = time.time() + 1.5
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(lock_path), str(start)], stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    outcomes = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)
    assert outcomes == ["busy", "busy", "busy", "won"]


def test_reentry_in_one_process_keeps_the_lock_until_the_outer_exit(tmp_path):
    lock_path = tmp_path / ".lock"
    with DataLock(lock_path):
        with DataLock(lock_path):  # `geolocate batch` calling a step that locks too
            pass
        assert lock_path.exists()
    assert not lock_path.exists()


def test_exit_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    lock_path = tmp_path / ".lock"
    with DataLock(lock_path):
        lock_path.unlink()  # a user removed it by hand, and another command took it
        _write_stale(lock_path, os.getppid())
    assert read_lock(lock_path).pid == os.getppid()


def test_empty_lock_left_by_a_crash_mid_create_is_removed(tmp_path):
    lock_path = tmp_path / ".lock"
    lock_path.write_text("")
    old = time.time() - 60
    os.utime(lock_path, (old, old))
    with DataLock(lock_path, command="geolocate split"):
        assert read_lock(lock_path).command == "geolocate split"


def test_the_lock_and_the_artifacts_layer_do_not_import_torch():
    modules = "rundir, resolve, checkpoint, best, export, verify, freeze, state"
    code = f"import sys; from geolocate import lock; from geolocate.artifacts import {modules}; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
