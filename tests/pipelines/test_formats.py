"""Real-world formats through ``ccs-data prepare`` and ``ccs-infer`` (SPEC sections 2, 3.6, 9): 44.1 and 48 kHz,
25, 29.97 and 30 fps, a variable frame rate, an odd size (853x480), VP9/Opus WebM, AV1, a phone video with a
rotation display matrix and audio that starts after the video. Each file's frames show their own index, so the
timing rule is checked frame by frame: frame k of a clip is the picture on screen at start + k/10."""

from __future__ import annotations

import io
import json
import tarfile
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from ccstereo import infer
from ccstereo.checkpoint import save_checkpoint
from ccstereo.config import preset
from ccstereo.model import build_model
from pipelines.contract import CLIP_SECONDS, FPS, SAMPLE_RATE
from pipelines.io import Ledger, read_jsonl, write_jsonl
from pipelines.prepare import prepare_dataset
from pipelines.spec import load_spec
from tests.helpers.formats import FormatCase, field_means, make_case, read_code

pytestmark = pytest.mark.slow  # about a minute: eight files encoded, prepared and inferred

H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "160k"]
VP9 = ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "8", "-crf", "32", "-b:v", "0"]  # realtime mode drops frames
AV1 = ["-c:v", "libsvtav1", "-preset", "12"]
OPUS = ["-c:a", "libopus"]
F = Fraction

CASES = [
    FormatCase("aac44k25fps", "mp4", (320, 180), F(25), 21.0, 44_100, H264, AAC),
    FormatCase("aac48k2997f", "mp4", (320, 180), F(30000, 1001), 12.0, 48_000, H264, AAC),
    FormatCase("mkv30fps48k", "mkv", (320, 180), F(30), 12.0, 48_000, H264, OPUS),
    FormatCase("variableFPS", "mkv", (320, 180), F(30), 12.0, 48_000, H264, AAC, slow_after_s=5.0),
    FormatCase("webmVP9odd1", "webm", (853, 480), F(30), 11.0, 48_000, VP9, OPUS),
    FormatCase("av1svtVideo", "mkv", (320, 180), F(25), 11.0, 48_000, AV1, OPUS),
    FormatCase("phoneRotate", "mp4", (320, 180), F(30), 11.0, 48_000, H264, AAC, rotation=90),
    FormatCase("lateAudio05", "mp4", (320, 180), F(25), 12.0, 48_000, H264, AAC, audio_offset_s=0.5, burst_at=2.0),
]
EXPECTED_CLIPS = {"aac44k25fps": 2}  # 21 s; the others are 11-12.5 s: one clip


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The cases as a fetched MUSIC-Stereo tree, prepared once."""
    root = tmp_path_factory.mktemp("formats")
    base = root / "music-stereo"
    (base / "media").mkdir(parents=True)
    ledger = Ledger(base / "ledger" / "fetch.jsonl")
    rows = []
    for case in CASES:
        path = make_case(case, base / "media")
        ledger.append({"video_id": case.video_id, "status": "done", "reason_class": None, "reason": "",
                       "files": {"media": f"media/{path.name}"}, "bytes": 0, "sha256": "0" * 64, "format": {},
                       "time": "2026-01-01T00:00:00+00:00"})
        rows.append({"video_id": case.video_id, "dataset": "music-stereo", "category": "violin", "lists": [],
                     "splits": {}, "upstream_projection": None, "stereo_layout": None, "video_itag": None,
                     "audio_itag": None, "audio_codec": None, "audio_layout": None})
    write_jsonl(base / "videos.jsonl", rows)
    summary = prepare_dataset(load_spec(dataset="music-stereo"), root, progress=False)
    return root, summary


def _clip_members(root, video_id):
    with tarfile.open(root / "music-stereo" / "prepared" / f"{video_id}.tar") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


@pytest.mark.parametrize("case", CASES, ids=[c.video_id for c in CASES])
def test_prepare_times_every_frame_and_counts_the_clips(prepared, case):
    root, _ = prepared
    videos = {r["video_id"]: r for r in read_jsonl(root / "music-stereo" / "videos-prepared.jsonl")}
    rec = videos[case.video_id]
    assert rec["status"] == "done", rec
    n_clips = EXPECTED_CLIPS.get(case.video_id, 1)
    assert rec["clips"] == n_clips, rec
    members = _clip_members(root, case.video_id)
    for c in range(n_clips):
        key = f"{case.video_id}_{c:04d}"
        meta = json.loads(members[f"{key}.json"])
        assert meta["start_s"] == c * CLIP_SECONDS and meta["n_frames"] == 100
        for k in range(0, 100, 3):
            frame = np.asarray(Image.open(io.BytesIO(members[f"{key}.f{k:03d}.jpg"])).convert("RGB"))
            # a phone video is shown turned 90 degrees counter-clockwise: the stored left field is at the bottom
            got = read_code(*field_means(frame, vertical=bool(case.rotation)))
            want = case.frame_on_screen(meta["start_s"] + k / FPS)
            assert got == want, (case.video_id, c, k, got, want)
        audio, sr = sf.read(io.BytesIO(members[f"{key}.audio.flac"]))
        assert sr == SAMPLE_RATE and audio.shape == (160_000, 2)
        if case.burst_at is not None:  # the burst sits at its time on the file's timeline, after the offset
            onset = np.argmax(np.abs(audio[:, 0]) > 0.1) / SAMPLE_RATE
            assert abs(onset - (case.burst_at + case.audio_offset_s)) < 0.01, onset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("fmt-ckpt") / "small.pt"
    torch.manual_seed(0)
    mc = preset("cpu-small", {"arch": "ccstereo"}).model
    save_checkpoint(path, {"model_config": mc.to_dict(), "model": build_model(mc).state_dict()})
    return path


def test_ccs_infer_reads_every_format(prepared, checkpoint, tmp_path):
    root, _ = prepared
    for case in CASES:
        video = next((root / "music-stereo" / "media").glob(f"{case.video_id}.*"))
        res = infer.infer_file(video, checkpoint, tmp_path / f"{case.video_id}.wav", hop=10_080)
        audio_s = case.seconds + case.audio_offset_s
        assert abs(res.n_samples / SAMPLE_RATE - audio_s) < 0.06, (case.video_id, res.n_samples)
        assert abs(res.n_frames - round(case.seconds * FPS)) <= 1, (case.video_id, res.n_frames)
        assert res.warnings == [], (case.video_id, res.warnings)
        out, sr = sf.read(tmp_path / f"{case.video_id}.wav")
        assert sr == SAMPLE_RATE and out.shape == (res.n_samples, 2) and np.abs(out).max() > 0
