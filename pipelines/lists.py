"""Upstream list files -> the per-dataset video table (``videos.jsonl``, docs/ARCHITECTURE.md).

Formats (``format`` of a spec's ``[[lists]]`` entry; see ``/work/shared/upstream/SOURCES.md`` for the real files):

``music-json``    ``{"version": ..., "videos": {"<instrument or pair>": ["<youtube id>", ...]}}`` (MUSIC)
``id-lines``      one YouTube id per line (spatialaudiogen ``meta/subsets/*.lst``; last line may lack a newline)
``clip-lines``    one ``NNNNNN.mp3`` per line (PseudoBinaural FAIR-Play 5-split lists): id = name without extension
``video-formats`` ``<id> <itag> <MONO|STEREO> <EAC|ER>`` (spatialaudiogen ``scraping/video_formats.txt``)
``audio-formats`` ``<id> <itag> <codec> <WXYZ|WXY>`` (spatialaudiogen ``scraping/audio_formats.txt``)

Split memberships that do not come from a spec list (FAIR-Play's 10-split HDF5 lists, read by its recipe from the
extracted splits archive) join the table as :class:`SplitList` entries.

Parsers return raw id strings exactly as listed; :func:`build_video_table` validates them (``pipelines.ids``) and
sets the invalid ones apart, so a hostile entry never becomes a path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pipelines.ids import InvalidId, validate_id

if TYPE_CHECKING:  # annotations only: pipelines.spec imports the recipe registry, whose recipes use this module
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


@dataclass(frozen=True)
class SplitList:
    """Raw ids of one ``(protocol, split, part)`` read from a file outside the spec's lists; ``source`` names it in
    the records of invalid ids."""

    protocol: str
    split: str
    part: str
    source: str
    raw_ids: list[str]


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
        out.append(line if ("/" in line or "\\" in line) else strip_extension(line))
    return out


def strip_extension(name: str) -> str:
    """``000123.mp3`` -> ``000123`` (a short alphanumeric extension only)."""
    return _EXT_RE.sub("", name)


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
    split_lists: Iterable[SplitList] = (),
    list_category: Callable[[ListFile], str | None] = lambda lf: None,
) -> VideoTable:
    """Parse the spec's (already verified) list files under ``lists_dir`` into video-table rows.

    Ids come from ``ids`` and ``split`` lists (and ``split_lists``, read by the recipe from elsewhere); ``meta``
    lists only annotate. ``list_category(lf)`` names the category of ids whose list gives none (the recipe's rule).
    Rows are sorted by id; ids that fail validation go to ``VideoTable.invalid`` (once per raw string, first source).
    """
    table = _TableBuilder(spec)
    for lf in spec.lists:
        table.add_list(lf, parse_list_text(lf, _read_list(Path(lists_dir) / lf.path)), list_category)
    for extra in sorted(split_lists, key=lambda s: (s.protocol, s.split, s.part)):
        for raw in extra.raw_ids:
            video_id = table.accept(raw, extra.source)
            if video_id is not None:
                table.add_split(table.row(video_id), extra.protocol, extra.split, extra.part)
    return table.finish()


def _read_list(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ListFormatError(f"{path}: list file missing (fetch downloads it first)") from None
    except UnicodeDecodeError as exc:
        raise ListFormatError(f"{path}: not UTF-8 text ({exc})") from None


class _TableBuilder:
    """The video table as it grows, list by list."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        self.rows: dict[str, dict[str, Any]] = {}
        self.invalid: dict[str, InvalidEntry] = {}
        self.video_formats: dict[str, VideoFormat] = {}
        self.audio_formats: dict[str, AudioFormat] = {}
        self.named_by: dict[str, list[str]] = {}

    def accept(self, raw: str, source: str) -> str | None:
        try:
            return validate_id(raw, self.spec.id_format)
        except InvalidId as exc:
            key = shown_id(raw)
            self.invalid.setdefault(key, InvalidEntry(key, source, str(exc)))
            return None

    def row(self, video_id: str) -> dict[str, Any]:
        return self.rows.setdefault(video_id, _empty_row(self.spec, video_id))

    def add_split(self, r: dict[str, Any], protocol: str, split: str, part: str) -> None:
        """The upstream lists' parts only; a protocol's ``val_from`` is applied to the kept videos at prepare
        (``pipelines.prepared.compute_splits``)."""
        parts = r["splits"].setdefault(f"{protocol}/{split}", [])
        if part not in parts:
            parts.append(part)
        parts.sort()  # alphabetical, as in the contract's example (["test", "val"])

    def add_list(self, lf: ListFile, parsed: Any, list_category: Callable[[ListFile], str | None]) -> None:
        if lf.format == "video-formats":
            for k, v in parsed.items():
                self.video_formats.setdefault(k, v)
            return
        if lf.format == "audio-formats":
            for k, v in parsed.items():
                self.audio_formats.setdefault(k, v)
            return
        if lf.role == "meta":
            return
        for raw, category in parsed:
            video_id = self.accept(raw, lf.path)
            if video_id is None:
                continue
            r = self.row(video_id)
            if r["category"] is None:
                r["category"] = category if category is not None else list_category(lf)
            named = self.named_by.setdefault(video_id, [])
            if lf.path not in named:
                named.append(lf.path)
            if lf.role == "split":
                self.add_split(r, lf.protocol, lf.split, lf.part)

    def finish(self) -> VideoTable:
        for video_id, r in self.rows.items():
            r["lists"] = self.named_by.get(video_id, [])
            vf = self.video_formats.get(video_id)
            if vf is not None:
                r.update(upstream_projection=vf.projection, stereo_layout=vf.stereo_layout, video_itag=vf.itag)
            af = self.audio_formats.get(video_id)
            if af is not None:
                r.update(audio_itag=af.itag, audio_codec=af.codec, audio_layout=af.layout)
        return VideoTable([self.rows[k] for k in sorted(self.rows)], list(self.invalid.values()))


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
