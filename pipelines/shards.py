"""The shard format (docs/SPEC.md section 6): member encoding and tar members, the shard writer and its index
file, shard discovery, split key lists and clip iteration (the checks ``ccs-data verify`` makes are in
``pipelines.shard_checks``).

A shard is a tar of WebDataset samples; the members of one sample are consecutive and named ``<key>.<ext>``.
Beside each shard ``<dataset>-NNNNNN.tar`` the writer leaves ``<dataset>-NNNNNN.tar.idx.jsonl``: a header line
(format, tar name, tar size, member count) and one ``[name, data offset, size, sha256]`` line per member in stored
order. Readers seek with the index when it names the tar's current size, and parse the tar headers otherwise
(no index, a stale or a damaged one); ``ccs-data verify`` checks the index against the tar.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

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
from pipelines.io import atomic_output

TAR_BLOCK = 512
INDEX_SUFFIX = ".idx.jsonl"
INDEX_FORMAT = "ccstereo-shard-index/1"

# ------------------------------------------------------------------------------------------------ members


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


# ------------------------------------------------------------------------------------------------ writer, index


def _padded(size: int) -> int:
    return (size + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK


def member_digest(data: bytes) -> str:
    """The checksum an index records for a member's bytes (hex sha256)."""
    return hashlib.sha256(data).hexdigest()


class IndexEntry(NamedTuple):
    """One member of a shard as its index records it; ``offset`` is where its data starts in the tar."""

    name: str
    offset: int
    size: int
    sha256: str


@dataclass(frozen=True)
class ShardIndex:
    tar: str  # the shard's file name
    tar_size: int
    entries: tuple[IndexEntry, ...]


def index_path(shard: str | Path) -> Path:
    """The index file beside ``shard`` (never matches the shard pattern, so shard globs skip it)."""
    shard = Path(shard)
    return shard.with_name(shard.name + INDEX_SUFFIX)


def index_bytes(index: ShardIndex) -> bytes:
    """The index file's content: same index -> same bytes."""
    head = {"format": INDEX_FORMAT, "tar": index.tar, "tar_size": index.tar_size, "members": len(index.entries)}
    lines = [json.dumps(head, sort_keys=True)] + [json.dumps(list(e)) for e in index.entries]
    return ("\n".join(lines) + "\n").encode("utf-8")


class ShardWriter:
    """Adds members to an open shard tar and records where each one's data lands (see :func:`write_shard`)."""

    def __init__(self, tar: tarfile.TarFile):
        self._tar = tar
        self.entries: list[IndexEntry] = []

    def add(self, name: str, data: bytes) -> None:
        add_member(self._tar, name, data)
        offset = self._tar.offset - _padded(len(data))  # the tar's write position is now past the padded data
        self.entries.append(IndexEntry(name, offset, len(data), member_digest(data)))


@contextmanager
def write_shard(path: str | Path) -> Iterator[ShardWriter]:
    """Write the shard ``path`` (USTAR, fixed member headers) and then its index, both atomically.

    The tar goes to a temporary name and is renamed when complete. An earlier index is removed before that
    rename and the new one written after it, so an index never describes another tar than the one beside it
    (a crash in between leaves a shard without index, which readers handle by parsing headers). Refuses to
    write an empty shard (SPEC 6).
    """
    path = Path(path)
    with atomic_output(path) as fh:  # created with the user's umask, as every output
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            writer = ShardWriter(tar)
            yield writer
            if not writer.entries:
                raise ValueError(f"{path}: refusing to write an empty shard")
        tar_size = fh.tell()
        index_path(path).unlink(missing_ok=True)
    with atomic_output(index_path(path)) as fh:
        fh.write(index_bytes(ShardIndex(path.name, tar_size, tuple(writer.entries))))


def remove_orphan_indexes(directory: Path) -> None:
    """Delete the index files in ``directory`` whose shard is gone (they would describe nothing)."""
    for index in directory.glob(f"*.tar{INDEX_SUFFIX}"):
        if not index.with_name(index.name[: -len(INDEX_SUFFIX)]).exists():
            index.unlink()


def _index_entry(row: Any, end: int, tar_size: int) -> IndexEntry | None:
    """``row`` as an entry if it is well formed and lies after ``end`` inside the tar, else None."""
    if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], str) and isinstance(row[3], str)):
        return None
    name, offset, size, digest = row
    if type(offset) is not int or type(size) is not int or len(digest) != 64:
        return None
    return IndexEntry(name, offset, size, digest) if end <= offset and offset + size <= tar_size else None


def read_index(shard: str | Path) -> ShardIndex:
    """The index of ``shard``; FileNotFoundError when there is none, ValueError (naming the file and the
    reason) when it is not a well-formed index of this shard. Whether it is current is the caller's check."""
    shard = Path(shard)
    path = index_path(shard)
    try:
        first, *rest = path.read_text(encoding="utf-8").splitlines() or [""]
        head, rows = json.loads(first), json.loads("[" + ",".join(rest) + "]")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path}: not a shard index (unreadable JSON lines)") from None
    if not isinstance(head, dict) or head.get("format") != INDEX_FORMAT:
        raise ValueError(f"{path}: not a shard index (format is not {INDEX_FORMAT!r})")
    tar_size = head.get("tar_size")
    if head.get("tar") != shard.name or type(tar_size) is not int or head.get("members") != len(rows):
        raise ValueError(f"{path}: header does not describe {shard.name} with {len(rows)} members")
    entries, end = [], 0
    for lineno, row in enumerate(rows, 2):
        entry = _index_entry(row, end, tar_size)
        if entry is None:
            raise ValueError(f"{path}:{lineno}: malformed member entry")
        entries.append(entry)
        end = entry.offset + entry.size
    return ShardIndex(shard.name, tar_size, tuple(entries))


def trusted_index(shard: str | Path, tar_size: int) -> ShardIndex | None:
    """The index of ``shard`` if there is a well-formed one naming ``tar_size`` (the tar's size now), else None."""
    try:
        index = read_index(shard)
    except (OSError, ValueError):
        return None
    return index if index.tar_size == tar_size else None


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


def member_name_problem(name: str) -> str | None:
    """Why ``name`` is not a member name of the format (``<key>.<ext>``: no folder, a well-formed key), or None."""
    if "/" in name or "\\" in name:
        return f"member {name!r} has a path (members are named <key>.<ext>)"
    if "." not in name:
        return f"member {name!r} has no extension"
    try:
        parse_sample_key(name.split(".", 1)[0])
    except ValueError:
        return f"member {name!r} has a malformed key"
    return None


def _split_member(name: str, shard: Path) -> tuple[str, str]:
    """``(key, ext)`` of a member; a path-bearing or malformed name is refused (the reader never trains on a
    member named ``../../<key>.audio.flac``)."""
    problem = member_name_problem(name)
    if problem is not None:
        raise ValueError(f"{shard}: {problem}")
    key, ext = name.split(".", 1)
    return key, ext


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
        pos = data + _padded(size)


def member_spans(fh: BinaryIO, shard: Path) -> Iterable[tuple[str, int, int]]:
    """(name, data offset, size) of every member of the open shard ``fh``, in stored order: from the index when
    it is trusted (no tar header is read), else from the tar headers."""
    index = trusted_index(shard, os.fstat(fh.fileno()).st_size)
    if index is None:
        return tar_entries(fh, shard)
    return [(e.name, e.offset, e.size) for e in index.entries]


def shard_keys(shard: str | Path) -> list[str]:
    """Keys of a shard in stored order, from its index or its tar headers (the data is skipped, not read)."""
    shard = Path(shard)
    keys: list[str] = []
    with open(shard, "rb") as fh:
        for name, _, _ in member_spans(fh, shard):
            key, _ = _split_member(name, shard)
            if not keys or keys[-1] != key:
                keys.append(key)
    return keys


def iter_raw_clips(shards: Iterable[str | Path], keys: Iterable[str] | None = None, lazy: bool = False) -> Iterator[RawClip]:
    """Samples of ``shards`` in stored order, only those in ``keys`` when given; unwanted data is never read
    (members are located with :func:`member_spans`).

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

            for name, offset, size in member_spans(fh, shard):
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
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types for corrupt data
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
