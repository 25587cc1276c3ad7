"""Audio and frame decoding through ffmpeg's stdout (SPEC sections 2, 3, 5)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipelines.ffmpeg import run_ffmpeg
from pipelines.media import FrameSpec, MediaError, decode_audio, iter_audio, iter_frames
from pipelines.probe import probe
from tests.helpers.prepare_world import eqr_scene, eqr_to_eac

SR_IN = 48_000


def tones(freqs: list[float], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR_IN)) / SR_IN
    return np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in freqs], axis=1)


def dominant_hz(x: np.ndarray, sr: int = 16_000) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def test_ambisonic_opus_decodes_to_four_channels_in_acn_order(tmp_path):
    wav = tmp_path / "foa.wav"
    freqs = [300.0, 700.0, 1100.0, 1900.0]  # one tone per channel: W, Y, Z, X
    sf.write(wav, tones(freqs, 2.0), SR_IN)
    out = tmp_path / "foa.mkv"
    run_ffmpeg(["-i", str(wav), "-c:a", "libopus", "-mapping_family", "2", "-b:a", "256k", str(out)])
    assert probe(out).audio.layout == "ambisonic 1"  # the layout ffmpeg's resampler refuses without a remap
    audio = decode_audio(out, in_channels=4, out_channels=4)
    assert audio.dtype == np.float32 and audio.shape[0] == 4
    assert abs(audio.shape[1] - 32_000) < 400
    assert [round(dominant_hz(ch)) for ch in audio] == [round(f) for f in freqs]


def test_three_channel_stream_gets_a_silent_z(tmp_path):
    wav = tmp_path / "wyx.wav"
    sf.write(wav, tones([300.0, 700.0, 1900.0], 1.0), SR_IN)
    audio = decode_audio(wav, in_channels=3, out_channels=4)
    assert audio.shape == (4, 16_000)
    assert np.all(audio[2] == 0.0)
    assert [round(dominant_hz(audio[c])) for c in (0, 1, 3)] == [300, 700, 1900]


def test_stereo_decodes_at_16k_and_keeps_channel_order(tmp_path):
    wav = tmp_path / "st.wav"
    sf.write(wav, tones([440.0, 1000.0], 1.5), SR_IN)
    audio = decode_audio(wav, in_channels=2, out_channels=2)
    assert audio.shape == (2, 24_000)
    assert (round(dominant_hz(audio[0])), round(dominant_hz(audio[1]))) == (440, 1000)
    assert np.abs(audio).max() == pytest.approx(0.2, abs=0.01)


def test_audio_decode_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not media at all" * 100)
    with pytest.raises(MediaError, match="bad.mp4"):
        decode_audio(bad, in_channels=2, out_channels=2)


def _encode_frames(frames: np.ndarray, out, rate: int) -> None:
    n, h, w, _ = frames.shape
    run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(rate), "-i", "pipe:0",
                "-c:v", "ffv1", str(out)], input_bytes=frames.tobytes())


def test_frames_at_10_fps_frame_k_shows_time_k_over_10(tmp_path):
    # 3 s at 30 fps; source frame i has grey level 2*i, so output frame k must be source frame 3k
    n = 90
    src = np.repeat(np.repeat((2 * np.arange(n, dtype=np.uint8))[:, None, None, None], 48, 1), 64, 2)
    src = np.repeat(src, 3, axis=3)
    path = tmp_path / "ramp.mkv"
    _encode_frames(src, path, 30)
    frames = list(iter_frames(path, FrameSpec()))
    assert len(frames) == 30
    assert frames[0].shape == (240, 480, 3) and frames[0].dtype == np.uint8
    levels = [float(f.mean()) for f in frames]
    assert np.allclose(levels, [6.0 * k for k in range(30)], atol=1.5)
    assert len(list(iter_frames(path, FrameSpec(), max_frames=5))) == 5


def test_eac_and_equirectangular_frames_give_the_same_output(tmp_path):
    scene = eqr_scene(1280, 640, seed=3)
    eac = eqr_to_eac(scene, 1536, 1024)
    er_path, eac_path = tmp_path / "er.mkv", tmp_path / "eac.mkv"
    _encode_frames(scene[None], er_path, 10)
    _encode_frames(eac[None], eac_path, 10)
    out_er = next(iter_frames(er_path, FrameSpec(projection="ER"))).astype(float)
    out_eac = next(iter_frames(eac_path, FrameSpec(projection="EAC"))).astype(float)
    assert out_er.shape == out_eac.shape == (240, 480, 3)
    same = np.abs(out_er - out_eac).mean()
    assert same < 2.0
    # controls: the same scene turned by 90 degrees, and EAC pixels read as if they were ER, are far away
    turned = np.roll(scene, scene.shape[1] // 4, axis=1)
    turned_path = tmp_path / "turned.mkv"
    _encode_frames(turned[None], turned_path, 10)
    assert np.abs(out_er - next(iter_frames(turned_path, FrameSpec(projection="ER")))).mean() > 4 * same
    assert np.abs(out_er - next(iter_frames(eac_path, FrameSpec(projection="ER")))).mean() > 4 * same


def test_top_bottom_stereo_keeps_the_top_half(tmp_path):
    top = eqr_scene(640, 320, seed=5)
    bottom = np.zeros_like(top)
    path = tmp_path / "tb.mkv"
    _encode_frames(np.concatenate([top, bottom], axis=0)[None], path, 10)
    out = next(iter_frames(path, FrameSpec(projection="ER", top_bottom_stereo=True))).astype(float)
    ref = next(iter_frames(path, FrameSpec(projection="ER"))).astype(float)
    assert out.mean() > 1.5 * ref.mean()  # the black bottom half is gone
    top_path = tmp_path / "top.mkv"
    _encode_frames(top[None], top_path, 10)
    assert np.abs(out - next(iter_frames(top_path, FrameSpec(projection="ER")))).mean() < 2.0


def test_streamed_audio_equals_the_whole_decode(tmp_path):
    wav = tmp_path / "st.wav"
    sf.write(wav, tones([440.0, 1000.0], 2.3), SR_IN)
    whole = decode_audio(wav, in_channels=2, out_channels=2)
    chunks = list(iter_audio(wav, in_channels=2, out_channels=2, chunk_samples=5000))
    assert [c.shape[1] for c in chunks[:-1]] == [5000] * (len(chunks) - 1) and 0 < chunks[-1].shape[1] <= 5000
    assert np.array_equal(np.concatenate(chunks, axis=1), whole)
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not media" * 50)
    with pytest.raises(MediaError, match="bad.mkv: audio cannot be decoded"):
        list(iter_audio(bad, in_channels=2, out_channels=2))
