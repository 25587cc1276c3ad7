"""The mechanics of the fault campaign (``benchmarks/faults.py``): commands run as separate processes and
interrupted at a chosen moment, the loopback server as a process of its own, and what a finished dataset folder
is compared by.

* :func:`run_interrupted` starts a command in its own process group and, ``delay`` seconds later, sends SIGKILL to
  the command's process alone (its children are left to fend for themselves, as when the kernel's OOM killer or a
  ``kill -9`` strikes) or SIGINT to the whole group (what Ctrl-C in a terminal does). It reports the processes of
  the group, and those the command had started when it was signalled, still alive afterwards (workers that
  outlived their parent) and kills them.
* :func:`tree_digest` is the byte-level identity of a dataset folder: the sha256 of every file, except the ledgers
  (they hold times; :func:`ledger_state` compares what they record), lock files and the archives (compared with
  the upstream copy they must equal); yt-dlp's download archive is compared as a set of lines (parallel downloads
  finish in any order).
* :func:`leftovers` lists what a finished stage must not leave: temporary files, partial downloads, rejected
  archives.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.io import Ledger, sha256_file

TRACEBACK = "Traceback (most recent call last)"
# what the console scripts run (pyproject [project.scripts]), whether or not they are on the PATH
CCS_DATA = [sys.executable, "-c", "from pipelines.entry import ccs_data; ccs_data()"]
CCS_TRAIN = [sys.executable, "-c", "from ccstereo.entry import ccs_train; ccs_train()"]
_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@dataclass
class Run:
    """One finished (or interrupted) command: exit status, seconds, stderr, and processes that outlived it."""

    returncode: int
    seconds: float
    stderr: str
    signalled: bool = False  # the signal was sent while the command ran (False: it had finished before)
    survivors: int = 0

    @property
    def tracebacks(self) -> int:
        return self.stderr.count(TRACEBACK)


def _processes() -> dict[int, tuple[str, int, int]]:
    """``pid -> (state, parent pid, process group)`` of every process (from /proc)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        state, ppid, pgrp = text[text.rindex(")") + 2:].split()[:3]
        out[int(stat.parent.name)] = (state, int(ppid), int(pgrp))
    return out


def _descendants(pid: int) -> set[int]:
    """The processes started by ``pid``, their children and so on (workers in sessions of their own included)."""
    children: dict[int, list[int]] = {}
    for child, (_, ppid, _) in _processes().items():
        children.setdefault(ppid, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pgid: int, known: set[int]) -> list[int]:
    """Processes of group ``pgid`` or among ``known`` that are alive (zombies are dead: they wait to be reaped)."""
    return sorted(pid for pid, (state, _, pgrp) in _processes().items()
                  if (pgrp == pgid or pid in known) and state != "Z")


def run_interrupted(cmd: list[str], log: Path, *, delay: float | None, sig: int = signal.SIGKILL,
                    timeout: float = 600.0) -> Run:
    """Run ``cmd`` (stderr to ``log``); after ``delay`` seconds (None: never) interrupt it (module docstring)."""
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                env={**os.environ, **_ENV})
        signalled, tree = False, set()
        try:
            proc.wait(timeout=delay if delay is not None else timeout)
        except subprocess.TimeoutExpired:
            if delay is None:
                raise
            signalled = True
            tree = _descendants(proc.pid)  # before the signal: once the parent is gone, its orphans are init's
            if sig == signal.SIGKILL:
                proc.kill()
            else:
                os.killpg(proc.pid, sig)
            proc.wait(timeout=timeout)
        seconds = time.monotonic() - started
    survivors = _reap(proc.pid, tree)
    return Run(proc.returncode, seconds, log.read_text(encoding="utf-8", errors="replace"), signalled, survivors)


def _reap(pgid: int, tree: set[int]) -> int:
    """How many processes of the group or of ``tree`` were still alive a moment after the leader ended; they are
    killed."""
    deadline = time.monotonic() + 2.0
    alive = _alive(pgid, tree)
    while alive and time.monotonic() < deadline:  # a child between its parent's end and its own
        time.sleep(0.1)
        alive = _alive(pgid, tree)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(alive)


def run_to_end(cmd: list[str], log: Path, timeout: float = 900.0) -> Run:
    return run_interrupted(cmd, log, delay=None, timeout=timeout)


class ServerProcess:
    """``ccs-data serve DIR`` as a process of its own (so that it can be killed mid-download), on a fixed port
    once it has one."""

    def __init__(self, directory: Path, log: Path):
        self.directory, self.log, self.port = directory, log, 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        seen = self.log.stat().st_size if self.log.is_file() else 0  # the lines of earlier starts are not this one's
        err = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 - the server's stderr for its whole life
        self.proc = subprocess.Popen([*CCS_DATA, "serve", str(self.directory), "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        err.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(self.log, encoding="utf-8") as fh:
                fh.seek(seen)
                m = re.search(r"at http://127\.0\.0\.1:(\d+)/", fh.read())
            if m and (self.port == 0 or int(m.group(1)) == self.port) and self._listening(int(m.group(1))):
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                raise RuntimeError(f"ccs-data serve ended at start: {self.log.read_text()[-500:]}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("ccs-data serve did not start within 60 s")

    @staticmethod
    def _listening(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def tree_digest(base: Path) -> dict[str, str]:
    """``relative path -> sha256`` of a dataset folder (module docstring for what is left out)."""
    out = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base).as_posix()
        if rel.startswith(("ledger/", "archives/")) and not rel.endswith("yt-dlp-archive.txt") or rel.endswith(".lock"):
            continue
        if rel.endswith("yt-dlp-archive.txt"):
            text = "\n".join(sorted(path.read_text(encoding="utf-8").split("\n")))
            out[rel] = hashlib.sha256(text.encode()).hexdigest()
        else:
            out[rel] = sha256_file(path)
    return out


def ledger_state(base: Path, stage: str, key: str = "video_id") -> dict[str, dict[str, Any]]:
    """What the latest record of every item in ``ledger/<stage>.jsonl`` says (its time left out)."""
    latest = Ledger(base / "ledger" / f"{stage}.jsonl").latest(key)
    return {k: {f: v for f, v in r.items() if f != "time"} for k, r in latest.items()}


def leftovers(base: Path) -> list[str]:
    """Temporary files, partial downloads and rejected archives under ``base`` (a finished stage leaves none)."""
    found = []
    for path in base.rglob("*"):
        rel = path.relative_to(base).as_posix()
        name = path.name
        if (path.is_file() and (name.endswith((".tmp", ".part", ".part.json")) or name.endswith(".ytdl"))) or (
                path.is_dir() and name in (".partial", "rejected")):
            found.append(rel)
    return sorted(found)


def interrupt_outcome(run: Run) -> str:
    """``line``: an interrupted command printed one error line, the error style's ``interrupted``, no traceback,
    and exited 130 (other output, such as a library's notice at import, is not an error line); ``finished``: the
    signal came once the command had done its work (status 0, no error line: the entry point ignores SIGINT
    from there on); ``bad``: anything else."""
    errors = [ln for ln in run.stderr.splitlines() if "error:" in ln.lower()]
    if run.returncode == 130 and run.tracebacks == 0 and len(errors) == 1 and "error: interrupted" in errors[0]:
        return "line"
    return "finished" if run.returncode == 0 and run.tracebacks == 0 and not errors else "bad"
