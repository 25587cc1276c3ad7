"""``ccs-data verify``: read every shard back with plain ``webdataset`` and check it against SPEC section 6.

Checks (``pipelines.shard_checks``): every tar member is named ``<key>.<ext>`` with an extension of the format (no
path, no foreign member); each sample has the audio (16 kHz, 16-bit FLAC, 160,000 x 2, decoded), 100 frames
(480x240 RGB JPEG, decoded unless ``decode_frames=False``) and a JSON member whose every field has its type and
agrees with the contract and the sample's key; every shard has an index file that
matches its tar headers, and every member's bytes match the index's sha256; no key appears twice; the shard keys
are exactly the kept clips of ``clips.jsonl``; every key of every split list exists exactly once in the shards
and the split lists agree with the manifest; the frames of 360 clips no longer show the cubemap layout
(:func:`cubemap_problems`, with full frame decoding). Problems are collected (never raised) so one run reports all
of them.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from pipelines.contract import META_MEMBER, DatasetLayout, frame_member, parse_sample_key
from pipelines.io import read_jsonl
from pipelines.projection import LABELS, cubemap_structure
from pipelines.shard import split_lists
from pipelines.shard_checks import check_index, check_jpeg, check_member_names, check_sample
from pipelines.shards import member_digest


@dataclass(frozen=True)
class Problem:
    where: str  # shard file, key or list file
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _digest_problems(key: str, members: dict[str, bytes], digests: dict[str, str]) -> list[str]:
    """Members of sample ``key`` whose bytes are not what the shard index recorded, or that it does not list."""
    errs = []
    for ext, data in members.items():
        expected = digests.get(f"{key}.{ext}")
        if expected is None:
            errs.append(f"{ext}: not in the shard index")
        elif member_digest(data) != expected:
            errs.append(f"{ext}: bytes differ from the shard index (sha256)")
    return errs


CUBEMAP_CHECK_FRAMES = (0, 50, 99)  # frames of a 360 clip the cubemap check looks at


def cubemap_problems(members: dict[str, bytes]) -> list[str]:
    """A 360 clip whose prepared (equirectangular) frames still show the EAC layout: the projection decision
    let unconverted cubemap frames through (SPEC 3.5); the detector of ``pipelines.projection`` judges them."""
    try:
        meta = json.loads(members.get(META_MEMBER, b"{}"))
    except (ValueError, UnicodeDecodeError):
        return []  # check_sample reports the broken JSON
    if not isinstance(meta, dict) or meta.get("projection") not in LABELS:
        return []
    frames = []
    for k in CUBEMAP_CHECK_FRAMES:
        data = members.get(frame_member(k))
        if data is None or check_jpeg(data, decode=False) is not None:
            continue  # check_sample reports missing and malformed frames
        try:
            with Image.open(io.BytesIO(data)) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except (OSError, ValueError):
            continue
    found = cubemap_structure(frames)
    if found is None:
        return []
    return [f"frames still show a cubemap (EAC) layout (evidence {found.scores['evidence']:.2f}, confidence "
            f"{found.confidence:.4f}) although prepared as {meta['projection']}: unconverted EAC frames"]


def valid_key(key: str) -> bool:
    try:
        parse_sample_key(key)
    except ValueError:
        return False
    return True


def _check_shard(shard: Path, dataset: str, seen: Counter[str], decode_frames: bool) -> list[Problem]:
    """Problems of one shard, read with plain webdataset; counts its keys into ``seen``."""
    import webdataset as wds  # heavy import (it loads torch); only verify needs it

    digests, index_errors = check_index(shard)
    problems = [Problem(shard.name, err) for err in index_errors + check_member_names(shard)]
    n = 0
    try:
        for sample in wds.WebDataset(str(shard), shardshuffle=False, empty_check=False):
            key = sample["__key__"]
            seen[key] += 1
            n += 1
            members = {k: v for k, v in sample.items() if not k.startswith("__")}
            errs = check_sample(members, dataset, key=key if valid_key(key) else None, decode_frames=decode_frames)
            if decode_frames:
                errs += cubemap_problems(members)
            if digests:
                errs += _digest_problems(key, members, digests)
            problems += [Problem(f"{shard.name}:{key}", err) for err in errs]
    except Exception as exc:  # noqa: BLE001 - any read failure of a shard is a finding, not a crash
        problems.append(Problem(shard.name, f"cannot be read to the end after {n} samples "
                                            f"({type(exc).__name__}: {exc})"))
    if n == 0:
        problems.append(Problem(shard.name, "empty shard"))
    return problems


def verify_dataset(root: str | Path, dataset: str, *, progress: bool = False,
                   decode_frames: bool = True) -> list[Problem]:
    """Every problem found in the shards and split lists of ``dataset`` under ``root`` (empty list: all good)."""
    layout = DatasetLayout(Path(root), dataset)
    shards = layout.shards()
    if not shards:
        return [Problem(str(layout.shards_dir), "no shards")]
    problems: list[Problem] = []
    seen: Counter[str] = Counter()
    for shard in tqdm(shards, desc=f"verify {dataset}", unit="shard", disable=not progress):
        problems += _check_shard(shard, dataset, seen, decode_frames)
    for key, count in sorted(seen.items()):
        if count > 1:
            problems.append(Problem(key, f"appears {count} times in the shards"))
    clips = [c for c in read_jsonl(layout.clips_manifest) if c.get("dropped") is None]
    return problems + _check_manifest(layout, clips, seen) + _check_split_lists(layout, clips, seen)


def _check_manifest(layout: DatasetLayout, clips: list[dict[str, Any]], seen: Counter[str]) -> list[Problem]:
    """The shard keys against the kept clips of ``clips.jsonl``."""
    problems = []
    expected = {c["key"] for c in clips}
    if not layout.clips_manifest.exists():
        problems.append(Problem(str(layout.clips_manifest), "missing"))
    for key in sorted(expected - set(seen)):
        problems.append(Problem(key, "kept in clips.jsonl but not in any shard"))
    for key in sorted(set(seen) - expected):
        problems.append(Problem(key, "in a shard but not a kept clip of clips.jsonl"))
    return problems


def _check_split_lists(layout: DatasetLayout, clips: list[dict[str, Any]], seen: Counter[str]) -> list[Problem]:
    """Every listed key exactly once in the shards, the lists equal to the manifest's memberships."""
    problems = []
    wanted = split_lists(clips)
    on_disk = {}
    if layout.splits_dir.exists():
        for p in sorted(layout.splits_dir.glob("*/*/*.txt")):
            protocol, split, part = p.parent.parent.name, p.parent.name, p.stem
            on_disk[(protocol, split, part)] = p
    for ident in wanted:
        if ident not in on_disk:
            problems.append(Problem("/".join(ident) + ".txt", "split list missing"))
    for ident, p in on_disk.items():
        keys = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        where = str(p.relative_to(layout.base))
        dup = [k for k, c in Counter(keys).items() if c > 1]
        if dup:
            problems.append(Problem(where, f"keys listed twice: {dup[:5]}"))
        for k in keys:
            if seen.get(k, 0) != 1:
                problems.append(Problem(where, f"key {k} is in {seen.get(k, 0)} shard samples, expected exactly 1"))
        if ident in wanted and sorted(keys) != wanted[ident]:
            problems.append(Problem(where, f"{len(keys)} keys, clips.jsonl says {len(wanted[ident])}"))
        elif ident not in wanted:
            problems.append(Problem(where, "split list not backed by clips.jsonl"))
    return problems
