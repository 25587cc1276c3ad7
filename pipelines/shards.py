"""The shard format (docs/SPEC.md section 6): member encoding and tar members, shard discovery, split key lists,
clip iteration.

A shard is a tar of WebDataset samples; the members of one sample are consecutive and named ``<key>.<ext>``.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
from PIL import Image

from pipelines.contract import (
    AUDIO_MEMBER,
    CLIP_SAMPLES,
    JPEG_QUALITY,
    META_MEMBER,
    SAMPLE_RATE,
    DatasetLayout,
    frame_member,
    parse_sample_key,
)

# ------------------------------------------------------------------------------------------------ write side


def flac_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit FLAC of a [C, T] float waveform (clipped to [-1, 1]); same input -> same bytes."""
    buf = io.BytesIO()
    data = np.clip(np.asarray(audio, dtype=np.float64).T, -1.0, 1.0)
    sf.write(buf, data, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def jpeg_bytes(frame: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """Baseline JPEG of an [H, W, 3] uint8 frame (fixed settings: same input -> same bytes)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), "RGB").save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """A regular-file member with fixed metadata (mtime 0, uid/gid 0, no names, mode 0644): reproducible tars."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------------------------------------ read side


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


def list_shards(root: str | Path, dataset: str) -> list[Path]:
    """The dataset's complete shards ``<root>/<dataset>/shards/<dataset>-NNNNNN.tar``, sorted; error when none."""
    layout = DatasetLayout(Path(root), dataset)
    shards = layout.shards()
    if not shards:
        raise FileNotFoundError(f"no shards for {dataset} in {layout.shards_dir} (run `ccs-data shard {dataset}`)")
    return shards


def read_split_keys(root: str | Path, dataset: str, protocol: str, split: str, part: str) -> list[str]:
    """Keys of ``splits/<protocol>/<split>/<part>.txt`` (validated, order kept, duplicates refused)."""
    return DatasetLayout(Path(root), dataset).read_split_keys(protocol, split, part)


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
