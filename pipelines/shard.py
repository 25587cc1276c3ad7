"""``ccs-data shard``: the prepared clips as WebDataset tar shards plus split key lists (SPEC section 6).

Shards hold the kept clips of ``clips.jsonl`` in key order, ``maxcount`` samples each; every member is copied
byte for byte from ``prepared/<id>.tar`` (where prepare wrote them with fixed encoders) under tar headers with
fixed metadata, so the same prepared data always gives byte-identical shards. Shards are written by
:func:`pipelines.shards.write_shard` (temporary name renamed when complete, then the shard's index file); no
empty shard is ever written; shards of an earlier run beyond the new count are removed with their index files.
A run holds ``ledger/shard.lock`` and first removes the temporary files a killed run left in ``shards/`` and
``splits/``. Protocol and split names become folder names only when they are safe path components
(``DatasetLayout.split_list``): a list can never be written outside the dataset's ``splits/``.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipelines.contract import DatasetLayout, check_name
from pipelines.errors import InputError
from pipelines.io import atomic_write_text, read_jsonl, remove_stale_temp_files, stage_lock
from pipelines.shards import remove_orphan_indexes, write_shard
from pipelines.spec import PARTS

DEFAULT_MAXCOUNT = 256  # ~1 GB per shard at ~3.5 MB per clip (100 JPEG frames + FLAC)


class ShardError(InputError):
    """Shards cannot be written (no clips manifest, a prepared file missing...)."""


@dataclass
class ShardSummary:
    dataset: str
    shards: list[str] = field(default_factory=list)
    samples: int = 0
    split_lists: dict[str, int] = field(default_factory=dict)  # "<protocol>/<split>/<part>" -> keys


def kept_clips(layout: DatasetLayout) -> list[dict[str, Any]]:
    """The clips of ``clips.jsonl`` that go into shards (not dropped), by video and clip index (key order)."""
    if not layout.clips_manifest.exists():
        raise ShardError(f"{layout.clips_manifest}: no clips manifest; run `ccs-data prepare {layout.dataset}` first")
    return sorted((c for c in read_jsonl(layout.clips_manifest) if c.get("dropped") is None),
                  key=lambda c: (c["video_id"], c["clip_index"]))


def split_lists(clips: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
    """``(protocol, split, part) -> sorted keys``; every part of every protocol/split seen gets a list. A
    membership that is not ``<protocol>/<split>`` of two safe names is refused, named whole (they become folders)."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for c in clips:
        for name, parts in c.get("splits", {}).items():
            protocol, _, split = name.partition("/")
            try:
                check_name(protocol, "protocol")
                check_name(split, "split")
            except ValueError as exc:
                raise ValueError(f"clip {c['key']}: split membership {name!r} is not <protocol>/<split> ({exc})") \
                    from None
            for part in PARTS:
                out.setdefault((protocol, split, part), [])
            for part in parts:
                out[(protocol, split, part)].append(c["key"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def _samples_of_video(layout: DatasetLayout, video_id: str) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """``(key, [(member name, bytes), ...])`` of each clip in ``prepared/<id>.tar``, in stored order, one clip in
    memory at a time (a long video's tar can hold hundreds of MB)."""
    src = layout.prepared_dir / f"{video_id}.tar"
    if not src.exists():
        raise ShardError(f"{src}: prepared clips of video {video_id} are missing; rerun prepare")
    key: str | None = None
    members: list[tuple[str, bytes]] = []
    with tarfile.open(src, "r") as tar:
        for info in tar:
            if not info.isfile():
                continue
            fh = tar.extractfile(info)
            assert fh is not None
            k = info.name.split(".", 1)[0]
            if k != key and members:
                yield key, members  # type: ignore[misc]
                members = []
            key = k
            members.append((info.name, fh.read()))
    if members:
        yield key, members  # type: ignore[misc]


def _kept_samples(layout: DatasetLayout, clips: list[dict[str, Any]]) -> Iterator[list[tuple[str, bytes]]]:
    """The members of every kept clip, in key order (clips of a video are consecutive keys)."""
    by_video: dict[str, list[str]] = defaultdict(list)
    for c in clips:
        by_video[c["video_id"]].append(c["key"])
    for video_id in sorted(by_video):
        wanted = by_video[video_id]
        stored = _samples_of_video(layout, video_id)
        for key in wanted:
            for k, members in stored:
                if k == key:
                    yield members
                    break
            else:
                raise ShardError(f"{key}: listed in clips.jsonl but not in prepared/{video_id}.tar")
        stored.close()


def shard_dataset(root: str | Path, dataset: str, *, maxcount: int = DEFAULT_MAXCOUNT,
                  progress: bool = False) -> ShardSummary:
    """Write ``shards/<dataset>-NNNNNN.tar`` and ``splits/<protocol>/<split>/{train,val,test}.txt``."""
    if maxcount < 1:
        raise ShardError("maxcount must be >= 1")
    layout = DatasetLayout(Path(root).resolve(), dataset)
    clips = kept_clips(layout)
    with stage_lock(layout.ledger_dir / "shard.lock", f"ccs-data shard of {layout.base}"):
        remove_stale_temp_files(layout.shards_dir)
        remove_stale_temp_files(layout.splits_dir, recursive=True)
        return _write(layout, clips, maxcount, progress)


def _write(layout: DatasetLayout, clips: list[dict[str, Any]], maxcount: int, progress: bool) -> ShardSummary:
    dataset = layout.dataset
    summary = ShardSummary(dataset=dataset)
    # every list's path first: a name that is no safe folder name fails before anything is written
    lists = {layout.split_list(*ident): (ident, keys) for ident, keys in split_lists(clips).items()}
    layout.shards_dir.mkdir(parents=True, exist_ok=True)

    bar = tqdm(total=len(clips), desc=f"shard {dataset}", unit="clip", disable=not progress)
    samples = _kept_samples(layout, clips)
    for index, start in enumerate(range(0, len(clips), maxcount)):
        path = layout.shard_path(index)
        with write_shard(path) as writer:
            for _ in clips[start:start + maxcount]:
                for name, data in next(samples):
                    writer.add(name, data)
                summary.samples += 1
                bar.update(1)
        summary.shards.append(str(path))
    bar.close()
    _remove_stale_shards(layout, len(summary.shards))

    for path, (ident, keys) in lists.items():
        atomic_write_text(path, "".join(k + "\n" for k in keys))
        summary.split_lists["/".join(ident)] = len(keys)
    return summary


def _remove_stale_shards(layout: DatasetLayout, count: int) -> None:
    """Shards of an earlier run with more shards (or leftovers of a killed run) would be read as data; their
    index files go with them."""
    for p in layout.shards():
        if layout.shard_index(p) >= count:
            p.unlink()
    remove_orphan_indexes(layout.shards_dir)
