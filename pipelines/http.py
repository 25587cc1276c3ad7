"""HTTP for fetch: bounded GETs of list files and downloads that resume with Range requests.

Every request carries the project's one User-Agent. A download writes ``<dest>.part`` and renames it to ``<dest>``
only when complete (and, when an expected sha256 is known, only when it matches). An interrupted download -- a
dropped connection, a killed process -- leaves the ``.part`` file, and the next call asks the server for the
remaining bytes (``Range: bytes=N-``); a server that ignores Range (status 200) makes it start over.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.io import sha256_file

USER_AGENT = "ccstereo-toolkit (ccs-data fetch)"
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and the reason.

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


def request(url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"User-Agent": USER_AGENT})


def get_bytes(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """The body of ``url``; :class:`DownloadError` if it is longer than ``max_bytes``.

    urllib's errors (``HTTPError``, ``URLError``, ``OSError``) propagate: the caller words them for its file.
    """
    with urllib.request.urlopen(request(url), timeout=timeout) as resp:
        data = resp.read(max_bytes + 1)
    if len(data) > max_bytes:  # the real lists are tens of kB: something else is being served
        raise DownloadError(f"{url}: more than {max_bytes} bytes, not a list file")
    return data


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
    (bytes/s). Raises :class:`DownloadError` on HTTP errors (404 and other 4xx: not transient), on a checksum
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
        requests += 1
        try:
            _request_rest(url, part, timeout, rate_limit, on_bytes)
            complete = True
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and part.exists() and part.stat().st_size:
                # nothing left to send: the .part file already holds the whole resource
                complete = True
                break
            if not (exc.code == 429 or exc.code >= 500):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}", transient=False) from None
            last_error = exc
        except DownloadError:
            raise
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last_error = exc
        if attempt + 1 < attempts:
            time.sleep(retry_wait_s * (attempt + 1))
    if not complete:
        raise DownloadError(
            f"{url}: download incomplete after {attempts} attempts ({last_error}); "
            f"{part.stat().st_size if part.exists() else 0} bytes kept in {part} for the next run",
            transient=True,
        )
    return _finish(url, dest, part, expected_sha256, resumed_from, requests)


def _request_rest(url: str, part: Path, timeout: float, rate_limit: int | None,
                  on_bytes: Callable[[int], None] | None) -> None:
    """One request for the bytes ``part`` does not hold yet, appended to it (or all of them, on a 200)."""
    have = part.stat().st_size if part.exists() else 0
    req = request(url)
    if have:
        req.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        status = resp.status
        if have and status == 206:
            _check_content_range(resp.headers.get("Content-Range"), have, url)
            mode = "ab"
        elif status == 200:
            mode = "wb"  # the server ignored Range (or nothing was there): start over
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {status}", transient=True)
        expected_len = resp.headers.get("Content-Length")
        written = _copy(resp, part, mode, rate_limit, on_bytes)
        if expected_len is not None and written < int(expected_len):
            raise ConnectionError(f"connection closed after {written} of {expected_len} bytes")


def _finish(url: str, dest: Path, part: Path, expected_sha256: str | None, resumed_from: int,
            requests: int) -> DownloadResult:
    digest = sha256_file(part)
    if expected_sha256 is not None and digest != expected_sha256:
        size = part.stat().st_size
        part.unlink()
        raise DownloadError(
            f"{url}: sha256 mismatch for {dest.name}: expected {expected_sha256}, got {digest} ({size} bytes); "
            "the partial file was deleted"
        )
    size = part.stat().st_size
    os.replace(part, dest)
    return DownloadResult(dest, size, digest, resumed_from, requests)


def _check_content_range(value: str | None, have: int, url: str) -> None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value or "")
    if not m or int(m.group(1)) != have:
        raise DownloadError(f"{url}: asked for bytes from {have}, server answered Content-Range {value!r}",
                            transient=True)


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
