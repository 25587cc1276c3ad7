"""Read side of the shard contract (SPEC 6): shard discovery, split key lists, clip iteration.

A shard is a tar of WebDataset samples; the members of one sample are consecutive and named ``<key>.<ext>``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ccstereo.constants import AUDIO_MEMBER, CLIP_SAMPLES, META_MEMBER, SAMPLE_RATE, SHARD_PATTERN, parse_sample_key
from pipelines.layout import DatasetLayout

SPLIT_PARTS = ("train", "val", "test")


@dataclass
class RawClip:
    """One sample as stored: ``members`` maps the extension (``audio.flac``, ``f007.jpg``, ``json``) to bytes."""

    key: str
    shard: Path
    members: dict[str, bytes] = field(default_factory=dict)

    def frame_count(self) -> int:
        n = 0
        while f"f{n:03d}.jpg" in self.members:
            n += 1
        return n

    def frame(self, index: int) -> bytes:
        return self.members[f"f{index:03d}.jpg"]

    def meta(self) -> dict[str, Any]:
        if META_MEMBER not in self.members:
            return {}
        return json.loads(self.members[META_MEMBER].decode("utf-8"))


@dataclass
class Clip:
    """A decoded clip: ``audio`` float32 [2, 160000] (L, R), ``frames`` JPEG bytes in time order, ``meta``."""

    key: str
    audio: np.ndarray
    frames: list[bytes]
    meta: dict[str, Any]
    shard: Path


def _safe_component(value: str, what: str) -> str:
    if not value or "/" in value or "\\" in value or value in (".", "..") or value.startswith("."):
        raise ValueError(f"invalid {what} {value!r}")
    return value


def list_shards(root: str | Path, dataset: str) -> list[Path]:
    """The dataset's complete shards ``<root>/<dataset>/shards/<dataset>-NNNNNN.tar``, sorted; error when none."""
    layout = DatasetLayout(Path(root), dataset)
    prefix = SHARD_PATTERN.format(dataset=dataset, index=0)[: -len("000000.tar")]
    shards = sorted(p for p in layout.shards_dir.glob(f"{prefix}*.tar") if p.name[len(prefix):-4].isdigit())
    if not shards:
        raise FileNotFoundError(f"no shards for {dataset} in {layout.shards_dir} (run `ccs-data shard {dataset}`)")
    return shards


def read_split_keys(root: str | Path, dataset: str, protocol: str, split: str, part: str) -> list[str]:
    """Keys of ``splits/<protocol>/<split>/<part>.txt`` (validated, order kept, duplicates refused)."""
    if part not in SPLIT_PARTS:
        raise ValueError(f"split part must be one of {SPLIT_PARTS}, got {part!r}")
    path = DatasetLayout(Path(root), dataset).split_list(_safe_component(protocol, "protocol"), _safe_component(str(split), "split"), part)
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} does not exist")
    keys: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        key = line.strip()
        if not key:
            continue
        try:
            parse_sample_key(key)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: malformed sample key {key!r}") from None
        keys.append(key)
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: duplicate keys")
    return keys


def _split_member(name: str, shard: Path) -> tuple[str, str]:
    base = name.rsplit("/", 1)[-1]
    if "." not in base:
        raise ValueError(f"{shard}: member {name!r} has no extension")
    key, ext = base.split(".", 1)
    try:
        parse_sample_key(key)
    except ValueError:
        raise ValueError(f"{shard}: member {name!r} has a malformed key") from None
    return key, ext


def index_shard(shard: str | Path) -> list[str]:
    """Keys of a shard in stored order, from the tar headers only (the data is skipped, not read)."""
    shard = Path(shard)
    keys: list[str] = []
    with tarfile.open(shard, "r:") as tar:
        for info in tar:
            if info.isfile():
                key, _ = _split_member(info.name, shard)
                if not keys or keys[-1] != key:
                    keys.append(key)
    return keys


def iter_raw_clips(shards: Iterable[str | Path], keys: Iterable[str] | None = None) -> Iterator[RawClip]:
    """Samples of ``shards`` in stored order, only those in ``keys`` when given; unwanted data is never read."""
    wanted = set(keys) if keys is not None else None
    for shard in shards:
        shard = Path(shard)
        current: RawClip | None = None  # the sample being collected (None while skipping one)
        current_key: str | None = None
        seen: set[str] = set()
        with tarfile.open(shard, "r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, ext = _split_member(info.name, shard)
                if key != current_key:
                    if current is not None:
                        yield current
                    if key in seen:
                        raise ValueError(f"{shard}: members of {key} are not consecutive")
                    seen.add(key)
                    current_key = key
                    current = RawClip(key, shard) if wanted is None or key in wanted else None
                if current is not None:
                    fh = tar.extractfile(info)
                    assert fh is not None
                    current.members[ext] = fh.read()
        if current is not None:
            yield current


def decode_audio(data: bytes, where: str) -> np.ndarray:
    """FLAC bytes of a clip -> float32 [2, 160000]; errors name ``where`` and what is wrong."""
    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for corrupt data
        raise ValueError(f"{where}: audio does not decode ({exc})") from None
    if sr != SAMPLE_RATE or audio.shape != (CLIP_SAMPLES, 2):
        raise ValueError(f"{where}: audio is {audio.shape[1]} ch x {audio.shape[0]} samples at {sr} Hz, expected 2 x {CLIP_SAMPLES} at {SAMPLE_RATE}")
    return np.ascontiguousarray(audio.T)


def check_raw_clip(clip: RawClip) -> None:
    """Refuse a sample without audio or frames (errors name the shard and key)."""
    if AUDIO_MEMBER not in clip.members:
        raise ValueError(f"{clip.shard}: clip {clip.key} has no {AUDIO_MEMBER}")
    if clip.frame_count() == 0:
        raise ValueError(f"{clip.shard}: clip {clip.key} has no frames")


def iter_clips(shards: Iterable[str | Path], keys: Iterable[str] | None = None) -> Iterator[Clip]:
    """Decoded clips of ``shards`` (only ``keys`` when given), in stored order."""
    for raw in iter_raw_clips(shards, keys):
        check_raw_clip(raw)
        audio = decode_audio(raw.members[AUDIO_MEMBER], f"{raw.shard}: clip {raw.key}")
        frames = [raw.frame(i) for i in range(raw.frame_count())]
        yield Clip(raw.key, audio, frames, raw.meta(), raw.shard)
