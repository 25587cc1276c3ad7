"""Read side of the shard contract (SPEC 6): shard discovery, split key lists, clip iteration.

A shard is a tar of WebDataset samples; the members of one sample are consecutive and named ``<key>.<ext>``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

from ccstereo.constants import AUDIO_MEMBER, CLIP_SAMPLES, META_MEMBER, SAMPLE_RATE, SHARD_PATTERN, frame_member, parse_sample_key
from pipelines.layout import DatasetLayout

SPLIT_PARTS = ("train", "val", "test")


@dataclass
class RawClip:
    """One sample as stored: member extension (``audio.flac``, ``f007.jpg``, ``json``) -> bytes.

    A lazy clip (``iter_raw_clips(..., lazy=True)``) knows where its members are and reads one only when asked,
    so a loader that needs 2 of 100 frames reads 2; it is valid until the iterator moves on.
    """

    key: str
    shard: Path
    members: dict[str, bytes] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # ext -> (offset, size) in the shard
    _fh: BinaryIO | None = None
    _n_frames: int | None = None

    def has(self, ext: str) -> bool:
        return ext in self.members or ext in self.spans

    def get(self, ext: str) -> bytes:
        if ext not in self.members:
            if ext not in self.spans or self._fh is None:
                raise KeyError(f"{self.shard}: clip {self.key} has no member {ext!r}")
            offset, size = self.spans[ext]
            self._fh.seek(offset)
            self.members[ext] = self._fh.read(size)
        return self.members[ext]

    def frame_count(self) -> int:
        if self._n_frames is None:
            n = 0
            while self.has(frame_member(n)):
                n += 1
            self._n_frames = n
        return self._n_frames

    def frame(self, index: int) -> bytes:
        return self.get(frame_member(index))

    def meta(self) -> dict[str, Any]:
        return json.loads(self.get(META_MEMBER).decode("utf-8")) if self.has(META_MEMBER) else {}


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


TAR_BLOCK = 512


def _octal(field_bytes: bytes, shard: Path, pos: int) -> int:
    if field_bytes[:1] and field_bytes[0] & 0x80:  # GNU base-256 for large values
        return int.from_bytes(field_bytes[1:], "big")
    text = field_bytes.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise ValueError(f"{shard}: corrupt tar header at byte {pos}") from None


def tar_entries(fh: BinaryIO, shard: Path) -> Iterator[tuple[str, int, int]]:
    """(name, data offset, size) of each regular file of an open tar, from its headers only.

    A small reader instead of :mod:`tarfile`, whose per-header parsing cost more than decoding the frames a
    training sample uses. Handles ustar names with prefix, GNU long names and pax ``path``; checks every header's
    checksum and refuses a truncated archive.
    """
    file_size = os.fstat(fh.fileno()).st_size
    pos = 0
    long_name: bytes | None = None
    while True:
        fh.seek(pos)
        hdr = fh.read(TAR_BLOCK)
        if len(hdr) < TAR_BLOCK:
            raise ValueError(f"{shard}: truncated tar (no end-of-archive marker after byte {pos})")
        if hdr.count(0) == TAR_BLOCK:
            return
        if _octal(hdr[148:156], shard, pos) != sum(hdr[:148]) + 256 + sum(hdr[156:]):
            raise ValueError(f"{shard}: corrupt tar header at byte {pos} (checksum mismatch)")
        size = _octal(hdr[124:136], shard, pos)
        kind = hdr[156:157]
        name = hdr[0:100].split(b"\0", 1)[0]
        if hdr[257:262] == b"ustar":
            prefix = hdr[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        data = pos + TAR_BLOCK
        if data + size > file_size:
            raise ValueError(f"{shard}: truncated tar (member {name.decode(errors='replace')!r} ends past the file)")
        if kind == b"L":
            fh.seek(data)
            long_name = fh.read(size).split(b"\0", 1)[0]
        elif kind == b"x":
            fh.seek(data)
            for record in fh.read(size).split(b"\n"):
                _, _, kv = record.partition(b" ")
                if kv.startswith(b"path="):
                    long_name = kv[5:]
        elif kind in (b"0", b"\0", b"7"):
            yield (long_name or name).decode("utf-8"), data, size
            long_name = None
        elif kind != b"g":
            long_name = None
        pos = data + (size + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK


def index_shard(shard: str | Path) -> list[str]:
    """Keys of a shard in stored order, from the tar headers only (the data is skipped, not read)."""
    shard = Path(shard)
    keys: list[str] = []
    with open(shard, "rb") as fh:
        for name, _, _ in tar_entries(fh, shard):
            key, _ = _split_member(name, shard)
            if not keys or keys[-1] != key:
                keys.append(key)
    return keys


def iter_raw_clips(shards: Iterable[str | Path], keys: Iterable[str] | None = None, lazy: bool = False) -> Iterator[RawClip]:
    """Samples of ``shards`` in stored order, only those in ``keys`` when given; unwanted data is never read.

    ``lazy``: members are read on first access (see :class:`RawClip`), else all are read before the clip is yielded.
    """
    wanted = set(keys) if keys is not None else None
    for shard in shards:
        shard = Path(shard)
        with open(shard, "rb") as fh:
            current: RawClip | None = None
            current_key: str | None = None
            seen: set[str] = set()

            def finish(clip: RawClip) -> RawClip:
                if not lazy:
                    for ext in list(clip.spans):
                        clip.get(ext)
                return clip

            for name, offset, size in tar_entries(fh, shard):
                key, ext = _split_member(name, shard)
                if key != current_key:
                    if current is not None:
                        yield finish(current)
                    if key in seen:
                        raise ValueError(f"{shard}: members of {key} are not consecutive")
                    seen.add(key)
                    current_key = key
                    current = RawClip(key, shard, _fh=fh) if wanted is None or key in wanted else None
                if current is not None:
                    current.spans[ext] = (offset, size)
            if current is not None:
                yield finish(current)


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
    if not clip.has(AUDIO_MEMBER):
        raise ValueError(f"{clip.shard}: clip {clip.key} has no {AUDIO_MEMBER}")
    if clip.frame_count() == 0:
        raise ValueError(f"{clip.shard}: clip {clip.key} has no frames")


def iter_clips(shards: Iterable[str | Path], keys: Iterable[str] | None = None) -> Iterator[Clip]:
    """Decoded clips of ``shards`` (only ``keys`` when given), in stored order."""
    for raw in iter_raw_clips(shards, keys):
        check_raw_clip(raw)
        audio = decode_audio(raw.get(AUDIO_MEMBER), f"{raw.shard}: clip {raw.key}")
        frames = [raw.frame(i) for i in range(raw.frame_count())]
        yield Clip(raw.key, audio, frames, raw.meta(), raw.shard)
