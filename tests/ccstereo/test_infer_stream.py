"""Streaming inference (SPEC section 9): the streamed output equals the in-memory one to the bit, memory is bounded
by the batch and not the length, ccs-infer writes block by block, warns about cut-short files and audio/video
length mismatches, and every unreadable input is one line."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from ccstereo import infer
from ccstereo.checkpoint import save_checkpoint
from ccstereo.cli import infer_command
from ccstereo.config import preset
from ccstereo.constants import SEGMENT_SAMPLES
from ccstereo.infer import FrameGeometry, binauralize, binauralize_blocks
from ccstereo.model import build_model
from ccstereo.streaming import FrameCursor
from pipelines.contract import FRAME_HEIGHT, FRAME_WIDTH, SAMPLE_RATE
from pipelines.ffmpeg import run_ffmpeg
from pipelines.media import decode_audio, iter_frames
from tests.helpers.media import make_video

GEO = FrameGeometry(resize=(24, 48), crop=(16, 40))


class FrameAwareModel(torch.nn.Module):
    """A deterministic stand-in network whose output depends on the mono spectrogram and on the frame."""

    def forward(self, mono_spec, frame):
        return mono_spec * torch.tanh(frame.mean(dim=(1, 2, 3)))[:, None, None, None]


def _chunks(x: np.ndarray, rng: np.random.Generator, log: list[int] | None = None):
    i = 0
    while i < len(x):
        k = int(rng.integers(1, 9000))
        if log is not None:
            log.append(min(i + k, len(x)))
        yield x[i : i + k]
        i += k


@pytest.mark.parametrize("hop,tail,batch", [(1008, "pad", 7), (1600, "end", 4), (10_080, "pad", 1), (800, "end", 32)])
def test_streamed_output_equals_the_in_memory_one(hop, tail, batch):
    rng = np.random.default_rng(hop)
    n = 5 * SAMPLE_RATE + 777
    mono = rng.normal(0, 0.1, n).astype(np.float32)
    frames = rng.integers(0, 256, (53, 30, 60, 3), dtype=np.uint8)
    model = FrameAwareModel()
    whole = binauralize(mono, frames, model, GEO, hop=hop, tail=tail, batch_size=batch)
    blocks = list(binauralize_blocks(_chunks(mono, rng), FrameCursor(iter(frames)), model, GEO, hop=hop, tail=tail,
                                     batch_size=batch))
    assert len(blocks) > 1
    assert np.array_equal(np.concatenate(blocks, axis=1), whole)


def test_memory_is_bounded_by_the_batch_not_the_length():
    """Each output block leaves before the audio much beyond it has been read, and frames are read on demand."""
    rng = np.random.default_rng(1)
    n, hop, batch = 60 * SAMPLE_RATE, 1600, 8
    mono = rng.normal(0, 0.1, n).astype(np.float32)
    read: list[int] = []
    pulled = []

    def frame_stream():
        for k in range(n // 1600 + 10):
            pulled.append(k)
            yield np.full((30, 60, 3), k % 256, np.uint8)

    emitted = 0
    for block in binauralize_blocks(_chunks(mono, rng, read), FrameCursor(frame_stream()), FrameAwareModel(), GEO,
                                    hop=hop, batch_size=batch):
        emitted += block.shape[1]
        # what has been read beyond the output is at most a batch of hops, a window and one chunk
        assert read[-1] - emitted <= batch * hop + SEGMENT_SAMPLES + 9000
        if emitted < n:
            assert pulled[-1] <= (emitted + batch * hop + SEGMENT_SAMPLES) * 10 // SAMPLE_RATE + 1
    assert emitted == n


def test_frame_cursor_holds_the_last_frame_and_counts():
    frames = [np.full((2, 2, 3), k, np.uint8) for k in range(4)]
    cur = FrameCursor(iter(frames))
    assert cur(0)[0] == 0 and cur(2)[0] == 2 and cur(9)[0] == 3 and int(cur(9)[1][0, 0, 0]) == 3
    assert cur.count() == 4
    with pytest.raises(ValueError, match="forward"):
        cur(1)
    with pytest.raises(ValueError, match="clip.mp4: no video frames"):
        FrameCursor(iter([]), "clip.mp4")(0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    torch.manual_seed(0)
    mc = preset("cpu-small", {"arch": "ccstereo"}).model
    save_checkpoint(path, {"model_config": mc.to_dict(), "model": build_model(mc).state_dict()})
    return path


def test_infer_file_streams_what_the_in_memory_path_computes(tmp_path, checkpoint):
    video = tmp_path / "clip.mp4"
    make_video(video, 3.0)
    out = tmp_path / "out.wav"
    res = infer.infer_file(video, checkpoint, out, hop=4000, batch_size=3)
    assert res.warnings == [] and 29 <= res.n_frames <= 31
    got, sr = sf.read(out, dtype="float32")
    assert sr == SAMPLE_RATE and got.shape == (res.n_samples, 2)
    stereo = decode_audio(video, in_channels=2, out_channels=2)
    frames = np.stack(list(iter_frames(video)))
    assert frames.shape[1:] == (FRAME_HEIGHT, FRAME_WIDTH, 3) and len(frames) == res.n_frames
    model = infer.load_model(checkpoint, "cpu")
    want = binauralize(stereo[0] + stereo[1], frames, model, model.cfg, hop=4000, batch_size=3)
    back = np.clip(want, -1, 1)
    np.testing.assert_allclose(got.T, back, atol=1 / 32767 + 1e-6)
    assert not any(p.name.startswith(".out.wav") for p in tmp_path.iterdir())  # no temporary file left


def test_mono_video_stands_for_equal_channels(tmp_path, checkpoint):
    video = tmp_path / "mono.mp4"
    make_video(video, 1.5, stereo=False)
    res = infer.infer_file(video, checkpoint, tmp_path / "m.wav", hop=10_080)
    assert abs(res.n_samples - 1.5 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE and res.warnings == []
    with pytest.raises(ValueError, match="--compare needs a stereo audio track"):
        infer.infer_file(video, checkpoint, tmp_path / "m2.wav", compare=True)


def _av_file(path, audio_s, video_s):
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc=size=160x90:rate=25:duration={video_s}",
                "-f", "lavfi", "-i", f"anoisesrc=amplitude=0.2:sample_rate=44100:duration={audio_s}",
                "-filter_complex", "[1:a]pan=stereo|c0=c0|c1=0.5*c0[a]", "-map", "0:v", "-map", "[a]",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)])
    return path


def test_ccs_infer_warns_about_length_mismatch_and_cut_short_files(tmp_path, checkpoint):
    runner = CliRunner()
    longer_audio = _av_file(tmp_path / "long-audio.mp4", 4.0, 2.0)
    res = runner.invoke(infer_command, [str(longer_audio), "-c", str(checkpoint), "-o", str(tmp_path / "a.wav"),
                                        "--hop", "10080"])
    assert res.exit_code == 0, res.output
    assert "warning: " in res.stderr and "long-audio.mp4: audio lasts 4.0" in res.stderr and "video 2.0" in res.stderr
    whole = tmp_path / "whole.mkv"
    make_video(whole, 6.0)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # still readable, but half of it is gone
    res = runner.invoke(infer_command, [str(cut), "-c", str(checkpoint), "-o", str(tmp_path / "c.wav"),
                                        "--hop", "10080"])
    assert res.exit_code == 0, res.output
    assert "cut.mkv: truncated" in res.stderr
    clean = runner.invoke(infer_command, [str(whole), "-c", str(checkpoint), "-o", str(tmp_path / "w.wav"),
                                          "--hop", "10080"])
    assert clean.exit_code == 0 and "warning" not in clean.stderr


def test_every_unreadable_input_is_one_line(tmp_path, checkpoint):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not media" * 500)
    audio_only = tmp_path / "audio.m4a"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio_only)])
    video_only = tmp_path / "silent.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=160x90:duration=1", "-c:v", "libx264", str(video_only)])
    four = tmp_path / "quad.mkv"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=160x90:duration=1", "-f", "lavfi", "-i",
                "anoisesrc=duration=1", "-filter_complex", "[1:a]pan=4.0|c0=c0|c1=c0|c2=c0|c3=c0[a]",
                "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-c:a", "flac", str(four)])
    cases = {junk: "cannot be read as media", audio_only: "no video stream", video_only: "no audio stream",
             four: "4-channel audio"}
    for path, why in cases.items():
        res = CliRunner().invoke(infer_command, [str(path), "-c", str(checkpoint), "-o", str(tmp_path / "x.wav")])
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code != 0 and "Traceback" not in res.output, (path, res.output)
        assert len(lines) == 1 and why in lines[0], (path, res.output)
    assert not (tmp_path / "x.wav").exists()
    with pytest.raises(FileNotFoundError, match="missing.mp4: no such file"):
        infer.infer_file(tmp_path / "missing.mp4", checkpoint, tmp_path / "x.wav")
