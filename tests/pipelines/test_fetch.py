"""``ccs-data fetch``: lists, yt-dlp downloads, archives with Range resume, ledger, crash safety (issue 3).

Everything is served from a loopback HTTP server started by the tests (Range support, fault injection and an
access log to count requests); media are tiny files encoded with the project's ffmpeg.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import pytest
import yt_dlp
from click.testing import CliRunner

from pipelines.archives import ArchiveError, safe_extract
from pipelines.cli import main as cli_main
from pipelines.contract import DatasetLayout
from pipelines.fetch import FetchSetupError, fetch_dataset, plan_fetch
from pipelines.ffmpeg import ensure_ffmpeg_on_path, run_ffmpeg
from pipelines.http import DownloadError, download_with_resume, part_path, validators_path
from pipelines.io import Ledger, read_jsonl, sha256_bytes, sha256_file
from pipelines.probe import probe
from pipelines.recipes import fair_play
from pipelines.recipes.fair_play import archive_member
from pipelines.recipes.youtube import (
    YtdlpConfig,
    classify_error,
    forget_in_archive,
    format_selector,
    parse_rate,
    ytdlp_options,
)
from pipelines.serve import WorldRequestHandler, make_server, stop
from pipelines.spec import load_spec
from pipelines.synth.specs import write_specs

FAST = YtdlpConfig(retries=1, fragment_retries=1, extractor_retries=1, socket_timeout_s=10)

# ids of the YouTube-like fixture world
GOOD = ["Good0000001", "Good0000002", "Good0000003"]
MISSING = "Missing0404"  # listed, no media on the server
TRUNCATED = "Truncated01"  # container cut in half: unreadable
NO_AUDIO = "NoAudio0001"
AMBIX = "-Ambix00001"  # YouTube ids may start with "-": never an option to anything
AMBIX_STEREO = "AmbixStereo"  # a YT video whose only audio is 2 channels


# --- loopback server ---------------------------------------------------------------------------------------------


class _FaultHandler(WorldRequestHandler):
    """``pipelines.serve``'s handler plus what the tests inject, all set on the server: an access log (``log``,
    ``cookies``), an HTTP error for chosen paths (``faults``), a connection that breaks after N body bytes
    (``drop_after``, once per path) and a server that ignores Range (``ignore_range``)."""

    _drop: int | None = None

    def _serve(self, send_body: bool) -> None:
        srv = self.server
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with srv.lock:
            srv.log.append((self.command, path, self.headers.get("Range")))
            srv.cookies.append((path, self.headers.get("Cookie")))
            fault = srv.faults.get(path)
            drop = srv.drop_after.pop(path, None) if send_body else None
        if fault is not None:
            self.send_error(fault)
            return
        if srv.ignore_range:
            del self.headers["Range"]
        if srv.ignore_if_range:
            del self.headers["If-Range"]
        wfile, self._drop = self.wfile, drop
        try:
            super()._serve(send_body)
        finally:
            self.wfile, self._drop = wfile, None

    def end_headers(self) -> None:
        super().end_headers()
        if self._drop is not None:  # from here on only body bytes are written
            self.wfile = _BreakAfter(self.wfile, self._drop)


class _BreakAfter:
    """A response stream that breaks (as a dropped connection does) after ``n`` bytes."""

    def __init__(self, raw, n: int):
        self.raw, self.left = raw, n

    def write(self, data: bytes) -> int:
        if len(data) > self.left:
            self.raw.write(data[: self.left])
            self.raw.flush()
            self.left = 0
            raise BrokenPipeError("dropped by the test")
        self.left -= len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class Server:
    def __init__(self, root: Path):
        self.httpd = make_server(root)
        self.httpd.RequestHandlerClass = partial(_FaultHandler, directory=root.resolve(), quiet=True)
        self.httpd.root = root.resolve()
        self.httpd.log = []
        self.httpd.cookies = []
        self.httpd.faults = {}
        self.httpd.drop_after = {}
        self.httpd.ignore_range = False
        self.httpd.ignore_if_range = False
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def log(self) -> list:
        return self.httpd.log

    def requests_under(self, prefix: str) -> int:
        return sum(1 for _, p, _ in self.httpd.log if p.startswith(prefix))

    def close(self) -> None:
        stop(self.httpd, self.thread)


# --- fixture media and specs --------------------------------------------------------------------------------------


def _encode(out: Path, *, channels: int | None, video: bool = True, seconds: float = 1.0, container="mp4") -> None:
    args = ["-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc=size=64x32:rate=10:duration={seconds}"]
    if channels:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={seconds}"]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if channels:
        layout = {1: "mono", 2: "stereo", 4: "4.0"}[channels]
        args += ["-af", f"aformat=channel_layouts={layout}", "-c:a", "aac"]
    args += ["-f", container, str(out)]
    run_ffmpeg(args)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    out = {}
    for vid in GOOD:
        out[vid] = d / f"{vid}.mp4"
    _encode(out[GOOD[0]], channels=2)
    # distinct bytes per good id, so that a mix-up between ids would show in the hashes
    _encode(out[GOOD[1]], channels=2, seconds=1.2)
    _encode(out[GOOD[2]], channels=1, seconds=0.8)  # mono: still done (prepare drops it)
    out[TRUNCATED] = d / f"{TRUNCATED}.mp4"
    whole = out[GOOD[0]].read_bytes()
    out[TRUNCATED].write_bytes(whole[: len(whole) // 3])
    out[NO_AUDIO] = d / f"{NO_AUDIO}.mp4"
    _encode(out[NO_AUDIO], channels=None)
    out[AMBIX] = d / f"{AMBIX}.mkv"
    _encode(out[AMBIX], channels=4, container="matroska")
    out[AMBIX_STEREO] = d / f"{AMBIX_STEREO}.mkv"
    _encode(out[AMBIX_STEREO], channels=2, container="matroska")
    return out


def _toml_value(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def write_spec(path: Path, spec: dict) -> Path:
    lines = [f"{k} = {_toml_value(v)}" for k, v in spec.items() if not isinstance(v, list) or not v or not isinstance(v[0], dict)]
    for key in ("archives", "lists", "protocols"):
        for table in spec.get(key, []):
            lines.append(f"\n[[{key}]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def serve_list(srv_root: Path, base: str, rel: str, text: str, fmt: str, role: str, **kw) -> dict:
    p = srv_root / "lists" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return {"path": rel, "url": f"{base}/lists/{rel}", "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "format": fmt, "role": role, **kw}


@pytest.fixture
def world(tmp_path, media):
    """A served MUSIC-like world: 3 good ids, a 404, a truncated file, a video without audio, a hostile id."""
    srv_root = tmp_path / "srv"
    (srv_root / "media").mkdir(parents=True)
    server = Server(srv_root)
    for vid in [*GOOD, TRUNCATED, NO_AUDIO]:
        shutil.copy(media[vid], srv_root / "media" / media[vid].name)
    ids = {"tuba": [GOOD[0], GOOD[1], MISSING, "../../etc/pwd"], "flute": [GOOD[2], TRUNCATED, NO_AUDIO]}
    spec = {
        "name": "music-stereo",
        "source": "youtube",
        "media_url": f"{server.base}/media/{{id}}.mp4",
        "audio": "stereo",
        "id_format": "youtube",
        "lists": [serve_list(srv_root, server.base, "MUSIC21_solo_videos.json",
                             json.dumps({"version": 2.0, "videos": ids}), "music-json", "ids")],
        "protocols": [{"name": "80-10-10", "kind": "random-by-video", "splits": ["1"],
                       "fractions": [0.8, 0.1, 0.1], "seed": 0}],
    }
    spec_path = write_spec(tmp_path / "music-stereo.toml", spec)
    yield server, spec_path, tmp_path / "data"
    server.close()


def latest(root: Path, dataset: str) -> dict:
    return Ledger(DatasetLayout(root, dataset).ledger("fetch")).latest()


# --- unit: yt-dlp wrapper -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, expected",
    [
        ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video", "permanent"),
        ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader", "permanent"),
        ("ERROR: [generic] abc: Unable to download webpage: HTTP Error 404: Not Found", "permanent"),
        ("ERROR: [youtube] abc: Requested format is not available. Use --list-formats", "permanent"),
        ("ERROR: [youtube] abc: Sign in to confirm you're not a bot. Use --cookies", "transient"),
        ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", "transient"),
        ("ERROR: [generic] abc: Unable to download webpage: HTTP Error 503: Service Unavailable", "transient"),
        ("ERROR: [download] Got error: The read operation timed out", "transient"),
        ("ERROR: something nobody has seen before", "transient"),
        ("ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users.",
         "permanent"),
        ("ERROR: [youtube] abc: The uploader has not made this video available in your country", "permanent"),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", "transient"),
        ("ERROR: [youtube] abc: This video is temporarily unavailable", "transient"),
    ],
)
def test_error_classes(message, expected):
    assert classify_error(message) == expected


def test_parse_rate():
    assert parse_rate("2M") == 2 * 1024 * 1024
    assert parse_rate("500K") == 500 * 1024
    assert parse_rate("1000") == 1000
    assert parse_rate(None) is None
    with pytest.raises(ValueError, match="2X"):
        parse_rate("2X")


def _fmt(fid, *, v=None, a=None, ch=None, tbr=100, height=None):
    return {"format_id": fid, "url": f"http://127.0.0.1:1/{fid}", "ext": "webm", "vcodec": v or "none",
            "acodec": a or "none", "audio_channels": ch, "tbr": tbr, "height": height, "protocol": "https"}


def _select(selector: str, formats: list[dict]) -> list[str]:
    """The format ids yt-dlp's own selector picks from ``formats`` (no network: the info dict is given)."""
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "format": selector, "simulate": True,
                           "logger": _Quiet()}) as ydl:
        info = ydl.process_ie_result({"id": "abcdefghijk", "title": "t", "formats": formats,
                                      "extractor": "test", "extractor_key": "Test",
                                      "webpage_url": "http://127.0.0.1:1/"}, download=False)
    return [f["format_id"] for f in info.get("requested_formats") or [info]]


class _Quiet:
    def debug(self, m): pass
    def info(self, m): pass
    def warning(self, m): pass
    def error(self, m): pass


# the formats of a 360 video on YouTube: video-only streams, stereo opus/aac, and the 4-channel opus (338)
YT_FORMATS = [
    _fmt("313", v="vp9", tbr=20000, height=2160),
    _fmt("137", v="avc1", tbr=4000, height=1080),
    _fmt("251", a="opus", ch=2, tbr=160),
    _fmt("140", a="mp4a.40.2", ch=2, tbr=128),
    _fmt("338", a="opus", ch=4, tbr=500),
]


def test_format_choice_never_takes_four_channels_for_stereo_sets():
    # the 4-channel track has the highest bitrate: a plain "bv+ba" would take it
    assert _select("bv+ba", YT_FORMATS) == ["313", "338"]
    assert _select(format_selector("stereo"), YT_FORMATS) == ["313", "251"]


def test_format_choice_takes_ambisonic_audio_and_upstream_video_itag():
    assert _select(format_selector("ambix"), YT_FORMATS) == ["313", "338"]
    assert _select(format_selector("ambix", video_itag=137, audio_itag=338), YT_FORMATS) == ["137", "338"]
    # the upstream itag is gone: any video plus the 4-channel track
    assert _select(format_selector("ambix", video_itag=266), YT_FORMATS) == ["313", "338"]
    stereo_only = [f for f in YT_FORMATS if f["format_id"] != "338"]
    with pytest.raises(Exception, match="[Rr]equested format is not available"):
        _select(format_selector("ambix"), stereo_only)


def test_forget_in_archive(tmp_path):
    archive = tmp_path / "a.txt"
    archive.write_text("generic Good0000001\ngeneric Good0000002\n")
    forget_in_archive(archive, "Good0000001")
    assert archive.read_text() == "generic Good0000002\n"
    forget_in_archive(tmp_path / "absent.txt", "x")  # no archive yet: nothing to do


# --- unit: archives ----------------------------------------------------------------------------------------------


def test_download_resumes_with_range_after_a_broken_connection(tmp_path):
    srv_root = tmp_path / "srv"
    srv_root.mkdir()
    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (srv_root / "big.bin").write_bytes(payload)
    server = Server(srv_root)
    try:
        server.httpd.drop_after["/big.bin"] = 100_000
        res = download_with_resume(f"{server.base}/big.bin", tmp_path / "out/big.bin",
                                   expected_sha256=hashlib.sha256(payload).hexdigest(), retry_wait_s=0)
        assert (tmp_path / "out/big.bin").read_bytes() == payload
        assert not (tmp_path / "out/big.bin.part").exists()
        ranges = [r for _, p, r in server.log if p == "/big.bin"]
        assert ranges[0] is None and re.match(r"bytes=\d+-$", ranges[1]) and int(ranges[1][6:-1]) > 0
        assert res.requests == 2 and res.sha256 == hashlib.sha256(payload).hexdigest()

        # a download cut off and given up (a killed process) leaves the .part and the record of what it is part of;
        # the next call resumes it with Range + If-Range
        server.httpd.drop_after["/big.bin"] = 123_456
        with pytest.raises(DownloadError, match="incomplete after 1 attempts") as err:
            download_with_resume(f"{server.base}/big.bin", tmp_path / "out2/big.bin", attempts=1)
        assert err.value.transient and (tmp_path / "out2/big.bin.part.json").is_file()
        have = (tmp_path / "out2/big.bin.part").stat().st_size
        assert 0 < have <= 123_456
        res = download_with_resume(f"{server.base}/big.bin", tmp_path / "out2/big.bin", retry_wait_s=0)
        assert res.resumed_from == have and server.log[-1][2] == f"bytes={have}-"
        assert (tmp_path / "out2/big.bin").read_bytes() == payload
        assert not (tmp_path / "out2/big.bin.part.json").exists()

        # a .part nobody recorded (an old run, another tool) and a server that ignores Range: start over
        (tmp_path / "out3").mkdir()
        (tmp_path / "out3/big.bin.part").write_bytes(b"x" * 1000)
        download_with_resume(f"{server.base}/big.bin", tmp_path / "out3/big.bin", retry_wait_s=0)
        assert (tmp_path / "out3/big.bin").read_bytes() == payload and server.log[-1][2] is None
        server.httpd.ignore_range = True
        server.httpd.drop_after["/big.bin"] = 1000
        with pytest.raises(DownloadError):
            download_with_resume(f"{server.base}/big.bin", tmp_path / "out3b/big.bin", attempts=1)
        download_with_resume(f"{server.base}/big.bin", tmp_path / "out3b/big.bin", retry_wait_s=0)
        assert (tmp_path / "out3b/big.bin").read_bytes() == payload
        server.httpd.ignore_range = False

        # checksum mismatch: error naming both hashes, nothing kept
        with pytest.raises(DownloadError, match="sha256 mismatch.*expected 0{64}"):
            download_with_resume(f"{server.base}/big.bin", tmp_path / "out4/big.bin", expected_sha256="0" * 64)
        assert not any((tmp_path / "out4").iterdir())
        with pytest.raises(DownloadError, match="HTTP 404") as err:
            download_with_resume(f"{server.base}/nope.bin", tmp_path / "out5/nope.bin")
        assert not err.value.transient
    finally:
        server.close()


def _cut_download(server: Server, url: str, dest: Path, after: int) -> None:
    """A download of ``url`` killed after about ``after`` bytes: the .part and its record stay."""
    server.httpd.drop_after[urllib.parse.urlsplit(url).path] = after
    with pytest.raises(DownloadError, match="incomplete"):
        download_with_resume(url, dest, attempts=1)
    assert part_path(dest).is_file() and validators_path(dest).is_file()


@pytest.mark.parametrize("if_range", ["honoured", "ignored"])
@pytest.mark.parametrize("new_size", ["same", "longer", "shorter"])
def test_an_upstream_file_changed_between_runs_is_downloaded_again_never_spliced(tmp_path, if_range, new_size):
    """b9cde7f resumed with Range only: the new bytes were appended to the old ones."""
    srv_root = tmp_path / "srv"
    srv_root.mkdir()
    rng = np.random.default_rng(1)
    old = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    new = rng.integers(0, 256, {"same": 200_000, "longer": 250_000, "shorter": 50_000}[new_size],
                       dtype=np.uint8).tobytes()
    (srv_root / "a.tar.gz").write_bytes(old)
    server = Server(srv_root)
    server.httpd.ignore_if_range = if_range == "ignored"  # then the recorded ETag and length decide
    try:
        url, dest = f"{server.base}/a.tar.gz", tmp_path / "out/a.tar.gz"
        _cut_download(server, url, dest, 100_000)
        time.sleep(0.01)
        (srv_root / "a.tar.gz").write_bytes(new)  # the upstream file changes while the .part waits
        res = download_with_resume(url, dest, retry_wait_s=0)
        assert dest.read_bytes() == new and res.sha256 == hashlib.sha256(new).hexdigest()
        assert not part_path(dest).exists() and not validators_path(dest).exists()
    finally:
        server.close()


def test_a_complete_part_is_finished_without_a_request_and_a_416_starts_over(tmp_path):
    srv_root = tmp_path / "srv"
    srv_root.mkdir()
    payload = os.urandom(50_000)
    (srv_root / "a.bin").write_bytes(payload)
    server = Server(srv_root)
    try:
        url, dest = f"{server.base}/a.bin", tmp_path / "out/a.bin"
        _cut_download(server, url, dest, 30_000)
        # the kill came after the last byte, before the rename: the .part is the whole file
        part_path(dest).write_bytes(payload)
        n = len(server.log)
        res = download_with_resume(url, dest)
        assert dest.read_bytes() == payload and len(server.log) == n and res.requests == 0
        # a .part longer than the file now is (416 from a server that ignores If-Range): downloaded again
        server.httpd.ignore_if_range = True
        _cut_download(server, url, tmp_path / "out2/a.bin", 30_000)
        part_path(tmp_path / "out2/a.bin").write_bytes(payload + b"stale tail")
        download_with_resume(url, tmp_path / "out2/a.bin", retry_wait_s=0)
        assert (tmp_path / "out2/a.bin").read_bytes() == payload
        assert [r for _, p, r in server.log[n:] if p == "/a.bin"][-2:][0] == f"bytes={len(payload) + 10}-"
        # a zero-byte upstream file is an error (not a transient failure retried forever), nothing kept
        (srv_root / "empty.bin").write_bytes(b"")
        with pytest.raises(DownloadError, match="empty file") as err:
            download_with_resume(f"{server.base}/empty.bin", tmp_path / "out3/empty.bin", retry_wait_s=0)
        assert not err.value.transient and not any((tmp_path / "out3").iterdir())
    finally:
        server.close()


def _tar(path: Path, members: list[tuple[str, bytes | None, str]]) -> None:
    """members: (name, data, kind) with kind file | symlink:<target> | hardlink:<target>."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind.startswith("symlink") else tarfile.LNKTYPE
                info.linkname = kind.split(":", 1)[1]
                tf.addfile(info)


def test_safe_extract_accepts_only_expected_regular_files(tmp_path):
    arc = tmp_path / "a.tar.gz"
    _tar(arc, [("./videos/000001.mp4", b"v1", "file"), ("videos/notes.txt", b"x", "file"),
               ("videos/000002.mp4", None, "symlink:/etc/passwd"), ("videos/000003.mp4", None, "hardlink:../../x")])
    target = tmp_path / "media"
    res = safe_extract(arc, target, accept=lambda n: n if re.match(r"^videos/\d{6}\.mp4$", n) else None)
    assert res.extracted == ["videos/000001.mp4"] and (target / "videos/000001.mp4").read_bytes() == b"v1"
    assert sorted(why for _, why in res.skipped) == ["link", "link", "unexpected member"]
    assert sorted(p.name for p in (target / "videos").iterdir()) == ["000001.mp4"]
    for hostile in ("../evil.mp4", "/tmp/evil.mp4", "videos/../../evil.mp4"):
        bad = tmp_path / "bad.tar.gz"
        _tar(bad, [(hostile, b"x", "file")])
        with pytest.raises(ArchiveError, match="outside|absolute"):
            safe_extract(bad, target, accept=lambda n: n)
    assert not (tmp_path / "evil.mp4").exists() and not Path("/tmp/evil.mp4").exists()
    # FAIR-Play members, also when the archive was packed one folder higher; anything else stays out
    assert archive_member("videos", "videos/000001.mp4") == "videos/000001.mp4"
    assert archive_member("videos", "FAIR-Play/videos/000001.mp4") == "videos/000001.mp4"
    assert archive_member("audios", "binaural_audios/000002.wav") == "binaural_audios/000002.wav"
    assert archive_member("splits", "splits/split10/test.h5") == "splits/split10/test.h5"
    assert archive_member("videos", "a/b/videos/000001.mp4") is None
    assert archive_member("videos", "videos/1.mp4") is None and archive_member("audios", "videos/000001.mp4") is None
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(ArchiveError, match="junk.tar.gz"):
        safe_extract(tmp_path / "junk.tar.gz", target, accept=lambda n: n)


# --- YouTube-like datasets end to end ------------------------------------------------------------------------------


def test_fetch_records_every_outcome_and_a_rerun_requests_no_media(world, media):
    server, spec_path, root = world
    spec = load_spec(spec_path)
    summary = fetch_dataset(spec, root, progress=False, ytdlp=FAST)
    layout = DatasetLayout(root, "music-stereo")
    rec = latest(root, "music-stereo")

    for vid in GOOD:
        assert rec[vid]["status"] == "done"
        path = layout.base / rec[vid]["files"]["media"]
        assert path == layout.media_dir / f"{vid}.mp4"
        assert rec[vid]["sha256"] == sha256_file(path) == sha256_file(media[vid])
        assert rec[vid]["bytes"] == path.stat().st_size
    assert rec[GOOD[0]]["format"]["channels"] == 2 and rec[GOOD[2]]["format"]["channels"] == 1
    assert rec[GOOD[0]]["format"]["width"] == 64 and rec[GOOD[0]]["format"]["acodec"] == "aac"
    assert (rec[MISSING]["status"], rec[MISSING]["reason_class"]) == ("failed", "permanent")
    assert "404" in rec[MISSING]["reason"]
    assert rec[TRUNCATED]["reason_class"] == "corrupt"
    assert rec[NO_AUDIO]["reason_class"] == "permanent" and "no audio" in rec[NO_AUDIO]["reason"]
    assert rec["../../etc/pwd"]["reason_class"] == "invalid-id"
    # failed downloads never stay in media/, hostile ids never became paths
    assert sorted(p.name for p in layout.media_dir.iterdir() if p.is_file()) == sorted(f"{v}.mp4" for v in GOOD)
    assert not (layout.media_dir / ".partial").exists()
    archived = (layout.ledger_dir / "yt-dlp-archive.txt").read_text().split()
    assert set(archived[1::2]) == set(GOOD)  # refused downloads are not left in yt-dlp's archive
    assert not (root.parent / "etc").exists() and not (root / "etc").exists()
    table = read_jsonl(layout.video_table)
    assert [r["video_id"] for r in table] == sorted([*GOOD, MISSING, TRUNCATED, NO_AUDIO])
    assert {r["video_id"]: r["category"] for r in table}[MISSING] == "tuba"
    assert (summary.listed, summary.done, summary.newly_done, summary.attempted) == (6, 3, 3, 6)
    assert summary.failed == {"permanent": 2, "corrupt": 1, "invalid-id": 1}

    # rerun: nothing to do, no media requested, ledger unchanged
    n_records = len(read_jsonl(layout.ledger("fetch")))
    n_media = server.requests_under("/media/")
    summary = fetch_dataset(spec, root, progress=False, ytdlp=FAST)
    assert server.requests_under("/media/") == n_media
    assert server.requests_under("/lists/") == 1  # the verified list on disk is not requested again either
    assert len(read_jsonl(layout.ledger("fetch"))) == n_records
    assert (summary.skipped_done, summary.skipped_failed, summary.attempted) == (3, 3, 0)

    # --retry-failed asks again for the three failures only; the truncated file is now whole
    shutil.copy(media[GOOD[0]], server.httpd.root / "media" / f"{TRUNCATED}.mp4")
    before = [p for _, p, _ in server.log]
    summary = fetch_dataset(spec, root, retry_failed=True, progress=False, ytdlp=FAST)
    asked = {Path(p).stem for p in [p for _, p, _ in server.log][len(before):] if p.startswith("/media/")}
    assert asked == {MISSING, TRUNCATED, NO_AUDIO}
    assert latest(root, "music-stereo")[TRUNCATED]["status"] == "done" and summary.newly_done == 1


def test_transient_failures_are_retried_without_flag_and_deleted_files_refetched(world):
    server, spec_path, root = world
    spec = load_spec(spec_path)
    server.httpd.faults[f"/media/{GOOD[0]}.mp4"] = 503
    fetch_dataset(spec, root, ids=[GOOD[0], GOOD[1]], progress=False, ytdlp=FAST)
    rec = latest(root, "music-stereo")
    assert rec[GOOD[0]]["reason_class"] == "transient" and rec[GOOD[1]]["status"] == "done"
    assert GOOD[2] not in rec  # --ids restricts the run
    del server.httpd.faults[f"/media/{GOOD[0]}.mp4"]
    layout = DatasetLayout(root, "music-stereo")
    (layout.media_dir / f"{GOOD[1]}.mp4").unlink()  # a done file deleted by the user is fetched again
    summary = fetch_dataset(spec, root, ids=[GOOD[0], GOOD[1], "NotListed00"], progress=False, ytdlp=FAST)
    rec = latest(root, "music-stereo")
    assert rec[GOOD[0]]["status"] == rec[GOOD[1]]["status"] == "done"
    assert summary.unknown_ids == ["NotListed00"] and summary.attempted == 2


def test_a_complete_or_stale_part_and_an_empty_upstream_file(world, media):
    """b9cde7f kept a whole ``.part`` (killed before yt-dlp's rename) forever: every run got 416, classed it
    transient and kept the file; an empty upstream file was retried as transient forever."""
    server, spec_path, root = world
    spec = load_spec(spec_path)
    layout = DatasetLayout(root, "music-stereo")
    for vid, planted in ((GOOD[0], media[GOOD[0]].read_bytes()), (GOOD[1], media[GOOD[1]].read_bytes() + b"x" * 99)):
        partial = layout.media_dir / ".partial" / vid
        partial.mkdir(parents=True)
        (partial / f"{vid}.mp4.part").write_bytes(planted)  # complete; longer than the file (stale)
    (server.httpd.root / "media" / f"{GOOD[2]}.mp4").write_bytes(b"")
    fetch_dataset(spec, root, ids=GOOD, progress=False, ytdlp=FAST)
    rec = latest(root, "music-stereo")
    for vid in GOOD[:2]:
        assert rec[vid]["status"] == "done" and rec[vid]["sha256"] == sha256_file(media[vid])
        assert sha256_file(layout.media_dir / f"{vid}.mp4") == sha256_file(media[vid])
    assert rec[GOOD[2]]["reason_class"] == "permanent" and "data" in rec[GOOD[2]]["reason"]
    assert not (layout.media_dir / ".partial").exists()
    n = server.requests_under("/media/")
    assert fetch_dataset(spec, root, ids=GOOD, progress=False, ytdlp=FAST).attempted == 0  # not retried forever
    assert server.requests_under("/media/") == n


def test_cookies_are_sent_and_the_users_file_is_left_alone(world):
    server, spec_path, root = world
    cookies = root.parent / "cookies.txt"
    text = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t2000000000\tsession\tabc123\n"
    cookies.write_text(text)
    fetch_dataset(load_spec(spec_path), root, ids=[GOOD[0]], cookies=cookies, progress=False, ytdlp=FAST)
    assert latest(root, "music-stereo")[GOOD[0]]["status"] == "done"
    sent = [c for p, c in server.httpd.cookies if p.startswith("/media/")]
    assert sent and all(c == "session=abc123" for c in sent)
    assert cookies.read_text() == text
    assert not list(root.rglob(".cookies.txt"))
    with pytest.raises(FetchSetupError, match="cookies"):
        fetch_dataset(load_spec(spec_path), root, cookies=root / "nope.txt", progress=False)


def test_limit_and_parallel_jobs(world):
    server, spec_path, root = world
    spec = load_spec(spec_path)
    summary = fetch_dataset(spec, root, limit=2, progress=False, ytdlp=FAST)
    assert summary.attempted == 2 and summary.not_attempted == 4
    summary = fetch_dataset(spec, root, jobs=3, progress=False, ytdlp=FAST)
    assert summary.attempted == 4 and summary.done == 3
    records = read_jsonl(DatasetLayout(root, "music-stereo").ledger("fetch"))
    assert all(isinstance(r, dict) for r in records)  # no interleaved lines from the threads
    assert sorted(r["video_id"] for r in records if r["status"] == "done") == sorted(GOOD)


def test_plan_fetch_decisions(tmp_path):
    layout = DatasetLayout(tmp_path, "yt-music")
    (layout.media_dir).mkdir(parents=True)
    (layout.media_dir / "a.mkv").write_bytes(b"x")
    latest_ = {
        "a": {"status": "done", "files": {"media": "media/a.mkv"}},
        "b": {"status": "done", "files": {"media": "media/b.mkv"}},  # file gone
        "c": {"status": "failed", "reason_class": "transient"},
        "d": {"status": "failed", "reason_class": "permanent"},
        "e": {"status": "failed", "reason_class": "corrupt"},
    }
    todo, skips, _ = plan_fetch(layout, list("abcdef"), latest_, retry_failed=False)
    assert todo == ["b", "c", "f"] and skips == {"done": 1, "failed": 2}
    todo, _, _ = plan_fetch(layout, list("abcdef"), latest_, retry_failed=True)
    assert todo == ["b", "c", "d", "e", "f"]
    todo, skips, unknown = plan_fetch(layout, list("abcdef"), latest_, retry_failed=True, ids=["e", "zz", "a"], limit=0)
    assert todo == [] and skips == {"done": 1, "limit": 1} and unknown == ["zz"]


def test_ambix_sets_need_four_channels(tmp_path, media):
    srv_root = tmp_path / "srv"
    (srv_root / "media").mkdir(parents=True)
    for vid in (AMBIX, AMBIX_STEREO):
        shutil.copy(media[vid], srv_root / "media" / media[vid].name)
    server = Server(srv_root)
    data = tmp_path / "100%(title)s"  # '%' in the data root must not reach yt-dlp's template as a field
    try:
        lists = [serve_list(srv_root, server.base, "meta/subsets/YT-Music.lst", f"{AMBIX}\n{AMBIX_STEREO}", "id-lines", "ids"),
                 serve_list(srv_root, server.base, "scraping/audio_formats.txt", f"{AMBIX} 338 opus WXYZ\n",
                            "audio-formats", "meta")]
        spec_path = write_spec(tmp_path / "yt.toml", {
            "name": "yt-music", "source": "youtube", "media_url": f"{server.base}/media/{{id}}.mkv",
            "audio": "ambix", "id_format": "youtube", "lists": lists,
            "protocols": [{"name": "official", "kind": "lists", "splits": ["1"], "val_from": "test"}]})
        fetch_dataset(load_spec(spec_path), data, progress=False, ytdlp=FAST)
        rec = latest(data, "yt-music")
        assert rec[AMBIX]["status"] == "done" and rec[AMBIX]["format"]["channels"] == 4
        assert rec[AMBIX]["files"] == {"media": f"media/{AMBIX}.mkv"}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["100%(title)s", "srv", "yt.toml"]
        assert rec[AMBIX_STEREO]["reason_class"] == "permanent"
        assert "no format with 4 channels" in rec[AMBIX_STEREO]["reason"]
        assert not (data / "yt-music/media" / f"{AMBIX_STEREO}.mkv").exists()
        row = read_jsonl(data / "yt-music/videos.jsonl")[0]
        assert (row["video_id"], row["audio_itag"], row["audio_layout"], row["category"]) == (AMBIX, 338, "WXYZ", "YT-Music")
    finally:
        server.close()


def test_list_checksum_mismatch_is_a_clear_setup_error(world):
    server, spec_path, root = world
    (server.httpd.root / "lists/MUSIC21_solo_videos.json").write_text('{"videos": {}}')  # upstream changed
    result = CliRunner().invoke(cli_main, ["fetch", "music-stereo", "--root", str(root), "--spec", str(spec_path),
                                           "--no-progress"])
    assert result.exit_code == 1  # input (pipelines.errors): the upstream file is not the pinned one
    assert "MUSIC21_solo_videos.json" in result.output and "sha256 mismatch" in result.output
    expected = re.search(r'sha256 = "([0-9a-f]{64})"', spec_path.read_text()).group(1)
    assert expected in result.output and hashlib.sha256(b'{"videos": {}}').hexdigest() in result.output
    assert not (root / "music-stereo/lists/MUSIC21_solo_videos.json").exists()
    assert not (root / "music-stereo/videos.jsonl").exists()
    assert server.requests_under("/media/") == 0
    bad = spec_path.with_name("bad.toml")
    bad.write_text(spec_path.read_text().replace('audio = "stereo"', 'audio = "surround"'))
    result = CliRunner().invoke(cli_main, ["fetch", "music-stereo", "--root", str(root), "--spec", str(bad)])
    assert result.exit_code == 1 and "bad.toml" in result.output and "audio" in result.output


def test_cli_fetch_prints_summary_and_exits_zero_despite_failures(world):
    server, spec_path, root = world
    result = CliRunner().invoke(cli_main, ["fetch", "music-stereo", "--root", str(root), "--spec", str(spec_path),
                                           "--no-progress", "--jobs", "2", "--rate-limit", "50M"])
    assert result.exit_code == 0, result.output
    assert "6 listed, 3 done" in result.output and "corrupt 1" in result.output and "permanent 2" in result.output
    result = CliRunner().invoke(cli_main, ["fetch", "music-stereo", "--root", str(root), "--rate-limit", "fast"])
    assert result.exit_code != 0 and "rate limit" in result.output


# --- crash safety ----------------------------------------------------------------------------------------------


def test_sigkill_mid_fetch_then_rerun_leaves_every_good_video_exactly_once(world, media):
    server, spec_path, root = world
    # slow downloads (rate limit) so that the kill lands while other videos are in flight
    cmd = [sys.executable, "-c", "from pipelines.cli import main; main()", "fetch", "music-stereo", "--root",
           str(root), "--spec", str(spec_path), "--no-progress", "--rate-limit", "20K", "--jobs", "2"]
    ledger = DatasetLayout(root, "music-stereo").ledger("fetch")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(r.get("status") == "done" for r in read_jsonl(ledger)):
                break
            if proc.poll() is not None:
                pytest.fail(f"fetch ended before the kill: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        else:
            pytest.fail("no done record within 60 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done_before = {k for k, r in latest(root, "music-stereo").items() if r["status"] == "done"}
    assert done_before and done_before < set(GOOD)  # killed mid-way
    layout = DatasetLayout(root, "music-stereo")
    for vid in done_before:  # what was recorded done is whole
        assert sha256_file(layout.media_dir / f"{vid}.mp4") == sha256_file(media[vid])

    rerun = subprocess.run([*cmd[:-4], "--jobs", "2"], capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()
    rec = latest(root, "music-stereo")
    for vid in GOOD:
        assert rec[vid]["status"] == "done"
        copies = [p for p in layout.media_dir.rglob(f"{vid}*") if p.is_file()]
        assert copies == [layout.media_dir / f"{vid}.mp4"], copies  # exactly once, no leftovers
        assert sha256_file(copies[0]) == rec[vid]["sha256"] == sha256_file(media[vid])
        probe(copies[0])
    done_files = {r["files"]["media"] for r in rec.values() if r["status"] == "done"}
    assert done_files == {f"media/{v}.mp4" for v in GOOD}


# --- FAIR-Play (archives) -------------------------------------------------------------------------------------------


@pytest.fixture
def fairplay(tmp_path, media):
    """Served FAIR-Play-like archives: clips 000001..000003 complete, 000004 listed but absent from the archives."""
    srv_root = tmp_path / "srv"
    (srv_root / "FAIR-Play").mkdir(parents=True)
    server = Server(srv_root)
    stage = tmp_path / "stage"
    for sub in ("videos", "binaural_audios", "splits/split1"):
        (stage / sub).mkdir(parents=True)
    wav = stage / "binaural_audios"
    for i, vid in enumerate(["000001", "000002", "000003"]):
        shutil.copy(media[GOOD[i]], stage / "videos" / f"{vid}.mp4")
        run_ffmpeg(["-y", "-f", "lavfi", "-i", f"sine=frequency={300 + 100 * i}:sample_rate=16000:duration=0.5",
                    "-ac", "2", str(wav / f"{vid}.wav")])
    for part, ids in (("train", ["000001", "000002"]), ("val", ["000003"]), ("test", ["000004", "../x"])):
        with h5py.File(stage / f"splits/split1/{part}.h5", "w") as fh:
            fh.create_dataset("audio", data=np.array([f"/data/binaural_audios/{i}.wav".encode() for i in ids]))
    for name, sub in (("videos.tar.gz", "videos"), ("audios.tar.gz", "binaural_audios"), ("splits.tar.gz", "splits")):
        with tarfile.open(srv_root / "FAIR-Play" / name, "w:gz") as tf:
            tf.add(stage / sub, arcname=sub)
            if name == "videos.tar.gz":
                tf.add(stage / "splits/split1/train.h5", arcname="videos/extra.h5")  # unexpected: skipped
    lists = [serve_list(srv_root, server.base, f"new_splits/split1/{part}.txt", text, "clip-lines", "split",
                        protocol="5-split", split="1", part=part)
             for part, text in (("train", "000001.mp3\n000002.mp3"), ("val", "000003.mp3\n"), ("test", "000004.mp3"))]
    spec = {
        "name": "fair-play", "source": "archive", "audio": "stereo", "id_format": "clip6",
        "archives": [{"name": n, "url": f"{server.base}/FAIR-Play/{n}", "contents": c}
                     for n, c in (("videos.tar.gz", "videos"), ("audios.tar.gz", "audios"), ("splits.tar.gz", "splits"))],
        "lists": lists,
        "protocols": [{"name": "10-split", "kind": "fairplay-h5", "splits": ["1"], "pattern": "splits/split{split}/{part}.h5"},
                      {"name": "5-split", "kind": "lists", "splits": ["1"]}],
    }
    yield server, write_spec(tmp_path / "fair-play.toml", spec), tmp_path / "data"
    server.close()


def test_fairplay_archives_extracted_and_every_listed_clip_checked(fairplay):
    server, spec_path, root = fairplay
    spec = load_spec(spec_path)
    server.httpd.drop_after["/FAIR-Play/videos.tar.gz"] = 5000  # broken transfer: resumed with Range
    summary = fetch_dataset(spec, root, progress=False)
    layout = DatasetLayout(root, "fair-play")
    rec = latest(root, "fair-play")
    for vid in ("000001", "000002", "000003"):
        assert rec[vid]["status"] == "done"
        assert rec[vid]["files"] == {"video": f"media/videos/{vid}.mp4", "audio": f"media/binaural_audios/{vid}.wav"}
        assert rec[vid]["sha256"]["audio"] == sha256_file(layout.base / rec[vid]["files"]["audio"])
        assert rec[vid]["format"]["channels"] == 2 and rec[vid]["format"]["vcodec"] == "h264"
    assert rec["000004"]["reason_class"] == "permanent" and "missing" in rec["000004"]["reason"]
    assert rec["x"]["reason_class"] == "invalid-id"  # h5 entries are paths: their basename is the id
    assert not (layout.media_dir / "videos/extra.h5").exists()
    assert any(r == "bytes=5000-" for _, p, r in server.log if p == "/FAIR-Play/videos.tar.gz")
    arcs = Ledger(layout.ledger("archives")).latest("archive")
    assert arcs["videos.tar.gz"]["sha256"] == sha256_file(server.httpd.root / "FAIR-Play/videos.tar.gz")
    assert arcs["videos.tar.gz"]["skipped_members"] == ["videos/extra.h5 (unexpected member)"]
    table = {r["video_id"]: r for r in read_jsonl(layout.video_table)}
    assert table["000001"]["splits"] == {"10-split/1": ["train"], "5-split/1": ["train"]}
    assert table["000004"]["splits"] == {"10-split/1": ["test"], "5-split/1": ["test"]}
    assert (summary.listed, summary.done, summary.failed) == (4, 3, {"permanent": 1, "invalid-id": 1})

    n = len(server.log)
    summary = fetch_dataset(spec, root, progress=False)
    assert len(server.log) == n  # everything verified and extracted: no request at all
    assert summary.skipped_done == 3


def test_fairplay_archive_404_is_a_setup_error_recorded_in_the_archive_ledger(fairplay):
    server, spec_path, root = fairplay
    server.httpd.faults["/FAIR-Play/audios.tar.gz"] = 404
    with pytest.raises(FetchSetupError, match="audios.tar.gz"):
        fetch_dataset(load_spec(spec_path), root, progress=False)
    arcs = Ledger(DatasetLayout(root, "fair-play").ledger("archives")).latest("archive")
    assert arcs["audios.tar.gz"]["status"] == "failed" and arcs["videos.tar.gz"]["status"] == "extracted"


# --- the synthetic world (engineer A's generator and server), every dataset end to end ------------------------------


@pytest.fixture(scope="module")
def counted_world(tiny_world, tmp_path_factory):
    """The tiny world served by ``pipelines.serve`` with every request path recorded."""
    seen: list[str] = []

    class Counting(WorldRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(urllib.parse.urlsplit(self.path).path)
            super().do_GET()

    server = make_server(tiny_world)
    server.RequestHandlerClass = partial(Counting, directory=Path(tiny_world).resolve(), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    specs = write_specs(tiny_world, port, specs_dir=tmp_path_factory.mktemp("counted-specs"))
    try:
        yield specs, seen, read_jsonl(Path(tiny_world) / "truth.jsonl")
    finally:
        stop(server, thread)


def test_world_every_dataset_fetched_end_to_end_and_rerun_requests_nothing(counted_world, tiny_world, tmp_path):
    specs, seen, truth = counted_world
    root = tmp_path / "data"
    for dataset in ("music-stereo", "yt-music", "yt-clean", "fair-play"):
        summary = fetch_dataset(load_spec(specs[dataset]), root, jobs=2, progress=False, ytdlp=FAST)
        rec = latest(root, dataset)
        layout = DatasetLayout(root, dataset)
        items = [t for t in truth if t["dataset"] == dataset]
        assert summary.listed == len(items) and {r["video_id"] for r in read_jsonl(layout.video_table)} == {
            t["video_id"] for t in items}
        for t in items:
            r, vid = rec[t["video_id"]], t["video_id"]
            if "missing" in t["faults"] and dataset != "fair-play":
                assert r["reason_class"] == "permanent" and "404" in r["reason"], r
            elif "truncated" in t["faults"]:
                assert r["reason_class"] == "corrupt", r
            elif "no-audio" in t["faults"] and dataset != "fair-play":
                assert r["reason_class"] == "permanent" and "no audio" in r["reason"], r
            elif dataset == "fair-play":
                assert r["status"] == "done", r
                assert sha256_file(layout.base / r["files"]["video"]) == r["sha256"]["video"]
                assert r["format"]["channels"] == 2
            else:
                assert r["status"] == "done", r
                assert r["files"] == {"media": t["file"]}
                assert r["sha256"] == sha256_file(Path(tiny_world) / t["file"]) == sha256_file(layout.base / t["file"])
                assert r["format"]["channels"] == t["audio_channels"]
                assert (r["format"]["width"], r["format"]["height"]) == (t["width"], t["height"])
            if r["status"] != "done" and dataset != "fair-play":
                assert not list(layout.media_dir.glob(f"{vid}.*"))
        if dataset.startswith("yt-"):
            assert all(r["format"]["channels"] >= 4 for r in rec.values() if r["status"] == "done")
    n = len(seen)
    for dataset in ("music-stereo", "yt-music", "yt-clean", "fair-play"):
        summary = fetch_dataset(load_spec(specs[dataset]), root, progress=False, ytdlp=FAST)
        assert summary.attempted == 0
    assert seen[n:] == []  # nothing left to do: not a single request (lists, archives or media)


def test_separate_video_and_audio_streams_are_merged_with_the_chosen_track(tmp_path, media):
    """The YouTube case offline: video-only and audio-only formats, yt-dlp picks per SPEC 4 and merges them with
    the project's ffmpeg (as ``download_video`` configures it)."""
    srv_root = tmp_path / "srv"
    srv_root.mkdir()
    run_ffmpeg(["-y", "-i", str(media[GOOD[0]]), "-an", "-c", "copy", str(srv_root / "v.mp4")])
    run_ffmpeg(["-y", "-i", str(media[GOOD[0]]), "-vn", "-c", "copy", str(srv_root / "a2.m4a")])
    run_ffmpeg(["-y", "-i", str(media[AMBIX]), "-vn", "-c", "copy", "-f", "mp4", str(srv_root / "a4.m4a")])
    server = Server(srv_root)
    ensure_ffmpeg_on_path()
    try:
        formats = [
            {"format_id": "137", "url": f"{server.base}/v.mp4", "ext": "mp4", "vcodec": "avc1", "acodec": "none",
             "height": 32, "tbr": 100, "protocol": "http"},
            {"format_id": "140", "url": f"{server.base}/a2.m4a", "ext": "m4a", "vcodec": "none", "acodec": "mp4a",
             "audio_channels": 2, "tbr": 128, "protocol": "http"},
            {"format_id": "338", "url": f"{server.base}/a4.m4a", "ext": "m4a", "vcodec": "none", "acodec": "mp4a",
             "audio_channels": 4, "tbr": 256, "protocol": "http"},
        ]
        for audio, channels in (("ambix", 4), ("stereo", 2)):
            out = tmp_path / audio
            opts = ytdlp_options(YtdlpConfig(retries=1, fragment_retries=1), format_selector(audio),
                                 str(out / "abcdefghijk.%(ext)s"))
            with yt_dlp.YoutubeDL({**opts, "logger": _Quiet()}) as ydl:
                info = ydl.process_ie_result({"id": "abcdefghijk", "title": "t", "formats": formats,
                                              "extractor": "test", "extractor_key": "Test",
                                              "webpage_url": f"{server.base}/"}, download=True)
            path = Path(info["requested_downloads"][0]["filepath"])
            assert path == out / "abcdefghijk.mkv" and [p.name for p in out.iterdir()] == ["abcdefghijk.mkv"]
            got = probe(path)
            assert got.video is not None and got.audio.channels == channels
    finally:
        server.close()


def test_fairplay_archive_without_expected_members_is_a_clear_setup_error(fairplay, tmp_path):
    server, spec_path, root = fairplay
    _tar(server.httpd.root / "FAIR-Play/audios.tar.gz", [("readme.txt", b"hello", "file")])
    with pytest.raises(FetchSetupError, match=r"audios.tar.gz.*no member looks like FAIR-Play audios.*readme.txt"):
        fetch_dataset(load_spec(spec_path), root, progress=False)
    assert not (root / "fair-play/videos.jsonl").exists()  # nothing judged against a half-extracted tree
    assert (root / "fair-play/archives/rejected/audios.tar.gz").is_file()  # moved aside: the next run fetches it


def _repack_videos(server: Server, tmp_path: Path, payload: bytes) -> bytes:
    """Replace the served videos archive by one whose 000001.mp4 is ``payload``; the new archive's bytes."""
    stage = tmp_path / "restage"
    with tarfile.open(server.httpd.root / "FAIR-Play/videos.tar.gz") as tf:
        tf.extractall(stage, filter="data")
    (stage / "videos/000001.mp4").write_bytes(payload)
    with tarfile.open(server.httpd.root / "FAIR-Play/videos.tar.gz", "w:gz") as tf:
        tf.add(stage / "videos", arcname="videos")
    return (server.httpd.root / "FAIR-Play/videos.tar.gz").read_bytes()


def test_fairplay_unpinned_archive_changed_upstream_mid_download_is_fetched_whole_again(fairplay, media, tmp_path):
    """b9cde7f resumed with Range only: the changed archive's new bytes were spliced onto the old ones and the
    extraction raised an uncaught zlib.error."""
    server, spec_path, root = fairplay
    layout = DatasetLayout(root, "fair-play")
    _cut_download(server, f"{server.base}/FAIR-Play/videos.tar.gz", layout.archives_dir / "videos.tar.gz", 3000)
    new = _repack_videos(server, tmp_path, media[GOOD[1]].read_bytes())
    fetch_dataset(load_spec(spec_path), root, progress=False)
    assert (layout.media_dir / "videos/000001.mp4").read_bytes() == media[GOOD[1]].read_bytes()
    arcs = Ledger(layout.ledger("archives")).latest("archive")
    assert arcs["videos.tar.gz"]["status"] == "extracted" and arcs["videos.tar.gz"]["sha256"] == sha256_bytes(new)
    assert not list(layout.archives_dir.glob("*.part*"))


def test_fairplay_a_bad_archive_on_disk_is_moved_aside_with_a_reason_and_fetched_again(fairplay):
    """b9cde7f re-extracted a complete but damaged archive on every run and never downloaded it again; the sha256
    of a copy on disk was checked against nothing when the spec pins none."""
    server, spec_path, root = fairplay
    layout = DatasetLayout(root, "fair-play")
    served = server.httpd.root / "FAIR-Play/audios.tar.gz"
    layout.archives_dir.mkdir(parents=True)
    damaged = bytearray(served.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (layout.archives_dir / "audios.tar.gz").write_bytes(bytes(damaged))  # left by a killed run
    Ledger(layout.ledger("archives")).append({"archive": "audios.tar.gz", "status": "downloaded",
                                              "sha256": sha256_file(served), "bytes": len(damaged)})
    summary = fetch_dataset(load_spec(spec_path), root, progress=False)
    assert summary.done == 3
    records = [r for r in read_jsonl(layout.ledger("archives")) if r["archive"] == "audios.tar.gz"]
    assert [r["status"] for r in records] == ["downloaded", "rejected", "downloaded", "extracted"]
    assert "differs from the one recorded" in records[1]["reason"]
    assert (layout.archives_dir / "rejected/audios.tar.gz").read_bytes() == bytes(damaged)
    assert records[-1]["sha256"] == sha256_file(served) == sha256_file(layout.archives_dir / "audios.tar.gz")


def test_fairplay_damaged_upstream_archive_is_one_named_error_and_is_fetched_again_next_run(fairplay):
    server, spec_path, root = fairplay
    served = server.httpd.root / "FAIR-Play/videos.tar.gz"
    good = served.read_bytes()
    damaged = bytearray(good)
    for i in range(len(damaged) // 2, len(damaged) - 200, 97):  # inside the deflate stream: zlib.error
        damaged[i] ^= 0x5A
    served.write_bytes(bytes(damaged))
    with pytest.raises(FetchSetupError, match=r"videos.tar.gz: archive is damaged .*moved to .*rejected"):
        fetch_dataset(load_spec(spec_path), root, progress=False)
    layout = DatasetLayout(root, "fair-play")
    assert not (layout.archives_dir / "videos.tar.gz").exists()
    served.write_bytes(good)
    assert fetch_dataset(load_spec(spec_path), root, progress=False).done == 3


def test_extraction_size_caps_refuse_a_bomb_before_writing_it(tmp_path, fairplay, monkeypatch):
    """b9cde7f wrote 200 MiB extracted from 200 KB of gzip in full."""
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tf:
        info = tarfile.TarInfo("videos/000001.mp4")
        info.size = 32 << 20
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    assert bomb.stat().st_size < 100_000
    target = tmp_path / "media"
    with pytest.raises(ArchiveError, match=r"'videos/000001.mp4' declares 33554432 bytes, more than the 1048576"):
        safe_extract(bomb, target, accept=lambda n: n, max_member_bytes=1 << 20)
    with pytest.raises(ArchiveError, match="add up to more than"):
        safe_extract(bomb, target, accept=lambda n: n, max_member_bytes=1 << 30, max_total_bytes=1 << 20)
    assert not any(p.is_file() for p in target.rglob("*"))
    # the recipe's caps apply to its archives
    server, spec_path, root = fairplay
    monkeypatch.setitem(fair_play.SIZE_CAPS, "videos", (1000, 1 << 30))
    with pytest.raises(FetchSetupError, match=r"videos.tar.gz: member 'videos/00000\d.mp4' declares \d+ bytes"):
        fetch_dataset(load_spec(spec_path), root, progress=False)
