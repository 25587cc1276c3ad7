"""Sliding-window + TDSS inference (SPEC section 9): exactness via an oracle model, window/frame bookkeeping,
TDSS crops, and decoding a real video file with ffmpeg."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ccstereo import infer
from ccstereo.audio import istft_ri, stft_ri
from ccstereo.constants import SEGMENT_SAMPLES
from ccstereo.frames import segment_frame_index
from ccstereo.infer import (
    FrameGeometry,
    binauralize,
    padded_length,
    prepare_frame,
    tdss_crop_origin,
    window_starts,
)
from ccstereo.metrics import compute_metrics
from pipelines.contract import FRAME_HEIGHT, FRAME_WIDTH, SAMPLE_RATE

GEO = FrameGeometry(resize=(24, 48), crop=(16, 40))  # small frames keep the tests fast


class OracleModel(torch.nn.Module):
    """Returns the true STFT of L - R for each window it is given, at the scale of the window's input.

    It identifies the window by matching the (RMS-scaled) mono it receives against every candidate window of
    the clip, so it works whatever the batching; it also checks that each window got the right frame.
    """

    def __init__(self, stereo: np.ndarray, frames: np.ndarray, hop: int, tdss: bool, tail: str = "pad"):
        super().__init__()
        self.stereo = torch.from_numpy(stereo).double()
        self.mono = self.stereo.sum(0)
        self.starts = window_starts(self.mono.numel(), hop, tail=tail)
        n = padded_length(self.mono.numel(), self.starts)
        self.mono = torch.nn.functional.pad(self.mono, (0, n - self.mono.numel()))
        self.diff = torch.nn.functional.pad(self.stereo[0] - self.stereo[1], (0, n - self.stereo.shape[1]))
        self.frames, self.tdss = frames, tdss
        self.calls = 0
        self.seen_starts: list[int] = []

    def forward(self, mono_spec: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        got = istft_ri(mono_spec, SEGMENT_SAMPLES).double()
        cands = torch.stack([self.mono[s : s + SEGMENT_SAMPLES] for s in self.starts])
        out = []
        for g, img in zip(got, frame):
            err = ((g / g.norm())[None] - cands / cands.norm(dim=1, keepdim=True)).norm(dim=1)
            k = int(err.argmin())
            s = self.starts[k]
            self.seen_starts.append(s)
            idx = segment_frame_index(s, len(self.frames))
            want = prepare_frame(self.frames[idx], idx, GEO, self.tdss)
            assert torch.equal(img, want), f"window at {s} got the wrong frame"
            scale = g.norm() / cands[k].norm()
            out.append(scale * self.diff[s : s + SEGMENT_SAMPLES])
        return stft_ri(torch.stack(out).float())


def _clip(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    src1 = np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    src2 = rng.normal(0, 0.2, n) * (t > 0.8)
    left = 0.3 * src1 + 0.1 * src2
    right = 0.1 * src1 + 0.3 * np.roll(src2, 5)
    return np.stack([left, right]).astype(np.float32)


def _frames(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (n, 30, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("hop,tdss,batch,tail", [(1600, True, 8, "end"), (1008, False, 3, "pad"),
                                                  (800, True, 64, "pad"), (1008, True, 5, "end")])
def test_oracle_model_reconstructs_ground_truth(hop, tdss, batch, tail):
    rng = np.random.default_rng(0)
    n = 3 * SAMPLE_RATE + 123  # not a multiple of the hop: the last window passes the end or is end-aligned
    stereo = _clip(rng, n)
    frames = _frames(31, rng)
    oracle = OracleModel(stereo, frames, hop, tdss, tail)
    out = binauralize(stereo.sum(0), frames, oracle, GEO.__dict__, hop=hop, tdss=tdss, batch_size=batch, tail=tail)
    assert out.shape == (2, n) and out.dtype == np.float32
    assert np.abs(out - stereo).max() < 1e-5 * np.abs(stereo).max()  # float32 STFT round trip
    assert compute_metrics(out, stereo)["STFT"] < 1e-9
    assert sorted(oracle.seen_starts) == window_starts(n, hop, tail=tail)  # every window exactly once
    assert oracle.calls == -(-len(window_starts(n, hop, tail=tail)) // batch)  # batched


def test_short_clip_and_silence_are_handled():
    rng = np.random.default_rng(1)
    stereo = _clip(rng, 5000)  # shorter than one window
    frames = _frames(1, rng)
    out = binauralize(stereo.sum(0), frames, OracleModel(stereo, frames, 1600, True), GEO, hop=1600)
    assert np.abs(out - stereo).max() < 1e-3 * np.abs(stereo).max()
    silent = np.zeros(SEGMENT_SAMPLES * 2, dtype=np.float32)
    zero = ZeroModel()
    out = binauralize(silent, frames, zero, GEO)
    assert np.all(out == 0)


class ZeroModel(torch.nn.Module):
    """Mono-Mono: predicts no difference."""

    def forward(self, mono_spec, frame):
        return torch.zeros_like(mono_spec)


def test_zero_difference_gives_half_mono_in_both_channels():
    rng = np.random.default_rng(2)
    stereo = _clip(rng, SAMPLE_RATE * 2)
    out = binauralize(stereo.sum(0), _frames(20, rng), ZeroModel(), GEO)
    np.testing.assert_allclose(out[0], stereo.sum(0) / 2, atol=1e-7)
    np.testing.assert_array_equal(out[0], out[1])


def test_window_starts_and_frame_pairing():
    assert window_starts(SEGMENT_SAMPLES) == [0] == window_starts(SEGMENT_SAMPLES, tail="end")
    assert window_starts(100) == [0] and padded_length(100, [0]) == SEGMENT_SAMPLES
    # released code on a 10 s clip: hop int(0.1 x 10080) = 1008, ceil((160000 - 10080) / 1008) = 149 slides,
    # so 150 windows from 0 to 150,192, the clip zero-padded to 150,192 + 10,080 = 160,272 samples
    s = window_starts(SAMPLE_RATE * 10)
    assert len(s) == 150 and s[:2] == [0, 1008] and s[-1] == 150_192
    assert padded_length(SAMPLE_RATE * 10, s) == 160_272
    assert window_starts(SEGMENT_SAMPLES + 1008, 1008) == [0, 1008]  # an exact fit needs no padding
    assert window_starts(SEGMENT_SAMPLES + 1009, 1008) == [0, 1008, 2016]
    s = window_starts(SAMPLE_RATE * 10, 1600, tail="end")
    assert s[0] == 0 and s[1] == 1600 and s[-1] == SAMPLE_RATE * 10 - SEGMENT_SAMPLES
    assert all(b - a <= 1600 for a, b in zip(s, s[1:]))
    assert len(s) == 95  # 0..150400 every 1600 = 95 windows, the last ends at 160,480 > clip -> end-aligned
    assert s[-2] == 148800
    with pytest.raises(ValueError, match="tail"):
        window_starts(SAMPLE_RATE, tail="wrap")
    # centre of the first window is 0.315 s -> nearest frame 3; of the last, 9.685 s -> nearest frame 97
    assert segment_frame_index(0, 100) == 3
    assert segment_frame_index(s[-1], 100) == 97
    assert segment_frame_index(s[-1], 50) == 49  # fewer frames than the audio needs: clamp to the last
    with pytest.raises(ValueError, match="hop"):
        window_starts(1000, 0)
    with pytest.raises(ValueError, match="hop"):  # samples between windows would get no prediction
        window_starts(SAMPLE_RATE * 10, SEGMENT_SAMPLES + 1)


def test_tdss_crops_cycle_through_five_positions():
    size, crop = (FRAME_HEIGHT, FRAME_WIDTH), (224, 448)
    got = [tdss_crop_origin(i, size, crop) for i in range(6)]  # 0-based frames; the 5th (index 4) is top-left
    assert got == [(0, 32), (16, 0), (16, 32), (8, 16), (0, 0), (0, 32)]
    # the crop really is that region of the (already 480x240) frame: mark pixels with their coordinates
    yy, xx = np.meshgrid(np.arange(FRAME_HEIGHT), np.arange(FRAME_WIDTH), indexing="ij")
    frame = np.stack([yy % 256, xx % 256, (xx // 256) * 100], axis=-1).astype(np.uint8)
    out = prepare_frame(frame, 2, FrameGeometry(), tdss=True)  # bottom-right
    assert out.shape == (3, 224, 448)
    red = out[0] * 0.229 + 0.485
    assert torch.isclose(red[0, 0], torch.tensor(16 / 255), atol=1e-6)
    green = out[1] * 0.224 + 0.456
    assert torch.isclose(green[0, 0], torch.tensor(32 / 255), atol=1e-6)
    # without TDSS the whole frame is resized to the crop size: the corners of the frame stay in view
    full = prepare_frame(frame, 2, FrameGeometry(), tdss=False)
    assert full.shape == (3, 224, 448)
    assert not torch.equal(full, out)


def test_each_frame_is_prepared_once(monkeypatch):
    calls = []
    real = infer.prepare_frame
    monkeypatch.setattr(infer, "prepare_frame", lambda f, i, g, t: calls.append(i) or real(f, i, g, t))
    rng = np.random.default_rng(3)
    stereo = _clip(rng, SAMPLE_RATE * 4)
    binauralize(stereo.sum(0), _frames(40, rng), ZeroModel(), GEO, hop=800)  # ~2 windows per frame
    assert len(calls) == len(set(calls))
    assert len(calls) < len(window_starts(SAMPLE_RATE * 4, 800))


def test_bad_inputs_raise():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="mono"):
        binauralize(np.zeros((2, 100)), _frames(1, rng), ZeroModel(), GEO)
    with pytest.raises(ValueError, match="frames"):
        binauralize(np.zeros(100), np.zeros((0, 30, 60, 3), np.uint8), ZeroModel(), GEO)
    with pytest.raises(ValueError, match="crop"):
        infer.frame_geometry({"resize": (10, 10), "crop": (20, 20)})
