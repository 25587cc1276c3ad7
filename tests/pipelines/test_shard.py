"""``ccs-data shard`` / ``verify`` on prepared clips written directly (SPEC section 6)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.contract import CLIP_SAMPLES, FRAMES_PER_CLIP, DatasetLayout, frame_member, sample_key
from pipelines.errors import InputError
from pipelines.io import stage_lock, write_jsonl
from pipelines.shard import ShardError, shard_dataset
from pipelines.shards import (
    INDEX_SUFFIX,
    add_member,
    flac_bytes,
    index_bytes,
    index_path,
    iter_raw_clips,
    jpeg_bytes,
    read_index,
    write_shard,
)
from pipelines.verify import verify_dataset

DATASET = "yt-music"
VIDEOS = {"vidAAAAAAA1": 3, "vidBBBBBBB2": 1, "vidCCCCCCC3": 2}  # clips per video
SPLIT = {"vidAAAAAAA1": ["train"], "vidBBBBBBB2": ["test", "val"], "vidCCCCCCC3": ["train"]}


@pytest.fixture(scope="module")
def jpegs():
    rng = np.random.default_rng(0)
    return [jpeg_bytes(rng.integers(0, 255, (240, 480, 3), dtype=np.uint8)) for _ in range(3)]


def make_prepared(root: Path, jpegs: list[bytes], dropped: set[str] = frozenset()) -> list[str]:
    """prepared/<id>.tar + clips.jsonl as prepare leaves them; returns the kept keys."""
    base = root / DATASET
    (base / "prepared").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    clips, kept = [], []
    for vid, n in VIDEOS.items():
        with tarfile.open(base / "prepared" / f"{vid}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(n):
                key = sample_key(vid, i)
                drop = "silent-clip" if key in dropped else None
                clips.append({"key": key, "video_id": vid, "clip_index": i, "start_s": 10.0 * i, "rms": 0.1,
                              "lr_diff": 0.01, "projection": "ER", "decoder": "magls", "hrir": "kemar",
                              "dropped": drop, "splits": {} if drop else {"official/1": SPLIT[vid]}})
                if drop:
                    continue
                kept.append(key)
                add_member(tar, f"{key}.audio.flac", flac_bytes(rng.uniform(-0.5, 0.5, (2, CLIP_SAMPLES))))
                for k in range(FRAMES_PER_CLIP):
                    add_member(tar, f"{key}.{frame_member(k)}", jpegs[k % len(jpegs)])
                add_member(tar, f"{key}.foa.flac", flac_bytes(rng.uniform(-0.1, 0.1, (4, CLIP_SAMPLES))))
                meta = {"dataset": DATASET, "video_id": vid, "clip_index": i, "start_s": 10.0 * i,
                        "sample_rate": 16000, "fps": 10, "n_frames": 100, "width": 480, "height": 240,
                        "projection": "ER", "decoder": "magls", "hrir": "kemar", "lr_diff": 0.01,
                        "rms": 0.1, "source": {"files": {}}, "pipeline_version": "1"}
                add_member(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
    write_jsonl(base / "clips.jsonl", sorted(clips, key=lambda c: c["key"]))
    return sorted(kept)


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / DATASET / "shards").glob("*.tar"))}


def test_two_runs_are_byte_identical(tmp_path, jpegs):
    a, b = tmp_path / "a", tmp_path / "b"
    make_prepared(a, jpegs)
    shutil.copytree(a / DATASET / "prepared", b / DATASET / "prepared")
    shutil.copy(a / DATASET / "clips.jsonl", b / DATASET / "clips.jsonl")
    shard_dataset(a, DATASET, maxcount=4)
    first = shard_bytes(a)
    shard_dataset(a, DATASET, maxcount=4)
    shard_dataset(b, DATASET, maxcount=4)
    assert first == shard_bytes(a) == shard_bytes(b)
    assert list(first) == ["yt-music-000000.tar", "yt-music-000001.tar"]


def test_shard_layout_headers_and_split_lists(tmp_path, jpegs):
    kept = make_prepared(tmp_path, jpegs, dropped={"vidAAAAAAA1_0001"})
    summary = shard_dataset(tmp_path, DATASET, maxcount=2)
    assert summary.samples == len(kept) == 5 and len(summary.shards) == 3
    names = []
    for shard in summary.shards:
        with tarfile.open(shard) as tar:
            for m in tar:
                assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
                names.append(m.name)
    keys = [n.split(".", 1)[0] for n in names]
    assert sorted(set(keys)) == kept and "vidAAAAAAA1_0001" not in keys
    first = [n for n in names if n.startswith("vidAAAAAAA1_0000.")]
    assert first == ["vidAAAAAAA1_0000.audio.flac"] + [f"vidAAAAAAA1_0000.{frame_member(k)}" for k in range(100)] + [
        "vidAAAAAAA1_0000.foa.flac", "vidAAAAAAA1_0000.json"]
    splits = tmp_path / DATASET / "splits" / "official" / "1"
    assert (splits / "train.txt").read_text().split() == ["vidAAAAAAA1_0000", "vidAAAAAAA1_0002",
                                                          "vidCCCCCCC3_0000", "vidCCCCCCC3_0001"]
    assert (splits / "test.txt").read_text().split() == ["vidBBBBBBB2_0000"]
    assert (splits / "val.txt").read_text().split() == ["vidBBBBBBB2_0000"]
    # fewer shards on a rerun: the stale ones go, so readers never see old samples
    shard_dataset(tmp_path, DATASET, maxcount=10)
    assert list(shard_bytes(tmp_path)) == ["yt-music-000000.tar"]


def test_plain_webdataset_reads_every_sample(tmp_path, jpegs):
    kept = make_prepared(tmp_path, jpegs)
    summary = shard_dataset(tmp_path, DATASET, maxcount=4)
    ds = wds.WebDataset(summary.shards, shardshuffle=False)
    seen = []
    for sample in ds:
        seen.append(sample["__key__"])
        audio, sr = sf.read(io.BytesIO(sample["audio.flac"]))
        assert sr == 16000 and audio.shape == (CLIP_SAMPLES, 2)
        assert all(f"f{k:03d}.jpg" in sample for k in range(100))
        assert json.loads(sample["json"])["video_id"] == sample["__key__"].rsplit("_", 1)[0]
    assert seen == kept


def test_no_empty_shard(tmp_path, jpegs):
    make_prepared(tmp_path, jpegs, dropped={sample_key(v, i) for v, n in VIDEOS.items() for i in range(n)})
    summary = shard_dataset(tmp_path, DATASET)
    assert summary.shards == [] and summary.samples == 0
    assert not list((tmp_path / DATASET / "shards").glob("*.tar"))
    assert [str(p) for p in verify_dataset(tmp_path, DATASET)] == [f"{tmp_path / DATASET / 'shards'}: no shards"]


def test_missing_inputs_are_clear_errors(tmp_path, jpegs):
    with pytest.raises(ShardError, match="no clips manifest"):
        shard_dataset(tmp_path, DATASET)
    make_prepared(tmp_path, jpegs)
    (tmp_path / DATASET / "prepared" / "vidBBBBBBB2.tar").unlink()
    with pytest.raises(ShardError, match="vidBBBBBBB2"):
        shard_dataset(tmp_path, DATASET)
    # the failed run left no shard behind under a final name
    assert len(list((tmp_path / DATASET / "shards").glob("*.tar"))) == 0


@pytest.fixture
def sharded(tmp_path, jpegs):
    make_prepared(tmp_path, jpegs)
    shard_dataset(tmp_path, DATASET, maxcount=4)
    assert verify_dataset(tmp_path, DATASET) == []
    return tmp_path


def test_verify_catches_a_truncated_shard(sharded):
    shard = sharded / DATASET / "shards" / "yt-music-000000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert any("yt-music-000000.tar" in p for p in problems), problems
    assert any("not in any shard" in p for p in problems)
    res = CliRunner().invoke(main, ["verify", DATASET, "--root", str(sharded)])
    assert res.exit_code == 1 and "problem(s)" in res.output


def test_verify_catches_damaged_audio_and_frames(sharded):
    shard = sharded / DATASET / "shards" / "yt-music-000001.tar"
    with tarfile.open(shard) as tar:
        offsets = {m.name: m.offset_data for m in tar}
    data = bytearray(shard.read_bytes())
    audio_at = offsets["vidCCCCCCC3_0000.audio.flac"]
    data[audio_at + 8: audio_at + 40] = b"\x00" * 32  # break the FLAC stream header
    frame_at = offsets["vidCCCCCCC3_0001.f010.jpg"]
    data[frame_at: frame_at + 4] = b"\x00\x00\x00\x00"  # no longer a JPEG
    shard.write_bytes(bytes(data))
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert any("vidCCCCCCC3_0000: audio.flac" in p for p in problems), problems
    assert any("vidCCCCCCC3_0001: f010.jpg" in p for p in problems), problems


def test_verify_checks_split_lists_against_shards(sharded):
    train = sharded / DATASET / "splits" / "official" / "1" / "train.txt"
    train.write_text(train.read_text() + "vidAAAAAAA1_0000\nghostghost1_0000\n")
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert any("listed twice" in p for p in problems)
    assert any("ghostghost1_0000 is in 0 shard samples" in p for p in problems)
    assert any("7 keys, clips.jsonl says 5" in p for p in problems)


def test_index_files_match_the_tar(tmp_path, jpegs):
    """Offsets, sizes and sha256 of the index against Python's tarfile as an independent reader."""
    make_prepared(tmp_path, jpegs)
    summary = shard_dataset(tmp_path, DATASET, maxcount=4)
    layout = DatasetLayout(tmp_path, DATASET)
    assert [str(p) for p in layout.shards()] == summary.shards  # index files are never taken for shards
    for shard in layout.shards():
        index = read_index(shard)
        assert index.tar == shard.name and index.tar_size == shard.stat().st_size
        with tarfile.open(shard) as tar:
            stored = [(m.name, m.offset_data, m.size, hashlib.sha256(tar.extractfile(m).read()).hexdigest())
                      for m in tar]
        assert [tuple(e) for e in index.entries] == stored
        assert index_path(shard).read_bytes() == index_bytes(index)  # one canonical form
    first = {p.name: p.read_bytes() for p in layout.shards_dir.glob(f"*{INDEX_SUFFIX}")}
    shard_dataset(tmp_path, DATASET, maxcount=4)
    assert {p.name: p.read_bytes() for p in layout.shards_dir.glob(f"*{INDEX_SUFFIX}")} == first
    assert sorted(first) == ["yt-music-000000.tar.idx.jsonl", "yt-music-000001.tar.idx.jsonl"]
    # fewer shards on a rerun: the index files of the removed shards go with them
    shard_dataset(tmp_path, DATASET, maxcount=10)
    assert sorted(p.name for p in layout.shards_dir.iterdir()) == ["yt-music-000000.tar",
                                                                   "yt-music-000000.tar.idx.jsonl"]


def test_failed_write_keeps_the_previous_shard_and_index(tmp_path):
    path = tmp_path / "shards" / "yt-music-000000.tar"
    with write_shard(path) as writer:
        writer.add("vidAAAAAAA1_0000.json", b"{}")
    before = path.read_bytes(), index_path(path).read_bytes()
    with pytest.raises(RuntimeError, match="killed"), write_shard(path) as writer:
        writer.add("vidAAAAAAA1_0000.json", b'{"other": 1}')
        raise RuntimeError("killed")
    with pytest.raises(ValueError, match="empty shard"), write_shard(path):
        pass
    assert (path.read_bytes(), index_path(path).read_bytes()) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["yt-music-000000.tar", "yt-music-000000.tar.idx.jsonl"]


def test_verify_checks_the_index(sharded):
    """A member whose bytes differ from the index is named even where the schema checks pass (JPEG entropy
    data under --headers-only, a JSON value); a missing or stale index is a problem of its shard."""
    shards = sharded / DATASET / "shards"
    shard = shards / "yt-music-000001.tar"
    spans = {e.name: (e.offset, e.size) for e in read_index(shard).entries}
    data = bytearray(shard.read_bytes())
    offset, size = spans["vidCCCCCCC3_0000.f042.jpg"]
    data[offset + size // 2] ^= 0xFF  # inside the compressed data: the header-only JPEG check cannot see it
    offset, _ = spans["vidCCCCCCC3_0001.json"]
    json_member = bytes(data[offset:offset + spans["vidCCCCCCC3_0001.json"][1]])
    changed = json_member.replace(b'"rms": 0.1', b'"rms": 0.2')
    assert changed != json_member
    data[offset:offset + len(changed)] = changed
    shard.write_bytes(bytes(data))
    problems = [str(p) for p in verify_dataset(sharded, DATASET, decode_frames=False)]
    assert problems == ["yt-music-000001.tar:vidCCCCCCC3_0000: f042.jpg: bytes differ from the shard index (sha256)",
                        "yt-music-000001.tar:vidCCCCCCC3_0001: json: bytes differ from the shard index (sha256)"]
    index_path(shard).unlink()
    stale = shards / "yt-music-000000.tar"
    stale.write_bytes(stale.read_bytes() + b"\0" * 10240)  # still a valid tar, but not the one indexed
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert "yt-music-000001.tar: no index file yt-music-000001.tar.idx.jsonl (rerun `ccs-data shard`)" in problems
    assert any(p.startswith("yt-music-000000.tar: yt-music-000000.tar.idx.jsonl is stale") for p in problems)
    assert len(problems) == 2, problems


def test_verify_catches_an_index_that_disagrees_with_the_tar(sharded):
    shard = sharded / DATASET / "shards" / "yt-music-000000.tar"
    index = read_index(shard)
    moved = index.entries[1]._replace(offset=index.entries[1].offset + 512)
    index_path(shard).write_bytes(index_bytes(replace(index, entries=(index.entries[0], moved, *index.entries[2:]))))
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert problems == [("yt-music-000000.tar: yt-music-000000.tar.idx.jsonl disagrees with the tar headers from "
                         "member 1 on: it lists 412 members, the tar holds 412")]
    index_path(shard).write_text("not json\n")
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert problems == [f"yt-music-000000.tar: {index_path(shard)}: not a shard index (unreadable JSON lines)"]


def _rewrite(shard: Path, transform) -> None:
    """Write ``shard`` again (with a matching index) from ``transform([(name, bytes), ...])``: a hostile but
    well-indexed shard, so only the schema checks can find what is wrong."""
    with tarfile.open(shard) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]
    with write_shard(shard) as writer:
        for name, data in transform(members):
            writer.add(name, data)


def test_verify_rejects_foreign_and_path_bearing_members_and_the_reader_refuses_them(sharded):
    """b9cde7f's verify passed <key>.payload.sh, and the trainer read members named ../../<key>.* as the clip's."""
    shard = sharded / DATASET / "shards" / "yt-music-000000.tar"

    def hostile(members):
        out = []
        for name, data in members:
            if name == "vidAAAAAAA1_0001.audio.flac":
                name = "../../vidAAAAAAA1_0001.audio.flac"
            out.append((name, data))
            if name == "vidAAAAAAA1_0000.json":
                out.append(("vidAAAAAAA1_0000.payload.sh", b"#!/bin/sh\nrm -rf ~\n"))
        return out

    _rewrite(shard, hostile)
    problems = [str(p) for p in verify_dataset(sharded, DATASET)]
    assert "yt-music-000000.tar: member 'vidAAAAAAA1_0000.payload.sh' is foreign to the format (extension " \
           "'payload.sh')" in problems, problems
    assert ("yt-music-000000.tar: member '../../vidAAAAAAA1_0001.audio.flac' has a path (members are named "
            "<key>.<ext>)") in problems
    assert "yt-music-000000.tar:vidAAAAAAA1_0000: foreign member 'payload.sh'" in problems
    with pytest.raises(ValueError, match=r"yt-music-000000.tar: member '../../vidAAAAAAA1_0001.audio.flac' has a path"):
        list(iter_raw_clips([shard]))


@pytest.mark.parametrize("field, value, message", [
    ("video_id", "vidBBBBBBB2", "json: video_id 'vidBBBBBBB2' disagrees with the key vidAAAAAAA1_0001 ('vidAAAAAAA1')"),
    ("clip_index", 2, "json: clip_index 2 disagrees with the key vidAAAAAAA1_0001 (1)"),
    ("start_s", 20.0, "json: start_s 20.0 disagrees with the key vidAAAAAAA1_0001 (10.0)"),
    ("clip_index", "1", "json: field 'clip_index' is '1', not of type int"),
    ("rms", None, "json: field 'rms' is None, not of type int/float"),
    ("source", "x", "json: field 'source' is 'x', not of type dict"),
    ("width", 640, "json: width 640 disagrees with the contract (480)"),
])
def test_verify_checks_every_json_field_against_the_key_and_the_schema(sharded, field, value, message):
    shard = sharded / DATASET / "shards" / "yt-music-000000.tar"

    def edit(members):
        for name, data in members:
            if name == "vidAAAAAAA1_0001.json":
                data = json.dumps({**json.loads(data), field: value}, sort_keys=True).encode()
            yield name, data

    _rewrite(shard, edit)
    problems = [str(p) for p in verify_dataset(sharded, DATASET, decode_frames=False)]
    assert f"yt-music-000000.tar:vidAAAAAAA1_0001: {message}" in problems, problems
    assert all(p.startswith("yt-music-000000.tar:vidAAAAAAA1_0001: json: ") for p in problems), problems


def test_split_list_names_cannot_leave_the_data_root(tmp_path, jpegs):
    """b9cde7f's shard wrote the lists of a protocol named ../../../ESCAPED outside the data root."""
    make_prepared(tmp_path, jpegs)
    manifest = tmp_path / DATASET / "clips.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for r in rows:
        if r["splits"]:
            r["splits"] = {"../../../ESCAPED/1": ["train"]}
    write_jsonl(manifest, rows)
    with pytest.raises(ValueError, match=r"split membership '\.\./\.\./\.\./ESCAPED/1' is not <protocol>/<split>"):
        shard_dataset(tmp_path, DATASET)
    assert not list(tmp_path.parent.rglob("ESCAPED")) and not (tmp_path / "ESCAPED").exists()


def test_shard_removes_the_temporary_files_of_a_killed_run_and_runs_one_at_a_time(tmp_path, jpegs):
    make_prepared(tmp_path, jpegs)
    layout = DatasetLayout(tmp_path, DATASET)
    for stale in (layout.shards_dir / ".yt-music-000000.tar.abcd1234.tmp",
                  layout.splits_dir / "official/1/.train.txt.x_y_z_12.tmp"):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"half a shard")
    keep = layout.shards_dir / "notes.tmp"  # not one of ours: left alone
    keep.write_text("mine")
    shard_dataset(tmp_path, DATASET, maxcount=4)
    leftovers = [p for p in layout.base.rglob("*.tmp")]
    assert leftovers == [keep]
    with stage_lock(layout.ledger_dir / "shard.lock", "test"):
        with pytest.raises(InputError, match="another ccs-data shard of .* is running"):
            shard_dataset(tmp_path, DATASET, maxcount=4)
