"""Upstream list files -> the per-dataset video table (``videos.jsonl``, docs/ARCHITECTURE.md).

Formats (``format`` of a spec's ``[[lists]]`` entry; see ``/work/shared/upstream/SOURCES.md`` for the real files):

``music-json``    ``{"version": ..., "videos": {"<instrument or pair>": ["<youtube id>", ...]}}`` (MUSIC)
``id-lines``      one YouTube id per line (spatialaudiogen ``meta/subsets/*.lst``; last line may lack a newline)
``clip-lines``    one ``NNNNNN.mp3`` per line (PseudoBinaural FAIR-Play 5-split lists): id = name without extension
``video-formats`` ``<id> <itag> <MONO|STEREO> <EAC|ER>`` (spatialaudiogen ``scraping/video_formats.txt``)
``audio-formats`` ``<id> <itag> <codec> <WXYZ|WXY>`` (spatialaudiogen ``scraping/audio_formats.txt``)

plus FAIR-Play's 10-split HDF5 lists (``splits/splitN/{train,val,test}.h5``, dataset ``audio`` = wav paths; the clip
id is the basename without extension), read from the extracted splits archive.

Parsers return raw id strings exactly as listed; :func:`build_video_table` validates them (``pipelines.ids``) and
sets the invalid ones apart, so a hostile entry never becomes a path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.ids import InvalidId, validate_id
from pipelines.spec import DatasetSpec, ListFile

PROJECTIONS = ("EAC", "ER")
STEREO_LAYOUTS = ("MONO", "STEREO")
AUDIO_LAYOUTS = ("WXYZ", "WXY")
# an id shown in an error or a ledger record is cut to this length (a hostile list may hold megabytes per line)
MAX_SHOWN_ID = 120


class ListFormatError(ValueError):
    """A list file does not follow its declared format; the message names the file and the line."""


@dataclass(frozen=True)
class VideoFormat:
    itag: int
    stereo_layout: str  # MONO | STEREO (top-bottom stereoscopic)
    projection: str  # EAC | ER (as labelled upstream; sometimes wrong, see SPEC 3)


@dataclass(frozen=True)
class AudioFormat:
    itag: int
    codec: str
    layout: str  # WXYZ | WXY


@dataclass(frozen=True)
class InvalidEntry:
    """A listed id that failed validation: where it was seen and why (``raw`` is cut to MAX_SHOWN_ID chars)."""

    raw: str
    source: str
    reason: str


@dataclass
class VideoTable:
    rows: list[dict[str, Any]]
    invalid: list[InvalidEntry] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r["video_id"] for r in self.rows]


def shown_id(raw: str) -> str:
    """A raw listed id as it may appear in messages and ledgers: bounded length, never used as a path."""
    return raw if len(raw) <= MAX_SHOWN_ID else raw[:MAX_SHOWN_ID] + "..."


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):  # splitlines handles CRLF and a missing last \n
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def parse_music_json(text: str, source: str = "<music-json>") -> list[tuple[str, str]]:
    """``(id, category)`` pairs in file order; category is the instrument (solo) or pair (duet) name."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListFormatError(f"{source}: not valid JSON ({exc})") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise ListFormatError(f"{source}: expected an object with a 'videos' object of category -> id list")
    out = []
    for category, ids in videos.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ListFormatError(f"{source}: videos[{category!r}] must be a list of id strings")
        out.extend((i.strip(), category) for i in ids)
    return out


def parse_id_lines(text: str, source: str = "<id-lines>") -> list[str]:
    """One id per non-empty line; a line with more than one field is a format error."""
    out = []
    for number, line in _lines(text):
        if len(line.split()) != 1:
            raise ListFormatError(f"{source}:{number}: expected one id per line, got {shown_id(line)!r}")
        out.append(line)
    return out


_EXT_RE = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def parse_clip_lines(text: str, source: str = "<clip-lines>") -> list[str]:
    """FAIR-Play clip ids from lines like ``000123.mp3`` (the name without its extension).

    A line holding a path separator is returned whole, so that it fails id validation instead of being quietly
    reduced to its basename.
    """
    out = []
    for number, line in _lines(text):
        if len(line.split()) != 1:
            raise ListFormatError(f"{source}:{number}: expected one clip file name per line, got {shown_id(line)!r}")
        out.append(line if ("/" in line or "\\" in line) else _EXT_RE.sub("", line))
    return out


def _fields(text: str, source: str, n: int, what: str) -> Iterable[tuple[int, list[str]]]:
    for number, line in _lines(text):
        parts = line.split()
        if len(parts) != n:
            raise ListFormatError(f"{source}:{number}: expected {what}, got {shown_id(line)!r}")
        yield number, parts


def _itag(value: str, source: str, number: int) -> int:
    if not value.isdigit():
        raise ListFormatError(f"{source}:{number}: itag must be a number, got {value!r}")
    return int(value)


def parse_video_formats(text: str, source: str = "<video-formats>") -> dict[str, VideoFormat]:
    """``id -> VideoFormat``; the first line of an id wins (the real file lists each id once)."""
    out: dict[str, VideoFormat] = {}
    for number, (vid, itag, stereo, proj) in _fields(text, source, 4, "'<id> <itag> <MONO|STEREO> <EAC|ER>'"):
        if stereo not in STEREO_LAYOUTS or proj not in PROJECTIONS:
            raise ListFormatError(f"{source}:{number}: unknown layout/projection {stereo!r} {proj!r}")
        out.setdefault(vid, VideoFormat(_itag(itag, source, number), stereo, proj))
    return out


def parse_audio_formats(text: str, source: str = "<audio-formats>") -> dict[str, AudioFormat]:
    """``id -> AudioFormat``; the first line of an id wins."""
    out: dict[str, AudioFormat] = {}
    for number, (vid, itag, codec, layout) in _fields(text, source, 4, "'<id> <itag> <codec> <WXYZ|WXY>'"):
        if layout not in AUDIO_LAYOUTS:
            raise ListFormatError(f"{source}:{number}: unknown ambisonic layout {layout!r}")
        out.setdefault(vid, AudioFormat(_itag(itag, source, number), codec, layout))
    return out


def read_h5_list(path: str | Path) -> list[str]:
    """Clip ids of a FAIR-Play 10-split HDF5 list (dataset ``audio``: wav paths; id = basename sans extension)."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as fh:
            if "audio" not in fh:
                raise ListFormatError(f"{path}: no dataset 'audio' (keys: {', '.join(fh.keys())})")
            values = fh["audio"][()]
    except OSError as exc:
        raise ListFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    out = []
    for v in values.reshape(-1):
        s = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        out.append(_EXT_RE.sub("", PurePosixPath(s.strip()).name))
    return out


def subset_name(list_path: str) -> str:
    """YT subset of a spatialaudiogen list path: ``meta/subsets/YT-Music.train.1.lst`` -> ``YT-Music``."""
    return PurePosixPath(list_path).name.split(".", 1)[0]


def parse_list_text(lf: ListFile, text: str) -> Any:
    """Dispatch on ``lf.format``; id lists give ``[(id, category or None)]``, format tables give dicts."""
    if lf.format == "music-json":
        return parse_music_json(text, lf.path)
    if lf.format == "id-lines":
        return [(i, None) for i in parse_id_lines(text, lf.path)]
    if lf.format == "clip-lines":
        return [(i, None) for i in parse_clip_lines(text, lf.path)]
    if lf.format == "video-formats":
        return parse_video_formats(text, lf.path)
    if lf.format == "audio-formats":
        return parse_audio_formats(text, lf.path)
    raise ListFormatError(f"{lf.path}: unknown list format {lf.format!r}")


def build_video_table(
    spec: DatasetSpec,
    lists_dir: str | Path,
    *,
    h5_lists: Mapping[tuple[str, str, str], list[str]] | None = None,
) -> VideoTable:
    """Parse the spec's (already verified) list files under ``lists_dir`` into video-table rows.

    ``h5_lists`` maps ``(protocol, split, part)`` to raw clip ids of the FAIR-Play HDF5 lists. Ids come from
    ``ids`` and ``split`` lists (and ``h5_lists``); ``meta`` lists only annotate. Rows are sorted by id; ids
    that fail validation go to ``VideoTable.invalid`` (once per raw string, first source).
    """
    lists_dir = Path(lists_dir)
    rows: dict[str, dict[str, Any]] = {}
    invalid: dict[str, InvalidEntry] = {}
    video_formats: dict[str, VideoFormat] = {}
    audio_formats: dict[str, AudioFormat] = {}
    named_by: dict[str, list[str]] = {}
    val_from = {p.name: p.val_from for p in spec.protocols}

    def accept(raw: str, source: str) -> str | None:
        try:
            return validate_id(raw, spec.id_format)
        except InvalidId as exc:
            key = shown_id(raw)
            invalid.setdefault(key, InvalidEntry(key, source, str(exc)))
            return None

    def row(video_id: str) -> dict[str, Any]:
        return rows.setdefault(video_id, _empty_row(spec, video_id))

    def add_split(r: dict[str, Any], protocol: str, split: str, part: str) -> None:
        parts = r["splits"].setdefault(f"{protocol}/{split}", [])
        for p in (part, "val") if val_from.get(protocol) == part else (part,):
            if p not in parts:
                parts.append(p)
        parts.sort()  # alphabetical, as in the contract's example (["test", "val"])

    for lf in spec.lists:
        path = lists_dir / lf.path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ListFormatError(f"{path}: list file missing (fetch downloads it first)") from None
        except UnicodeDecodeError as exc:
            raise ListFormatError(f"{path}: not UTF-8 text ({exc})") from None
        parsed = parse_list_text(lf, text)
        if lf.format == "video-formats":
            for k, v in parsed.items():
                video_formats.setdefault(k, v)
            continue
        if lf.format == "audio-formats":
            for k, v in parsed.items():
                audio_formats.setdefault(k, v)
            continue
        if lf.role == "meta":
            continue
        for raw, category in parsed:
            video_id = accept(raw, lf.path)
            if video_id is None:
                continue
            r = row(video_id)
            if r["category"] is None:
                r["category"] = category if category is not None else _default_category(spec, lf)
            named = named_by.setdefault(video_id, [])
            if lf.path not in named:
                named.append(lf.path)
            if lf.role == "split":
                add_split(r, lf.protocol, lf.split, lf.part)

    for (protocol, split, part), raw_ids in sorted((h5_lists or {}).items()):
        for raw in raw_ids:
            video_id = accept(raw, f"{protocol}/{split}/{part}.h5")
            if video_id is not None:
                add_split(row(video_id), protocol, split, part)

    for video_id, r in rows.items():
        r["lists"] = named_by.get(video_id, [])
        vf = video_formats.get(video_id)
        if vf is not None:
            r.update(upstream_projection=vf.projection, stereo_layout=vf.stereo_layout, video_itag=vf.itag)
        af = audio_formats.get(video_id)
        if af is not None:
            r.update(audio_itag=af.itag, audio_codec=af.codec, audio_layout=af.layout)
    return VideoTable([rows[k] for k in sorted(rows)], list(invalid.values()))


def _default_category(spec: DatasetSpec, lf: ListFile) -> str | None:
    # YT: the subset named by the list file; FAIR-Play: none (the contract keeps category null there)
    if spec.source == "youtube" and lf.format == "id-lines":
        return subset_name(lf.path)
    return None


def _empty_row(spec: DatasetSpec, video_id: str) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "dataset": spec.name,
        "category": None,
        "lists": [],
        "splits": {},
        "upstream_projection": None,
        "stereo_layout": None,
        "video_itag": None,
        "audio_itag": None,
        "audio_codec": None,
        "audio_layout": None,
    }
