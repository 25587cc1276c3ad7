"""Prepare's worker processes (``pipelines.workers``): out of the terminal's process group, SIGINT ignored, dead
with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.workers import worker_pool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")


def _worker_state() -> tuple[int, int, object]:
    return os.getsid(0), os.getpgrp(), signal.getsignal(signal.SIGINT)


def test_a_worker_is_out_of_the_terminal_process_group_and_ignores_sigint():
    """Ctrl-C signals the foreground process group; a worker's ffmpeg in it stopped mid-decode and the worker stored
    the video with the clips it could not decode dropped (fault campaign, prepare --jobs 2)."""
    with worker_pool(1) as pool:
        sid, pgrp, handler = pool.submit(_worker_state).result(timeout=60)
    assert pgrp != os.getpgrp() and sid != os.getsid(0)
    assert handler == signal.SIG_IGN


PARENT = """
import os, sys, time
from pipelines.workers import worker_pool
pool = worker_pool(1)
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 60)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_dies_with_its_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
