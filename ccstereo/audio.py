"""STFT/iSTFT with the project's parameters, RMS normalisation and mono/difference conversions (SPEC 2).

Spectrograms are carried as real tensors ``[..., 2, 257, T]`` (real, imag) because that is what the networks eat.
"""

from __future__ import annotations

import torch

from ccstereo.constants import HOP_LENGTH, LOUDNESS_EPS, N_FFT, SPEC_OFFSET, TARGET_RMS, WIN_LENGTH

# librosa >= 0.10 pads with zeros when centering (what the official CCStereo code ran with); "reflect" is the
# torch default and what older papers used.
DEFAULT_PAD_MODE = "constant"


def hann_window(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Periodic Hann window of ``WIN_LENGTH`` samples (what ``scipy.signal.get_window('hann', 400)`` gives)."""
    return torch.hann_window(WIN_LENGTH, periodic=True, device=device, dtype=dtype)


def stft(wave: torch.Tensor, pad_mode: str = DEFAULT_PAD_MODE, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Complex STFT of ``wave [..., T]`` -> ``[..., 257, T // 160 + 1]`` (centered), computed in ``dtype`` (signal
    and window): float32 for the networks, float64 for the metrics (phase on quiet bins is sensitive to rounding)."""
    lead = wave.shape[:-1]
    flat = wave.reshape(-1, wave.shape[-1]).to(dtype)
    spec = torch.stft(
        flat, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=hann_window(wave.device, dtype),
        center=True, pad_mode=pad_mode, return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`stft` for a complex ``[..., 257, F]`` spectrogram -> ``[..., length]``."""
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    wave = torch.istft(
        flat, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=hann_window(spec.device),
        center=True, length=length,
    )
    return wave.reshape(*lead, length)


def complex_to_ri(spec: torch.Tensor) -> torch.Tensor:
    """Complex ``[..., F, T]`` -> real ``[..., 2, F, T]`` (real, imag)."""
    return torch.stack([spec.real, spec.imag], dim=-3)


def ri_to_complex(ri: torch.Tensor) -> torch.Tensor:
    """Real ``[..., 2, F, T]`` -> complex ``[..., F, T]``."""
    return torch.complex(ri.select(-3, 0).float(), ri.select(-3, 1).float())


def stft_ri(wave: torch.Tensor, pad_mode: str = DEFAULT_PAD_MODE) -> torch.Tensor:
    """``wave [..., T]`` -> ``[..., 2, 257, F]`` (real, imag of the STFT)."""
    return complex_to_ri(stft(wave, pad_mode))


def istft_ri(ri: torch.Tensor, length: int) -> torch.Tensor:
    return istft(ri_to_complex(ri), length)


def network_spec(wave: torch.Tensor) -> torch.Tensor:
    """What the networks eat and predict for ``wave [..., T]``: the real/imag STFT plus ``SPEC_OFFSET`` (released)."""
    return stft_ri(wave) + SPEC_OFFSET


def network_wave(ri: torch.Tensor, length: int) -> torch.Tensor:
    """Waveform of a predicted ``[..., 2, F, T]`` spectrogram: ``SPEC_OFFSET`` off the real part, then iSTFT
    (the released code subtracts it from the complex spectrogram, i.e. from the real part only)."""
    return istft(torch.complex(ri.select(-3, 0).float() - SPEC_OFFSET, ri.select(-3, 1).float()), length)


def complex_mul_ri(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Complex product of two ``[..., 2, F, T]`` real/imag tensors (the mask applied to the mono spectrogram)."""
    ar, ai = a.select(-3, 0), a.select(-3, 1)
    br, bi = b.select(-3, 0), b.select(-3, 1)
    return torch.stack([ar * br - ai * bi, ar * bi + ai * br], dim=-3)


def rms(x: torch.Tensor) -> torch.Tensor:
    """RMS over every sample of every channel of the last two dims (``[..., C, T]``), shape ``[...]``."""
    return x.float().pow(2).mean(dim=(-2, -1)).sqrt()


def normalise_rms(x: torch.Tensor, target: float = TARGET_RMS, eps: float = LOUDNESS_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ``x [..., C, T]`` jointly over its channels to RMS ``target``; returns (scaled, gain).

    Training scales the stereo segment (SPEC 2); inference scales the mono window and divides the output by
    ``gain`` afterwards. The RMS is clamped to ``eps`` (released 1e-4), so a near-silent input is not blown up.
    """
    gain = target / rms(x).clamp_min(eps)
    return x * gain[..., None, None], gain


def to_mono_diff(stereo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., 2, T]`` (L, R) -> (mono = L + R, diff = L - R), each ``[..., T]`` (mono is not halved, SPEC 2)."""
    left, right = stereo.select(-2, 0), stereo.select(-2, 1)
    return left + right, left - right


def from_mono_diff(mono: torch.Tensor, diff: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Inverse of :func:`to_mono_diff`: ``L = (mono + diff) / 2``, ``R = (mono - diff) / 2`` stacked as a new axis
    ``dim``: ``[..., T]`` waveforms -> ``[..., 2, T]``; ``[B, 2, F, T]`` real/imag spectrograms (the STFT is linear)
    with ``dim=1`` -> ``[B, 2 (L, R), 2, F, T]``."""
    return torch.stack([(mono + diff) / 2, (mono - diff) / 2], dim=dim)


def segment_specs(stereo_segment: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS-normalised stereo segments ``[B, 2, 10080]`` -> (mono_spec, diff_spec), each ``[B, 2, 257, 64]``
    (:func:`network_spec`)."""
    mono, diff = to_mono_diff(stereo_segment)
    return network_spec(mono), network_spec(diff)
