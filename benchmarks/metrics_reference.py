"""Independent per-clip reference of the SPEC section 10 metrics, written from the formulas with numpy/scipy.

It shares no code with ``ccstereo.metrics`` (own framing, own window, scipy's Hilbert transform), so agreement
between the two is evidence that both follow the definition. Used by tests and by the metrics speed script.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import hilbert

N_FFT, HOP, WIN = 512, 160, 400  # SPEC section 10, typed here on purpose: an independent reading of the spec


def _stft(x: np.ndarray, pad_mode: str) -> np.ndarray:
    """Centred STFT of a 1-D signal: pad n_fft/2 each side, frame every hop, periodic Hann(400) centred in 512."""
    n = np.arange(WIN)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)  # periodic Hann
    window = np.zeros(N_FFT)
    left = (N_FFT - WIN) // 2
    window[left : left + WIN] = hann
    padded = np.pad(x, N_FFT // 2, mode=pad_mode)
    n_frames = 1 + len(x) // HOP
    frames = np.stack([padded[i * HOP : i * HOP + N_FFT] for i in range(n_frames)], axis=1)  # [512, N]
    return np.fft.rfft(frames * window[:, None], axis=0)  # [257, N]


def reference_metrics(pred: np.ndarray, true: np.ndarray, pad_mode: str = "constant") -> dict[str, float]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    pred = pred / max(1e-20, np.max(np.abs(pred)))
    true = true / max(1e-20, np.max(np.abs(true)))
    stft = mag = env = wav = 0.0
    for c in range(2):
        sp, st = _stft(pred[c], pad_mode), _stft(true[c], pad_mode)
        stft += np.mean(np.stack([(sp.real - st.real) ** 2, (sp.imag - st.imag) ** 2]))
        mag += np.mean(np.abs(sp - st) ** 2)
        env += np.sqrt(np.mean((np.abs(hilbert(pred[c])) - np.abs(hilbert(true[c]))) ** 2))
        wav += np.mean((pred[c] - true[c]) ** 2)
    dp = _stft(pred[0] - pred[1], pad_mode)
    dt = _stft(true[0] - true[1], pad_mode)
    d = np.abs(np.angle(dp) - np.angle(dt))
    phs = np.mean(np.minimum(d, 2 * np.pi - d))
    snr = 10 * np.log10((np.mean(true**2) + 1e-4) / (np.mean((pred - true) ** 2) + 1e-4))
    return {"STFT": stft, "ENV": env, "WAV": 1000 * wav, "Mag": mag, "Phs": phs, "SNR": snr}
