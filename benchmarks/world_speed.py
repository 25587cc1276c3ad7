"""Speed of the synthetic world and its server (targets: tiny world <= 30 s on one core; Range serving at disk
speed).

    ccs-bench speed world [--repeats 3] [--serve-mb 64] [--skip-generate]

1. ``generate_world(size="tiny")``, median of repeats. Baseline in the same run: ffmpeg alone encoding the same
   number of frames and audio samples (constant picture, silence) with the same encoder settings: the floor that
   the drawing and HRIR rendering add to.
2. Downloading a file from ``pipelines.serve`` in 1 MiB Range requests (how yt-dlp and resumable fetches read),
   against Python's ``SimpleHTTPRequestHandler`` (baseline) serving the same file whole (it cannot do ranges).

Pin to one core for target 1 with ``taskset -c 0``.
"""

from __future__ import annotations

import http.client
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.serve import start_server, stop
from pipelines.synth.encode import AudioFormat, encode_media
from pipelines.synth.items import video_format
from pipelines.synth.plan import plan_world
from pipelines.synth.world import generate_world


def _encode_floor(out_dir: Path, size: str) -> float:
    """ffmpeg-only time for the world's media: constant frames and silence, same formats as the world."""
    t0 = time.perf_counter()
    for k, it in enumerate(plan_world(0, size).items):
        if "missing" in it.faults:
            continue
        fmt, _ = video_format(it)
        frame = np.full((fmt.height, fmt.width, 3), 100, np.uint8).tobytes()
        frames = (frame for _ in range(round(it.duration_s * it.fps)))
        samples = afmt = None
        if it.audio_duration_s is not None:
            samples = np.zeros((round(it.audio_duration_s * it.sample_rate), it.audio_channels), "<i2")
            afmt = AudioFormat(it.audio_codec or "aac", it.sample_rate, "256k" if it.audio_channels == 4 else "128k")
        container = "mp4" if it.file.endswith(".mp4") else "matroska"
        encode_media(out_dir / f"{k}.bin", container, frames, fmt, samples, afmt)
    return time.perf_counter() - t0


def bench_generate(repeats: int) -> dict:
    gen, floor = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate_world(Path(tmp) / "w", seed=0, size="tiny", port=8765, progress=False)
            gen.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            floor.append(_encode_floor(Path(tmp), "tiny"))
    return {"generate_tiny_s": gen, "ffmpeg_floor_s": floor,
            "median_generate_tiny_s": statistics.median(gen), "median_ffmpeg_floor_s": statistics.median(floor)}


def _download(port: int, name: str, size: int, chunk: int | None) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    got = 0
    if chunk is None:
        conn.request("GET", f"/{name}")
        got = len(conn.getresponse().read())
    else:
        while got < size:
            conn.request("GET", f"/{name}", headers={"Range": f"bytes={got}-{min(size, got + chunk) - 1}"})
            resp = conn.getresponse()
            assert resp.status == 206
            got += len(resp.read())
    conn.close()
    assert got == size
    return time.perf_counter() - t0


def bench_serve(mb: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        size = mb << 20
        Path(tmp, "blob.bin").write_bytes(os.urandom(size))
        server, thread, port = start_server(tmp)
        base = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=tmp))
        bthread = threading.Thread(target=base.serve_forever, daemon=True)
        bthread.start()
        ours, theirs = [], []
        try:
            for _ in range(repeats):
                ours.append(mb / _download(port, "blob.bin", size, 1 << 20))
                theirs.append(mb / _download(base.server_address[1], "blob.bin", size, None))
        finally:
            stop(server, thread)
            base.shutdown()
            base.server_close()
    return {"serve_ranges_MBps": ours, "baseline_simplehttp_whole_MBps": theirs,
            "median_serve_ranges_MBps": statistics.median(ours), "median_baseline_MBps": statistics.median(theirs)}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def measure_world(repeats: int = 3, serve_mb: int = 64, skip_generate: bool = False) -> dict[str, Any]:
    """Both measurements above (the first unless ``skip_generate``), as one JSON-ready dict."""
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
                   f"affinity={len(os.sched_getaffinity(0))}",
    }
    if not skip_generate:
        result.update(bench_generate(repeats))
    result.update(bench_serve(serve_mb, repeats))
    return result
