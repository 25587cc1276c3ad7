"""Spatial cues of binaural audio and the errors a prediction makes on them (beyond the paper's metrics).

The paper's six metrics are energy and phase distances; none says whether a source is heard at the right place.
These do, each computed from the complex STFTs the metrics already take (:func:`ccstereo.audio.stft`, float64,
``[b, 2 (L, R), 257, N]``, peak-normalised signals):

* **ILD** (dB): interaural level difference ``10 log10(E_L / E_R)`` per ERB-spaced band (``N_BANDS`` bands
  between 50 Hz and 8 kHz, equal steps on Glasberg & Moore's ERB-number scale) and STFT frame; the error is
  ``|ILD_pred - ILD_true|`` averaged over (band, frame) tiles weighted by the ground truth's energy in the tile.
* **ITD** (microseconds): interaural time difference from GCC-PHAT below 1.5 kHz, one estimate per block of
  ``ITD_BLOCK_FRAMES`` frames (0.1 s): the cross-spectrum ``sum_t S_L conj(S_R)`` of the block, whitened to unit
  magnitude, correlated over lags of +-1 ms on a 5 us grid; positive = the left ear leads (source on the left).
  The error is ``|ITD_pred - ITD_true|`` averaged over blocks weighted by the truth's energy below 1.5 kHz.
* **IC**: interaural coherence per STFT bin (50 Hz - 8 kHz) and block,
  ``|sum_t S_L conj(S_R)| / sqrt(sum_t |S_L|^2 sum_t |S_R|^2)``; a delay only rotates a bin's phase, so this is
  the maximum over lags of the normalised cross-correlation. Error weighted by the truth's energy per tile.
* **SWAP**: the STFT distance (SPEC 10) of the prediction with its channels swapped. A prediction that cannot
  tell left from right (Mono-Mono) scores exactly its STFT distance both ways; the further SWAP lies above STFT,
  the more clearly the prediction is closer to the truth than to its mirror image.

**Localisation** (synthetic world only, where every source's true azimuth is known): the azimuth implied by a
segment's cues is the direction of an HRIR set (the one that rendered the world) whose band ILDs and ITD are
nearest (:class:`HrirCues`, :func:`implied_azimuths`); see :func:`localisation_error`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ccstereo.audio import stft
from ccstereo.constants import HOP_LENGTH, N_FFT
from pipelines.contract import FPS, SAMPLE_RATE

SPATIAL_NAMES: tuple[str, ...] = ("ILD", "ITD", "IC", "SWAP")
UNITS = {"ILD": "dB", "ITD": "µs", "IC": "", "SWAP": "", "LOC": "°"}

BAND_LOW_HZ, BAND_HIGH_HZ, N_BANDS = 50.0, 8000.0, 24  # ~1.3 ERB per band; every band holds a bin
ITD_MAX_HZ = 1500.0  # GCC-PHAT band: where the ITD is an unambiguous cue
ITD_BLOCK_FRAMES = 10  # 0.1 s of 10 ms frames per ITD / IC estimate
ITD_MAX_US, ITD_STEP_US = 1000.0, 5.0  # lag search range (a head's ITD stays under ~0.8 ms) and grid
LEVEL_EPS = 1e-10  # energy floor of the ILD (the signals are peak-normalised: a loud bin holds ~1e3)
LOC_SEGMENT_FRAMES = 100  # 1 s of STFT frames per localisation segment
LOC_MIN_ENERGY = 0.1  # a segment is localised when its truth energy is >= this x the clip's mean segment energy


def erb_number(f_hz: np.ndarray | float) -> np.ndarray:
    """Glasberg & Moore (1990) ERB-number scale: ``21.4 log10(1 + 0.00437 f)``."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f_hz, dtype=np.float64))


def band_edges_hz(n_bands: int = N_BANDS, low: float = BAND_LOW_HZ, high: float = BAND_HIGH_HZ) -> np.ndarray:
    """``n_bands + 1`` edges equally spaced on the ERB-number scale between ``low`` and ``high``."""
    e = np.linspace(erb_number(low), erb_number(high), n_bands + 1)
    return (10.0 ** (e / 21.4) - 1.0) / 0.00437


def bin_frequencies() -> np.ndarray:
    return np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT


def band_matrix(device: torch.device | None = None) -> torch.Tensor:
    """``[N_BANDS, 257]`` float64 0/1: bin k belongs to band b when ``edge_b <= f_k < edge_b+1`` (the top band
    also takes the Nyquist bin)."""
    edges = band_edges_hz()
    f = bin_frequencies()
    upper = edges[1:].copy()
    upper[-1] = np.nextafter(upper[-1], np.inf)
    m = (f[None, :] >= edges[:-1, None]) & (f[None, :] < upper[:, None])
    return torch.from_numpy(m.astype(np.float64)).to(device)


def _in_band_bins(high: float) -> slice:
    """Bins 1 .. the last one at or below ``high`` (DC carries no interaural time)."""
    return slice(1, int(math.floor(high * N_FFT / SAMPLE_RATE)) + 1)


def _blocks(x: torch.Tensor, size: int) -> torch.Tensor:
    """``[..., N]`` -> ``[..., n_blocks, size]`` over the last axis (a tail shorter than a block is dropped; a
    signal shorter than one block is one block)."""
    n = x.shape[-1]
    size = min(size, n)
    k = n // size
    return x[..., : k * size].reshape(*x.shape[:-1], k, size)


# ------------------------------------------------------------------------------------------------ the cues


def band_levels(spec: torch.Tensor) -> torch.Tensor:
    """Energy per ERB band: ``[..., 257, N]`` complex -> ``[..., N_BANDS, N]``."""
    power = spec.real.square() + spec.imag.square()
    return torch.einsum("bf,...fn->...bn", band_matrix(spec.device), power)


def level_difference_db(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10((left + LEVEL_EPS) / (right + LEVEL_EPS))


def lag_grid_us(device: torch.device | None = None) -> torch.Tensor:
    n = int(round(ITD_MAX_US / ITD_STEP_US))
    return torch.arange(-n, n + 1, dtype=torch.float64, device=device) * ITD_STEP_US


def gcc_phat_itd(cross: torch.Tensor) -> torch.Tensor:
    """ITD in microseconds from cross-spectra ``[..., K]`` of bins ``1..K`` (``S_L conj(S_R)``, already summed over
    the frames of a block): each bin whitened to unit magnitude, ``r(tau) = sum_k Re(C_k e^{-j 2 pi f_k tau})``,
    the lag of the maximum. No energy at all (a silent block) gives 0."""
    mag = cross.abs()
    white = torch.where(mag > 0, cross / mag.clamp_min(1e-300), torch.zeros_like(cross))
    lags = lag_grid_us(cross.device) * 1e-6
    f = torch.arange(1, cross.shape[-1] + 1, dtype=torch.float64, device=cross.device) * SAMPLE_RATE / N_FFT
    phase = -2.0 * math.pi * f[:, None] * lags[None, :]  # [K, L]
    r = white.real @ torch.cos(phase) - white.imag @ torch.sin(phase)  # Re(C e^{j phase})
    flat = (r.amax(dim=-1) - r.amin(dim=-1)) <= 1e-12
    itd = lags[r.argmax(dim=-1)] * 1e6
    return torch.where(flat, torch.zeros_like(itd), itd)


def block_itd(spec: torch.Tensor, block: int = ITD_BLOCK_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """(ITD per block in us, energy below 1.5 kHz per block) of ``[..., 2, 257, N]``: each ``[..., n_blocks]``."""
    low = spec[..., _in_band_bins(ITD_MAX_HZ), :]
    left, right = low.select(-3, 0), low.select(-3, 1)
    cross = _blocks(left * right.conj(), block).sum(-1)  # [..., K, n_blocks]
    energy = _blocks(left.abs().square() + right.abs().square(), block).sum(-1).sum(-2)
    return gcc_phat_itd(cross.transpose(-1, -2)), energy


def block_coherence(spec: torch.Tensor, block: int = ITD_BLOCK_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """(IC, energy) per (bin in 50 Hz - 8 kHz, block) of ``[..., 2, 257, N]``: each ``[..., F', n_blocks]``."""
    f = bin_frequencies()
    keep = torch.from_numpy((f >= BAND_LOW_HZ) & (f <= BAND_HIGH_HZ)).to(spec.device)
    s = spec[..., keep, :]
    left, right = s.select(-3, 0), s.select(-3, 1)
    cross = _blocks(left * right.conj(), block).sum(-1).abs()
    pl = _blocks(left.abs().square(), block).sum(-1)
    pr = _blocks(right.abs().square(), block).sum(-1)
    denom = torch.sqrt(pl * pr)
    ic = torch.where(denom > 0, cross / denom.clamp_min(1e-300), torch.zeros_like(cross))
    return ic.clamp(max=1.0), pl + pr


# --------------------------------------------------------------------------------------------- the errors


def _weighted_mean(err: torch.Tensor, weight: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    total = weight.sum(dim=dims)
    mean = (err * weight).sum(dim=dims) / total.clamp_min(1e-300)
    return torch.where(total > 0, mean, torch.zeros_like(mean))


def spatial_errors(s_pred: torch.Tensor, s_true: torch.Tensor) -> dict[str, torch.Tensor]:
    """ILD, ITD, IC errors and SWAP of complex STFTs ``[b, 2, 257, N]`` (peak-normalised clips); each ``[b]``."""
    lp, lt = band_levels(s_pred), band_levels(s_true)  # [b, 2, B, N]
    ild_err = (level_difference_db(lp[:, 0], lp[:, 1]) - level_difference_db(lt[:, 0], lt[:, 1])).abs()
    ild = _weighted_mean(ild_err, lt.sum(dim=1), (-2, -1))

    itd_p, _ = block_itd(s_pred)
    itd_t, w_itd = block_itd(s_true)
    itd = _weighted_mean((itd_p - itd_t).abs(), w_itd, (-1,))

    ic_p, _ = block_coherence(s_pred)
    ic_t, w_ic = block_coherence(s_true)
    ic = _weighted_mean((ic_p - ic_t).abs(), w_ic, (-2, -1))

    d = s_pred.flip(1) - s_true  # predicted channels swapped
    swap = (d.real.square() + d.imag.square()).mean(dim=(-2, -1)).sum(dim=-1) / 2
    return {"ILD": ild, "ITD": itd, "IC": ic, "SWAP": swap}


# ------------------------------------------------------------------------------------------- localisation


@dataclass(frozen=True)
class HrirCues:
    """Band ILDs ``[n, N_BANDS]`` and ITDs ``[n]`` (us) of an HRIR set's directions on the horizontal plane in front
    (|azimuth| <= 90: the field of view of ordinary video; ILD and ITD cannot tell front from back)."""

    azimuth_deg: np.ndarray
    ild_db: np.ndarray
    itd_us: np.ndarray

    @classmethod
    def from_hrirs(cls, hrirs) -> HrirCues:
        """From a :class:`pipelines.hrir.HRIRSet` at ``SAMPLE_RATE`` (the cues of its responses' spectra)."""
        if hrirs.samplerate != SAMPLE_RATE:
            raise ValueError(f"HRIR set {hrirs.name} is at {hrirs.samplerate} Hz, the cues need {SAMPLE_RATE} Hz")
        az = (np.asarray(hrirs.azimuth_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0
        keep = (np.abs(np.asarray(hrirs.elevation_deg)) < 1e-6) & (np.abs(az) <= 90.0 + 1e-9)
        if not keep.any():
            raise ValueError(f"HRIR set {hrirs.name} has no direction on the horizontal plane in front")
        irs = torch.from_numpy(np.asarray(hrirs.irs[keep], dtype=np.float64))
        spec = torch.fft.rfft(irs, n=max(N_FFT, irs.shape[-1]), dim=-1)
        if spec.shape[-1] != N_FFT // 2 + 1:
            raise ValueError(f"HRIR set {hrirs.name}: responses longer than {N_FFT} taps are not supported")
        spec = spec[..., None]  # one "frame": [n, 2, 257, 1]
        levels = band_levels(spec)[..., 0]
        itd, _ = block_itd(spec, block=1)
        order = np.argsort(az[keep], kind="stable")
        ild = level_difference_db(levels[:, 0], levels[:, 1]).numpy()
        return cls(az[keep][order], ild[order], itd[:, 0].numpy()[order])


def segment_cues(x: np.ndarray, segment: int = LOC_SEGMENT_FRAMES) -> tuple[np.ndarray, ...]:
    """(band ILDs ``[S, N_BANDS]``, band energy shares ``[S, N_BANDS]``, ITDs ``[S]``, energies ``[S]``) of the
    1 s segments of a ``[2, T]`` binaural clip (energies pooled over each segment's frames)."""
    spec = stft(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), dtype=torch.float64)  # [2, 257, N]
    levels = _blocks(band_levels(spec), segment).sum(-1)  # [2, B, S]
    ild = level_difference_db(levels[0], levels[1]).T
    total = levels.sum(0).T  # [S, B]
    share = total / total.sum(-1, keepdim=True).clamp_min(1e-300)
    itd, _ = block_itd(spec, block=segment)
    return ild.numpy(), share.numpy(), itd.numpy(), total.sum(-1).numpy()


def implied_azimuths(cues: HrirCues, ild_db: np.ndarray, share: np.ndarray, itd_us: np.ndarray) -> np.ndarray:
    """Per segment, the azimuth of the HRIR direction whose cues are nearest: ``sum_b share_b (dILD_b / s_ILD)^2 +
    (dITD / s_ITD)^2``, each cue scaled by its standard deviation over the set's directions (comparable units)."""
    s_ild = max(float(cues.ild_db.std(axis=0).mean()), 1e-9)
    s_itd = max(float(cues.itd_us.std()), 1e-9)
    d_ild = (ild_db[:, None, :] - cues.ild_db[None, :, :]) / s_ild  # [S, n, B]
    cost = (share[:, None, :] * d_ild**2).sum(-1) + ((itd_us[:, None] - cues.itd_us[None, :]) / s_itd) ** 2
    return cues.azimuth_deg[np.argmin(cost, axis=1)]


def segment_true_azimuths(azimuth_per_frame: np.ndarray, n_segments: int) -> np.ndarray:
    """Mean true azimuth over each 1 s segment from the 10 fps truth of the clip (frame k covers k/10 s)."""
    per = LOC_SEGMENT_FRAMES * HOP_LENGTH * FPS // SAMPLE_RATE  # truth frames per segment
    az = np.asarray(azimuth_per_frame, dtype=np.float64)[: n_segments * per]
    return az.reshape(-1, per).mean(-1)


def localisation_error(pred: np.ndarray, true: np.ndarray, azimuth_per_frame: np.ndarray, cues: HrirCues) -> float:
    """Mean ``|implied azimuth of pred - true azimuth|`` (degrees) over the 1 s segments of a single-source clip
    in which the truth sounds (energy >= ``LOC_MIN_ENERGY`` x the clip's mean); NaN when none does."""
    ild, share, itd, _ = segment_cues(pred)
    _, _, _, energy = segment_cues(true)
    n = min(len(itd), len(energy), len(azimuth_per_frame) * SAMPLE_RATE // (FPS * HOP_LENGTH * LOC_SEGMENT_FRAMES))
    if n == 0:
        return math.nan
    voiced = (energy[:n] > 0) & (energy[:n] >= LOC_MIN_ENERGY * energy[:n].mean())
    if not voiced.any():
        return math.nan
    implied = implied_azimuths(cues, ild[:n], share[:n], itd[:n])
    return float(np.abs(implied - segment_true_azimuths(azimuth_per_frame, n))[voiced].mean())
