"""Plots of a table run: bars of every method against the paper's rows, and Fig. 10 style spectrograms.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot): no global backend or figure registry,
and the PNG renderer is chosen by the file format.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ccstereo.audio import stft
from pipelines.io import atomic_write_bytes


def plot_bars(summary: dict[str, Any], path: Path) -> Path:
    """One panel per column: this run's methods (mean ± std) beside every paper row of the same dataset."""
    cols = summary["columns"]
    nsec = len(summary["sections"])
    fig = Figure(figsize=(3.2 * len(cols), 3.6 * nsec))
    axes = fig.subplots(nsec, len(cols), squeeze=False)
    for si, sec in enumerate(summary["sections"]):
        for ci, c in enumerate(cols):
            ax = axes[si][ci]
            labels, vals, errs, colours = [], [], [], []
            for m in sec["methods"]:
                labels.append(f"{m['method']} (ours)")
                vals.append(m["mean"][c])
                errs.append(m["std"][c])
                colours.append("tab:blue")
            for r in sec["paper_rows"]:
                v = r["values"].get(c)
                if v is not None:
                    labels.append(f"{r['method']} (paper)")
                    vals.append(v)
                    errs.append(0.0)
                    colours.append("tab:gray")
            y = np.arange(len(labels))
            ax.barh(y, vals, xerr=errs, color=colours)
            ax.set_yticks(y, labels, fontsize=6)
            ax.invert_yaxis()
            ax.set_title(f"{sec['dataset']} {c} {'↓' if summary['lower_is_better'][c] else '↑'}", fontsize=8)
            ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    return _save(fig, path)


def plot_spectrograms(pred: np.ndarray, true: np.ndarray, title: str, path: Path) -> Path:
    """Ground truth / prediction / squared error of the difference spectrogram, real and imaginary parts
    (the layout of the paper's Fig. 10), for one clip ``[2, T]``."""
    gt, pr = _difference_spectrogram(true), _difference_spectrogram(pred)
    fig = Figure(figsize=(8, 11))
    axes = fig.subplots(6, 1, sharex=True)
    panels = [("GT real", gt.real), ("Pred real", pr.real), ("MSE real", (gt.real - pr.real) ** 2),
              ("GT imag", gt.imag), ("Pred imag", pr.imag), ("MSE imag", (gt.imag - pr.imag) ** 2)]
    for ax, (name, data) in zip(axes, panels):
        shown = np.log1p(np.abs(data) * 10.0) * (1.0 if name.startswith("MSE") else np.sign(data))
        lim = float(np.abs(shown).max()) or 1.0
        cmap, vmin = ("magma", 0.0) if name.startswith("MSE") else ("RdBu_r", -lim)
        ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=lim)
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel("STFT frame (10 ms)", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _difference_spectrogram(x: np.ndarray) -> np.ndarray:
    """STFT of L - R after peak normalisation (as the metrics see the clip)."""
    x = x / max(1e-20, float(np.abs(x).max()))
    return stft(torch.from_numpy(np.ascontiguousarray(x[0] - x[1], dtype=np.float32))).numpy()


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    # a fixed Software tag and no timestamp: the same numbers give the same bytes
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": "ccstereo-toolkit"})
    atomic_write_bytes(path, buf.getvalue())
    return path
