"""One video -> its 10 s clips: the settings of a prepare run, the task a worker gets, why a video is dropped, and
the cut itself (per-clip checks and the members of ``prepared/<id>.tar``, exactly as they go into the shards).

Per clip: ``silent-clip`` (RMS below 1e-4), ``video-ended`` (the video stream ends more than
``max_av_mismatch_s`` before the clip does; up to that much, the last frame is held).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.contract import (
    AUDIO_MEMBER,
    CLIP_SAMPLES,
    FOA_MEMBER,
    FPS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    FRAMES_PER_CLIP,
    META_MEMBER,
    PIPELINE_VERSION,
    SAMPLE_RATE,
    frame_member,
    sample_key,
)
from pipelines.io import atomic_output
from pipelines.media import FrameSpec, MediaError, iter_frames
from pipelines.shards import add_member, flac_bytes, jpeg_bytes

MIN_LR_DIFF = 0.001  # MUSIC-Stereo non-binaural filter on mean |L - R| (docs/SPEC.md section 3)
SILENCE_RMS = 1e-4  # clips quieter than this are digital silence and dropped
MAX_AV_MISMATCH_S = 1.0


class VideoDropped(Exception):
    """A video is not usable; ``reason`` is one of the documented reason classes."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of a prepare run; defaults are the paper's (SPEC sections 3 and 5)."""

    min_lr_diff: float = MIN_LR_DIFF  # non-binaural filter on mean |L - R|; 0 disables it
    decoder: str = "magls"  # FOA -> binaural: magls | vls8
    hrir: str = "kemar"  # kemar | sofa:<path>
    max_av_mismatch_s: float = MAX_AV_MISMATCH_S
    drop_av_mismatch: bool = False  # True: drop such videos; False: cut clips from the span both streams cover
    keep_foa: bool = True  # 360 sets: store the 4-channel clip as <key>.foa.flac
    ffmpeg_threads: int | None = None  # per ffmpeg process; None: 1 when jobs > 1, ffmpeg's choice otherwise


@dataclass(frozen=True)
class VideoTask:
    """Everything a worker needs to prepare one video (picklable; paths are absolute).

    ``dataset`` is also the name of the recipe that prepares it (the worker looks it up in the registry).
    """

    dataset: str
    video_id: str
    root: str  # the data root: the dataset lives in <root>/<dataset>/
    files: dict[str, str]  # the recipe's media roles -> absolute paths ("media"; FAIR-Play: "video", "audio")
    source: dict[str, Any]
    upstream_projection: str | None
    stereo_layout: str | None
    override: tuple[str, str] | None  # (projection, reason)
    config: PrepareConfig
    fingerprint: dict[str, Any]


@dataclass
class ClipSource:
    """What a recipe makes of one video: the binaural signal to cut, the 4-channel original (360 sets) and where
    the frames come from. ``path`` is the file named in messages about the audio."""

    stereo: np.ndarray  # [2, T] at SAMPLE_RATE
    foa: np.ndarray | None  # [4, T] ambiX, or None
    frames_path: str
    frame_spec: FrameSpec
    path: str


# ------------------------------------------------------------------------------------------------ small maths


def lr_difference(stereo: np.ndarray) -> tuple[float, float]:
    """``(mean |L - R|, sum |L - R|)`` of a [2, T] waveform (SPEC section 3, non-binaural filter)."""
    d = np.abs(stereo[0].astype(np.float64) - stereo[1].astype(np.float64))
    return (float(d.mean()) if d.size else 0.0), float(d.sum())


def rms(x: np.ndarray) -> float:
    """RMS over all channels and samples."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def clip_starts(n_samples: int, clip_samples: int = CLIP_SAMPLES) -> list[int]:
    """Start samples of the non-overlapping clips from t = 0; the remainder (< one clip) is dropped."""
    return [i * clip_samples for i in range(n_samples // clip_samples)]


# ------------------------------------------------------------------------------------------------ the cut


def frame_batches(path: str, spec: FrameSpec, threads: int | None) -> Iterator[list[np.ndarray]]:
    """Lists of up to 100 consecutive frames (one clip's worth) from the video's frame stream."""
    batch: list[np.ndarray] = []
    try:
        for frame in iter_frames(path, spec, threads=threads):
            batch.append(frame)
            if len(batch) == FRAMES_PER_CLIP:
                yield batch
                batch = []
    except MediaError as exc:
        raise VideoDropped("corrupt", str(exc)) from None
    if batch:
        yield batch


def cut_clips(task: VideoTask, result: dict[str, Any], prepared: Path, source: ClipSource) -> None:
    """Cut ``source`` into clips from t = 0: write ``prepared/<id>.tar`` and set ``result["clips"]``."""
    stereo, foa = source.stereo, source.foa
    max_pad = int(round(task.config.max_av_mismatch_s * FPS))
    batches = frame_batches(source.frames_path, source.frame_spec, task.config.ffmpeg_threads)
    clips = []
    last_frame: np.ndarray | None = None
    with atomic_output(prepared / f"{task.video_id}.tar") as fh, tarfile.open(fileobj=fh, mode="w",
                                                                             format=tarfile.USTAR_FORMAT) as tar:
        for index, start in enumerate(clip_starts(stereo.shape[1])):
            frames = next(batches, [])
            if frames:
                last_frame = frames[-1]
            missing = FRAMES_PER_CLIP - len(frames)
            audio = stereo[:, start:start + CLIP_SAMPLES]
            record = _clip_record(task, result, index, start, audio, missing)
            if missing > max_pad or last_frame is None:
                record["dropped"] = "video-ended"
                record["padded_frames"] = 0
            elif record["rms"] < SILENCE_RMS:
                record["dropped"] = "silent-clip"
            clips.append(record)
            if record["dropped"]:
                continue
            key = record["key"]
            frames = frames + [last_frame] * missing  # the last frame held for at most max_av_mismatch_s
            add_member(tar, f"{key}.{AUDIO_MEMBER}", flac_bytes(audio))
            for k, frame in enumerate(frames):
                add_member(tar, f"{key}.{frame_member(k)}", jpeg_bytes(frame))
            if foa is not None and task.config.keep_foa:
                add_member(tar, f"{key}.{FOA_MEMBER}", flac_bytes(foa[:, start:start + CLIP_SAMPLES]))
            add_member(tar, f"{key}.{META_MEMBER}", json.dumps(sample_meta(task, record), sort_keys=True).encode())
        # let ffmpeg go (the remainder of the video, < 10 s, is not needed)
        batches.close()
    result["clips"] = clips


def _clip_record(task: VideoTask, result: dict[str, Any], index: int, start: int, audio: np.ndarray,
                 missing: int) -> dict[str, Any]:
    """The clip's line in ``clips.jsonl`` before the per-clip checks (``dropped`` None)."""
    return {
        "key": sample_key(task.video_id, index),
        "video_id": task.video_id,
        "clip_index": index,
        "start_s": start / SAMPLE_RATE,
        "rms": rms(audio),
        "lr_diff": lr_difference(audio)[0],
        "projection": result["projection"]["final"] if result["projection"] else None,
        "decoder": result["decoder"],
        "hrir": result["hrir"],
        "padded_frames": max(missing, 0),
        "dropped": None,
    }


def sample_meta(task: VideoTask, record: dict[str, Any]) -> dict[str, Any]:
    """The ``<key>.json`` member (SPEC section 6)."""
    return {
        "dataset": task.dataset,
        "video_id": task.video_id,
        "clip_index": record["clip_index"],
        "start_s": record["start_s"],
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "n_frames": FRAMES_PER_CLIP,
        "width": FRAME_WIDTH,
        "height": FRAME_HEIGHT,
        "projection": record["projection"],
        "decoder": record["decoder"],
        "hrir": record["hrir"],
        "lr_diff": record["lr_diff"],
        "rms": record["rms"],
        "source": task.source,
        "pipeline_version": PIPELINE_VERSION,
    }
