"""The dataset-wide outputs of prepare: split memberships per kept video, and ``videos-prepared.jsonl`` and
``clips.jsonl`` rebuilt from the per-video results in ``prepared/<id>.json``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipelines.contract import DatasetLayout
from pipelines.io import read_jsonl, write_jsonl
from pipelines.spec import DatasetSpec, Protocol


def part_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Videos per (train, val, test) for ``n`` videos: rounded shares (test takes the rest), then every part with a
    share gets at least one video when there are enough videos for that, taken from the largest part (a 4-video
    80/10/10 split is 2/1/1, not 3/0/1 with an empty val list that ccs-train refuses)."""
    n_train = int(round(fractions[0] * n))
    n_val = min(n - n_train, int(round(fractions[1] * n)))
    sizes = [n_train, n_val, n - n_train - n_val]
    wanted = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(wanted):
        for i in wanted:
            if sizes[i] == 0:
                largest = max(range(3), key=lambda j: sizes[j])
                sizes[largest] -= 1
                sizes[i] = 1
    return sizes[0], sizes[1], sizes[2]


def _seeded_order(video_ids: list[str], seed: int) -> list[str]:
    """The sorted ids in a seeded random order (independent of the order they were given in)."""
    ids = sorted(set(video_ids))
    return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]


def split_by_video(video_ids: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign whole videos to train/val/test: sort the ids, then a seeded permutation (order-independent)."""
    order = _seeded_order(video_ids, seed)
    n_train, n_val, _ = part_sizes(len(order), fractions)
    return {vid: "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            for rank, vid in enumerate(order)}


def carve_val(train_ids: list[str], fraction: float, seed: int) -> set[str]:
    """The train videos moved to val (``val_from = "train"``): a seeded ``fraction`` of them, at least one when
    there are two or more (so both lists stay non-empty)."""
    order = _seeded_order(train_ids, seed)
    n_val = int(round(fraction * len(order)))
    if len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return set(order[:n_val])


def _with_val(proto: Protocol, split_index: int, parts_of: dict[str, list[str]]) -> dict[str, list[str]]:
    """A list-based protocol's parts per video with its validation list added (``val_from``): ``test`` puts the test
    videos in val too (the paper's YouTube-360 protocol), ``train`` moves a seeded by-video share of train to val."""
    if proto.val_from == "test":
        return {vid: sorted({*parts, "val"}) if "test" in parts else parts for vid, parts in parts_of.items()}
    if proto.val_from == "train":
        moved = carve_val([vid for vid, parts in parts_of.items() if parts == ["train"]], proto.val_fraction,
                          proto.seed + split_index)
        return {vid: ["val"] if vid in moved else parts for vid, parts in parts_of.items()}
    return parts_of


def compute_splits(spec: DatasetSpec, table: dict[str, dict[str, Any]], kept: list[str]) -> dict[str, dict[str, list[str]]]:
    """Split memberships per kept video: ``{video_id: {"<protocol>/<split>": [parts]}}``.

    ``random-by-video`` protocols split the kept videos (sorted ids, seeded permutation: the result does not
    depend on processing order); list-based and FAIR-Play HDF5 protocols come from the video table, with a
    validation list made by ``val_from`` where the upstream has none (also from the kept videos only).
    """
    out: dict[str, dict[str, list[str]]] = {vid: {} for vid in kept}
    for proto in spec.protocols:
        for i, split in enumerate(proto.splits):
            name = f"{proto.name}/{split}"
            if proto.kind == "random-by-video":
                assert proto.fractions is not None
                parts_of = {vid: [part] for vid, part in split_by_video(kept, proto.fractions, proto.seed + i).items()}
            else:
                parts_of = {vid: sorted(table[vid]["splits"][name]) for vid in kept
                            if name in (table.get(vid, {}).get("splits") or {})}
                parts_of = _with_val(proto, i, parts_of)
            for vid, parts in parts_of.items():
                out[vid][name] = parts
    return {vid: dict(sorted(s.items())) for vid, s in out.items()}


def write_manifests(spec: DatasetSpec, layout: DatasetLayout, video_ids: list[str]) -> None:
    """Rebuild ``videos-prepared.jsonl`` and ``clips.jsonl`` from the stored per-video results."""
    table = {row["video_id"]: row for row in read_jsonl(layout.video_table)}
    results = []
    for vid in sorted(set(video_ids)):
        path = layout.prepared_dir / f"{vid}.json"
        if path.exists():
            results.append(json.loads(path.read_text(encoding="utf-8")))
    kept = [r["video_id"] for r in results
            if r["status"] == "done" and any(c["dropped"] is None for c in r["clips"])]
    splits = compute_splits(spec, table, kept)
    videos, clips = [], []
    for r in results:
        vsplits = splits.get(r["video_id"], {})
        videos.append(_video_line(r, vsplits))
        for c in r["clips"]:
            clips.append({**c, "splits": vsplits if c["dropped"] is None else {}})
    clips.sort(key=lambda c: c["key"])
    write_jsonl(layout.prepared_videos, videos)
    write_jsonl(layout.clips_manifest, clips)


def _video_line(r: dict[str, Any], vsplits: dict[str, list[str]]) -> dict[str, Any]:
    """A video's line in ``videos-prepared.jsonl``."""
    return {
        "video_id": r["video_id"],
        "status": r["status"],
        "reason": r["reason"],
        "detail": r["detail"],
        "duration_s": r["duration_s"],
        "lr_diff": r["lr_diff"],
        "lr_diff_sum": r["lr_diff_sum"],
        "projection": r["projection"],
        "decoder": r["decoder"],
        "hrir": r["hrir"],
        "clips": sum(c["dropped"] is None for c in r["clips"]),
        "clips_dropped": sum(c["dropped"] is not None for c in r["clips"]),
        "splits": vsplits,
        "source": r["source"],
        "settings": r["settings"],
    }
