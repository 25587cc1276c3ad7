"""Spatial metrics (ILD, ITD, IC, SWAP, localisation) against references written here with numpy/scipy from the
definitions (scipy's STFT, explicit loops over bands, blocks and lags), and against signals whose cues are known
by construction (a delayed channel, an attenuated channel, KEMAR renderings at known azimuths)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, get_window, oaconvolve, sosfilt, stft as scipy_stft

from ccstereo.metrics import compute_metrics, compute_metrics_batch, mean_metrics
from ccstereo.spatial import HrirCues, band_edges_hz, localisation_error
from pipelines.synth.audio import kemar_at

RATE, NFFT, HOP, WIN = 16_000, 512, 160, 400  # typed again: the reference reads the definition, not the code


def ref_stft(x: np.ndarray) -> np.ndarray:
    """Centred STFT with zero padding, periodic Hann(400) centred in 512 bins, unscaled: scipy's, scaled back."""
    w = np.zeros(NFFT)
    w[(NFFT - WIN) // 2:(NFFT - WIN) // 2 + WIN] = get_window("hann", WIN)  # periodic
    _, _, z = scipy_stft(x, RATE, window=w, nperseg=NFFT, noverlap=NFFT - HOP, boundary="zeros", padded=False)
    return z * w.sum()


def _erb_edges() -> np.ndarray:
    """24 bands, equal steps of Glasberg & Moore's ERB number 21.4 log10(1 + 4.37 f / 1000), 50 Hz to 8 kHz."""
    erb = lambda f: 21.4 * np.log10(1 + 4.37 * f / 1000)  # noqa: E731
    steps = np.linspace(erb(50.0), erb(8000.0), 25)
    return (10 ** (steps / 21.4) - 1) * 1000 / 4.37


def ref_spatial(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    pred = pred / max(1e-20, np.abs(pred).max())
    true = true / max(1e-20, np.abs(true).max())
    sp = np.stack([ref_stft(pred[0]), ref_stft(pred[1])])
    st = np.stack([ref_stft(true[0]), ref_stft(true[1])])
    f = np.arange(NFFT // 2 + 1) * RATE / NFFT
    edges = _erb_edges()
    out = {}
    # ILD per band and frame, weighted by the truth's energy in the tile
    num = den = 0.0
    for b in range(24):
        sel = (f >= edges[b]) & ((f < edges[b + 1]) if b < 23 else (f <= edges[b + 1]))
        e = lambda s, c: (np.abs(s[c, sel]) ** 2).sum(0)  # noqa: E731
        ild = lambda s: 10 * np.log10((e(s, 0) + 1e-10) / (e(s, 1) + 1e-10))  # noqa: E731
        w = e(st, 0) + e(st, 1)
        num += (w * np.abs(ild(sp) - ild(st))).sum()
        den += w.sum()
    out["ILD"] = num / den
    # ITD: GCC-PHAT per 10-frame block below 1.5 kHz, lags -1000..1000 us every 5 us
    lags = np.arange(-200, 201) * 5e-6
    k = np.arange(1, 49)  # 48 x 31.25 Hz = 1500 Hz

    def itds(s):
        res, energy = [], []
        for blk in range(s.shape[-1] // 10):
            fr = slice(10 * blk, 10 * blk + 10)
            c = (s[0, k, fr] * np.conj(s[1, k, fr])).sum(-1)
            c = np.where(np.abs(c) > 0, c / np.maximum(np.abs(c), 1e-300), 0)
            r = np.array([np.real(np.sum(c * np.exp(-2j * np.pi * k * RATE / NFFT * tau))) for tau in lags])
            res.append(0.0 if np.ptp(r) <= 1e-12 else lags[np.argmax(r)] * 1e6)
            energy.append((np.abs(s[:, k, fr]) ** 2).sum())
        return np.array(res), np.array(energy)

    ip, _ = itds(sp)
    it, w = itds(st)
    out["ITD"] = float((w * np.abs(ip - it)).sum() / w.sum())

    # IC per bin (50 Hz - 8 kHz) and block
    def coherence(s):
        sel = (f >= 50) & (f <= 8000)
        n = s.shape[-1] // 10
        blocks = s[:, sel, : 10 * n].reshape(2, sel.sum(), n, 10)
        cross = np.abs((blocks[0] * np.conj(blocks[1])).sum(-1))
        pl, pr = (np.abs(blocks[0]) ** 2).sum(-1), (np.abs(blocks[1]) ** 2).sum(-1)
        return np.minimum(cross / np.sqrt(pl * pr), 1.0), pl + pr

    cp, _ = coherence(sp)
    ct, w = coherence(st)
    out["IC"] = float((w * np.abs(cp - ct)).sum() / w.sum())
    swapped = sp[::-1]
    out["SWAP"] = float(sum(np.mean(np.abs(swapped[c] - st[c]) ** 2) / 2 for c in range(2)))
    return out


def _source(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "noise":
        return sosfilt(butter(4, [300, 5000], btype="bandpass", fs=RATE, output="sos"), rng.standard_normal(n))
    t = np.arange(n) / RATE
    f0 = rng.uniform(150, 500)
    return sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 7)) * (
        0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t))


def _delayed(x: np.ndarray, delay_samples: float) -> np.ndarray:
    """``x`` delayed by a fractional number of samples (a linear phase in the DFT of a long zero-padded copy)."""
    n = len(x)
    spec = np.fft.rfft(x, 2 * n)
    spec *= np.exp(-2j * np.pi * np.fft.rfftfreq(2 * n) * delay_samples)
    return np.fft.irfft(spec, 2 * n)[:n]


def _binaural(rng, n, delay, gain, kind):
    s = _source(rng, n, kind)
    return np.stack([s, gain * _delayed(s, delay)]) + rng.normal(0, 1e-4, (2, n))


@pytest.mark.parametrize("kind", ["noise", "tone"])
def test_spatial_metrics_match_the_reference(kind):
    rng = np.random.default_rng(0)
    n = 16_000 + 1234
    true = _binaural(rng, n, 5.3, 0.5, kind)
    cases = [_binaural(rng, n, -3.0, 0.8, kind), true[::-1].copy(), np.stack([true.sum(0) / 2] * 2),
             true + rng.normal(0, 0.02, true.shape)]
    for pred in cases:
        mine = compute_metrics(pred, true, spatial=True)
        want = ref_spatial(pred, true)
        for k in ("ILD", "IC", "SWAP"):
            assert mine[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9), (k, mine[k], want[k])
        assert mine["ITD"] == pytest.approx(want["ITD"], abs=1e-6)  # same lag grid: equal up to ties
    batched = compute_metrics_batch(np.stack(cases), np.stack([true] * 4), spatial=True, chunk=3)
    for i, pred in enumerate(cases):
        one = compute_metrics(pred, true, spatial=True)
        assert {k: batched[k][i] for k in one} == pytest.approx(one, rel=1e-12)


def test_cues_of_signals_built_with_known_cues():
    rng = np.random.default_rng(1)
    n = 32_000
    s = _source(rng, n, "noise")
    delay = 5.0  # samples: the left ear leads by 312.5 us
    true = np.stack([s, 0.5 * _delayed(s, delay)])
    mono = np.stack([true.sum(0) / 2] * 2)  # no level or time difference at all
    m = compute_metrics(mono, true, spatial=True)
    assert m["ILD"] == pytest.approx(20 * math.log10(2), abs=0.05)  # |0 - 6.02 dB| in every tile
    assert m["ITD"] == pytest.approx(delay / RATE * 1e6, abs=5.0)  # |0 - 312.5 us|, 5 us grid
    assert m["SWAP"] == m["STFT"]  # Mono-Mono cannot tell left from right
    perfect = compute_metrics(true, true, spatial=True)
    assert perfect["ILD"] == perfect["ITD"] == perfect["IC"] == 0.0 and perfect["SWAP"] > 0
    other = np.stack([s, 0.5 * _delayed(s, -delay)])  # the same level difference, the time difference mirrored
    assert compute_metrics(other, true, spatial=True)["ITD"] == pytest.approx(2 * delay / RATE * 1e6, abs=5.0)
    # independent noise in the two ears: coherence near the small-sample bias, not 1
    apart = np.stack([s, _source(rng, n, "noise")])
    assert compute_metrics(apart, true, spatial=True)["IC"] > 0.5


def test_erb_bands_and_mean_metrics_with_localisation():
    assert np.allclose(band_edges_hz(), _erb_edges(), rtol=1e-12)
    rows = [{"STFT": 1.0, "ENV": 1, "WAV": 1, "Mag": 2, "Phs": 1, "SNR": 1, "ILD": 2.0, "ITD": 10.0, "IC": 0.1,
             "SWAP": 1.5, "LOC": v} for v in (math.nan, 10.0, 20.0)]
    mean = mean_metrics(rows)
    assert mean["LOC"] == 15.0 and mean["ILD"] == 2.0  # LOC over the clips it applies to
    assert math.isnan(mean_metrics(rows[:1])["LOC"])
    assert "ILD" not in mean_metrics([{k: v for k, v in rows[0].items() if k in ("STFT", "ENV", "WAV", "Mag",
                                                                                  "Phs", "SNR")}])


@pytest.fixture(scope="module")
def kemar_cues():
    hrirs = kemar_at(RATE)
    return hrirs, HrirCues.from_hrirs(hrirs)


@pytest.mark.parametrize("kind", ["noise", "tone"])
def test_localisation_recovers_the_azimuth_kemar_rendered(kemar_cues, kind):
    """Render with the HRIR nearest a drawn azimuth (as the synthetic world does): the implied azimuth of the
    rendering is that HRIR's direction, so the error is the distance to the nearest 5-degree direction; a
    Mono-Mono prediction is heard in front, so its error is the azimuth itself."""
    hrirs, cues = kemar_cues
    rng = np.random.default_rng(2)
    assert set(cues.azimuth_deg) == set(np.arange(-90.0, 91.0, 5.0))
    for az in rng.uniform(-88, 88, 6):
        s = _source(rng, 4 * RATE, kind)
        x = oaconvolve(s[None], hrirs.nearest(float(az)), axes=1)[:, : len(s)]
        truth = np.full(40, az)  # 10 fps
        nearest = 5.0 * round(az / 5.0)
        assert localisation_error(x, x, truth, cues) == pytest.approx(abs(az - nearest), abs=1e-9)
        mono = np.stack([x.sum(0) / 2] * 2)
        assert localisation_error(mono, x, truth, cues) == pytest.approx(abs(az), abs=1e-9)
        assert localisation_error(x[::-1].copy(), x, truth, cues) == pytest.approx(abs(az + nearest), abs=1e-9)
    silent = np.zeros((2, 2 * RATE))
    assert math.isnan(localisation_error(silent, silent, np.zeros(20), cues))
