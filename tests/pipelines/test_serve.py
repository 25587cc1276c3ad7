"""The loopback world server: Range semantics, 404/416, traversal refusal, loopback-only binding."""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

import pytest

from pipelines.serve import ByteRange, NotLoopback, Unsatisfiable, check_loopback, parse_range, start_server, stop


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    data = os.urandom(10_000)
    (root / "media").mkdir()
    (root / "media" / "a.mp4").write_bytes(data)
    (root / "empty.txt").write_bytes(b"")
    (root / "list.lst").write_bytes(b"abc\ndef")
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_bytes(b"do not serve")
    (root / "link.txt").symlink_to(secret)
    server, thread, port = start_server(root)
    yield root, port, data, secret
    stop(server, thread)


def request(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # skip_host/accept_encoding are irrelevant; send the raw path so "../" reaches the server unnormalised
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def test_full_get_has_length_type_and_accept_ranges(served):
    _, port, data, _ = served
    resp, body = request(port, "/media/a.mp4")
    assert resp.status == 200
    assert body == data
    assert resp.getheader("Content-Length") == str(len(data))
    assert resp.getheader("Content-Type") == "video/mp4"
    assert resp.getheader("Accept-Ranges") == "bytes"


@pytest.mark.parametrize(
    "header, start, end",
    [("bytes=100-199", 100, 199), ("bytes=9990-", 9990, 9999), ("bytes=-25", 9975, 9999), ("bytes=9000-20000", 9000, 9999),
     ("bytes=0-0", 0, 0), ("bytes=-20000", 0, 9999)],
)
def test_range_returns_206_with_the_right_bytes(served, header, start, end):
    _, port, data, _ = served
    resp, body = request(port, "/media/a.mp4", headers={"Range": header})
    assert resp.status == 206
    assert body == data[start : end + 1]
    assert resp.getheader("Content-Range") == f"bytes {start}-{end}/{len(data)}"
    assert resp.getheader("Content-Length") == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=10000-", "bytes=20000-20010", "bytes=-0"])
def test_unsatisfiable_range_is_416(served, header):
    _, port, data, _ = served
    resp, body = request(port, "/media/a.mp4", headers={"Range": header})
    assert resp.status == 416
    assert resp.getheader("Content-Range") == f"bytes */{len(data)}"
    assert body == b""


def test_multi_range_and_garbage_are_ignored_with_full_body(served):
    _, port, data, _ = served
    for header in ("bytes=0-1,5-6", "items=0-5", "bytes=9-3"):
        resp, body = request(port, "/media/a.mp4", headers={"Range": header})
        assert resp.status == 200 and body == data, header


def test_head_sends_headers_without_body(served):
    _, port, data, _ = served
    resp, body = request(port, "/media/a.mp4", method="HEAD", headers={"Range": "bytes=10-19"})
    assert resp.status == 206 and body == b""
    assert resp.getheader("Content-Length") == "10"


def test_missing_file_and_directory_are_404(served):
    _, port, _, _ = served
    assert request(port, "/media/nope.mp4")[0].status == 404
    assert request(port, "/media/")[0].status == 404
    assert request(port, "/")[0].status == 404


@pytest.mark.parametrize("path", ["/../outside/secret.txt", "/media/../../secret.txt", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/media/..%2F..%2Fetc%2Fpasswd", "/link.txt", "/media/a.mp4%00.txt"])
def test_traversal_is_refused(served, path):
    _, port, _, _ = served
    resp, body = request(port, path)
    assert resp.status == 404
    assert b"do not serve" not in body and b"root:" not in body


def test_keep_alive_serves_several_requests_on_one_connection(served):
    _, port, data, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for rng in ("bytes=0-9", "bytes=10-19"):
        conn.request("GET", "/media/a.mp4", headers={"Range": rng})
        resp = conn.getresponse()
        start = int(rng.split("=")[1].split("-")[0])
        assert resp.read() == data[start : start + 10]
    conn.close()


def test_empty_file_and_text_types(served):
    _, port, _, _ = served
    resp, body = request(port, "/empty.txt")
    assert resp.status == 200 and body == b"" and resp.getheader("Content-Length") == "0"
    assert request(port, "/empty.txt", headers={"Range": "bytes=0-"})[0].status == 416
    resp, body = request(port, "/list.lst")
    assert body == b"abc\ndef" and resp.getheader("Content-Type") == "text/plain"


def test_parse_range_edges():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == ByteRange(2, 4)
    assert parse_range("bytes = 2 - ", 10) == ByteRange(2, 9)
    assert parse_range("bytes=-3", 10) == ByteRange(7, 9)
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=10-", 10)


def test_only_loopback_hosts_are_accepted(tmp_path: Path):
    assert check_loopback("localhost") == "127.0.0.1"
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(NotLoopback):
            check_loopback(host)
    with pytest.raises(NotLoopback):
        start_server(tmp_path, host="0.0.0.0")


def test_stop_releases_the_port(tmp_path: Path):
    (tmp_path / "x").write_bytes(b"x")
    server, thread, port = start_server(tmp_path)
    assert request(port, "/x")[1] == b"x"
    stop(server, thread)
    assert not thread.is_alive()
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_cli_serve_refuses_public_host(tmp_path: Path):
    from click.testing import CliRunner

    from pipelines.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path), "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code != 0
    assert "loopback" in result.output


@pytest.mark.parametrize("header, status, start", [
    ("bytes=" + "9" * 5000 + "-", 416, None),  # b9cde7f: int() of 4,300+ digits raised inside the handler
    ("bytes=0-" + "9" * 5000, 206, 0),  # past every end: up to the last byte
    ("bytes=-" + "9" * 5000, 206, 0),  # a suffix longer than the file: the whole file
    ("bytes=" + "0" * 5000 + "5-", 206, 5),  # leading zeros are only zeros
])
def test_range_numbers_of_any_length_are_answered(served, header, status, start):
    _, port, data, _ = served
    resp, body = request(port, "/media/a.mp4", headers={"Range": header})
    assert resp.status == status
    if start is not None:
        assert body == data[start:] and resp.getheader("Content-Range") == f"bytes {start}-{len(data) - 1}/{len(data)}"
    assert request(port, "/media/a.mp4")[0].status == 200  # the server is still serving


def test_if_range_honours_the_range_only_for_the_current_version(served):
    root, port, data, _ = served
    resp, _ = request(port, "/media/a.mp4")
    etag, modified = resp.getheader("ETag"), resp.getheader("Last-Modified")
    assert etag.startswith('"') and not etag.startswith("W/") and modified
    for validator in (etag, modified):
        resp, body = request(port, "/media/a.mp4", headers={"Range": "bytes=100-", "If-Range": validator})
        assert resp.status == 206 and body == data[100:] and resp.getheader("ETag") == etag
    resp, body = request(port, "/media/a.mp4", headers={"Range": "bytes=100-", "If-Range": '"another-version"'})
    assert resp.status == 200 and body == data  # the file changed since: the whole of it, not the tail
    (root / "changed.bin").write_bytes(b"v1" * 100)
    first = request(port, "/changed.bin")[0].getheader("ETag")
    os.utime(root / "changed.bin", ns=(1, 2))
    (root / "changed.bin").write_bytes(b"v2" * 100)  # same size, new modification time
    assert request(port, "/changed.bin")[0].getheader("ETag") != first
