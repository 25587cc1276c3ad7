"""List files and archives in the real upstream formats (see ``shared/upstream/SOURCES.md``), byte-deterministic.

Formats mirrored (content is synthetic; nothing is copied from the real files):
- MUSIC_dataset JSON: ``{"version": v, "videos": {"<instrument or pair>": [ids]}}``, 4-space indent;
- spatialaudiogen ``.lst``: one id per line, last line without newline;
- spatialaudiogen ``video_formats.txt`` (``<id> <itag> <MONO|STEREO> <EAC|ER>``) and ``audio_formats.txt``
  (``<id> <itag> <codec> <WXYZ|WXY>``): one row per line, newline-terminated;
- PseudoBinaural ``new_splits/splitK/{train,val,test}.txt``: ``NNNNNN.mp3`` per line, last line without newline;
- FAIR-Play ``*.tar.gz`` archives and the 10-split ``.h5`` lists (dataset ``audio``: byte strings of wav paths).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

# Where the h5 lists of the real FAIR-Play say their wavs live; only the basename (the clip id) matters.
FAIRPLAY_H5_PREFIX = "/datasets/FAIR-Play/binaural_audios/"
ARCHIVE_MTIME = 1_546_300_800  # 2019-01-01T00:00:00Z: fixed, so archives are byte-identical across runs


def music_json(videos: dict[str, list[str]], version: float) -> bytes:
    return json.dumps({"version": version, "videos": videos}, indent=4, separators=(", ", ": ")).encode()


def id_lines(ids: Sequence[str]) -> bytes:
    return "\n".join(ids).encode()


def clip_lines(clip_ids: Sequence[str]) -> bytes:
    return "\n".join(f"{c}.mp3" for c in clip_ids).encode()


def video_formats(rows: Sequence[tuple[str, int, str, str]]) -> bytes:
    return "".join(f"{vid} {itag} {stereo} {proj}\n" for vid, itag, stereo, proj in rows).encode()


def audio_formats(rows: Sequence[tuple[str, int, str, str]]) -> bytes:
    return "".join(f"{vid} {itag} {codec} {layout}\n" for vid, itag, codec, layout in rows).encode()


def fairplay_split_h5(clip_ids: Sequence[str]) -> bytes:
    """An HDF5 file with dataset ``audio``: fixed-length byte strings of wav paths, one per clip."""
    import h5py

    paths = np.array([f"{FAIRPLAY_H5_PREFIX}{c}.wav".encode() for c in clip_ids])
    buf = io.BytesIO()
    with h5py.File(buf, "w", track_order=False) as f:
        f.create_dataset("audio", data=paths, track_times=False)
    return buf.getvalue()


class TarGzWriter:
    """Streams ``(name, data)`` members into a gzip'd tar: parent folders first, fixed mtimes/owners, gzip
    mtime 0 and no file name in the gzip header, so the same members give the same bytes."""

    def __init__(self, fileobj: BinaryIO, compresslevel: int = 6):
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=fileobj, mtime=0, compresslevel=compresslevel)
        self._tar = tarfile.open(fileobj=self._gz, mode="w", format=tarfile.GNU_FORMAT)
        self._dirs: set[str] = set()

    def add(self, name: str, data: bytes) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self._dirs:
                self._dirs.add(d)
                self._tar.addfile(_tarinfo(d + "/", 0, tarfile.DIRTYPE, 0o755))
        self._tar.addfile(_tarinfo(name, len(data), tarfile.REGTYPE, 0o644), io.BytesIO(data))

    def close(self) -> None:
        self._tar.close()
        self._gz.close()


def tar_gz(members: Sequence[tuple[str, bytes]]) -> bytes:
    """The bytes of a deterministic gzip'd tar of ``members`` (see :class:`TarGzWriter`)."""
    out = io.BytesIO()
    writer = TarGzWriter(out)
    for name, data in members:
        writer.add(name, data)
    writer.close()
    return out.getvalue()


def _tarinfo(name: str, size: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = mode
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
