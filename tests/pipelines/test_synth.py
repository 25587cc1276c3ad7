"""The synthetic world: determinism, decoded media properties, spatial truth, faults, list formats.

Media properties are measured by decoding the files with ffmpeg's libraries (PyAV), never read back from the
generator's own bookkeeping; ``truth.jsonl`` only says what to expect.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest

from pipelines.ids import validate_id
from pipelines.io import read_jsonl
from pipelines.prepare import MIN_LR_DIFF
from pipelines.synth.audio import _block_weights, peak_normalise, render_binaural, render_foa, to_int16
from pipelines.synth.encode import AudioFormat, VideoFormat, encode_media
from pipelines.synth.frames import background_eqr, draw_frame
from pipelines.synth.plan import WORLD_SIZES, plan_world
from pipelines.synth.scene import (
    PALETTE,
    Scene,
    SceneStyle,
    SoundParams,
    Source,
    Trajectory,
    azimuth_to_u,
    azimuth_to_x,
    fold_into,
    sample_scene,
    u_to_azimuth,
    x_to_azimuth,
)
from pipelines.synth.specs import write_specs

# ------------------------------------------------------------------------------------------------ decoding helpers


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """[C, T] float32 and the sample rate of the first audio stream, decoded with libav (PyAV)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        chunks = []
        for frame in c.decode(stream):
            a = frame.to_ndarray()
            if not frame.format.is_planar:
                a = a.reshape(-1, len(frame.layout.channels)).T
            chunks.append(a.astype(np.float32))
        return np.concatenate(chunks, axis=1), int(stream.codec_context.sample_rate)


def decode_video(path: str | Path, keep: set[int] | None = None) -> tuple[int, dict[int, np.ndarray]]:
    """Number of decoded video frames and the rgb24 frames whose indices are in ``keep``."""
    import av

    kept: dict[int, np.ndarray] = {}
    n = 0
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            if keep and n in keep:
                kept[n] = frame.to_ndarray(format="rgb24")
            n += 1
    return n, kept


def world_truth(world: Path) -> list[dict]:
    return read_jsonl(world / "truth.jsonl")


def media_records(world: Path, dataset: str | None = None) -> list[dict]:
    return [r for r in world_truth(world) if r["dataset"] != "fair-play" and (dataset is None or r["dataset"] == dataset)]


def fairplay_members(world: Path, archive: str) -> dict[str, bytes]:
    with tarfile.open(world / "upstream" / "FAIR-Play" / archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getsampwidth() == 2
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels()).T / 32768.0
        return x, w.getframerate()


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_byte_identical_world_via_cli(tiny_world, tmp_path):
    """Second generation through the CLI: every file (media, archives, h5, lists, specs, truth) hashes equal."""
    from click.testing import CliRunner

    from pipelines.cli import main

    out = tmp_path / "again"
    result = CliRunner().invoke(main, ["synth", "--out", str(out), "--seed", "0", "--size", "tiny", "--port", "8765", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["videos"]["fair-play"] == WORLD_SIZES["tiny"].fairplay_clips
    first, second = file_hashes(tiny_world), file_hashes(out)
    assert sorted(first) == sorted(second)
    differing = [k for k in first if first[k] != second[k]]
    assert differing == []
    assert len(first) > 40


def test_another_seed_gives_another_world():
    a, b = plan_world(0, "tiny"), plan_world(1, "tiny")
    assert [it.video_id for it in a.items if it.dataset != "fair-play"] != [it.video_id for it in b.items if it.dataset != "fair-play"]
    assert [it.seed for it in a.items] != [it.seed for it in b.items]


def test_world_layout_and_ids(tiny_world):
    up = tiny_world / "upstream"
    for rel in [
        "MUSIC_dataset/MUSIC21_solo_videos.json",
        "MUSIC_dataset/MUSIC_duet_videos.json",
        "spatialaudiogen/scraping/video_formats.txt",
        "spatialaudiogen/scraping/audio_formats.txt",
        "FAIR-Play/videos.tar.gz",
        "FAIR-Play/audios.tar.gz",
        "FAIR-Play/splits.tar.gz",
    ] + [f"spatialaudiogen/meta/subsets/{s}{p}" for s in ("YT-Music", "YT-Clean") for p in (".lst", ".train.1.lst", ".test.1.lst")] + [
        f"PseudoBinaural/new_splits/split{k}/{p}.txt" for k in range(1, 6) for p in ("train", "val", "test")
    ]:
        assert (up / rel).is_file(), rel
    truth = world_truth(tiny_world)
    yt_ids = [r["video_id"] for r in truth if r["dataset"] != "fair-play"]
    assert len(set(yt_ids)) == len(yt_ids)
    for vid in yt_ids:
        validate_id(vid, "youtube")
    assert any("-" in v for v in yt_ids) and any("_" in v for v in yt_ids) and any(v.startswith("-") for v in yt_ids)
    fp = [r["video_id"] for r in truth if r["dataset"] == "fair-play"]
    assert fp == [f"{k:06d}" for k in range(1, len(fp) + 1)]
    for r in truth:
        if r["dataset"] == "fair-play":
            continue
        assert (tiny_world / r["file"]).is_file() == ("missing" not in r["faults"]), r["video_id"]
        ext = "mp4" if r["dataset"] == "music-stereo" else "mkv"
        assert r["file"] == f"media/{r['video_id']}.{ext}"


def test_every_fault_is_present_in_the_tiny_world(tiny_world):
    truth = world_truth(tiny_world)
    for fault in ("mono-as-stereo", "one-channel", "truncated", "no-audio", "missing", "too-short", "av-length-mismatch",
                  "wxy", "mislabelled-projection"):
        assert any(fault in r["faults"] for r in truth), fault
    assert sum(1 for r in media_records(tiny_world) if not r["faults"]) >= 6  # clean videos remain for the pipeline


# ------------------------------------------------------------------------------------------------ upstream lists


def test_music_json_lists_all_music_ids(tiny_world):
    base = tiny_world / "upstream" / "MUSIC_dataset"
    listed = []
    for name in ("MUSIC21_solo_videos.json", "MUSIC_duet_videos.json"):
        doc = json.loads((base / name).read_text())
        assert set(doc) == {"version", "videos"} and isinstance(doc["videos"], dict)
        for cat, ids in doc["videos"].items():
            assert isinstance(cat, str) and all(isinstance(i, str) for i in ids)
            listed += ids
    duet = json.loads((base / "MUSIC_duet_videos.json").read_text())["videos"]
    assert all(" " in k for k in duet)
    assert sorted(listed) == sorted(r["video_id"] for r in media_records(tiny_world, "music-stereo"))


@pytest.mark.parametrize("subset, dataset", [("YT-Music", "yt-music"), ("YT-Clean", "yt-clean")])
def test_spatialaudiogen_lists(tiny_world, subset, dataset):
    sub = tiny_world / "upstream" / "spatialaudiogen" / "meta" / "subsets"
    texts = {p: (sub / f"{subset}{p}").read_bytes() for p in (".lst", ".train.1.lst", ".test.1.lst")}
    for p, data in texts.items():
        assert not data.endswith(b"\n"), f"{subset}{p}: the last line has no newline upstream"
    all_ids = texts[".lst"].decode().split("\n")
    train, test = texts[".train.1.lst"].decode().split("\n"), texts[".test.1.lst"].decode().split("\n")
    assert sorted(train + test) == sorted(all_ids) and not set(train) & set(test)
    truth = {r["video_id"]: r for r in media_records(tiny_world, dataset)}
    assert sorted(all_ids) == sorted(truth)
    scraping = tiny_world / "upstream" / "spatialaudiogen" / "scraping"
    vrows = {l.split()[0]: l.split() for l in scraping.joinpath("video_formats.txt").read_text().splitlines()}
    arows = {l.split()[0]: l.split() for l in scraping.joinpath("audio_formats.txt").read_text().splitlines()}
    for vid, rec in truth.items():
        _, itag, stereo, label = vrows[vid]
        assert itag.isdigit() and stereo in ("MONO", "STEREO") and label in ("EAC", "ER")
        assert label == rec["upstream_projection"]
        assert (label != rec["projection"]) == ("mislabelled-projection" in rec["faults"])
        _, aitag, codec, layout = arows[vid]
        assert (aitag, codec) in (("338", "opus"), ("327", "aac")) and layout in ("WXYZ", "WXY")
        assert (layout == "WXY") == ("wxy" in rec["faults"])
    unlisted = set(vrows) - {r["video_id"] for r in media_records(tiny_world)}
    assert len(unlisted) == 3 and unlisted == set(arows) - {r["video_id"] for r in media_records(tiny_world)}


def test_fairplay_split_files(tiny_world):
    import h5py

    clips = {r["video_id"] for r in world_truth(tiny_world) if r["dataset"] == "fair-play"}
    splits = fairplay_members(tiny_world, "splits.tar.gz")
    assert sorted(splits) == sorted(f"splits/split{k}/{p}.h5" for k in range(1, 11) for p in ("train", "val", "test"))
    for k in range(1, 11):
        parts = {}
        for p in ("train", "val", "test"):
            with h5py.File(io.BytesIO(splits[f"splits/split{k}/{p}.h5"]), "r") as f:
                parts[p] = [Path(b.decode()).stem for b in f["audio"][()]]
        assert sorted(sum(parts.values(), [])) == sorted(clips), k
        assert parts["val"] and parts["test"]
    tests = []
    base = tiny_world / "upstream" / "PseudoBinaural" / "new_splits"
    for k in range(1, 6):
        parts = {p: (base / f"split{k}" / f"{p}.txt").read_bytes() for p in ("train", "val", "test")}
        assert not any(v.endswith(b"\n") for v in parts.values())
        names = {p: v.decode().split("\n") for p, v in parts.items()}
        assert all(n.endswith(".mp3") and len(n) == 10 for v in names.values() for n in v)
        assert sorted(n[:6] for v in names.values() for n in v) == sorted(clips)
        tests.append(set(names["test"]))
    assert len(set.union(*tests)) < sum(len(t) for t in tests)  # test sets of different splits overlap


def test_fairplay_archives_are_deterministic_tars(tiny_world):
    for name, prefix, ext in (("videos.tar.gz", "videos/", ".mp4"), ("audios.tar.gz", "binaural_audios/", ".wav")):
        raw = (tiny_world / "upstream" / "FAIR-Play" / name).read_bytes()
        assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            members = tar.getmembers()
        files = [m for m in members if m.isfile()]
        assert [m.name for m in files] == sorted(m.name for m in files)
        assert all(m.name.startswith(prefix) and m.name.endswith(ext) for m in files)
        assert len({m.mtime for m in members}) == 1 and {m.uid for m in members} == {0}


# ------------------------------------------------------------------------------------------------ decoded media


def test_decoded_media_match_truth(tiny_world):
    """Channels, sample rate, duration and frame count of every decodable YouTube-like video, decoded."""
    import av

    checked = 0
    for r in media_records(tiny_world):
        path = tiny_world / r["file"]
        if not r["exists"]:
            continue
        if "truncated" in r["faults"]:
            # an interrupted download: either unreadable, or it decodes to noticeably less than its length
            try:
                n, _ = decode_video(path)
            except av.error.FFmpegError:
                continue
            assert n < 0.9 * r["duration_s"] * r["fps"], r["video_id"]
            continue
        n_frames, kept = decode_video(path, keep={0})
        assert n_frames == round(r["duration_s"] * r["fps"]), r["video_id"]
        h, w, _ = kept[0].shape
        assert (w, h) == (r["width"], r["height"]), r["video_id"]
        with av.open(str(path)) as c:
            assert c.streams.video[0].codec_context.name == "h264"
            if "no-audio" in r["faults"]:
                assert len(c.streams.audio) == 0
                continue
            assert c.streams.audio[0].codec_context.name == r["audio_codec"]
        x, rate = decode_audio(path)
        assert rate == r["sample_rate"] and x.shape[0] == r["audio_channels"], r["video_id"]
        assert abs(x.shape[1] / rate - r["audio_duration_s"]) < 0.06, r["video_id"]
        assert float(np.sqrt(np.mean(x**2))) > 1e-3  # audible, far above digital silence
        assert float(np.max(np.abs(x))) < 0.99  # no clipping
        checked += 1
    assert checked >= 10


def test_music_like_formats_vary(tiny_world):
    recs = [r for r in media_records(tiny_world, "music-stereo") if r["exists"] and "truncated" not in r["faults"]]
    assert len({r["sample_rate"] for r in recs}) > 1 and len({(r["width"], r["height"]) for r in recs}) > 1
    assert len({r["fps"] for r in recs}) > 1
    assert all(12.0 <= r["duration_s"] <= 35.0 for r in recs)


def test_fault_media_behave_as_labelled(tiny_world, world_server):
    import av

    for r in media_records(tiny_world):
        path = tiny_world / r["file"]
        if "missing" in r["faults"]:
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(world_server.url(r["file"]), timeout=10)
            assert err.value.code == 404
        if "too-short" in r["faults"]:
            assert decode_video(path)[0] / r["fps"] < 10.0
        if "av-length-mismatch" in r["faults"]:
            x, rate = decode_audio(path)
            assert abs(x.shape[1] / rate - decode_video(path)[0] / r["fps"]) > 1.0
        if "one-channel" in r["faults"]:
            assert decode_audio(path)[0].shape[0] == 1
        if "wxy" in r["faults"]:
            x, _ = decode_audio(path)
            rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
            assert x.shape[0] == 4 and rms[2] < 1e-4 * rms[0]  # ACN 2 = Z is silent
        if r["audio_codec"] == "opus" and r["exists"] and "truncated" not in r["faults"]:
            with av.open(str(path)) as c:  # YouTube's 4-channel opus decodes with the "ambisonic 1" layout
                assert c.streams.audio[0].codec_context.layout.name == "ambisonic 1"


def test_mono_as_stereo_is_far_below_the_filter_and_binaural_above(tiny_world):
    for r in media_records(tiny_world, "music-stereo"):
        if not r["exists"] or {"truncated", "one-channel"} & set(r["faults"]):
            continue
        x, _ = decode_audio(tiny_world / r["file"])
        lr_diff = float(np.mean(np.abs(x[0].astype(np.float64) - x[1])))
        if "mono-as-stereo" in r["faults"]:
            assert 0.0 < lr_diff < MIN_LR_DIFF / 100, lr_diff  # lossy coding: near 1e-6, not exact zeros
        else:
            assert lr_diff > 5 * MIN_LR_DIFF, (r["video_id"], lr_diff)


# ------------------------------------------------------------------------------------------------ projection layout


def _row_jump(frame: np.ndarray, row: int) -> float:
    """Median over columns of the change from row-1 to row: a seam spans the width, a shape's edge does not."""
    f = frame.astype(np.float64)
    return float(np.median(np.abs(f[row] - f[row - 1]).sum(axis=1)))


def test_projection_layout_of_decoded_frames(tiny_world):
    """EAC frames (3:2) show the seam between the cube rows at H/2; EQR frames (2:1) wrap left-right and have
    uniform poles."""
    seams = {"EAC": [], "ER": []}
    for r in media_records(tiny_world):
        if r["projection"] is None or not r["exists"] or "truncated" in r["faults"]:
            continue
        _, kept = decode_video(tiny_world / r["file"], keep={0, 40, 80})
        frames = list(kept.values())
        h, w, _ = frames[0].shape
        if r["projection"] == "EAC":
            assert w * 2 == h * 3
        else:
            assert w == 2 * h
            wrap = np.mean([np.mean(np.abs(f[:, 0].astype(float) - f[:, -1])) for f in frames])
            interior = np.mean([np.mean(np.abs(np.diff(f.astype(float), axis=1))) for f in frames])
            assert wrap < 3 * interior + 2.0, r["video_id"]
            assert np.mean([f[0].astype(float).std(axis=0).mean() for f in frames]) < 3.0  # the top pole
        others = [k for k in range(2, h - 2) if abs(k - h // 2) > 1]
        ratio = np.mean([_row_jump(f, h // 2) / (np.mean([_row_jump(f, k) for k in others]) + 1.0) for f in frames])
        seams[r["projection"]].append(ratio)
    assert seams["EAC"] and seams["ER"]
    assert min(seams["EAC"]) > 10.0 and max(seams["ER"]) < 3.0, seams


def test_eqr_background_wraps_and_has_uniform_poles():
    bg = background_eqr(np.random.default_rng(3), 256, 128).astype(float)
    assert np.abs(bg[:, 0] - bg[:, -1]).mean() < 2.0
    assert bg[0].std(axis=0).max() < 1.0 and bg[-1].std(axis=0).max() < 1.0


# ------------------------------------------------------------------------------------------------ spatial truth


def _single_source_scene(az: float, kind: str = "noise", seconds: float = 2.0) -> Scene:
    sound = SoundParams(kind=kind, seed=5, activity=0.95)
    src = Source(kind, "blue" if kind == "noise" else "red", "square" if kind == "noise" else "disc", 0.2, 0.0,
                 Trajectory(az, 0.0), sound)
    return Scene(seconds, (src,))


@pytest.mark.parametrize("az, louder", [(60.0, 0), (-60.0, 1)])
def test_source_at_60_degrees_is_louder_on_its_side_after_encoding(tmp_path, az, louder):
    """Render, encode to h264 + AAC mp4 exactly as the world does, decode, compare channel levels."""
    scene = _single_source_scene(az)
    x = peak_normalise(render_binaural(scene, 44100), 0.5)
    frames = [draw_frame(np.full((90, 160, 3), 100, np.uint8), scene, t / 10, False).tobytes() for t in range(20)]
    path = tmp_path / "one.mp4"
    encode_media(path, "mp4", frames, VideoFormat(160, 90, 10), to_int16(x), AudioFormat("aac", 44100))
    y, rate = decode_audio(path)
    assert rate == 44100 and y.shape[0] == 2
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2, axis=1))
    ild_db = 20 * np.log10(rms[louder] / rms[1 - louder])
    assert ild_db > 6.0, ild_db
    # the picture agrees: the shape sits left of centre for +60 (x = W * (0.5 - 60/180)), right for -60
    _, kept = decode_video(path, keep={5})
    blue = np.abs(kept[5].astype(int) - PALETTE["blue"]).sum(axis=2) < 60
    cx = np.nonzero(blue)[1].mean()
    assert abs(x_to_azimuth(cx + 0.5, 160) - az) < 4.0


def test_fairplay_clips_ild_and_picture_agree_with_truth(tiny_world):
    """Every single-source clip: the decoded wav is louder on the source's side, and the decoded frame shows the
    source's colour where its azimuth says."""
    truth = {r["video_id"]: r for r in world_truth(tiny_world) if r["dataset"] == "fair-play"}
    audios = fairplay_members(tiny_world, "audios.tar.gz")
    videos = fairplay_members(tiny_world, "videos.tar.gz")
    checked = 0
    for cid, r in truth.items():
        x, rate = read_wav(audios[f"binaural_audios/{cid}.wav"])
        assert x.shape == (2, 160_000) and rate == 16_000
        if len(r["sources"]) != 1:
            continue
        src = r["sources"][0]
        az = np.asarray(src["azimuth_deg"])
        assert len(az) == 100 and np.all(np.abs(az) >= 30)
        rms = np.sqrt(np.mean(x**2, axis=1))
        assert np.sign(20 * np.log10(rms[0] / rms[1])) == np.sign(az.mean()), cid
        tmp = io.BytesIO(videos[f"videos/{cid}.mp4"])
        import av

        with av.open(tmp) as c:
            for k, frame in enumerate(c.decode(video=0)):
                if k == 50:
                    img = frame.to_ndarray(format="rgb24")
                    break
        mask = np.abs(img.astype(int) - src["rgb"]).sum(axis=2) < 60
        cols = np.nonzero(mask)[1]
        if cols.size and 0 < cols.min() and cols.max() < img.shape[1] - 1:  # fully inside the picture
            assert abs(x_to_azimuth(cols.mean() + 0.5, img.shape[1]) - az[50]) < 5.0, cid
        checked += 1
    assert checked >= 5


def test_foa_single_source_gains_point_at_the_source():
    scene = _single_source_scene(90.0, seconds=1.0)
    foa = render_foa(scene, 16000)
    w, y, z, xx = foa
    assert np.allclose(y, w, atol=1e-9) and np.allclose(z, 0) and np.allclose(xx, 0, atol=1e-9)  # +90 = left: Y = W
    assert np.all(render_foa(scene, 16000, horizontal_only=True)[2] == 0)


def test_mono_mix_is_independent_of_position_by_construction():
    """Sources keep their sound when only their position changes: the dry signal depends on the sound only."""
    a, b = _single_source_scene(60.0), _single_source_scene(-60.0)
    la, lb = render_binaural(a, 16000), render_binaural(b, 16000)
    # mirror symmetry of the KEMAR head: swapping sides swaps the ears; the mono mixes match closely
    assert np.corrcoef(la.sum(0), lb.sum(0))[0, 1] > 0.95


# ------------------------------------------------------------------------------------------------ pure maths


def test_azimuth_pixel_mappings():
    assert azimuth_to_x(90.0, 480) == 0 and azimuth_to_x(0.0, 480) == 240 and azimuth_to_x(-90.0, 480) == 480
    assert azimuth_to_u(90.0, 480) == 120 and azimuth_to_u(0.0, 480) == 240 and azimuth_to_u(-90.0, 480) == 360
    az = np.linspace(-179, 179, 37)
    assert np.allclose(u_to_azimuth(azimuth_to_u(az, 480), 480), az)
    assert np.allclose(x_to_azimuth(azimuth_to_x(az / 2, 480), 480), az / 2)


def test_fold_keeps_moving_sources_in_range():
    t = np.linspace(0, 100, 1001)
    az = fold_into(70 + 5 * t, -80, 80)
    assert az.min() >= -80 and az.max() <= 80
    assert np.max(np.abs(np.diff(az))) <= 5 * 0.1 + 1e-9  # continuous: bounces, never jumps


def test_block_crossfade_weights_sum_to_one():
    idx = np.array([3, 3, 4, 7, 7, 2])
    w = _block_weights(6 * 160 - 37, 160, idx)
    total = sum(w.values())
    assert np.allclose(total, 1.0)
    assert set(w) == {2, 3, 4, 7}


def test_lateral_scenes_stay_lateral_and_separated():
    style = SceneStyle(n_sources=(2,), lateral=True, p_moving=1.0, max_velocity_deg_s=4.0)
    for seed in range(30):
        scene = sample_scene(np.random.default_rng(seed), 10.0, style)
        tracks = [s.azimuth_per_frame(10.0) for s in scene.sources]
        for tr in tracks:
            assert len(tr) == 100 and np.all(np.abs(tr) >= 35 - 1e-9) and np.all(np.abs(tr) <= 85 + 1e-9)
        assert len({s.color for s in scene.sources}) == 2


def test_write_specs_for_another_port_changes_only_urls(tiny_world, tmp_path):
    write_specs(tiny_world, 40001, specs_dir=tmp_path / "a")
    write_specs(tiny_world, 40002, specs_dir=tmp_path / "b")
    for p in (tmp_path / "a").iterdir():
        a, b = p.read_text(), (tmp_path / "b" / p.name).read_text()
        assert "127.0.0.1:40001" in a and a.replace("40001", "40002") == b


def test_a_subset_regenerates_to_the_same_bytes(tiny_world, tmp_path):
    """Each video draws from its own seed: regenerating two of them alone gives the same files and lists."""
    from pipelines.synth.world import generate_world

    recs = media_records(tiny_world)
    pick = [next(r for r in recs if r["dataset"] == "music-stereo" and not r["faults"]),
            next(r for r in recs if r["projection"] == "EAC" and not r["faults"])]
    out = tmp_path / "subset"
    generate_world(out, seed=0, size="tiny", port=8765, only={r["video_id"] for r in pick}, progress=False)
    for r in pick:
        assert (out / r["file"]).read_bytes() == (tiny_world / r["file"]).read_bytes()
    for rel in ("upstream/spatialaudiogen/scraping/video_formats.txt", "upstream/MUSIC_dataset/MUSIC21_solo_videos.json",
                "upstream/PseudoBinaural/new_splits/split3/test.txt", "specs/yt-music.toml"):
        assert (out / rel).read_bytes() == (tiny_world / rel).read_bytes(), rel
    assert not (out / "specs" / "fair-play.toml").exists()  # its archives were not generated
    sub_truth = {r["video_id"]: r for r in world_truth(out)}
    assert all(sub_truth[r["video_id"]] == r for r in pick)
