"""``ccs-data prepare`` on small fetched trees (tests/helpers/prepare_world.py): faults, filter, projection, FOA, splits,
resume, and the chain prepare -> shard -> verify."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.clips import SILENCE_RMS, clip_starts, lr_difference
from pipelines.contract import CLIP_SAMPLES, FRAMES_PER_CLIP
from pipelines.io import Ledger, read_jsonl
from pipelines.media import decode_audio
from pipelines.prepare import PrepareError, prepare_dataset
from pipelines.prepared import carve_val, compute_splits, part_sizes, split_by_video
from pipelines.shard import shard_dataset
from pipelines.spec import Protocol, load_spec, with_val_from
from pipelines.verify import verify_dataset
from tests.helpers.prepare_world import (
    FAIRPLAY_IDS,
    MUSIC_EXPECTED,
    YT_VIDEOS,
    build_fairplay,
    build_music,
    build_yt,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Raw fetched trees (built once); tests copy them before preparing so each starts clean."""
    root = tmp_path_factory.mktemp("raw")
    build_music(root)
    build_yt(root)
    build_fairplay(root)
    return root


@pytest.fixture(scope="module")
def prepared(world, tmp_path_factory):
    """All three datasets prepared once (jobs=1), read-only for the tests that use it."""
    root = tmp_path_factory.mktemp("prepared")
    summaries = {}
    for ds in ("music-stereo", "yt-music", "fair-play"):
        shutil.copytree(world / ds, root / ds)
        summaries[ds] = prepare_dataset(load_spec(dataset=ds), root)
    return root, summaries


def members(root: Path, dataset: str, video_id: str) -> dict[str, bytes]:
    with tarfile.open(root / dataset / "prepared" / f"{video_id}.tar") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def by_id(path: Path) -> dict[str, dict]:
    return {r["video_id"]: r for r in read_jsonl(path)}


# ----------------------------------------------------------------------------------------------- pure parts


def test_clip_starts_drop_the_remainder():
    assert clip_starts(CLIP_SAMPLES * 2 + 5) == [0, CLIP_SAMPLES]
    assert clip_starts(CLIP_SAMPLES - 1) == []


def test_lr_difference_values():
    x = np.array([[0.5, -0.5, 0.0, 1.0], [0.5, 0.5, 0.0, -1.0]])
    assert lr_difference(x) == (pytest.approx(0.75), pytest.approx(3.0))


def test_split_by_video_is_seeded_and_order_independent():
    ids = [f"vid{i:08d}xx" for i in range(100)]
    a = split_by_video(ids, (0.8, 0.1, 0.1), seed=0)
    b = split_by_video(list(reversed(ids)), (0.8, 0.1, 0.1), seed=0)
    assert a == b
    counts = {p: sum(v == p for v in a.values()) for p in ("train", "val", "test")}
    assert counts == {"train": 80, "val": 10, "test": 10}
    assert split_by_video(ids, (0.8, 0.1, 0.1), seed=1) != a


@pytest.mark.parametrize("n,sizes", [(2, (2, 0, 0)), (3, (1, 1, 1)), (4, (2, 1, 1)), (5, (3, 1, 1)), (9, (7, 1, 1)),
                                     (20, (16, 2, 2))])
def test_a_small_by_video_split_gives_every_part_a_video(n, sizes):
    """Issue 10: 4 videos at 80/10/10 used to give 3/0/1, an empty val list that ccs-train refuses."""
    assert part_sizes(n, (0.8, 0.1, 0.1)) == sizes
    got = split_by_video([f"v{i}" for i in range(n)], (0.8, 0.1, 0.1), seed=3)
    assert tuple(sum(p == part for p in got.values()) for part in ("train", "val", "test")) == sizes
    assert part_sizes(4, (0.8, 0.2, 0.0)) == (3, 1, 0)  # a part without a share stays empty


def _yt_protocol(**kw):
    return Protocol(name="official", kind="lists", splits=("1",), **kw)


def test_val_from_carves_a_seeded_by_video_val_list_from_train_or_takes_the_test_list():
    table = {f"v{i:02d}": {"splits": {"official/1": ["train" if i < 20 else "test"]}} for i in range(25)}
    kept = sorted(table)
    spec = replace(load_spec(dataset="yt-music"), protocols=(_yt_protocol(val_from="train", val_fraction=0.1),))
    carved = compute_splits(spec, table, kept)
    parts = [carved[v]["official/1"] for v in kept]
    assert parts.count(["val"]) == 2 and parts.count(["train"]) == 18 and parts.count(["test"]) == 5
    assert all(carved[v]["official/1"] == ["test"] for v in kept[20:])  # val comes from train only
    assert compute_splits(spec, table, list(reversed(kept))) == carved  # seeded, order-independent
    reseeded = replace(spec, protocols=(_yt_protocol(val_from="train", val_fraction=0.1, seed=1),))
    assert compute_splits(reseeded, table, kept) != carved
    # dropped videos never reach val: the carve is over the kept train videos
    fewer = compute_splits(spec, table, kept[:2] + kept[20:])
    assert sorted(fewer[v]["official/1"] for v in kept[:2]) == [["train"], ["val"]]
    paper = compute_splits(with_val_from(spec, "test"), table, kept)
    assert all(paper[v]["official/1"] == (["test", "val"] if i >= 20 else ["train"]) for i, v in enumerate(kept))
    assert carve_val(["a"], 0.1, 0) == set() and len(carve_val(["a", "b"], 0.01, 0)) == 1


# ----------------------------------------------------------------------------------------------- MUSIC


def test_every_fault_ends_with_its_reason(prepared):
    root, summaries = prepared
    ledger = Ledger(root / "music-stereo" / "ledger" / "prepare.jsonl").latest()
    videos = by_id(root / "music-stereo" / "videos-prepared.jsonl")
    for vid, (status, reason, kept) in MUSIC_EXPECTED.items():
        assert (ledger[vid]["status"], ledger[vid]["reason"]) == (status, reason), ledger[vid]
        assert (videos[vid]["status"], videos[vid]["reason"], videos[vid]["clips"]) == (status, reason, kept)
        if reason:
            assert vid in ledger[vid]["detail"]  # the message names the file
    s = summaries["music-stereo"]
    assert (s.videos, s.done, s.dropped, s.failed, s.clips) == (11, 5, 6, 0, 6)


def test_mono_as_stereo_filtered_binaural_kept(prepared):
    root, _ = prepared
    videos = by_id(root / "music-stereo" / "videos-prepared.jsonl")
    mono, binaural = videos["monostereo1"], videos["binaural001"]
    assert mono["lr_diff"] < 1e-3 <= binaural["lr_diff"]
    assert mono["lr_diff_sum"] == pytest.approx(mono["lr_diff"] * 12 * 16_000, rel=1e-3)
    assert binaural["splits"] and not mono["splits"]


def test_clips_hold_the_decoded_signal_and_100_frames(prepared):
    root, _ = prepared
    clips = read_jsonl(root / "music-stereo" / "clips.jsonl")
    assert [c["key"] for c in clips] == sorted(c["key"] for c in clips)
    keys = {c["key"]: c for c in clips}
    assert set(keys) == {"binaural001_0000", "binaural001_0001", "binaural002_0000", "silentclip1_0000",
                         "silentclip1_0001", "avmismatch1_0000", "avmismatch2_0000"}
    assert keys["silentclip1_0001"]["dropped"] == "silent-clip" and keys["silentclip1_0001"]["rms"] < SILENCE_RMS
    c = keys["binaural001_0001"]
    assert (c["start_s"], c["clip_index"], c["dropped"]) == (10.0, 1, None)
    m = members(root, "music-stereo", "binaural001")
    audio, sr = sf.read(io.BytesIO(m["binaural001_0001.audio.flac"]), dtype="float64")
    assert sr == 16_000 and audio.shape == (CLIP_SAMPLES, 2)
    source = decode_audio(root / "music-stereo" / "media" / "binaural001.mp4", in_channels=2, out_channels=2)
    assert np.abs(audio.T - source[:, CLIP_SAMPLES:2 * CLIP_SAMPLES]).max() < 1e-4  # 16-bit quantisation
    assert c["rms"] == pytest.approx(float(np.sqrt(np.mean(audio ** 2))), rel=1e-3)
    frames = sorted(k for k in m if k.startswith("binaural001_0001.f"))
    assert len(frames) == FRAMES_PER_CLIP and frames[-1] == "binaural001_0001.f099.jpg"
    meta = json.loads(m["binaural001_0001.json"])
    assert meta["video_id"] == "binaural001" and meta["clip_index"] == 1 and meta["n_frames"] == 100
    assert "silentclip1_0001.audio.flac" not in members(root, "music-stereo", "silentclip1")


def test_music_split_is_by_video(prepared):
    root, _ = prepared
    clips = [c for c in read_jsonl(root / "music-stereo" / "clips.jsonl") if c["dropped"] is None]
    per_video = {}
    for c in clips:
        per_video.setdefault(c["video_id"], set()).add(json.dumps(c["splits"], sort_keys=True))
    assert all(len(v) == 1 for v in per_video.values())
    expected = split_by_video(sorted(per_video), (0.8, 0.1, 0.1), seed=0)
    for c in clips:
        assert c["splits"] == {"80-10-10/1": [expected[c["video_id"]]]}


def test_resume_skips_finished_videos_and_redoes_changed_settings(world, tmp_path):
    spec = load_spec(dataset="music-stereo")
    shutil.copytree(world / "music-stereo", tmp_path / "music-stereo")
    first = prepare_dataset(spec, tmp_path)
    clips_before = (tmp_path / "music-stereo" / "clips.jsonl").read_bytes()
    # a kill after binaural002's tar but before its result: its result file is the commit mark
    (tmp_path / "music-stereo" / "prepared" / "binaural002.json").unlink()
    second = prepare_dataset(spec, tmp_path)
    assert (second.resumed, second.done, second.clips) == (first.videos - 1, 1, 1)
    assert (tmp_path / "music-stereo" / "clips.jsonl").read_bytes() == clips_before
    # a stricter filter redoes every MUSIC video (the threshold is part of the settings) and drops more
    third = prepare_dataset(spec, tmp_path, min_lr_diff=0.5)
    assert third.resumed == 0 and third.reasons["non-binaural"] == 6
    ledger = Ledger(tmp_path / "music-stereo" / "ledger" / "prepare.jsonl")
    assert len(ledger.records()) == first.videos + 1 + third.videos


def test_unexpected_error_is_recorded_and_the_run_goes_on(world, tmp_path, monkeypatch):
    import pipelines.prepare as prep

    shutil.copytree(world / "music-stereo", tmp_path / "music-stereo")
    real = prep._run_task

    def flaky(task):
        if task.video_id == "binaural002":
            raise OSError("disk on fire")
        return real(task)

    monkeypatch.setattr(prep, "_run_task", flaky)
    summary = prepare_dataset(load_spec(dataset="music-stereo"), tmp_path)
    assert summary.failed == 1 and summary.done == 4
    rec = Ledger(tmp_path / "music-stereo" / "ledger" / "prepare.jsonl").latest()["binaural002"]
    assert rec["status"] == "failed" and "disk on fire" in rec["detail"]
    monkeypatch.setattr(prep, "_run_task", real)
    again = prepare_dataset(load_spec(dataset="music-stereo"), tmp_path)
    assert (again.done, again.failed, again.resumed) == (1, 0, 10)  # only the failed one is redone


def test_parallel_jobs_give_the_same_manifest(world, prepared, tmp_path):
    root, _ = prepared
    shutil.copytree(world / "music-stereo", tmp_path / "music-stereo")
    summary = prepare_dataset(load_spec(dataset="music-stereo"), tmp_path, jobs=2)
    assert summary.clips == 6 and summary.clips_per_s > 0
    strip = lambda p: [{k: v for k, v in r.items()} for r in read_jsonl(p)]  # noqa: E731
    assert strip(tmp_path / "music-stereo" / "clips.jsonl") == strip(root / "music-stereo" / "clips.jsonl")
    a = members(tmp_path, "music-stereo", "binaural001")
    b = members(root, "music-stereo", "binaural001")
    assert a == b  # byte-identical members whatever the job count


def test_missing_fetch_ledger_and_path_traversal(tmp_path):
    spec = load_spec(dataset="music-stereo")
    with pytest.raises(PrepareError, match="no fetch ledger"):
        prepare_dataset(spec, tmp_path)
    Ledger(tmp_path / "music-stereo" / "ledger" / "fetch.jsonl").append(
        {"video_id": "escape00001", "status": "done", "files": {"media": "../../etc/passwd"}})
    summary = prepare_dataset(spec, tmp_path)
    rec = Ledger(tmp_path / "music-stereo" / "ledger" / "prepare.jsonl").latest()["escape00001"]
    assert summary.failed == 1 and rec["reason"] == "invalid-input" and "leaves the dataset folder" in rec["detail"]


# ----------------------------------------------------------------------------------------------- YT


def test_mislabelled_projection_corrected_and_listed(prepared):
    root, _ = prepared
    videos = by_id(root / "yt-music" / "videos-prepared.jsonl")
    for vid, truth, upstream, *_ in YT_VIDEOS:
        p = videos[vid]["projection"]
        source = "upstream" if truth == upstream else "detector"  # a correct upstream label is kept
        assert (p["final"], p["upstream"], p["source"]) == (truth, upstream, source), p
        assert p["detector"] == truth and p["detector_confidence"] > 0.999, p
        assert {"evidence", "mismatch_ER", "mismatch_EAC"} <= set(p["detector_scores"]) and p["reason"]
    result = CliRunner().invoke(main, ["projections", "yt-music", "--root", str(root)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(YT_VIDEOS)  # every 360 video is listed
    relabelled = [ln for ln in lines if "by detector" in ln]
    assert len(relabelled) == 1 and relabelled[0].startswith("mislabelled") and "upstream=EAC final=ER" in relabelled[0]


def test_override_beats_the_detector(world, tmp_path):
    shutil.copytree(world / "yt-music", tmp_path / "yt-music")
    ov = tmp_path / "ov.toml"
    ov.write_text('[videos.eqrOpus0001]\nprojection = "EAC"\nreason = "test: forced"\n')
    prepare_dataset(load_spec(dataset="yt-music"), tmp_path, overrides_path=ov, decoder="vls8")
    p = by_id(tmp_path / "yt-music" / "videos-prepared.jsonl")["eqrOpus0001"]
    assert (p["projection"]["final"], p["projection"]["source"], p["decoder"]) == ("EAC", "override", "vls8")
    assert p["projection"]["detector"] == "ER"  # the detector's answer stays on record


def test_foa_decoded_to_binaural_and_kept(prepared):
    root, _ = prepared
    clips = {c["key"]: c for c in read_jsonl(root / "yt-music" / "clips.jsonl")}
    for vid, _, _, layout, _, az in YT_VIDEOS:
        key = f"{vid}_0000"
        assert clips[key]["decoder"] == "magls" and clips[key]["hrir"] == "kemar"
        m = members(root, "yt-music", vid)
        stereo, _ = sf.read(io.BytesIO(m[f"{key}.audio.flac"]))
        foa, _ = sf.read(io.BytesIO(m[f"{key}.foa.flac"]))
        assert stereo.shape == (CLIP_SAMPLES, 2) and foa.shape == (CLIP_SAMPLES, 4)
        ild = 10 * np.log10(np.mean(stereo[:, 0] ** 2) / np.mean(stereo[:, 1] ** 2))
        assert ild * np.sign(az) > 8.0, (vid, ild)  # source at +90 -> louder left, at -90 -> louder right
        if layout == "WXY":
            assert np.abs(foa[:, 2]).max() < 1e-3  # the silent Z stays silent
        assert clips[key]["splits"]["official/1"] in (["train"], ["val"], ["test"])  # val carved from train


# ----------------------------------------------------------------------------------------------- FAIR-Play


def test_fairplay_one_clip_per_id_with_both_protocols(prepared):
    root, summaries = prepared
    clips = read_jsonl(root / "fair-play" / "clips.jsonl")
    assert [c["key"] for c in clips] == [f"{vid}_0000" for vid in FAIRPLAY_IDS]
    assert summaries["fair-play"].clips == 3
    for c in clips:
        assert len([k for k in c["splits"] if k.startswith("10-split/")]) == 10
        assert len([k for k in c["splits"] if k.startswith("5-split/")]) == 5
    audio, _ = sf.read(io.BytesIO(members(root, "fair-play", "000002")["000002_0000.audio.flac"]))
    wav, sr = sf.read(root / "fair-play" / "media" / "binaural_audios" / "000002.wav")
    assert sr == 48_000 and audio.shape == (CLIP_SAMPLES, 2)
    assert np.corrcoef(audio[::1, 0][:1000], wav[::3, 0][:1000])[0, 1] > 0.5  # the wav's audio, resampled


# ----------------------------------------------------------------------------------------------- the chain


@pytest.mark.parametrize("dataset", ["music-stereo", "yt-music", "fair-play"])
def test_prepare_shard_verify_chain(prepared, tmp_path, dataset):
    root, _ = prepared
    shutil.copytree(root / dataset, tmp_path / dataset)
    runner = CliRunner()
    res = runner.invoke(main, ["shard", dataset, "--root", str(tmp_path), "--maxcount", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["verify", dataset, "--root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert verify_dataset(tmp_path, dataset) == []
    kept = [c for c in read_jsonl(tmp_path / dataset / "clips.jsonl") if c["dropped"] is None]
    summary = shard_dataset(tmp_path, dataset, maxcount=2)
    assert summary.samples == len(kept) and len(summary.shards) == (len(kept) + 1) // 2


def test_prepare_cli_reports_throughput(world, tmp_path):
    shutil.copytree(world / "fair-play", tmp_path / "fair-play")
    res = CliRunner().invoke(main, ["prepare", "fair-play", "--root", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "3 done" in res.output and "clips/s" in res.output
    res = CliRunner().invoke(main, ["prepare", "yt-music", "--root", str(tmp_path), "--hrir", "sofa:/nope.sofa"])
    assert res.exit_code != 0 and "SOFA file not found" in res.output


# ----------------------------------------------------------------------------------------------- synthetic world

# what each synthetic-world fault must end as: (stage that catches it, reason)
WORLD_FAULT_OUTCOME = {
    "mono-as-stereo": ("prepare", "dropped", "non-binaural"),
    "one-channel": ("prepare", "dropped", "mono"),
    "too-short": ("prepare", "dropped", "too-short"),
    "av-length-mismatch": ("prepare", "done", "av-length-mismatch"),
    "truncated": ("fetch", "failed", "corrupt"),
    "missing": ("fetch", "failed", "permanent"),
}


@pytest.mark.parametrize("dataset", ["music-stereo", "yt-music", "yt-clean", "fair-play"])
def test_world_every_video_ends_as_its_truth_says(world_server, world_chain, dataset):
    root, _ = world_chain
    fetch = Ledger(root / dataset / "ledger" / "fetch.jsonl").latest()
    videos = by_id(root / dataset / "videos-prepared.jsonl")
    checked = 0
    for truth in world_server.truth:
        if truth["dataset"] != dataset:
            continue
        vid = truth["video_id"]
        faults = [f for f in truth["faults"] if f in WORLD_FAULT_OUTCOME]
        if "no-audio" in truth["faults"]:  # fetch refuses a YouTube download without the audio asked for
            assert fetch[vid]["status"] == "failed" or videos[vid]["reason"] == "no-audio"
            continue
        if faults:
            stage, status, reason = WORLD_FAULT_OUTCOME[faults[0]]
            if stage == "fetch":
                assert (fetch[vid]["status"], fetch[vid]["reason_class"]) == (status, reason), fetch[vid]
            else:
                assert (videos[vid]["status"], videos[vid]["reason"]) == (status, reason), videos[vid]
        else:
            assert videos[vid]["status"] == "done" and videos[vid]["reason"] is None, videos[vid]
        if vid in videos and videos[vid]["status"] == "done":
            assert videos[vid]["clips"] == truth["clips_expected"], (vid, videos[vid], truth)
            if truth.get("projection"):  # every 360 video gets its true projection, mislabelled ones included
                assert videos[vid]["projection"]["final"] == truth["projection"], videos[vid]["projection"]
        checked += 1
    assert checked >= 4
    assert verify_dataset(root, dataset) == []
    if dataset == "fair-play":  # both protocols become key lists: 10 splits from the h5 files, 5 from the txt lists
        splits = root / dataset / "splits"
        for protocol, n in (("10-split", 10), ("5-split", 5)):
            for k in range(1, n + 1):
                keys = [(splits / protocol / str(k) / f"{part}.txt").read_text().split()
                        for part in ("train", "val", "test")]
                assert sorted(sum(keys, [])) == sorted(f"{vid}_0000" for vid in videos)


@pytest.mark.parametrize("dataset", ["yt-music", "yt-clean"])
def test_world_projections_lists_exactly_the_mislabelled(world_server, world_chain, dataset):
    root, _ = world_chain
    res = CliRunner().invoke(main, ["projections", dataset, "--root", str(root), "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    prepared = by_id(root / dataset / "videos-prepared.jsonl")
    assert {r["video_id"] for r in rows} == {v for v, rec in prepared.items() if rec.get("projection")}
    relabelled = {r["video_id"] for r in rows if r["final"] != r["upstream"]}
    expected = {t["video_id"] for t in world_server.truth if t["dataset"] == dataset
                and "mislabelled-projection" in t["faults"] and t["video_id"] in prepared}
    assert relabelled == expected and expected


def test_sigkill_mid_run_then_rerun_resumes(world, prepared, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    root, _ = prepared
    shutil.copytree(world / "music-stereo", tmp_path / "music-stereo")
    ledger = tmp_path / "music-stereo" / "ledger" / "prepare.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", "from pipelines.cli import main; main()", "prepare",
                             "music-stereo", "--root", str(tmp_path), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger.exists() and len(read_jsonl(ledger)) >= 2:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = len(read_jsonl(ledger))
    assert done_before < len(MUSIC_EXPECTED)  # it really was interrupted
    summary = prepare_dataset(load_spec(dataset="music-stereo"), tmp_path)
    assert summary.resumed >= done_before and summary.resumed + summary.done + summary.dropped == len(MUSIC_EXPECTED)
    assert not list((tmp_path / "music-stereo" / "prepared").glob(".*.tmp"))
    strip = lambda p: [{k: v for k, v in r.items() if k != "detail"} for r in read_jsonl(p)]  # noqa: E731
    assert strip(tmp_path / "music-stereo" / "clips.jsonl") == strip(root / "music-stereo" / "clips.jsonl")
    assert members(tmp_path, "music-stereo", "binaural001") == members(root, "music-stereo", "binaural001")


def test_min_lr_diff_applies_to_a_youtube360_set_when_given(world, prepared, tmp_path):
    root, _ = prepared
    # the manifest carries no threshold: by default nothing is filtered and no threshold is on record
    default = by_id(root / "yt-music" / "videos-prepared.jsonl")
    assert all(v["reason"] is None and "min_lr_diff" not in v["settings"] for v in default.values())
    threshold = max(v["lr_diff"] for v in default.values()) * 1.01
    shutil.copytree(world / "yt-music", tmp_path / "yt-music")
    res = CliRunner().invoke(main, ["prepare", "yt-music", "--root", str(tmp_path), "--min-lr-diff", str(threshold),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    assert f"non-binaural: {len(default)}" in res.output
    filtered = by_id(tmp_path / "yt-music" / "videos-prepared.jsonl")
    for vid, v in filtered.items():
        assert (v["status"], v["reason"], v["clips"]) == ("dropped", "non-binaural", 0), v
        assert v["settings"]["min_lr_diff"] == threshold and "mean |L-R|" in v["detail"] and vid in v["detail"]
