"""Crash-safe file writes, JSONL ledgers, file hashes and ledger timestamps shared by every stage.

Every stage writes its files with :func:`atomic_output` (a temporary ``.<name>.<8 random>.tmp`` beside the file,
renamed when complete) and removes the temporary files of a killed run of its own at start
(:func:`remove_stale_temp_files`), holding :func:`stage_lock` so that no second run of the stage writes there at
the same time.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pipelines.errors import InputError

TEMP_SUFFIX = ".tmp"
# what tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") creates: 8 characters of its alphabet between them
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``, Linux >= 4.7); elsewhere set and
    restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds.

    The file gets the permissions ``open()`` would give a new file (``0o666`` less the umask), not mkstemp's
    private ``0o600``: outputs are meant to be read by others where the user's umask allows it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def temp_file_target(path: Path) -> str | None:
    """The name of the file a temporary file of :func:`atomic_output` was to become, or None if it is not one."""
    m = _TEMP_RE.match(path.name)
    return m.group("name") if m else None


def remove_stale_temp_files(folder: str | Path, *, names: Iterable[str] | None = None,
                            recursive: bool = False) -> list[Path]:
    """Delete the temporary files :func:`atomic_output` left in ``folder`` when its process was killed (only those
    of the files ``names`` when given; in every subfolder too with ``recursive``); returns what was deleted.

    Call it at the start of a stage, under its :func:`stage_lock`: no other writer is running then.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = set(names) if names is not None else None
    removed = []
    for path in folder.rglob(f"*{TEMP_SUFFIX}") if recursive else folder.glob(f"*{TEMP_SUFFIX}"):
        target = temp_file_target(path)
        if target is not None and (wanted is None or target in wanted) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def stage_lock(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block (``what``, e.g. "ccs-data fetch of data/x", names the
    holder in the error). The lock goes with its process, so a killed run never leaves a stale one; a second run
    while the first is alive is an :class:`~pipelines.errors.InputError`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise InputError(f"another {what} is running (it holds {path}); wait for it to end") from None
            raise
        yield
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write a whole JSONL file atomically (sorted keys, one record per line)."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_jsonl(path: str | Path, *, skip_torn: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL file; a torn last line (crash during append) is ignored, any other bad line raises.

    ``skip_torn=True`` (ledgers) also skips unparsable lines in the middle: a crash mid-append followed by
    later appends leaves one there, and the record it held was never acknowledged.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if skip_torn or i == len(lines) - 1:  # an append cut short by a crash
                continue
            raise ValueError(f"{path}:{i + 1}: not valid JSON") from None
    return out


class Ledger:
    """Append-only JSONL record of per-item outcomes; the last record of an item wins.

    Each append is one ``write`` of a whole line followed by fsync, so a crash leaves at worst a torn last
    line, which :func:`read_jsonl` skips.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # less the umask
        try:
            # a torn previous line must not swallow this record: start on a fresh line
            if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def touch(self) -> None:
        """Create the ledger if it does not exist yet (a stage that recorded nothing still leaves its ledger)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666))

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path, skip_torn=True)

    def latest(self, key: str = "video_id") -> dict[str, dict[str, Any]]:
        """The last record of every item, by ``key``."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            if key in rec:
                out[rec[key]] = rec
        return out


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def utc_now() -> str:
    """The ``time`` field of every ledger record: UTC to the second, ``2026-01-31T12:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
