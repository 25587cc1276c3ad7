"""``ccs-data status``: what each stage has produced for one dataset, read only from files that exist.

Never fails because a later stage has not run: a missing file means "this stage has not run" and its section is
left out (or reported as not run).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.contract import DatasetLayout
from pipelines.io import Ledger, read_jsonl
from pipelines.recipes import recipe_for


def _latest(path: Path, key: str) -> dict[str, dict[str, Any]]:
    return Ledger(path).latest(key) if path.is_file() else {}


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _video_drop_reason(video: dict[str, Any]) -> str | None:
    # videos-prepared.jsonl: status "done" keeps the video; anything else carries its reason
    if video.get("dropped"):
        return str(video["dropped"])
    status = video.get("status")
    if status not in (None, "done"):
        return str(video.get("reason") or status)
    return None


def dataset_status(root: str | Path, dataset: str) -> dict[str, Any]:
    """Counts per stage for ``<root>/<dataset>/`` as a JSON-ready dict (sections only for stages that ran)."""
    recipe_for(dataset)  # an unregistered name is an error, not an empty report
    layout = DatasetLayout(Path(root), dataset)
    out: dict[str, Any] = {"dataset": dataset, "root": str(layout.base), "exists": layout.base.is_dir()}
    if not layout.base.is_dir():
        return out
    fetch = _fetch_section(layout)
    if fetch:
        out["fetch"] = fetch
    archives = _latest(layout.ledger("archives"), "archive")
    if archives:
        out["archives"] = {name: r.get("status") for name, r in sorted(archives.items())}
    prepare = _prepare_section(layout)
    if prepare:
        out["prepare"] = prepare
    shards = layout.shards()
    if shards:
        out["shards"] = {"count": len(shards), "bytes": sum(p.stat().st_size for p in shards)}
    splits = _split_sizes(layout)
    if splits:
        out["splits"] = splits
    return out


def _fetch_section(layout: DatasetLayout) -> dict[str, Any]:
    table = read_jsonl(layout.video_table) if layout.video_table.is_file() else None
    listed_ids = [r["video_id"] for r in table] if table is not None else None
    fetch_latest = _latest(layout.ledger("fetch"), "video_id")
    if listed_ids is None and not fetch_latest:
        return {}
    fetch: dict[str, Any] = {}
    if listed_ids is not None:
        fetch["listed"] = len(listed_ids)
    ids = listed_ids if listed_ids is not None else list(fetch_latest)
    done = 0
    failed: Counter = Counter()
    for vid in ids:
        rec = fetch_latest.get(vid)
        if rec is None:
            continue
        if rec.get("status") == "done":
            done += 1
        else:
            failed[rec.get("reason_class") or "unknown"] += 1
    # invalid ids are never in the table; they only appear in the ledger
    id_set = set(ids)
    failed["invalid-id"] += sum(
        1 for k, r in fetch_latest.items() if r.get("reason_class") == "invalid-id" and k not in id_set
    )
    fetch["fetched"] = done
    fetch["failed"] = {k: v for k, v in sorted(failed.items()) if v}
    if listed_ids is not None:
        fetch["remaining"] = len(listed_ids) - done
    fetch["bytes"] = sum(int(r.get("bytes") or 0) for vid, r in fetch_latest.items() if r.get("status") == "done")
    return fetch


def _prepare_section(layout: DatasetLayout) -> dict[str, Any]:
    prepare: dict[str, Any] = {}
    prep_latest = _latest(layout.ledger("prepare"), "video_id")
    if prep_latest:
        by_status: Counter = Counter(r.get("status", "unknown") for r in prep_latest.values())
        prepare["ledger"] = dict(sorted(by_status.items()))
        reasons: Counter = Counter(
            r.get("reason_class") or r.get("reason") for r in prep_latest.values() if r.get("status") != "done"
        )
        if reasons:
            prepare["ledger_reasons"] = {str(k): v for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0]))}
    if layout.prepared_videos.is_file():
        videos = read_jsonl(layout.prepared_videos)
        prepare["videos"] = len(videos)
        dropped = Counter(str(_video_drop_reason(v)) for v in videos if _video_drop_reason(v))
        prepare["videos_kept"] = len(videos) - sum(dropped.values())
        if dropped:
            prepare["videos_dropped"] = dict(sorted(dropped.items()))
    if layout.clips_manifest.is_file():
        clips = read_jsonl(layout.clips_manifest)
        dropped = Counter(str(c.get("dropped")) for c in clips if c.get("dropped"))
        prepare["clips"] = len(clips)
        prepare["clips_kept"] = len(clips) - sum(dropped.values())
        if dropped:
            prepare["clips_dropped"] = dict(sorted(dropped.items()))
    return prepare


def _split_sizes(layout: DatasetLayout) -> dict[str, dict[str, int]]:
    splits: dict[str, dict[str, int]] = {}
    if layout.splits_dir.is_dir():
        for txt in sorted(layout.splits_dir.glob("*/*/*.txt")):
            protocol, split = txt.parent.parent.name, txt.parent.name
            splits.setdefault(f"{protocol}/{split}", {})[txt.stem] = _count_lines(txt)
    return splits


def format_status(status: dict[str, Any]) -> str:
    """Human-readable lines for :func:`dataset_status`'s dict."""
    lines = [f"{status['dataset']} ({status['root']})"]
    if not status.get("exists"):
        lines.append("  nothing yet: run `ccs-data fetch` first")
        return "\n".join(lines)
    stages_run = False
    if "fetch" in status:
        stages_run = True
        f = status["fetch"]
        failed = ", ".join(f"{k} {v}" for k, v in f["failed"].items()) or "none"
        listed = f"listed {f['listed']}, " if "listed" in f else ""
        remaining = f", remaining {f['remaining']}" if "remaining" in f else ""
        lines.append(f"  fetch:   {listed}fetched {f['fetched']}{remaining}; failed: {failed}")
    if "archives" in status:
        lines.append("  archives: " + ", ".join(f"{k} {v}" for k, v in status["archives"].items()))
    if "prepare" in status:
        stages_run = True
        p = status["prepare"]
        parts = []
        if "videos" in p:
            parts.append(f"videos {p['videos']} (kept {p['videos_kept']})")
        if "clips" in p:
            parts.append(f"clips {p['clips']} (kept {p['clips_kept']})")
        if "ledger" in p:
            parts.append("ledger " + ", ".join(f"{k} {v}" for k, v in p["ledger"].items()))
        lines.append("  prepare: " + "; ".join(parts))
        for key in ("videos_dropped", "clips_dropped", "ledger_reasons"):
            if key in p:
                lines.append(f"    {key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in p[key].items()))
    else:
        lines.append("  prepare: not run")
    if "shards" in status:
        stages_run = True
        s = status["shards"]
        lines.append(f"  shards:  {s['count']} files, {s['bytes']} bytes")
    else:
        lines.append("  shards:  not run")
    for name, parts in status.get("splits", {}).items():
        lines.append(f"  split {name}: " + ", ".join(f"{k} {v}" for k, v in parts.items()))
    if not stages_run:
        lines.append("  (no stage has written anything yet)")
    return "\n".join(lines)


def status_json(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=2, sort_keys=True)
