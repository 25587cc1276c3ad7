"""Throughput of ``ccs-data prepare`` on 640x360 30 fps h264 + stereo AAC input (issue 4, item 4).

Generates MUSIC-like videos (moving test pattern with temporal noise, so the h264 stream has real residuals; binaural
noise audio), lays them out as a fetched tree, and prepares them repeatedly from scratch:

* ``prepare jobs=1``: one video at a time, every ffmpeg limited to one thread: the per-core figure
  (real time factor = seconds of clips produced / CPU seconds used by this process and its ffmpeg children);
* ``prepare jobs=N``: N videos in parallel (wall-clock clips/s);
* baseline, same run: ``ffmpeg -threads 1 -i video -f null -`` (decode every frame and the audio, nothing else),
  the floor any frame-extracting pipeline pays.

Usage: ``ccs-bench speed prepare [--videos 3] [--seconds 30] [--repeats 3] [--jobs 2]``; prints a JSON summary.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pipelines.ffmpeg import run_ffmpeg
from pipelines.io import Ledger, write_jsonl
from pipelines.prepare import PrepareConfig, prepare_dataset
from pipelines.spec import load_spec

DATASET = "music-stereo"


def measure_prepare(videos: int = 3, seconds: float = 30.0, repeats: int = 3, jobs: int = 2) -> dict[str, Any]:
    """The measurements above, as one JSON-ready dict (medians over ``repeats`` of wall and CPU seconds)."""
    spec = load_spec(dataset=DATASET)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        src = tmp / "src"
        src.mkdir()
        for i in range(videos):
            make_video(src / f"bench{i:03d}xyz.mp4", seconds, i)
        clip_seconds = videos * int(seconds // 10) * 10.0
        baseline, single, parallel = [], [], []
        for r in range(repeats):
            baseline.append(timed(lambda: [run_ffmpeg(["-threads", "1", "-i", str(f), "-f", "null", "-"])
                                           for f in sorted(src.glob("*.mp4"))])[:2])
            single.append(_time_prepare(spec, src, tmp / f"r1-{r}", clips=clip_seconds / 10,
                                        config=PrepareConfig(ffmpeg_threads=1)))
            parallel.append(_time_prepare(spec, src, tmp / f"rn-{r}", jobs=jobs))

    def med(runs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in runs)

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "input": f"{videos} x {seconds:g} s, 640x360 30 fps h264 (crf 23) + stereo AAC 48 kHz",
        "repeats": repeats,
        "clip_seconds": clip_seconds,
        "baseline_decode_only": {"wall_s": med(baseline, 0), "cpu_s": med(baseline, 1),
                                 "realtime_per_core": clip_seconds / med(baseline, 1)},
        "prepare_jobs1": {"wall_s": med(single, 0), "cpu_s": med(single, 1),
                          "clips_per_s": clip_seconds / 10 / med(single, 0),
                          "realtime_per_core": clip_seconds / med(single, 1)},
        f"prepare_jobs{jobs}": {"wall_s": med(parallel, 0), "cpu_s": med(parallel, 1),
                                "clips_per_s": clip_seconds / 10 / med(parallel, 0),
                                "realtime_wall": clip_seconds / med(parallel, 0)},
    }


def _time_prepare(spec: Any, src: Path, root: Path, clips: float | None = None, **options: Any
                  ) -> tuple[float, float]:
    """(wall, CPU) seconds of preparing the videos of ``src`` laid out as a fresh fetched tree in ``root``."""
    make_tree(src, root)
    wall, cpu, summary = timed(lambda: prepare_dataset(spec, root, **options))
    if clips is not None:
        assert summary.clips == clips, summary
    shutil.rmtree(root)
    return wall, cpu


def make_video(path: Path, seconds: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(seconds * 48_000)
    s = rng.standard_normal(n + 16) * 0.1
    audio = np.stack([s[16:] * 1.3, s[:-16] * 0.7], axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.wav"
        sf.write(wav, audio, 48_000, subtype="PCM_16")
        run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=30:d={seconds}", "-i", str(wav),
                    "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)])


def make_tree(src: Path, root: Path) -> None:
    base = root / DATASET
    (base / "media").mkdir(parents=True)
    ledger = Ledger(base / "ledger" / "fetch.jsonl")
    rows = []
    for f in sorted(src.glob("*.mp4")):
        shutil.copy(f, base / "media" / f.name)
        ledger.append({"video_id": f.stem, "status": "done", "files": {"media": f"media/{f.name}"},
                       "sha256": None})
        rows.append({"video_id": f.stem, "dataset": DATASET, "splits": {}})
    write_jsonl(base / "videos.jsonl", rows)


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, cpu_seconds() - c0, out
