"""Figures of one clip a listener can read: log-magnitude spectrograms of the difference signal L - R (truth,
prediction, error) with a colour bar and axes in Hz and seconds, and the broadband ILD over time.

Built with :class:`matplotlib.figure.Figure` (no pyplot: no global backend or figure registry); PNGs carry a fixed
Software tag and no timestamp, so the same numbers give the same bytes; written atomically with the user's umask.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ccstereo.audio import stft
from ccstereo.constants import HOP_LENGTH, N_FFT
from ccstereo.spatial import BAND_HIGH_HZ, BAND_LOW_HZ, ITD_BLOCK_FRAMES, LEVEL_EPS
from pipelines.contract import SAMPLE_RATE
from pipelines.io import atomic_write_bytes

DB_RANGE = 80.0  # dB below the truth's loudest bin shown by the spectrograms
PNG_DPI = 90


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG (tight bounding box: no label is cut by the canvas edge)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight", pad_inches=0.05,
                metadata={"Software": "ccstereo-toolkit"})
    atomic_write_bytes(path, buf.getvalue())
    return path


def _peak_normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / max(1e-20, float(np.abs(x).max()))


def difference_spectrum(x: np.ndarray) -> np.ndarray:
    """Complex STFT ``[257, N]`` of L - R of a ``[2, T]`` clip after peak normalisation (as the metrics see it)."""
    x = _peak_normalised(x)
    return stft(torch.from_numpy(np.ascontiguousarray(x[0] - x[1])), dtype=torch.float64).numpy()


def _db(mag: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(mag, 1e-12))


def plot_difference_spectrograms(pred: np.ndarray, true: np.ndarray | None, title: str, path: Path) -> Path:
    """Truth, prediction and error ``|D_pred - D_true|`` of ``D = STFT(L - R)`` (the prediction alone when the truth
    is unknown), in dB on one colour scale (``DB_RANGE`` below the reference's peak), time in s, frequency in Hz."""
    d_pred = difference_spectrum(pred)
    panels = [("prediction", np.abs(d_pred))]
    if true is not None:
        d_true = difference_spectrum(true)
        panels = [("truth", np.abs(d_true)), *panels, ("error", np.abs(d_pred - d_true))]
    top = float(_db(panels[0][1]).max())
    extent = (0.0, d_pred.shape[1] * HOP_LENGTH / SAMPLE_RATE, 0.0, SAMPLE_RATE / 2)
    fig = Figure(figsize=(8.0, 1.3 + 2.0 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (name, mag) in zip(axes, panels):
        image = ax.imshow(_db(mag), origin="lower", aspect="auto", cmap="magma", vmin=top - DB_RANGE, vmax=top,
                          extent=extent, interpolation="nearest")
        ax.set_ylabel(f"{name}\nfrequency (Hz)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_title(f"{title}: |STFT(L - R)|", fontsize=9)
    axes[-1].set_xlabel("time (s)", fontsize=8)
    bar = fig.colorbar(image, ax=list(axes), shrink=0.9)
    bar.set_label("dB (re. the peak-normalised clip)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return save_png(fig, path)


def ild_over_time(x: np.ndarray, block: int = ITD_BLOCK_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """(block centre times in s, broadband ILD in dB over 50 Hz - 8 kHz per 0.1 s block) of a ``[2, T]`` clip."""
    spec = stft(torch.from_numpy(np.ascontiguousarray(_peak_normalised(x))), dtype=torch.float64).numpy()
    f = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    power = (np.abs(spec[:, (f >= BAND_LOW_HZ) & (f <= BAND_HIGH_HZ)]) ** 2).sum(1)  # [2, N]
    n = max(1, power.shape[1] // block)
    energy = power[:, : n * block].reshape(2, n, -1).sum(-1)
    times = (np.arange(n) + 0.5) * block * HOP_LENGTH / SAMPLE_RATE
    return times, 10.0 * np.log10((energy[0] + LEVEL_EPS) / (energy[1] + LEVEL_EPS))


def plot_ild(true: np.ndarray | None, predictions: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """The ILD over time of the truth (black, when known) and of every prediction."""
    fig = Figure(figsize=(8.0, 2.8), layout="constrained")
    ax = fig.subplots()
    if true is not None:
        ax.plot(*ild_over_time(true), color="black", linewidth=2.0, label="ground truth")
    for name, pred in predictions.items():
        ax.plot(*ild_over_time(pred), linewidth=1.2, label=name)
    ax.axhline(0.0, color="0.7", linewidth=0.8)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("ILD (dB, + = left louder)", fontsize=8)
    ax.set_title(f"{title}: interaural level difference, 0.1 s blocks, 50 Hz - 8 kHz", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_png(fig, path)
