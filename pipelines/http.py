"""HTTP for fetch: bounded GETs of list files and downloads that resume with Range requests.

Every request carries the project's one User-Agent. A download writes ``<dest>.part`` and renames it to ``<dest>``
only when complete (and, when an expected sha256 is known, only when it matches). When the first response of a
download arrives, its validators (``ETag``, ``Last-Modified``, length) are written to ``<dest>.part.json`` before
any byte of the body, so an interrupted download -- a dropped connection, a killed process -- leaves the ``.part``
file and what it is a part of. The next call asks only for the remaining bytes (``Range: bytes=N-``) and only if
the resource is still the same (``If-Range`` with the recorded ETag or Last-Modified; a 206 whose total length or
ETag differs from the record is not trusted either): a changed upstream file is downloaded again from the start,
never spliced onto the old bytes. A ``.part`` without a record (nothing to compare with), a server that ignores
Range (status 200) and a 416 for a ``.part`` that is not exactly the whole resource all start over too; a
``.part`` that holds exactly the recorded whole (a kill before the rename) is finished without a download. An
empty body is an error (an upstream file of zero bytes is no download).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pipelines.errors import EXIT_INPUT, EXIT_NETWORK, NetworkError
from pipelines.io import atomic_write_text, sha256_file

USER_AGENT = "ccstereo-toolkit (ccs-data fetch)"
CHUNK = 1 << 20


class DownloadError(NetworkError):
    """A download failed; the message names the URL and the reason.

    ``transient`` tells whether trying again later may help (network errors, 429, 5xx).
    """

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient
        self.exit_code = EXIT_NETWORK if transient else EXIT_INPUT  # a refused file is no network failure


class _StartOver(Exception):
    """The ``.part`` file cannot be continued (the resource changed, or no record says what it is part of)."""


@dataclass(frozen=True)
class Validators:
    """What the first response of a download said about the resource (``<dest>.part.json``)."""

    url: str
    etag: str | None
    last_modified: str | None
    length: int | None

    @classmethod
    def of(cls, url: str, headers) -> Validators:
        length = headers.get("Content-Length")
        return cls(url, headers.get("ETag"), headers.get("Last-Modified"),
                   int(length) if length and length.isdigit() else None)

    def if_range(self) -> str | None:
        """The ``If-Range`` value: a strong ETag, else the Last-Modified date (RFC 9110 13.1.5); None: neither."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


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


def validators_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def read_validators(dest: Path) -> Validators | None:
    """The record of the download into ``dest``'s ``.part``, or None (none, or unreadable: start over)."""
    try:
        raw = json.loads(validators_path(dest).read_text(encoding="utf-8"))
        return Validators(str(raw["url"]), raw.get("etag"), raw.get("last_modified"), raw.get("length"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def discard_partial(dest: Path) -> None:
    """Delete ``dest``'s ``.part`` and its record."""
    part_path(dest).unlink(missing_ok=True)
    validators_path(dest).unlink(missing_ok=True)


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
    before_rename: Callable[[DownloadResult], None] | None = None,
) -> DownloadResult:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming what is already there.

    Up to ``attempts`` requests are made, each resuming where the last one stopped if the resource is unchanged
    (module docstring). ``rate_limit`` caps the speed (bytes/s). Raises :class:`DownloadError` on HTTP errors (404
    and other 4xx: not transient), on an empty body or a checksum mismatch (the ``.part`` file is deleted so the
    next run starts over) or when all attempts fail (the ``.part`` file and its record are kept for the next run).
    ``before_rename`` is called with the result once the complete file is hashed, before it gets its name (a
    caller's record of the download then exists whenever the file does).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    resumed_from = part.stat().st_size if part.exists() else 0
    requests = 0
    last_error: Exception | None = None
    complete = _holds_whole(dest, url)
    for attempt in range(0 if complete else attempts):
        requests += 1
        try:
            _request_rest(url, dest, timeout, rate_limit, on_bytes)
            complete = True
            break
        except _StartOver as exc:
            discard_partial(dest)
            last_error = exc
            continue  # at once: the next request asks for the whole resource
        except urllib.error.HTTPError as exc:
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
    return _finish(url, dest, part, expected_sha256, DownloadResult(dest, 0, "", resumed_from, requests),
                   before_rename)


def _holds_whole(dest: Path, url: str) -> bool:
    """The ``.part`` holds exactly the whole resource its record describes (killed between the last byte and the
    rename)."""
    part = part_path(dest)
    record = read_validators(dest)
    return (record is not None and record.url == url and record.length is not None and part.is_file()
            and part.stat().st_size == record.length > 0)


def _request_rest(url: str, dest: Path, timeout: float, rate_limit: int | None,
                  on_bytes: Callable[[int], None] | None) -> None:
    """One request for the bytes ``dest``'s ``.part`` does not hold yet, appended to it if the resource is the
    one its record describes (or all of them, on a 200); :class:`_StartOver` when the ``.part`` is of no use."""
    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    record = read_validators(dest) if have else None
    if have and (record is None or record.url != url or record.if_range() is None):
        raise _StartOver(f"{part.name}: no record of the resource it is part of")
    req = request(url)
    if have:
        req.add_header("Range", f"bytes={have}-")
        req.add_header("If-Range", record.if_range())
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            raise _StartOver(f"{url}: range from {have} not satisfiable (the resource changed)") from None
        raise
    with resp:
        status = resp.status
        if have and status == 206:
            _check_same_resource(resp.headers, have, record, url)
            mode = "ab"
        elif status == 200:
            # the resource changed (If-Range), the server ignores Range, or nothing was there: start over,
            # recording what this download is of before its first byte
            atomic_write_text(validators_path(dest), json.dumps(asdict(Validators.of(url, resp.headers))))
            mode = "wb"
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {status}", transient=True)
        expected_len = resp.headers.get("Content-Length")
        written = _copy(resp, part, mode, rate_limit, on_bytes)
        if expected_len is not None and expected_len.isdigit() and written < int(expected_len):
            raise ConnectionError(f"connection closed after {written} of {expected_len} bytes")


def _finish(url: str, dest: Path, part: Path, expected_sha256: str | None, partial: DownloadResult,
            before_rename: Callable[[DownloadResult], None] | None) -> DownloadResult:
    size = part.stat().st_size if part.exists() else 0
    if size == 0:
        discard_partial(dest)
        raise DownloadError(f"{url}: the server sent an empty file (0 bytes) for {dest.name}", transient=False)
    digest = sha256_file(part)
    if expected_sha256 is not None and digest != expected_sha256:
        discard_partial(dest)
        raise DownloadError(
            f"{url}: sha256 mismatch for {dest.name}: expected {expected_sha256}, got {digest} ({size} bytes); "
            "the partial file was deleted"
        )
    result = replace(partial, bytes=size, sha256=digest)
    if before_rename is not None:
        before_rename(result)
    os.replace(part, dest)
    validators_path(dest).unlink(missing_ok=True)
    return result


def _check_same_resource(headers, have: int, record: Validators, url: str) -> None:
    """A 206 continues the ``.part`` only if it starts where the part ends and is of the recorded resource
    (total length and ETag, when known); otherwise :class:`_StartOver`."""
    value = headers.get("Content-Range")
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)$", (value or "").strip())
    if not m or int(m.group(1)) != have:
        raise DownloadError(f"{url}: asked for bytes from {have}, server answered Content-Range {value!r}",
                            transient=True)
    total = None if m.group(2) == "*" else int(m.group(2))
    etag = headers.get("ETag")
    if (record.length is not None and total is not None and total != record.length) or (
            record.etag is not None and etag is not None and etag != record.etag):
        raise _StartOver(f"{url}: the resource changed since the partial download began")


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
