"""``ccs-data verify``: read every shard back with plain ``webdataset`` and check it against SPEC section 6.

Checks: each sample has the audio (16 kHz, 16-bit FLAC, 160,000 x 2), 100 frames (480x240 RGB JPEG) and a JSON
member with the contract's fields; no key appears twice; the shard keys are exactly the kept clips of
``clips.jsonl``; every key of every split list exists exactly once in the shards and the split lists agree with
the manifest. Problems are collected (never raised) so one run reports all of them.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipelines.contract import (
    AUDIO_MEMBER,
    CLIP_SAMPLES,
    FOA_MEMBER,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    FRAMES_PER_CLIP,
    META_MEMBER,
    SAMPLE_RATE,
    DatasetLayout,
    frame_member,
)
from pipelines.io import read_jsonl
from pipelines.shard import split_lists

JSON_FIELDS = ("dataset", "video_id", "clip_index", "start_s", "sample_rate", "fps", "n_frames", "projection",
               "lr_diff", "rms", "source", "pipeline_version")


@dataclass(frozen=True)
class Problem:
    where: str  # shard file, key or list file
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _check_audio(data: bytes, channels: int) -> str | None:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.format != "FLAC" or f.subtype != "PCM_16":
                return f"not 16-bit FLAC ({f.format}/{f.subtype})"
            if f.samplerate != SAMPLE_RATE:
                return f"sample rate {f.samplerate}, expected {SAMPLE_RATE}"
            if f.channels != channels:
                return f"{f.channels} channels, expected {channels}"
            audio = f.read(dtype="int16")
    except (RuntimeError, sf.LibsndfileError) as exc:
        return f"unreadable FLAC ({exc})"
    if audio.shape[0] != CLIP_SAMPLES:
        return f"{audio.shape[0]} samples, expected {CLIP_SAMPLES}"
    return None


def _check_jpeg(data: bytes, decode: bool = True) -> str | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG" or im.mode != "RGB":
                return f"not an RGB JPEG ({im.format}, {im.mode})"
            if im.size != (FRAME_WIDTH, FRAME_HEIGHT):
                return f"size {im.size[0]}x{im.size[1]}, expected {FRAME_WIDTH}x{FRAME_HEIGHT}"
            if decode:
                im.load()  # a damaged entropy-coded segment shows only when decoding
    except (OSError, ValueError) as exc:
        return f"unreadable JPEG ({exc})"
    return None


def check_sample(sample: dict[str, Any], dataset: str, *, decode_frames: bool = True) -> list[str]:
    """Schema problems of one WebDataset sample (raw bytes members); ``decode_frames=False`` reads JPEG headers
    only (about 3x faster on the synthetic world; misses damage inside the compressed data)."""
    errs = []
    if AUDIO_MEMBER not in sample:
        errs.append(f"missing {AUDIO_MEMBER}")
    elif (e := _check_audio(sample[AUDIO_MEMBER], 2)) is not None:
        errs.append(f"{AUDIO_MEMBER}: {e}")
    if FOA_MEMBER in sample and (e := _check_audio(sample[FOA_MEMBER], 4)) is not None:
        errs.append(f"{FOA_MEMBER}: {e}")
    for k in range(FRAMES_PER_CLIP):
        name = frame_member(k)
        if name not in sample:
            errs.append(f"missing {name}")
        elif (e := _check_jpeg(sample[name], decode_frames)) is not None:
            errs.append(f"{name}: {e}")
    extra = [m for m in sample if m.startswith("f") and m.endswith(".jpg") and m not in
             {frame_member(k) for k in range(FRAMES_PER_CLIP)}]
    if extra:
        errs.append(f"unexpected frame members {sorted(extra)}")
    if META_MEMBER not in sample:
        errs.append(f"missing {META_MEMBER}")
    else:
        try:
            meta = json.loads(sample[META_MEMBER])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            errs.append(f"{META_MEMBER}: not valid JSON ({exc})")
        else:
            missing = [f for f in JSON_FIELDS if f not in meta]
            if missing:
                errs.append(f"{META_MEMBER}: missing fields {missing}")
            if meta.get("dataset") != dataset:
                errs.append(f"{META_MEMBER}: dataset {meta.get('dataset')!r}, expected {dataset!r}")
            if meta.get("n_frames") != FRAMES_PER_CLIP or meta.get("sample_rate") != SAMPLE_RATE:
                errs.append(f"{META_MEMBER}: n_frames/sample_rate disagree with the contract")
    return errs


def verify_dataset(root: str | Path, dataset: str, *, progress: bool = False,
                   decode_frames: bool = True) -> list[Problem]:
    """Every problem found in the shards and split lists of ``dataset`` under ``root`` (empty list: all good)."""
    import webdataset as wds

    layout = DatasetLayout(Path(root), dataset)
    problems: list[Problem] = []
    shards = layout.shards()
    if not shards:
        return [Problem(str(layout.shards_dir), "no shards")]
    seen: Counter[str] = Counter()
    bar = tqdm(total=len(shards), desc=f"verify {dataset}", unit="shard", disable=not progress)
    for shard in shards:
        n = 0
        try:
            ds = wds.WebDataset(str(shard), shardshuffle=False, empty_check=False)
            for sample in ds:
                key = sample["__key__"]
                seen[key] += 1
                n += 1
                members = {k: v for k, v in sample.items() if not k.startswith("__")}
                for err in check_sample(members, dataset, decode_frames=decode_frames):
                    problems.append(Problem(f"{shard.name}:{key}", err))
        except Exception as exc:  # noqa: BLE001 - any read failure of a shard is a finding, not a crash
            problems.append(Problem(shard.name, f"cannot be read to the end after {n} samples "
                                                f"({type(exc).__name__}: {exc})"))
        if n == 0:
            problems.append(Problem(shard.name, "empty shard"))
        bar.update(1)
    bar.close()
    for key, count in sorted(seen.items()):
        if count > 1:
            problems.append(Problem(key, f"appears {count} times in the shards"))

    # the shards against the manifest
    clips = [c for c in read_jsonl(layout.clips_manifest) if c.get("dropped") is None]
    expected = {c["key"] for c in clips}
    if not layout.clips_manifest.exists():
        problems.append(Problem(str(layout.clips_manifest), "missing"))
    for key in sorted(expected - set(seen)):
        problems.append(Problem(key, "kept in clips.jsonl but not in any shard"))
    for key in sorted(set(seen) - expected):
        problems.append(Problem(key, "in a shard but not a kept clip of clips.jsonl"))

    # split lists: every key exactly once in the shards, the lists equal to the manifest's memberships
    wanted = split_lists(clips)
    on_disk = {}
    if layout.splits_dir.exists():
        for p in sorted(layout.splits_dir.glob("*/*/*.txt")):
            protocol, split, part = p.parent.parent.name, p.parent.name, p.stem
            on_disk[(protocol, split, part)] = p
    for ident, keys in wanted.items():
        if ident not in on_disk:
            problems.append(Problem("/".join(ident) + ".txt", "split list missing"))
    for ident, p in on_disk.items():
        keys = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        where = str(p.relative_to(layout.base))
        dup = [k for k, c in Counter(keys).items() if c > 1]
        if dup:
            problems.append(Problem(where, f"keys listed twice: {dup[:5]}"))
        for k in keys:
            if seen.get(k, 0) != 1:
                problems.append(Problem(where, f"key {k} is in {seen.get(k, 0)} shard samples, expected exactly 1"))
        if ident in wanted and sorted(keys) != wanted[ident]:
            problems.append(Problem(where, f"{len(keys)} keys, clips.jsonl says {len(wanted[ident])}"))
        elif ident not in wanted:
            problems.append(Problem(where, "split list not backed by clips.jsonl"))
    return problems
