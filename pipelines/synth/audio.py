"""Source signals and spatial rendering: binaural (KEMAR HRIRs) and first-order ambiX (plane waves).

Moving sources are rendered in 0.1 s blocks (one per truth frame), each with the HRIR nearest the block's
azimuth; neighbouring blocks are crossfaded linearly between block centres so the weights sum to one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, oaconvolve, sosfilt

from pipelines.ambisonics import encode_plane_wave
from pipelines.contract import FPS
from pipelines.hrir import HRIRSet, _resampled, load_kemar
from pipelines.synth.scene import Scene, SoundParams, Source

_PENTATONIC = np.array([0, 2, 4, 7, 9, 12, 14])
_RAMP_S = 0.006  # onset / offset ramps: no clicks


def _event_spans(rng: np.random.Generator, duration_s: float, mean_event_s: float, activity: float) -> list[tuple[float, float]]:
    """Alternating sounding events and gaps whose long-run sounding fraction is ``activity``."""
    mean_gap = mean_event_s * (1.0 - activity) / max(activity, 1e-3)
    spans = []
    t = float(rng.uniform(0.0, min(0.3, mean_gap + 0.05)))
    while t < duration_s:
        length = max(0.08, float(rng.exponential(mean_event_s)))
        spans.append((t, min(duration_s, t + length)))
        t += length + max(0.02, float(rng.exponential(mean_gap))) if mean_gap > 0 else length
    return spans


def _ramp_envelope(n: int, rate: int, decay_per_s: float = 0.0) -> np.ndarray:
    t = np.arange(n) / rate
    env = np.exp(-decay_per_s * t) if decay_per_s else np.ones(n)
    r = min(int(_RAMP_S * rate), n // 2)
    if r > 0:
        ramp = np.linspace(0.0, 1.0, r, endpoint=False)
        env[:r] *= ramp
        env[n - r:] *= ramp[::-1]
    return env


def source_signal(sound: SoundParams, duration_s: float, rate: int) -> np.ndarray:
    """The dry mono signal [T] of one source, RMS-normalised to 0.1 over the whole duration."""
    rng = np.random.default_rng(sound.seed)
    n_total = int(round(duration_s * rate))
    out = np.zeros(n_total)
    spans = _event_spans(rng, duration_s, sound.mean_event_s, sound.activity)
    if sound.kind == "tone":
        harmonics = np.arange(1, sound.n_harmonics + 1)
        amps = harmonics.astype(np.float64) ** -sound.harmonic_decay
        for start, end in spans:
            a, b = int(start * rate), int(end * rate)
            if b - a < 4:
                continue
            f0 = sound.f0_hz * 2.0 ** (int(rng.choice(_PENTATONIC)) / 12.0)
            keep = harmonics * f0 < 0.45 * rate
            phases = rng.uniform(0, 2 * np.pi, size=int(keep.sum()))
            t = np.arange(b - a) / rate
            note = (amps[keep, None] * np.sin(2 * np.pi * f0 * harmonics[keep, None] * t[None, :] + phases[:, None])).sum(0)
            out[a:b] += note * _ramp_envelope(b - a, rate, decay_per_s=float(rng.uniform(0.5, 3.0)))
    else:
        lo, hi = sound.band_hz
        hi = min(hi, 0.45 * rate)
        sos = butter(4, [lo, hi], btype="bandpass", fs=rate, output="sos")
        noise = sosfilt(sos, rng.standard_normal(n_total))
        gate = np.zeros(n_total)
        for start, end in spans:
            a, b = int(start * rate), int(end * rate)
            if b - a >= 4:
                gate[a:b] = _ramp_envelope(b - a, rate, decay_per_s=float(rng.uniform(0.0, 4.0)))
        out = noise * gate
    rms = float(np.sqrt(np.mean(out**2))) if n_total else 0.0
    return out * (0.1 / rms) if rms > 0 else out


def _block_weights(n_samples: int, block: int, block_index: np.ndarray) -> dict[int, np.ndarray]:
    """Per HRIR index, the per-sample weight: linear crossfades between 0.1 s block centres."""
    n_blocks = len(block_index)
    pos = np.arange(n_samples) / block - 0.5  # in units of blocks, 0 at the centre of block 0
    k0 = np.clip(np.floor(pos).astype(np.int64), 0, n_blocks - 1)
    k1 = np.clip(k0 + 1, 0, n_blocks - 1)
    frac = np.clip(pos - np.floor(pos), 0.0, 1.0)
    frac = np.where(pos < 0, 0.0, frac)
    i0, i1 = block_index[k0], block_index[k1]
    weights: dict[int, np.ndarray] = {}
    for j in np.unique(block_index):
        weights[int(j)] = (i0 == j) * (1.0 - frac) + (i1 == j) * frac
    return weights


def render_binaural_source(signal: np.ndarray, source: Source, rate: int, hrirs: HRIRSet) -> np.ndarray:
    """[2, T]: ``signal`` convolved with the KEMAR HRIR nearest the source's azimuth in each 0.1 s block."""
    n = len(signal)
    block = rate // FPS
    n_blocks = max(1, int(np.ceil(n / block)))
    az = source.trajectory.azimuth((np.arange(n_blocks) + 0.5) / FPS)
    el = source.trajectory.elevation_deg
    block_index = np.array([hrirs.nearest_index(float(a), el) for a in az])
    out = np.zeros((2, n))
    for j, w in _block_weights(n, block, block_index).items():
        nz = np.flatnonzero(w)
        if nz.size == 0:
            continue
        a, b = int(nz[0]), int(nz[-1]) + 1
        wet = oaconvolve((signal[a:b] * w[a:b])[None, :], hrirs.irs[j], axes=1)  # [2, b - a + taps - 1]
        end = min(n, a + wet.shape[1])
        out[:, a:end] += wet[:, : end - a]
    return out


KEMAR_NATIVE_RATE = 44100


@lru_cache(maxsize=4)
def kemar_at(rate: int) -> HRIRSet:
    """KEMAR at ``rate``: unpickled once at its native 44.1 kHz, then resampled (unpickling costs ~1.5 s)."""
    return _resampled(load_kemar(KEMAR_NATIVE_RATE), rate)


def render_binaural(scene: Scene, rate: int, gains: np.ndarray | None = None) -> np.ndarray:
    """[2, T] binaural mix (L, R) of a scene's sources at their azimuths, KEMAR at ``rate``."""
    hrirs = kemar_at(rate)
    n = int(round(scene.duration_s * rate))
    mix = np.zeros((2, n))
    for i, src in enumerate(scene.sources):
        g = 1.0 if gains is None else float(gains[i])
        mix += g * render_binaural_source(source_signal(src.sound, scene.duration_s, rate), src, rate, hrirs)
    return mix


def render_foa(scene: Scene, rate: int, gains: np.ndarray | None = None, horizontal_only: bool = False) -> np.ndarray:
    """[4, T] first-order ambiX (ACN W, Y, Z, X; SN3D): every source a plane wave from its direction.

    ``horizontal_only`` gives the WXY layout: the Z channel is silent.
    """
    n = int(round(scene.duration_s * rate))
    t = np.arange(n) / rate
    foa = np.zeros((4, n))
    for i, src in enumerate(scene.sources):
        g = 1.0 if gains is None else float(gains[i])
        sig = source_signal(src.sound, scene.duration_s, rate)
        foa += g * encode_plane_wave(sig, src.trajectory.azimuth(t), src.trajectory.elevation_deg)
    if horizontal_only:
        foa[2] = 0.0
    return foa


def peak_normalise(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale so that max |x| over all channels is ``peak`` (comfortably below clipping)."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (peak / m) if m > 0 else x


def to_int16(x: np.ndarray) -> np.ndarray:
    """[C, T] float in [-1, 1] -> interleaved [T, C] int16 (the bytes every encoder is fed)."""
    return np.clip(np.round(x.T * 32767.0), -32768, 32767).astype("<i2")
