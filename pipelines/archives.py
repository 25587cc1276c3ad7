"""HTTP downloads that resume with Range requests, and safe extraction of tar archives (FAIR-Play).

A download writes ``<dest>.part`` and renames it to ``<dest>`` only when complete (and, when an expected sha256 is
known, only when it matches). An interrupted download -- a dropped connection, a killed process -- leaves the
``.part`` file, and the next call asks the server for the remaining bytes (``Range: bytes=N-``); a server that
ignores Range (status 200) makes it start over.

Extraction accepts only regular-file members whose names match the expected patterns; absolute names and ``..``
are treated as a hostile archive (error), links and other special members are skipped, and every file is written
to a temporary name and renamed, so a crash never leaves a truncated member under its final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# What each FAIR-Play archive may contain (member names relative to the extraction folder ``media/``).
FAIRPLAY_MEMBERS = {
    "videos": re.compile(r"^videos/\d{6}\.mp4$"),
    "audios": re.compile(r"^binaural_audios/\d{6}\.wav$"),
    "splits": re.compile(r"^splits/split\d{1,2}/(train|val|test)\.h5$"),
}



def fairplay_member(contents: str, name: str) -> str | None:
    """Where a FAIR-Play archive member goes under ``media/`` (None: not an expected member).

    Members are expected as ``videos/NNNNNN.mp4`` etc.; one extra leading folder (an archive packed from above,
    e.g. ``FAIR-Play/videos/000001.mp4``) is dropped rather than turning every clip into a missing one.
    """
    pattern = FAIRPLAY_MEMBERS[contents]
    if pattern.match(name):
        return name
    head, _, rest = name.partition("/")
    return rest if head and pattern.match(rest) else None


CHUNK = 1 << 20
USER_AGENT = "ccstereo-toolkit (ccs-data fetch)"


class ArchiveError(RuntimeError):
    """A download or an extraction failed; the message names the URL or file and the reason.

    ``transient`` tells whether trying again later may help (network errors, 429, 5xx).
    """

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    bytes: int
    sha256: str
    resumed_from: int  # bytes already on disk when this call started (0: fresh download)
    requests: int


@dataclass
class ExtractResult:
    extracted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (member name, why)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download_with_resume(
    url: str,
    dest: str | Path,
    *,
    expected_sha256: str | None = None,
    attempts: int = 5,
    timeout: float = 60.0,
    rate_limit: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    retry_wait_s: float = 1.0,
) -> DownloadResult:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming what is already there.

    Up to ``attempts`` requests are made, each resuming where the last one stopped. ``rate_limit`` caps the speed
    (bytes/s). Raises :class:`ArchiveError` on HTTP errors (404 and other 4xx: not transient), on a checksum
    mismatch (the ``.part`` file is deleted so the next run starts over) or when all attempts fail (the ``.part``
    file is kept for the next run).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    resumed_from = part.stat().st_size if part.exists() else 0
    requests = 0
    last_error: Exception | None = None
    complete = False
    for attempt in range(attempts):
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if have:
            req.add_header("Range", f"bytes={have}-")
        requests += 1
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status = resp.status
                if have and status == 206:
                    _check_content_range(resp.headers.get("Content-Range"), have, url)
                    mode = "ab"
                elif status == 200:
                    mode = "wb"  # the server ignored Range (or nothing was there): start over
                else:
                    raise ArchiveError(f"{url}: unexpected HTTP status {status}", transient=True)
                expected_len = resp.headers.get("Content-Length")
                written = _copy(resp, part, mode, rate_limit, on_bytes)
                if expected_len is not None and written < int(expected_len):
                    raise ConnectionError(f"connection closed after {written} of {expected_len} bytes")
            complete = True
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:
                # nothing left to send: the .part file already holds the whole resource
                complete = True
                break
            transient = exc.code == 429 or exc.code >= 500
            if not transient:
                raise ArchiveError(f"{url}: HTTP {exc.code} {exc.reason}", transient=False) from None
            last_error = exc
        except ArchiveError:
            raise
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last_error = exc
        if attempt + 1 < attempts:
            time.sleep(retry_wait_s * (attempt + 1))
    if not complete:
        raise ArchiveError(
            f"{url}: download incomplete after {attempts} attempts ({last_error}); "
            f"{part.stat().st_size if part.exists() else 0} bytes kept in {part} for the next run",
            transient=True,
        )
    digest = _sha256(part)
    if expected_sha256 is not None and digest != expected_sha256:
        size = part.stat().st_size
        part.unlink()
        raise ArchiveError(
            f"{url}: sha256 mismatch for {dest.name}: expected {expected_sha256}, got {digest} ({size} bytes); "
            "the partial file was deleted"
        )
    size = part.stat().st_size
    os.replace(part, dest)
    return DownloadResult(dest, size, digest, resumed_from, requests)


def _check_content_range(value: str | None, have: int, url: str) -> None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value or "")
    if not m or int(m.group(1)) != have:
        raise ArchiveError(f"{url}: asked for bytes from {have}, server answered Content-Range {value!r}", transient=True)


def _copy(resp, part: Path, mode: str, rate_limit: int | None, on_bytes: Callable[[int], None] | None) -> int:
    written = 0
    start = time.monotonic()
    with open(part, mode) as out:
        while True:
            block = resp.read(min(CHUNK, rate_limit) if rate_limit else CHUNK)
            if not block:
                break
            out.write(block)
            written += len(block)
            if on_bytes is not None:
                on_bytes(len(block))
            if rate_limit:
                ahead = written / rate_limit - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        out.flush()
        os.fsync(out.fileno())
    return written


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def normalise_member_name(name: str) -> str:
    """A tar member name relative to the extraction folder; raises :class:`ArchiveError` for a hostile one."""
    if name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"archive member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"archive member {name!r} points outside the extraction folder ('..')")
    return "/".join(parts)


def safe_extract(
    archive: str | Path,
    target: str | Path,
    *,
    accept: Callable[[str], str | None],
    on_member: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Extract regular files of ``archive`` into ``target``: ``accept(name)`` gives each normalised member name's
    path under ``target`` (usually the name itself), or None to skip it.

    Links, devices, directories and unexpected names are skipped (and listed in the result); an absolute name or
    one with ``..`` raises :class:`ArchiveError` before anything of that member is written.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    result = ExtractResult()
    try:
        tf = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{archive}: not a readable tar archive ({exc})") from None
    with tf:
        try:
            for member in tf:
                name = normalise_member_name(member.name)
                if member.isdir():
                    continue
                if member.issym() or member.islnk():
                    result.skipped.append((member.name, "link"))
                    continue
                if not member.isfile():
                    result.skipped.append((member.name, "not a regular file"))
                    continue
                dest_name = accept(name)
                if dest_name is None:
                    result.skipped.append((member.name, "unexpected member"))
                    continue
                out = target / normalise_member_name(dest_name)
                if not out.resolve().is_relative_to(root):  # defence in depth (e.g. a symlinked folder)
                    raise ArchiveError(f"{archive}: member {member.name!r} would be written outside {target}")
                _extract_file(tf, member, out)
                result.extracted.append(dest_name)
                if on_member is not None:
                    on_member(dest_name)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise ArchiveError(f"{archive}: archive is damaged ({exc})") from None
    return result


def _extract_file(tf: tarfile.TarFile, member: tarfile.TarInfo, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = tf.extractfile(member)
    if src is None:  # pragma: no cover - isfile() members always have data
        raise ArchiveError(f"member {member.name!r} has no data")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(src, fh, CHUNK)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
