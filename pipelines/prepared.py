"""The dataset-wide outputs of prepare: split memberships per kept video, and ``videos-prepared.jsonl`` and
``clips.jsonl`` rebuilt from the per-video results in ``prepared/<id>.json``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipelines.contract import DatasetLayout
from pipelines.io import read_jsonl, write_jsonl
from pipelines.spec import DatasetSpec


def split_by_video(video_ids: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign whole videos to train/val/test: sort the ids, then a seeded permutation (order-independent)."""
    ids = sorted(set(video_ids))
    n = len(ids)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = min(n - n_train, int(round(fractions[1] * n)))
    out = {}
    for rank, idx in enumerate(perm):
        out[ids[idx]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


def compute_splits(spec: DatasetSpec, table: dict[str, dict[str, Any]], kept: list[str]) -> dict[str, dict[str, list[str]]]:
    """Split memberships per kept video: ``{video_id: {"<protocol>/<split>": [parts]}}``.

    ``random-by-video`` protocols split the kept videos (sorted ids, seeded permutation: the result does not
    depend on processing order); list-based and FAIR-Play HDF5 protocols come from the video table.
    """
    out: dict[str, dict[str, list[str]]] = {vid: {} for vid in kept}
    for proto in spec.protocols:
        if proto.kind == "random-by-video":
            assert proto.fractions is not None
            for i, split in enumerate(proto.splits):
                assignment = split_by_video(kept, proto.fractions, proto.seed + i)
                for vid, part in assignment.items():
                    out[vid][f"{proto.name}/{split}"] = [part]
        else:
            for vid in kept:
                for name, parts in (table.get(vid, {}).get("splits") or {}).items():
                    if name.split("/", 1)[0] == proto.name:
                        out[vid][name] = sorted(parts)
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
