"""What ``ccs-data verify`` checks in a shard (docs/SPEC.md section 6), one function per thing checked.

* member names: every tar member is ``<key>.<ext>`` with an extension of the format (no folder in the name, no
  foreign member such as ``<key>.payload.sh``);
* a sample's members: the audio (16-bit FLAC, 16 kHz, 2 x 160,000; the 4-channel ``foa.flac`` when present), the
  100 frames (480x240 RGB JPEG, decoded), and the JSON member: every field present with its type, agreeing with
  the contract and with the sample's key (``video_id``, ``clip_index`` and ``start_s = clip_index x 10 s``);
* the index: present, current and agreeing with the tar headers; its checksums are compared with every member's
  bytes by ``pipelines.verify``.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import soundfile as sf
from PIL import Image

from pipelines.contract import (
    AUDIO_MEMBER,
    CLIP_SAMPLES,
    CLIP_SECONDS,
    FOA_MEMBER,
    FPS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    FRAMES_PER_CLIP,
    META_MEMBER,
    SAMPLE_RATE,
    frame_member,
    parse_sample_key,
)
from pipelines.shards import index_path, member_name_problem, read_index, tar_entries

FRAME_MEMBERS = tuple(frame_member(k) for k in range(FRAMES_PER_CLIP))
MEMBER_EXTS = frozenset((AUDIO_MEMBER, FOA_MEMBER, META_MEMBER, *FRAME_MEMBERS))

_NUMBER = (int, float)
# the JSON member's fields (clips.sample_meta) and the JSON types each may have; None: null allowed
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "video_id": (str,), "clip_index": (int,), "start_s": _NUMBER, "sample_rate": (int,),
    "fps": (int,), "n_frames": (int,), "width": (int,), "height": (int,), "projection": (str, type(None)),
    "decoder": (str, type(None)), "hrir": (str, type(None)), "lr_diff": _NUMBER, "rms": _NUMBER,
    "source": (dict,), "pipeline_version": (str,),
}
JSON_FIELDS = tuple(JSON_TYPES)
CONTRACT_VALUES = {"sample_rate": SAMPLE_RATE, "fps": FPS, "n_frames": FRAMES_PER_CLIP, "width": FRAME_WIDTH,
                   "height": FRAME_HEIGHT}


def member_problem(name: str) -> str | None:
    """Why a tar member cannot be part of a shard (a path, a malformed key, a foreign extension), or None."""
    problem = member_name_problem(name)
    if problem is not None:
        return problem
    ext = name.split(".", 1)[1]
    return None if ext in MEMBER_EXTS else f"member {name!r} is foreign to the format (extension {ext!r})"


def check_member_names(shard: Path) -> list[str]:
    """The problems of the member names of ``shard`` (read from its tar headers, not from its index)."""
    try:
        with open(shard, "rb") as fh:
            names = [name for name, _, _ in tar_entries(fh, shard)]
    except ValueError:
        return []  # a damaged tar is reported by the read of its samples
    return [p for p in map(member_problem, names) if p is not None]


def check_audio(data: bytes, channels: int) -> str | None:
    """What is wrong with a FLAC member (16-bit, 16 kHz, ``channels`` x 160,000), or None (it is decoded whole)."""
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


def check_jpeg(data: bytes, decode: bool = True) -> str | None:
    """What is wrong with a frame member (480x240 RGB JPEG), or None; ``decode=False`` reads the header only."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG" or im.mode != "RGB":
                return f"not an RGB JPEG ({im.format}, {im.mode})"
            if im.size != (FRAME_WIDTH, FRAME_HEIGHT):
                return f"size {im.size[0]}x{im.size[1]}, expected {FRAME_WIDTH}x{FRAME_HEIGHT}"
            if decode:
                im.load()  # a damaged entropy-coded segment shows only when decoding
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return f"unreadable JPEG ({exc})"
    return None


def _type_problems(meta: dict[str, Any]) -> list[str]:
    errs = []
    missing = [f for f in JSON_TYPES if f not in meta]
    if missing:
        errs.append(f"missing fields {missing}")
    for name, types in JSON_TYPES.items():
        value = meta.get(name)
        if name in meta and (not isinstance(value, types) or isinstance(value, bool)):
            errs.append(f"field {name!r} is {value!r}, not of type {'/'.join(t.__name__ for t in types)}")
        elif isinstance(value, float) and not math.isfinite(value):
            errs.append(f"field {name!r} is {value!r}, not a finite number")
    return errs


def check_meta(data: bytes, dataset: str, key: str | None = None) -> list[str]:
    """The problems of a JSON member: fields and types, the contract's values, and agreement with ``key``."""
    try:
        meta = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [f"not valid JSON ({exc})"]
    if not isinstance(meta, dict):
        return [f"not a JSON object ({type(meta).__name__})"]
    errs = _type_problems(meta)
    if meta.get("dataset") != dataset:
        errs.append(f"dataset {meta.get('dataset')!r}, expected {dataset!r}")
    for name, expected in CONTRACT_VALUES.items():
        if name in meta and meta[name] != expected:
            errs.append(f"{name} {meta[name]!r} disagrees with the contract ({expected})")
    if key is not None:
        video_id, index = parse_sample_key(key)
        for name, expected in (("video_id", video_id), ("clip_index", index), ("start_s", index * CLIP_SECONDS)):
            if meta.get(name) != expected:
                errs.append(f"{name} {meta.get(name)!r} disagrees with the key {key} ({expected!r})")
    return [f"{META_MEMBER}: {e}" for e in errs]


def check_sample(sample: dict[str, Any], dataset: str, *, key: str | None = None,
                 decode_frames: bool = True) -> list[str]:
    """Schema problems of one WebDataset sample (member extension -> bytes) whose key is ``key`` (checked against
    its JSON when given); ``decode_frames=False`` reads JPEG headers only (about 3x faster on the synthetic world;
    misses damage inside the compressed data, which the index checksums still catch)."""
    errs = [f"foreign member {ext!r}" for ext in sorted(sample) if ext not in MEMBER_EXTS]
    if AUDIO_MEMBER not in sample:
        errs.append(f"missing {AUDIO_MEMBER}")
    elif (e := check_audio(sample[AUDIO_MEMBER], 2)) is not None:
        errs.append(f"{AUDIO_MEMBER}: {e}")
    if FOA_MEMBER in sample and (e := check_audio(sample[FOA_MEMBER], 4)) is not None:
        errs.append(f"{FOA_MEMBER}: {e}")
    for name in FRAME_MEMBERS:
        if name not in sample:
            errs.append(f"missing {name}")
        elif (e := check_jpeg(sample[name], decode_frames)) is not None:
            errs.append(f"{name}: {e}")
    if META_MEMBER not in sample:
        errs.append(f"missing {META_MEMBER}")
    else:
        errs.extend(check_meta(sample[META_MEMBER], dataset, key))
    return errs


def check_index(shard: Path) -> tuple[dict[str, str], list[str]]:
    """The member checksums (name -> sha256) of ``shard``'s index and what is wrong with the index: missing,
    unreadable, stale (it names another tar size) or disagreeing with the tar headers (names, offsets, sizes).
    No checksums when the index cannot be used."""
    name = index_path(shard).name
    try:
        index = read_index(shard)
    except FileNotFoundError:
        return {}, [f"no index file {name} (rerun `ccs-data shard`)"]
    except ValueError as exc:
        return {}, [str(exc)]
    size = shard.stat().st_size
    if index.tar_size != size:
        return {}, [f"{name} is stale: it names a tar of {index.tar_size} bytes, the shard has {size}"]
    listed = [(e.name, e.offset, e.size) for e in index.entries]
    with open(shard, "rb") as fh:
        try:
            stored = list(tar_entries(fh, shard))
        except ValueError:
            stored = listed  # a damaged tar is reported by the read of its samples
    problems = []
    if stored != listed:
        first = next((i for i, (a, b) in enumerate(zip(stored, listed)) if a != b), min(len(stored), len(listed)))
        problems.append(f"{name} disagrees with the tar headers from member {first} on: it lists {len(listed)} "
                        f"members, the tar holds {len(stored)}")
    return {e.name: e.sha256 for e in index.entries}, problems
