"""Dataset specs: the schema of ``manifests/<dataset>.toml`` and the synthetic world's ``specs/<dataset>.toml``.

A spec names every upstream file a dataset is built from (pinned URL + sha256), where its media come from, its
split protocols and its cleaning thresholds. The loader validates every field and names the bad one.

Schema (all keys not marked optional are required)::

    name = "music-stereo"              # a registered recipe (pipelines.recipes.DATASETS)
    description = "..."                # optional
    source = "youtube"                 # youtube | archive
    media_url = "https://www.youtube.com/watch?v={id}"   # youtube only; must contain {id}
    audio = "stereo"                   # stereo | ambix   (what a video's audio track must be)
    id_format = "youtube"              # youtube (11 chars of [A-Za-z0-9_-]) | clip6 (6 digits)
    min_lr_diff = 0.001                # optional; non-binaural filter threshold (mean |L-R|), 0 disables

    [[lists]]                          # upstream list files, downloaded and verified at fetch time
    path = "meta/subsets/YT-Music.train.1.lst"   # where it is stored under <root>/<dataset>/lists/
    url = "https://..."
    sha256 = "<64 hex>"
    format = "id-lines"                # music-json | id-lines | clip-lines | video-formats | audio-formats
    role = "split"                     # ids | split | meta
    protocol = "official"              # role = split only
    split = "1"                        # role = split only
    part = "train"                     # role = split only: train | val | test

    [[archives]]                       # source = archive only
    name = "videos.tar.gz"
    url = "http://..."
    sha256 = "<64 hex>"                # optional: upstream publishes none; the fetched file's hash is recorded
    contents = "videos"                # videos | audios | splits

    [[protocols]]
    name = "official"
    kind = "lists"                     # lists (split files above) | random-by-video | fairplay-h5
    splits = ["1"]
    val_from = "train"                 # optional, kind = lists without a val list: "train" carves a seeded by-video
                                       # val list from train (val_fraction of its videos); "test" uses the test list
    val_fraction = 0.1                 # val_from = "train"
    fractions = [0.8, 0.1, 0.1]        # kind = random-by-video
    seed = 0                           # kind = random-by-video
    pattern = "splits/split{split}/{part}.h5"   # kind = fairplay-h5: member of the splits archive

Checked at load, each error naming the file and the field: every key is one of the schema's (a misspelt key is an
error that names the closest known one), numbers are finite and in range, names that become folder names
(protocols, splits) are single safe path components like ids, and paths are relative, without ``..``, NUL or
control characters, and short enough for any file system.
"""

from __future__ import annotations

import difflib
import math
import re
import string
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from pipelines.contract import SPLIT_PARTS, check_name
from pipelines.errors import InputError
from pipelines.manifests import MANIFEST_DIR
from pipelines.recipes import DATASETS, UnknownDataset, recipe_for

SOURCES = ("youtube", "archive")
AUDIO_KINDS = ("stereo", "ambix")
ID_FORMATS = ("youtube", "clip6")
LIST_FORMATS = ("music-json", "id-lines", "clip-lines", "video-formats", "audio-formats")
LIST_ROLES = ("ids", "split", "meta")
PARTS = SPLIT_PARTS
ARCHIVE_CONTENTS = ("videos", "audios", "splits")
PROTOCOL_KINDS = ("lists", "random-by-video", "fairplay-h5")
VAL_SOURCES = ("train", "test")  # val_from: a seeded by-video share of train, or the test list itself (the paper's)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PATH_COMPONENT_BYTES = 255  # the limit of ext4, xfs, btrfs, APFS and NTFS
MAX_PATH_CHARS = 1024
MAX_SEED = 2**63 - 1
MAX_LR_DIFF = 2.0  # mean |L - R| of a waveform in [-1, 1] is at most 2


class SpecError(InputError, ValueError):
    """A spec file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class ListFile:
    path: str
    url: str
    sha256: str
    format: str
    role: str
    protocol: str | None = None
    split: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    contents: str
    sha256: str | None = None


@dataclass(frozen=True)
class Protocol:
    name: str
    kind: str
    splits: tuple[str, ...]
    val_from: str | None = None  # VAL_SOURCES: where the validation list of a protocol without one comes from
    fractions: tuple[float, float, float] | None = None
    seed: int = 0
    pattern: str | None = None
    val_fraction: float = 0.1  # val_from = "train": the share of the train videos moved to val


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: str
    audio: str
    id_format: str
    lists: tuple[ListFile, ...]
    protocols: tuple[Protocol, ...]
    archives: tuple[Archive, ...] = ()
    media_url: str | None = None
    min_lr_diff: float = 0.0
    description: str = ""
    path: Path | None = field(default=None, compare=False)

    def protocol(self, name: str) -> Protocol:
        for p in self.protocols:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.protocols)
        raise KeyError(f"dataset {self.name} has no protocol {name!r} (known: {known})")

    def media_url_for(self, video_id: str) -> str:
        if self.media_url is None:
            raise SpecError(f"{self.name}: spec has no media_url")
        return self.media_url.replace("{id}", video_id)


def default_spec_path(dataset: str) -> Path:
    try:
        recipe_for(dataset)
    except UnknownDataset as exc:
        raise SpecError(str(exc)) from None
    return MANIFEST_DIR / f"{dataset}.toml"


def load_spec(path: str | Path | None = None, *, dataset: str | None = None) -> DatasetSpec:
    """Load and validate a spec; ``path=None`` takes ``manifests/<dataset>.toml``.

    Raises :class:`SpecError` naming the file and the offending field.
    """
    if path is None:
        if dataset is None:
            raise SpecError("load_spec needs a path or a dataset name")
        path = default_spec_path(dataset)
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text, so not a TOML spec") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    spec = parse_spec(raw, source_name=str(path))
    if dataset is not None and spec.name != dataset:
        raise SpecError(f"{path}: field 'name' is {spec.name!r} but dataset {dataset!r} was asked for")
    return DatasetSpec(**{**spec.__dict__, "path": path})


def _schema_keys(cls: type, *not_keys: str) -> tuple[str, ...]:
    """The TOML keys of a spec table: the fields of the dataclass it becomes (one place for the schema)."""
    return tuple(f.name for f in fields(cls) if f.name not in not_keys)


def parse_spec(raw: dict[str, Any], *, source_name: str = "<spec>") -> DatasetSpec:
    r = _Reader(raw, source_name)
    r.only(_schema_keys(DatasetSpec, "path"))
    name = r.choice("name", DATASETS)
    source = r.choice("source", SOURCES)
    audio = r.choice("audio", AUDIO_KINDS)
    id_format = r.choice("id_format", ID_FORMATS)
    media_url = r.opt_str("media_url")
    if source == "youtube":
        _check_media_url(r, media_url)
    min_lr_diff = r.opt_float("min_lr_diff", 0.0)
    if not 0 <= min_lr_diff <= MAX_LR_DIFF:
        raise r.error("min_lr_diff", f"must be between 0 (filter off) and {MAX_LR_DIFF:g}, got {min_lr_diff!r}")
    lists = _parse_lists(r)
    archives = _parse_archives(r)
    if source == "archive" and not archives:
        raise r.error("archives", "is required when source = 'archive'")
    protocols = _parse_protocols(r)
    names = [p.name for p in protocols]
    for lf in lists:
        if lf.role == "split" and lf.protocol not in names:
            raise r.error("lists", f"{lf.path}: protocol {lf.protocol!r} is not declared in [[protocols]]")
    return DatasetSpec(
        name=name,
        source=source,
        audio=audio,
        id_format=id_format,
        lists=tuple(lists),
        protocols=tuple(protocols),
        archives=tuple(archives),
        media_url=media_url,
        min_lr_diff=min_lr_diff,
        description=r.opt_str("description") or "",
    )


def _check_media_url(r: _Reader, media_url: str | None) -> None:
    if media_url is None:
        raise r.error("media_url", "is required when source = 'youtube'")
    if "{id}" not in media_url:
        raise r.error("media_url", "must contain the placeholder {id}")
    _check_url(r, "media_url", media_url.replace("{id}", "x"))


def _parse_lists(r: _Reader) -> list[ListFile]:
    lists = []
    for i, item in enumerate(r.table_list("lists")):
        lr = r.sub(f"lists[{i}]", item)
        lr.only(_schema_keys(ListFile))
        role = lr.choice("role", LIST_ROLES)
        lists.append(ListFile(
            path=_check_rel_path(lr, "path", lr.str("path")),
            url=_check_url(lr, "url", lr.str("url")),
            sha256=_check_sha(lr, "sha256", lr.str("sha256")),
            format=lr.choice("format", LIST_FORMATS),
            role=role,
            protocol=lr.name("protocol") if role == "split" else lr.opt_name("protocol"),
            split=lr.name("split") if role == "split" else lr.opt_name("split"),
            part=lr.choice("part", PARTS) if role == "split" else None,
        ))
    if not lists:
        raise r.error("lists", "must name at least one upstream list file")
    paths = [lf.path for lf in lists]
    if len(set(paths)) != len(paths):
        raise r.error("lists", "two entries share one path")
    return lists


def _parse_archives(r: _Reader) -> list[Archive]:
    archives = []
    for i, item in enumerate(r.table_list("archives", required=False)):
        ar = r.sub(f"archives[{i}]", item)
        ar.only(_schema_keys(Archive))
        sha = ar.opt_str("sha256")
        archives.append(Archive(
            name=_check_rel_path(ar, "name", ar.str("name")),
            url=_check_url(ar, "url", ar.str("url")),
            contents=ar.choice("contents", ARCHIVE_CONTENTS),
            sha256=_check_sha(ar, "sha256", sha) if sha is not None else None,
        ))
    return archives


def _parse_protocols(r: _Reader) -> list[Protocol]:
    protocols = [_parse_protocol(r.sub(f"protocols[{i}]", item)) for i, item in enumerate(r.table_list("protocols"))]
    names = [p.name for p in protocols]
    if len(set(names)) != len(names):
        raise r.error("protocols", "two protocols share one name")
    return protocols


def with_val_from(spec: DatasetSpec, val_from: str | None) -> DatasetSpec:
    """``spec`` with every protocol that makes its own val list (``val_from`` set) taking it from ``val_from``
    instead (``ccs-data prepare --val-from``); None leaves the spec as it is."""
    if val_from is None:
        return spec
    if val_from not in VAL_SOURCES:
        raise SpecError(f"val_from must be one of {', '.join(VAL_SOURCES)}, got {val_from!r}")
    protocols = tuple(replace(p, val_from=val_from) if p.val_from is not None else p for p in spec.protocols)
    return replace(spec, protocols=protocols)


def _parse_protocol(pr: _Reader) -> Protocol:
    pr.only(_schema_keys(Protocol))
    kind = pr.choice("kind", PROTOCOL_KINDS)
    splits = tuple(pr.str_list("splits"))
    if not splits:
        raise pr.error("splits", "must not be empty")
    for i, split in enumerate(splits):
        pr.check_name(f"splits[{i}]", split)
    if len(set(splits)) != len(splits):
        raise pr.error("splits", "names a split twice")
    fractions = None
    pattern = None
    if kind == "random-by-video":
        fr = pr.float_list("fractions")
        if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise pr.error("fractions", "must be three non-negative numbers summing to 1")
        fractions = (fr[0], fr[1], fr[2])
    if kind == "fairplay-h5":
        pattern = _check_pattern(pr, pr.str("pattern"), splits)
    val_from = pr.opt_str("val_from")
    if val_from is not None and val_from not in VAL_SOURCES:
        raise pr.error("val_from", f"must be one of {', '.join(VAL_SOURCES)}")
    val_fraction = pr.opt_float("val_fraction", 0.1)
    if not 0 < val_fraction < 1:
        raise pr.error("val_fraction", "must be between 0 and 1")
    seed = pr.opt_int("seed", 0)
    if not 0 <= seed <= MAX_SEED:
        raise pr.error("seed", f"must be between 0 and 2**63 - 1, got {seed}")
    return Protocol(
        name=pr.name("name"),
        kind=kind,
        splits=splits,
        val_from=val_from,
        fractions=fractions,
        seed=seed,
        pattern=pattern,
        val_fraction=val_fraction,
    )


class _Reader:
    """Typed access to one TOML table that names ``file: field`` in every error."""

    def __init__(self, table: dict[str, Any], source_name: str, prefix: str = ""):
        if not isinstance(table, dict):
            raise SpecError(f"{source_name}: {prefix or 'top level'} must be a table")
        self.table = table
        self.source_name = source_name
        self.prefix = prefix

    def error(self, key: str, why: str) -> SpecError:
        return SpecError(f"{self.source_name}: field '{self.prefix}{key}' {why}")

    def only(self, known: tuple[str, ...]) -> None:
        """Refuse a key the schema does not have (a misspelt key would otherwise be ignored), naming the closest."""
        for key in self.table:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f"; did you mean '{self.prefix}{close[0]}'?" if close else f" (known: {', '.join(known)})"
                raise self.error(str(key), f"is not a key of the spec schema{hint}")

    def check_name(self, key: str, value: str) -> str:
        try:
            return check_name(value, "name")
        except ValueError:
            raise self.error(key, f"must be up to 64 letters, digits, '-' or '_' (it becomes a folder name), "
                                  f"got {value!r}") from None

    def name(self, key: str) -> str:
        return self.check_name(key, self.str(key))

    def opt_name(self, key: str) -> str | None:
        value = self.opt_str(key)
        return None if value is None else self.check_name(key, value)

    def sub(self, name: str, table: Any) -> _Reader:
        if not isinstance(table, dict):
            raise SpecError(f"{self.source_name}: field '{self.prefix}{name}' must be a table")
        return _Reader(table, self.source_name, f"{self.prefix}{name}.")

    def _get(self, key: str, types: tuple[type, ...], what: str, required: bool = True) -> Any:
        if key not in self.table:
            if required:
                raise self.error(key, "is missing")
            return None
        value = self.table[key]
        if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
            raise self.error(key, f"must be {what}, got {value!r}")
        return value

    def str(self, key: str) -> str:
        value = self._get(key, (str,), "a string")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def opt_str(self, key: str) -> str | None:
        return self._get(key, (str,), "a string", required=False)

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self._get(key, (str,), "a string")
        if value not in options:
            raise self.error(key, f"must be one of {', '.join(options)}; got {value!r}")
        return value

    def opt_float(self, key: str, default: float) -> float:
        value = self._get(key, (int, float), "a number", required=False)
        if value is not None and not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value!r}")
        return default if value is None else float(value)

    def opt_int(self, key: str, default: int) -> int:
        value = self._get(key, (int,), "an integer", required=False)
        return default if value is None else value

    def str_list(self, key: str) -> list[str]:
        value = self._get(key, (list,), "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be a list of strings")
        return value

    def float_list(self, key: str) -> list[float]:
        value = self._get(key, (list,), "a list of numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise self.error(key, "must be a list of numbers")
        if not all(math.isfinite(v) for v in value):
            raise self.error(key, f"must be a list of finite numbers, got {value!r}")
        return [float(v) for v in value]

    def table_list(self, key: str, required: bool = True) -> list[Any]:
        value = self._get(key, (list,), "an array of tables", required=required)
        return value or []


def _check_sha(r: _Reader, key: str, value: str) -> str:
    if not _SHA256_RE.match(value):
        raise r.error(key, f"must be 64 lowercase hex digits, got {value!r}")
    return value


def _check_url(r: _Reader, key: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise r.error(key, f"must be an http(s) URL, got {value!r}")
    return value


def _check_rel_path(r: _Reader, key: str, value: str) -> str:
    """Paths from a spec become file names under the dataset root: relative, no '..', no NUL or control
    characters, each component at most 255 bytes and the whole at most 1024 characters."""
    p = PurePosixPath(value)
    shown = value if len(value) <= 80 else value[:77] + "..."
    if p.is_absolute() or "\\" in value or any(part in ("..", ".", "") for part in value.split("/")):
        raise r.error(key, f"must be a relative path without '..', got {shown!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise r.error(key, f"must not contain NUL or control characters, got {shown!r}")
    if len(value) > MAX_PATH_CHARS or any(len(part.encode("utf-8")) > MAX_PATH_COMPONENT_BYTES
                                          for part in value.split("/")):
        raise r.error(key, f"is too long for a file name ({MAX_PATH_COMPONENT_BYTES} bytes per folder or file "
                           f"name, {MAX_PATH_CHARS} characters in all), got {shown!r}")
    return value


def _check_pattern(r: _Reader, pattern: str, splits: tuple[str, ...]) -> str:
    """A FAIR-Play list pattern: only the fields {split} and {part}, both present, every path it gives relative."""
    try:
        fields_used = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(pattern)
                       if name is not None]
    except ValueError as exc:
        raise r.error("pattern", f"is not a valid pattern ({exc}), got {pattern!r}") from None
    names = {name for name, _, _ in fields_used}
    if names != {"split", "part"} or any(spec or conv for _, spec, conv in fields_used):
        raise r.error("pattern", f"must contain {{split}} and {{part}} and no other field, got {pattern!r}")
    for split in splits:
        for part in PARTS:
            _check_rel_path(r, "pattern", pattern.format(split=split, part=part))
    return pattern
