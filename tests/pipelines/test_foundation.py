"""Shared foundations: key format, atomic writes, ledgers, id validation, HRIRs, ambiX encoding, ffmpeg on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ccstereo import constants as M
from pipelines import contract as C
from pipelines.ambisonics import encode_plane_wave, sn3d_to_n3d
from pipelines.contract import DatasetLayout
from pipelines.hrir import load_kemar
from pipelines.ids import InvalidId, validate_id
from pipelines.io import Ledger, atomic_output, read_jsonl, write_jsonl


def test_constants_are_consistent():
    assert C.CLIP_SAMPLES == int(C.CLIP_SECONDS * C.SAMPLE_RATE)
    assert C.FRAMES_PER_CLIP == int(C.CLIP_SECONDS * C.FPS)
    assert M.N_FREQ == 257 and M.N_SEGMENT_FRAMES == 64


@pytest.mark.parametrize("video_id", ["-076WPWoCRE", "a_b-c_d-e_f", "000123"])
def test_sample_key_round_trip(video_id):
    key = C.sample_key(video_id, 7)
    assert "." not in key
    assert C.parse_sample_key(key) == (video_id, 7)


def test_sample_key_rejects_dots_and_bad_index():
    with pytest.raises(ValueError):
        C.sample_key("a.b", 0)
    with pytest.raises(ValueError):
        C.sample_key("abc", 10_000)
    with pytest.raises(ValueError):
        C.parse_sample_key("abc_12")


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as fh:
            fh.write(b"new partial")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_ledger_survives_a_torn_last_line(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append({"video_id": "a", "status": "failed"})
    with open(ledger.path, "ab") as fh:  # a crash in the middle of an append
        fh.write(b'{"video_id": "b", "sta')
    ledger.append({"video_id": "a", "status": "done"})
    latest = ledger.latest()
    assert latest["a"]["status"] == "done"
    assert "b" not in latest


def test_read_jsonl_rejects_corruption_in_the_middle(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match="x.jsonl:2"):
        read_jsonl(path)


def test_write_jsonl_round_trip(tmp_path):
    rows = [{"b": 2, "a": 1}, {"c": [1, 2]}]
    write_jsonl(tmp_path / "r.jsonl", rows)
    assert read_jsonl(tmp_path / "r.jsonl") == rows


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a" * 500, "abc", "abcdefghij/", "abc.def.ghi", ""])
def test_youtube_ids_are_validated(bad):
    with pytest.raises(InvalidId):
        validate_id(bad, "youtube")


def test_valid_ids_pass():
    assert validate_id("-076WPWoCRE", "youtube") == "-076WPWoCRE"
    assert validate_id("001871", "clip6") == "001871"
    with pytest.raises(InvalidId):
        validate_id("1871", "clip6")


def test_layout_paths_and_unknown_dataset(tmp_path):
    layout = DatasetLayout(tmp_path, "fair-play")
    assert layout.shard_path(3) == tmp_path / "fair-play" / "shards" / "fair-play-000003.tar"
    assert layout.split_list("5-split", "2", "test") == tmp_path / "fair-play" / "splits" / "5-split" / "2" / "test.txt"
    with pytest.raises(ValueError, match="invalid dataset name"):
        DatasetLayout(tmp_path, "../evil")


def _ild_db(hrir: np.ndarray) -> float:
    return 10 * np.log10(np.sum(hrir[0] ** 2) / np.sum(hrir[1] ** 2))


def test_kemar_loads_at_16k_with_left_positive_azimuth():
    kemar = load_kemar()
    assert kemar.samplerate == C.SAMPLE_RATE
    assert kemar.irs.shape[1] == 2
    assert _ild_db(kemar.nearest(90)) > 6  # source on the left: left ear louder
    assert _ild_db(kemar.nearest(-90)) < -6
    assert abs(_ild_db(kemar.nearest(0))) < 0.5


def test_kemar_loads_without_portaudio():
    """``import slab`` raises OSError without PortAudio; the loader must not."""
    code = (
        "import ctypes.util, sys\n"
        "orig = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda n: None if 'portaudio' in n else orig(n)\n"
        "from pipelines.hrir import load_kemar\n"
        "print(load_kemar().irs.shape[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 100


def test_plane_wave_encoding_ambix():
    s = np.ones(4)
    left = encode_plane_wave(s, 90.0)
    np.testing.assert_allclose(left[:, 0], [1, 1, 0, 0], atol=1e-12)  # W, Y(left), Z, X
    front = encode_plane_wave(s, 0.0)
    np.testing.assert_allclose(front[:, 0], [1, 0, 0, 1], atol=1e-12)
    up = encode_plane_wave(s, 0.0, 90.0)
    np.testing.assert_allclose(up[:, 0], [1, 0, 1, 0], atol=1e-12)
    moving = encode_plane_wave(s, np.array([0.0, 90.0, 180.0, -90.0]))
    np.testing.assert_allclose(moving[1], [0, 1, 0, -1], atol=1e-12)
    np.testing.assert_allclose(sn3d_to_n3d(left)[:, 0], [1, np.sqrt(3), 0, 0], atol=1e-12)


def test_ffmpeg_is_on_path_for_yt_dlp():
    from pipelines.ffmpeg import ensure_ffmpeg_on_path

    ensure_ffmpeg_on_path()
    found = shutil.which("ffmpeg")
    assert found is not None
    out = subprocess.run([found, "-version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "ffmpeg version" in out.stdout
    assert os.environ["PATH"].split(os.pathsep)[0] in found
