"""``ccs-data status``: counts per stage from whatever files exist (pipelines/status.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipelines.cli import main as cli_main
from pipelines.contract import DatasetLayout
from pipelines.io import Ledger, write_jsonl
from pipelines.status import dataset_status, format_status


def _fetched_tree(root):
    layout = DatasetLayout(root, "yt-music")
    write_jsonl(layout.video_table, [{"video_id": v} for v in ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc", "ddddddddddd")])
    ledger = Ledger(layout.ledger("fetch"))
    ledger.append({"video_id": "aaaaaaaaaaa", "status": "failed", "reason_class": "transient", "bytes": None})
    ledger.append({"video_id": "aaaaaaaaaaa", "status": "done", "reason_class": None, "bytes": 1000})  # last wins
    ledger.append({"video_id": "bbbbbbbbbbb", "status": "done", "reason_class": None, "bytes": 500})
    ledger.append({"video_id": "ccccccccccc", "status": "failed", "reason_class": "permanent", "bytes": None})
    ledger.append({"video_id": "../evil", "status": "failed", "reason_class": "invalid-id", "bytes": None})
    return layout


def test_status_after_fetch_only(tmp_path):
    _fetched_tree(tmp_path)
    st = dataset_status(tmp_path, "yt-music")
    assert st["fetch"] == {"listed": 4, "fetched": 2, "remaining": 2, "bytes": 1500,
                           "failed": {"invalid-id": 1, "permanent": 1}}
    assert "prepare" not in st and "shards" not in st
    text = format_status(st)
    assert "listed 4, fetched 2, remaining 2" in text and "permanent 1" in text and "prepare: not run" in text


def test_status_reads_later_stages_when_present(tmp_path):
    layout = _fetched_tree(tmp_path)
    Ledger(layout.ledger("prepare")).append({"video_id": "aaaaaaaaaaa", "status": "done", "reason": None})
    Ledger(layout.ledger("prepare")).append({"video_id": "bbbbbbbbbbb", "status": "dropped", "reason": "non-binaural"})
    write_jsonl(layout.prepared_videos, [
        {"video_id": "aaaaaaaaaaa", "status": "done", "reason": None},
        {"video_id": "bbbbbbbbbbb", "status": "dropped", "reason": "non-binaural"},
    ])
    write_jsonl(layout.clips_manifest, [
        {"key": "aaaaaaaaaaa_0000", "dropped": None},
        {"key": "aaaaaaaaaaa_0001", "dropped": None},
        {"key": "aaaaaaaaaaa_0002", "dropped": "silent-clip"},
    ])
    layout.shards_dir.mkdir(parents=True)
    layout.shard_path(0).write_bytes(b"x" * 10)
    for part, n in (("train", 2), ("test", 1), ("val", 1)):
        p = layout.split_list("official", "1", part)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(f"aaaaaaaaaaa_{i:04d}\n" for i in range(n)))
    st = dataset_status(tmp_path, "yt-music")
    assert st["prepare"]["videos"] == 2 and st["prepare"]["videos_kept"] == 1
    assert st["prepare"]["videos_dropped"] == {"non-binaural": 1}
    assert (st["prepare"]["clips"], st["prepare"]["clips_kept"]) == (3, 2)
    assert st["prepare"]["clips_dropped"] == {"silent-clip": 1}
    assert st["prepare"]["ledger"] == {"done": 1, "dropped": 1}
    assert st["shards"] == {"count": 1, "bytes": 10}
    assert st["splits"] == {"official/1": {"test": 1, "train": 2, "val": 1}}
    text = format_status(st)
    assert "clips 3 (kept 2)" in text and "split official/1: test 1, train 2, val 1" in text


def test_status_cli_on_an_empty_root_and_as_json(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli_main, ["status", "fair-play", "--root", str(tmp_path)])
    assert result.exit_code == 0 and "run `ccs-data fetch` first" in result.output
    _fetched_tree(tmp_path)
    result = runner.invoke(cli_main, ["status", "yt-music", "--root", str(tmp_path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["fetch"]["fetched"] == 2
