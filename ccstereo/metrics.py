"""Binaural evaluation metrics exactly as SPEC section 10 defines them.

Published numbers in this field come from scripts that disagree (padding mode of the STFT, which channels,
normalisation), so this module implements one definition, names its only free choice (``pad_mode``) and
every report states which one it used:

* prediction and ground truth are each peak-normalised over both channels jointly: ``x / max(1e-20, max|x|)``;
* STFTs are :func:`ccstereo.audio.stft` in float64 (n_fft 512, hop 160, win 400, periodic Hann, centred);
  ``pad_mode="constant"`` (zero padding, the librosa >= 0.10 default the official CCStereo evaluation used) or
  ``"reflect"`` (older papers);
* STFT, Mag and ENV/WAV sum over the two channels; Phs is on the difference signal L - R; SNR pools both
  channels.

Phs averages the phase error over every bin, including bins that hold only rounding noise (a band-limited
synthetic tone far from its harmonics); their angles depend on the FFT implementation, so Phs of such signals
agrees between implementations only to about 1e-3. Recordings have a noise floor and agree to 1e-5.

:func:`compute_metrics` scores one clip ``[2, T]``; :func:`compute_metrics_batch` scores ``[B, 2, T]`` in
float64 torch with FFTs batched over clips (one call for a whole test split), chunked to bound memory.
With ``spatial=True`` both also return the spatial cue errors of :mod:`ccstereo.spatial` (ILD, ITD, IC, SWAP:
beyond the paper), computed from the same STFTs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from ccstereo.audio import DEFAULT_PAD_MODE, stft
from ccstereo.spatial import SPATIAL_NAMES, spatial_errors

METRIC_NAMES: tuple[str, ...] = ("STFT", "ENV", "WAV", "Mag", "Phs", "SNR")
# every metric is a distance (lower is better) except SNR
HIGHER_IS_BETTER: frozenset[str] = frozenset({"SNR"})
PAD_MODES: tuple[str, ...] = ("constant", "reflect")
# beyond the paper: the spatial cue errors, and LOC (localisation error, degrees; the synthetic world only,
# NaN for clips it does not apply to). SWAP is the STFT distance to the mirrored truth: higher = the prediction
# tells left from right (compare it with STFT).
LOC = "LOC"
BEYOND_PAPER: tuple[str, ...] = (*SPATIAL_NAMES, LOC)
BEYOND_HIGHER_IS_BETTER: frozenset[str] = frozenset({"SWAP"})
SCORING_VERSION = "paper+spatial-1"  # what a scored clip holds; results scored otherwise are redone

PEAK_FLOOR = 1e-20  # peak normalisation guard for an all-zero signal
SNR_EPS = 1e-4  # added to signal and noise power in the SNR ratio (SPEC section 10)

ArrayLike = Union[np.ndarray, torch.Tensor]


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.dtype in (torch.int16, torch.int32)):
        raise TypeError(f"{name} must hold real samples, got dtype {x.dtype}")
    return x.detach().to(torch.float64)


def _check_pair(pred: torch.Tensor, true: torch.Tensor, batched: bool) -> None:
    want = 3 if batched else 2
    shape_text = "[B, 2, T]" if batched else "[2, T]"
    for name, x in (("pred", pred), ("true", true)):
        if x.ndim != want or x.shape[-2] != 2:
            raise ValueError(f"{name} must have shape {shape_text} (L, R), got {list(x.shape)}")
        if x.shape[-1] < 2:
            raise ValueError(f"{name} is too short to score ({x.shape[-1]} samples)")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite samples")
    if pred.shape != true.shape:
        raise ValueError(f"pred and true differ in shape: {list(pred.shape)} vs {list(true.shape)}")


def _check_pad_mode(pad_mode: str) -> None:
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")


def peak_normalise(x: torch.Tensor) -> torch.Tensor:
    """``x / max(1e-20, max|x|)`` with the peak taken jointly over the last two axes (channels, time)."""
    peak = x.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(PEAK_FLOOR)
    return x / peak


def hilbert_transform(x: torch.Tensor) -> torch.Tensor:
    """Imaginary part of the analytic signal of ``x`` along the last axis (scipy.signal.hilbert's definition):
    the spectrum times ``-j`` on positive frequencies, DC and Nyquist set to zero; one real FFT pair."""
    n = x.shape[-1]
    spec = torch.fft.rfft(x, dim=-1)
    spec.mul_(-1j)
    spec[..., 0] = 0
    if n % 2 == 0:
        spec[..., -1] = 0
    return torch.fft.irfft(spec, n=n, dim=-1)


def amplitude_envelope(x: torch.Tensor) -> torch.Tensor:
    """``abs(hilbert(x))`` along the last axis: ``sqrt(x^2 + H(x)^2)``."""
    return torch.sqrt(x.square() + hilbert_transform(x).square())


def _squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|a - b|^2`` of complex tensors, from the real and imaginary parts (no square root)."""
    d = a - b
    return d.real.square() + d.imag.square()


def _wrapped_abs_angle_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``min(d, 2 pi - d)`` with ``d = |angle(a) - angle(b)|``. Two angles, not the angle of ``a * conj(b)``:
    an all-zero bin has angle 0 by convention (numpy, torch), which the product form would lose -- and
    Mono-Mono's difference spectrogram is all zeros."""
    d = (torch.atan2(a.imag, a.real) - torch.atan2(b.imag, b.real)).abs()
    return torch.minimum(d, 2 * math.pi - d)


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` (paper or beyond) is the better one."""
    return name not in HIGHER_IS_BETTER and name not in BEYOND_HIGHER_IS_BETTER


def _score_chunk(pred: torch.Tensor, true: torch.Tensor, pad_mode: str, spatial: bool = False
                 ) -> dict[str, torch.Tensor]:
    """All six metrics (and the spatial ones) for peak-normalised ``[b, 2, T]`` float64 tensors; each ``[b]``."""
    s_pred = stft(pred, pad_mode, torch.float64)  # [b, 2, F, N]
    s_true = stft(true, pad_mode, torch.float64)
    sq = _squared_error(s_pred, s_true)  # |dS|^2 = dRe^2 + dIm^2
    mag = sq.mean(dim=(-2, -1)).sum(dim=-1)
    # mean over (re/im, f, t) of the squared component errors = half the mean of |dS|^2
    stft_distance = mag / 2

    env_err = (amplitude_envelope(pred) - amplitude_envelope(true)).square().mean(dim=-1).sqrt()
    env = env_err.sum(dim=-1)

    wav = 1000.0 * (pred - true).square().mean(dim=-1).sum(dim=-1)

    # the STFT is linear, so STFT(L - R) = S_L - S_R: two fewer transforms (padding is linear too)
    d_pred = s_pred[:, 0] - s_pred[:, 1]
    d_true = s_true[:, 0] - s_true[:, 1]
    phs = _wrapped_abs_angle_diff(d_pred, d_true).mean(dim=(-2, -1))

    signal = true.square().mean(dim=(-2, -1))
    noise = (pred - true).square().mean(dim=(-2, -1))
    snr = 10.0 * torch.log10((signal + SNR_EPS) / (noise + SNR_EPS))
    out = {"STFT": stft_distance, "ENV": env, "WAV": wav, "Mag": mag, "Phs": phs, "SNR": snr}
    if spatial:
        out.update(spatial_errors(s_pred, s_true))
    return out


def compute_metrics_batch(
    pred: ArrayLike,
    true: ArrayLike,
    *,
    pad_mode: str = DEFAULT_PAD_MODE,
    chunk: int = 4,
    device: str | torch.device | None = None,
    spatial: bool = False,
) -> dict[str, np.ndarray]:
    """Metrics of ``B`` clips at once: ``pred``, ``true`` are ``[B, 2, T]``; returns name -> float64 ``[B]``.

    Computed in float64 (phase metrics on quiet bins are sensitive to rounding); ``chunk`` clips go through
    the FFTs together, which bounds memory (about 70 MB per 10 s clip); on CPU 4 clips measured fastest
    (larger chunks fall out of cache), on a GPU use larger chunks.
    """
    _check_pad_mode(pad_mode)
    p = _as_tensor(pred, "pred")
    t = _as_tensor(true, "true")
    _check_pair(p, t, batched=True)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    dev = torch.device(device) if device is not None else p.device
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in (*METRIC_NAMES, *(SPATIAL_NAMES if spatial else ()))}
    with torch.no_grad():
        for start in range(0, p.shape[0], chunk):
            pc = peak_normalise(p[start : start + chunk].to(dev))
            tc = peak_normalise(t[start : start + chunk].to(dev))
            for k, v in _score_chunk(pc, tc, pad_mode, spatial).items():
                parts[k].append(v.cpu())
    return {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in parts.items()}


def compute_metrics(pred: ArrayLike, true: ArrayLike, *, pad_mode: str = DEFAULT_PAD_MODE, spatial: bool = False
                    ) -> dict[str, float]:
    """The six metrics (and with ``spatial`` the spatial ones) of one clip: ``pred``, ``true`` are ``[2, T]``."""
    _check_pad_mode(pad_mode)
    p = _as_tensor(pred, "pred")
    t = _as_tensor(true, "true")
    _check_pair(p, t, batched=False)
    out = compute_metrics_batch(p[None], t[None], pad_mode=pad_mode, chunk=1, spatial=spatial)
    return {k: float(v[0]) for k, v in out.items()}


def mean_metrics(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Average per-clip metric dicts (clips are weighted equally, as the papers do): the six metrics, and every
    beyond-the-paper metric the rows carry; LOC over the clips it applies to (NaN when none)."""
    if not rows:
        raise ValueError("no clips to average")
    out = {k: float(np.mean([r[k] for r in rows])) for k in METRIC_NAMES}
    for k in BEYOND_PAPER:
        if all(k in r for r in rows):
            vals = np.array([r[k] for r in rows], dtype=np.float64)
            known = vals[~np.isnan(vals)] if k == LOC else vals
            out[k] = float(known.mean()) if known.size else math.nan
    return out
