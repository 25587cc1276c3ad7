"""A loopback-only static HTTP server for the synthetic world, with single-range ``Range`` support.

Python's ``SimpleHTTPRequestHandler`` ignores ``Range``; yt-dlp's section downloads and resumable archive
fetches need it. This server answers GET and HEAD for regular files under one directory:

- ``Range: bytes=a-b`` / ``a-`` / ``-n`` -> 206 with ``Content-Range``; an unsatisfiable range -> 416 with
  ``Content-Range: bytes */size``; a malformed or multi-range header is ignored (full 200, as RFC 9110 allows);
  numbers of any length are read without converting more digits than a file size can have;
- a strong ``ETag`` (size and modification time) and ``Last-Modified`` on every answer; ``If-Range`` with a
  validator that no longer matches makes the Range ignored (200 with the whole, new file), so a client resuming
  a changed file starts over instead of splicing;
- a missing file, a directory, or any path that leaves the directory -> 404;
- ``Accept-Ranges: bytes``, exact ``Content-Length``, ``Content-Type`` by extension; HTTP/1.1 keep-alive.

It binds loopback addresses only: it serves files without authentication.
"""

from __future__ import annotations

import ipaddress
import mimetypes
import os
import posixpath
import re
import socket
import threading
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_MAX_DIGITS = 18  # no file has 10**18 bytes: a longer number is "beyond any end" (and int() of 4,300+ digits raises)
_CHUNK = 1 << 16
_EXTRA_TYPES = {
    ".mkv": "video/x-matroska",
    ".mp4": "video/mp4",
    ".lst": "text/plain",
    ".txt": "text/plain",
    ".toml": "application/toml",
    ".jsonl": "application/jsonl",
    ".h5": "application/x-hdf5",
    ".gz": "application/gzip",
    ".wav": "audio/wav",
}


class NotLoopback(ValueError):
    """The server was asked to bind an address that other machines could reach."""


def check_loopback(host: str) -> str:
    """Return the loopback IP literal to bind for ``host`` (``localhost`` -> 127.0.0.1); refuse anything else."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise NotLoopback(f"refusing to serve on {host!r}: give a loopback IP (127.0.0.1 or ::1)") from None
    if not addr.is_loopback:
        raise NotLoopback(f"refusing to serve on {host!r}: not a loopback address (the server has no authentication)")
    return str(addr)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks of a ``size``-byte file.

    None: no header, a malformed or multi-range header (serve the whole file). Raises :class:`Unsatisfiable`
    when the range lies outside the file (answer 416).
    """
    if header is None:
        return None
    m = _RANGE_RE.match(header)
    if m is None:  # other units, several ranges, garbage: ignoring the header is always allowed
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last n bytes
        n = _number(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - n), size - 1)
    start = _number(first)
    end = size - 1 if last == "" else _number(last)
    if last != "" and end < start:
        return None  # syntactically invalid: ignore
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(end, size - 1))


def _number(digits: str) -> int:
    """A Range number; one longer than any file size reads as a number past every end."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def entity_tag(st: os.stat_result) -> str:
    """A strong ETag of a file's current version: its size and modification time in nanoseconds."""
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


class WorldRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ccs-data-serve"

    def version_string(self) -> str:
        return self.server_version

    def __init__(self, *args, directory: Path, quiet: bool = True, **kwargs):
        self.directory = directory
        self.quiet = quiet
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if not self.quiet:
            super().log_message(format, *args)

    def resolve(self, url_path: str) -> Path | None:
        """The regular file under the served directory that ``url_path`` names, or None (answer 404)."""
        path = unquote(urlsplit(url_path).path)
        if "\x00" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts) or not parts:
            return None
        candidate = (self.directory / posixpath.join(*parts)).resolve()
        if not candidate.is_relative_to(self.directory) or not candidate.is_file():
            return None  # outside the directory (symlinks included), a folder, or nothing
        return candidate

    def _serve(self, send_body: bool) -> None:
        path = self.resolve(self.path)
        if path is None:
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        st = path.stat()
        size, etag, modified = st.st_size, entity_tag(st), self.date_time_string(int(st.st_mtime))
        if_range = self.headers.get("If-Range")
        wanted = self.headers.get("Range") if if_range is None or if_range.strip() in (etag, modified) else None
        try:
            rng = parse_range(wanted, size)
        except Unsatisfiable:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, length = (0, size) if rng is None else (rng.start, rng.length)
        self.send_response(HTTPStatus.OK if rng is None else HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", content_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if rng is not None:
            self.send_header("Content-Range", f"bytes {rng.start}-{rng.end}/{size}")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        self.end_headers()
        if not send_body:
            return
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                left = length
                while left > 0:
                    block = fh.read(min(_CHUNK, left))
                    if not block:
                        break
                    self.wfile.write(block)
                    left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-body (a cancelled download)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = f"{int(status)} {message}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def content_type(path: Path) -> str:
    for suffix, ctype in _EXTRA_TYPES.items():
        if path.name.endswith(suffix):
            return ctype
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(directory: str | Path, port: int = 0, host: str = "127.0.0.1", quiet: bool = True) -> ThreadingHTTPServer:
    """A (not yet running) server for ``directory`` on a loopback ``host``; ``port=0`` picks a free port."""
    bind = check_loopback(host)
    root = Path(directory).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory to serve")
    handler = partial(WorldRequestHandler, directory=root, quiet=quiet)
    cls = _Server6 if ":" in bind else _Server
    return cls((bind, port), handler)


def start_server(
    directory: str | Path, port: int = 0, host: str = "127.0.0.1", quiet: bool = True
) -> tuple[ThreadingHTTPServer, threading.Thread, int]:
    """Serve ``directory`` in a background thread; returns ``(server, thread, port)``. Stop with :func:`stop`."""
    server = make_server(directory, port, host, quiet)
    thread = threading.Thread(target=server.serve_forever, name="ccs-data-serve", daemon=True)
    thread.start()
    return server, thread, int(server.server_address[1])


def stop(server: ThreadingHTTPServer, thread: threading.Thread | None = None, timeout: float = 5.0) -> None:
    """Stop a server started by :func:`start_server` and release its port."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout)
