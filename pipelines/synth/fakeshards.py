"""Small learnable datasets in the exact shard schema of SPEC 6, for tests of the trainer, inference and metrics.

Scene ``lateral-source``: one sound source (a harmonic tone with note onsets, or noise bursts) drawn as a coloured
disc whose horizontal position follows the source's pan ``p`` in [-0.9, 0.9] (``p > 0`` = left, drawn left of the
centre: column ``W/2 - p*W/4``, azimuth ``p * 90`` degrees). The pan drifts slowly over the clip. Channels:
``L = s (1 + p) / 2``, ``R = s (1 - p) / 2``, so ``mono = L + R = s`` carries no position information while
``diff = L - R = p s`` has a level set by ``|p|`` and a polarity (phase 0 or pi) set by its sign: only the picture
tells a model where the source is.

    info = make_fake_dataset(tmp_path, n_clips=12, protocols={"5-split": 5}, frame_size=(60, 120))
    info.shards, info.splits[("5-split", "1")]["train"], info.pans[key]
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from pipelines.contract import (
    AUDIO_MEMBER,
    CLIP_SAMPLES,
    CLIP_SECONDS,
    FPS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    FRAMES_PER_CLIP,
    JPEG_QUALITY,
    META_MEMBER,
    PIPELINE_VERSION,
    SAMPLE_RATE,
    DatasetLayout,
    frame_member,
    sample_key,
)
from pipelines.io import atomic_output
from pipelines.shards import write_shard

SCENES = ("lateral-source",)


@dataclass
class FakeDataset:
    root: Path
    dataset: str
    keys: list[str]
    shards: list[Path]
    splits: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    pans: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (pan at t=0, pan at t=10 s)


def _video_id(dataset: str, index: int) -> str:
    # FAIR-Play ids are clip numbers; the YouTube-like sets get 11-character ids.
    return f"{index + 1:06d}" if dataset == "fair-play" else f"fake{index:07d}"


def pan_at(pans: tuple[float, float], t: np.ndarray | float) -> np.ndarray:
    """Pan at time ``t`` seconds of a clip whose pan drifts linearly from ``pans[0]`` to ``pans[1]``."""
    return pans[0] + (pans[1] - pans[0]) * np.asarray(t, dtype=np.float64) / CLIP_SECONDS


def _source_signal(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    env = np.zeros(CLIP_SAMPLES)
    pos = int(rng.integers(0, SAMPLE_RATE // 4))
    while pos < CLIP_SAMPLES:  # notes of 0.2-1 s separated by short gaps
        length = int(rng.uniform(0.2, 1.0) * SAMPLE_RATE)
        seg = env[pos : pos + length]
        seg[:] = np.exp(-np.arange(seg.size) / (0.4 * SAMPLE_RATE)) * np.minimum(1.0, np.arange(seg.size) / 80)
        pos += length + int(rng.uniform(0.02, 0.2) * SAMPLE_RATE)
    if rng.random() < 0.5:
        f0 = rng.uniform(150, 600)
        sig = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) for h in range(1, 6))
    else:
        sig = rng.standard_normal(CLIP_SAMPLES)
    sig = sig * env
    return sig / (np.sqrt(np.mean(sig**2)) + 1e-9) * rng.uniform(0.08, 0.2)


def _frames(rng: np.random.Generator, pans: tuple[float, float], frame_size: tuple[int, int]) -> list[bytes]:
    h, w = frame_size
    background = np.clip(rng.normal(40, 8, size=(h, w, 3)), 0, 255)
    colour = rng.uniform(120, 255, size=3)
    cy, radius = h * rng.uniform(0.35, 0.65), max(2.0, h / 6)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for k in range(FRAMES_PER_CLIP):
        cx = w / 2 - float(pan_at(pans, (k + 0.5) / FPS)) * w / 4
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
        img = background.copy()
        img[disc] = colour
        buf = io.BytesIO()
        Image.fromarray(img.astype(np.uint8)).save(buf, format="JPEG", quality=JPEG_QUALITY)
        out.append(buf.getvalue())
    return out


def make_fake_clip(dataset: str, index: int, seed: int, frame_size: tuple[int, int]) -> tuple[str, dict[str, bytes], tuple[float, float]]:
    """Members of one fake sample (key, {ext: bytes}, pans)."""
    rng = np.random.default_rng([seed, index])
    video_id = _video_id(dataset, index)
    key = sample_key(video_id, 0)
    p0 = float(rng.uniform(-0.9, 0.9))
    pans = (p0, float(np.clip(p0 + rng.uniform(-0.3, 0.3), -0.9, 0.9)))
    s = _source_signal(rng)
    p = pan_at(pans, np.arange(CLIP_SAMPLES) / SAMPLE_RATE)
    stereo = np.stack([s * (1 + p) / 2, s * (1 - p) / 2], axis=1).clip(-1, 1)
    flac = io.BytesIO()
    sf.write(flac, stereo, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    meta = {
        "dataset": dataset, "video_id": video_id, "clip_index": 0, "start_s": 0.0, "sample_rate": SAMPLE_RATE,
        "fps": FPS, "n_frames": FRAMES_PER_CLIP, "projection": None, "lr_diff": float(np.mean(np.abs(stereo[:, 0] - stereo[:, 1]))),
        "rms": float(np.sqrt(np.mean(stereo**2))), "source": "pipelines/synth/fakeshards.py", "pipeline_version": PIPELINE_VERSION,
    }
    members = {AUDIO_MEMBER: flac.getvalue()}
    for k, jpg in enumerate(_frames(rng, pans, frame_size)):
        members[frame_member(k)] = jpg
    members[META_MEMBER] = json.dumps(meta, sort_keys=True).encode()
    return key, members, pans


def _split_parts(keys: list[str], seed: int, protocol: str, split: str) -> dict[str, list[str]]:
    rng = np.random.default_rng([seed, zlib.crc32(f"{protocol}/{split}".encode())])
    order = [keys[i] for i in rng.permutation(len(keys))]
    n_val = n_test = max(1, round(0.15 * len(keys)))
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def make_fake_dataset(
    root: str | Path,
    dataset: str = "fair-play",
    n_clips: int = 12,
    protocols: dict[str, int] | None = None,
    seed: int = 0,
    frame_size: tuple[int, int] = (FRAME_HEIGHT, FRAME_WIDTH),
    scene: str = "lateral-source",
    clips_per_shard: int = 64,
) -> FakeDataset:
    """Write ``<root>/<dataset>/shards/<dataset>-NNNNNN.tar`` (with their index files, by the shard writer) and
    ``splits/<protocol>/<split>/{train,val,test}.txt``.

    ``protocols`` maps a protocol name to its number of splits (named "1".."n"); each split is a seeded
    70/15/15 partition of the keys. Same arguments -> byte-identical files.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r} (known: {SCENES})")
    if n_clips < 3:
        raise ValueError("need at least 3 clips (train, val and test each get one)")
    protocols = {"5-split": 1} if protocols is None else protocols
    layout = DatasetLayout(Path(root), dataset)
    info = FakeDataset(Path(root), dataset, [], [])
    for start in range(0, n_clips, clips_per_shard):
        path = layout.shard_path(start // clips_per_shard)
        with write_shard(path) as writer:
            for index in range(start, min(n_clips, start + clips_per_shard)):
                key, members, pans = make_fake_clip(dataset, index, seed, frame_size)
                for ext, data in members.items():
                    writer.add(f"{key}.{ext}", data)
                info.keys.append(key)
                info.pans[key] = pans
        info.shards.append(path)
    for protocol, n_splits in protocols.items():
        for split_index in range(1, n_splits + 1):
            split = str(split_index)
            parts = _split_parts(info.keys, seed, protocol, split)
            for part, keys in parts.items():
                with atomic_output(layout.split_list(protocol, split, part)) as fh:
                    fh.write("".join(k + "\n" for k in keys).encode())
            info.splits[(protocol, split)] = parts
    return info
