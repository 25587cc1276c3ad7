"""Metrics (SPEC section 10) against an independent numpy/scipy reference, plus their defining properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.metrics_reference import reference_metrics
from ccstereo.metrics import METRIC_NAMES, compute_metrics, compute_metrics_batch, mean_metrics
from pipelines.contract import SAMPLE_RATE


def _real_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """A binaural-ish clip: harmonic tone + noise burst, right channel delayed and attenuated, over a faint noise
    floor as every recording has (without it, bins far from the tone hold only rounding noise, whose phase
    -- and so Phs -- no two FFT implementations agree on)."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(150, 600)
    tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    env = np.clip(np.sin(2 * np.pi * 0.7 * t), 0, None)
    burst = rng.normal(0, 0.3, n) * (t > t[-1] / 2)
    src = 0.2 * (tone * env + burst)
    delay = int(rng.integers(1, 12))
    left = src
    right = 0.6 * np.concatenate([np.zeros(delay), src[:-delay]])
    return np.stack([left, right]) + rng.normal(0, 1e-4, (2, n))


def _close(a: dict, b: dict, rtol: float = 1e-5) -> None:
    for k in METRIC_NAMES:
        assert np.isclose(a[k], b[k], rtol=rtol, atol=1e-12), (k, a[k], b[k])


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_matches_reference_on_random_and_real_like_signals(pad_mode):
    rng = np.random.default_rng(0)
    n = 16_000 * 2 + 37  # odd length, not a multiple of the hop: exercises framing and the Hilbert parity
    cases = [
        (rng.normal(0, 0.3, (2, n)), rng.normal(0, 0.3, (2, n))),
        (_real_like(rng, n), _real_like(rng, n)),
    ]
    true = _real_like(rng, n)
    cases.append((true + rng.normal(0, 0.01, true.shape), true))  # a good prediction: small distances
    for pred, true in cases:
        _close(compute_metrics(pred, true, pad_mode=pad_mode), reference_metrics(pred, true, pad_mode))


def test_batched_equals_per_clip_and_accepts_torch_float32():
    rng = np.random.default_rng(1)
    pred = np.stack([_real_like(rng, 8000) for _ in range(5)]).astype(np.float32)
    true = np.stack([_real_like(rng, 8000) for _ in range(5)]).astype(np.float32)
    batched = compute_metrics_batch(torch.from_numpy(pred), torch.from_numpy(true), chunk=2)
    for i in range(5):
        one = reference_metrics(pred[i], true[i])
        _close({k: batched[k][i] for k in METRIC_NAMES}, one)


def test_identical_inputs_give_zero_distances_and_mag_is_twice_stft():
    rng = np.random.default_rng(2)
    x = _real_like(rng, 16_000)
    m = compute_metrics(x, x)
    for k in ("STFT", "ENV", "WAV", "Mag", "Phs"):
        assert m[k] == pytest.approx(0.0, abs=1e-12), k
    assert m["SNR"] == pytest.approx(10 * np.log10((np.mean((x / np.abs(x).max()) ** 2) + 1e-4) / 1e-4))
    y = _real_like(rng, 16_000)
    m = compute_metrics(y, x)
    assert m["Mag"] == pytest.approx(2 * m["STFT"], rel=1e-12)


def test_peak_normalisation_makes_metrics_scale_invariant():
    rng = np.random.default_rng(3)
    pred, true = _real_like(rng, 9000), _real_like(rng, 9000)
    _close(compute_metrics(pred, true), compute_metrics(5.0 * pred, 0.01 * true), rtol=1e-9)


def test_swapping_channels_is_penalised_and_mono_mono_phase_is_known():
    rng = np.random.default_rng(4)
    true = _real_like(rng, 16_000)
    swapped = compute_metrics(true[::-1].copy(), true)
    assert swapped["STFT"] > 0.01 and swapped["SNR"] < 10
    # Mono-Mono predicts L = R, so its difference spectrogram is zero: angle 0 everywhere
    mono = np.repeat(true.sum(0, keepdims=True) / 2, 2, axis=0)
    m = compute_metrics(mono, true)
    ref = reference_metrics(mono, true)
    assert m["Phs"] == pytest.approx(ref["Phs"], rel=1e-9)


def test_bad_inputs_raise_clear_errors():
    x = np.zeros((2, 1000))
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(np.zeros((1, 1000)), np.zeros((1, 1000)))
    with pytest.raises(ValueError, match="differ in shape"):
        compute_metrics(x, np.zeros((2, 999)))
    with pytest.raises(ValueError, match="pad_mode"):
        compute_metrics(x, x, pad_mode="edge")
    bad = x.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(bad, x)
    with pytest.raises(ValueError, match="no clips"):
        mean_metrics([])


def test_all_zero_signals_are_finite():
    x = np.zeros((2, 4000))
    m = compute_metrics(x, x)
    assert all(np.isfinite(v) for v in m.values())
    assert m["SNR"] == pytest.approx(0.0)
