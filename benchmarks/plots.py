"""Plots of a table run: bars of every method against the paper's rows, and log-magnitude spectrograms of L - R.

Bars: one row of panels per section, one panel per column (the paper's, then those beyond it); this run's
methods in blue with the spread over splits as error bars and every split's value as a dot, the paper's number
for the same method as a black diamond, the paper's other rows as grey bars. Method names are written once, on
the left of each row, and the figure is laid out (constrained layout, tight bounding box) so that no label is
cut. Figures are :class:`matplotlib.figure.Figure` objects (no pyplot); PNGs are reproducible byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ccstereo.clip_figures import plot_difference_spectrograms, save_png

OURS, PAPER_OTHER, PAPER_MARK = "tab:blue", "0.72", "black"


def _bar_rows(sec: dict[str, Any], c: str) -> list[dict[str, Any]]:
    """The bars of one panel: this run's methods, then the paper's rows of methods this run did not produce."""
    ours = {m["method"] for m in sec["methods"]}
    rows = [{"label": f"{m['method']} (ours)", "value": m["mean"][c], "err": m["std"][c],
             "splits": [v[c] for v in m["per_split"].values()], "paper": (m.get("paper") or {}).get(c),
             "colour": OURS} for m in sec["methods"]]
    rows += [{"label": f"{r['method']} (paper)", "value": r["values"][c], "err": 0.0, "splits": [], "paper": None,
              "colour": PAPER_OTHER}
             for r in sec["paper_rows"] if r["method"] not in ours and r["values"].get(c) is not None]
    return rows


def plot_bars(summary: dict[str, Any], path: Path) -> Path:
    """One panel per (section, column): this run (mean, spread, splits) beside the paper's numbers."""
    cols = [*summary["columns"], *summary.get("beyond_paper_columns", [])]
    beyond = set(summary.get("beyond_paper_columns", []))
    sections = summary["sections"]
    n_rows = max([len(_bar_rows(sec, cols[0])) for sec in sections] + [1])
    fig = Figure(figsize=(2.3 * len(cols) + 3.0, (0.28 * n_rows + 1.3) * len(sections) + 0.6), layout="constrained")
    axes = fig.subplots(len(sections), len(cols), squeeze=False)
    for si, sec in enumerate(sections):
        labels = [r["label"] for r in _bar_rows(sec, cols[0])]
        for ci, c in enumerate(cols):
            ax = axes[si][ci]
            rows = {r["label"]: r for r in _bar_rows(sec, c)}
            y = np.arange(len(labels))
            for yi, label in zip(y, labels):
                r = rows.get(label)
                if r is None or r["value"] is None or not np.isfinite(r["value"]):
                    continue
                ax.barh(yi, r["value"], xerr=r["err"] or None, color=r["colour"], height=0.7,
                        error_kw={"elinewidth": 1.0, "capsize": 2.5})
                if r["splits"]:
                    ax.plot(r["splits"], [yi] * len(r["splits"]), "o", color="navy", markersize=2.5)
                if r["paper"] is not None:
                    ax.plot([r["paper"]], [yi], "D", color=PAPER_MARK, markersize=5)
            ax.set_yticks(y, labels if ci == 0 else [""] * len(labels), fontsize=7)
            ax.set_ylim(len(labels) - 0.5, -0.5)
            arrow = "↓" if summary["lower_is_better"][c] else "↑"
            ax.set_title(f"{c}{'†' if c in beyond else ''} {arrow}", fontsize=8)
            ax.tick_params(axis="x", labelsize=6)
        axes[si][0].set_ylabel(f"{sec['dataset']} ({sec['protocol']})", fontsize=8)
    fig.suptitle(f"Table {summary['table']}: bars = this run (mean, error bar = std over splits, dots = splits); "
                 "◆ = the paper's number for the method; grey = the paper's other rows; † = beyond the paper",
                 fontsize=8)
    return save_png(fig, path)


def plot_spectrograms(pred: np.ndarray, true: np.ndarray, title: str, path: Path) -> Path:
    """Truth, prediction and error of the difference spectrogram in dB (log magnitude), for one clip ``[2, T]``."""
    return plot_difference_spectrograms(pred, true, title, path)
