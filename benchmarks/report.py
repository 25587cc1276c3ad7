"""Reports of a table run: per-split CSV/JSON, ``summary.json``, ``report.md`` and plots.

Inputs are the per-(split, method) result records :mod:`benchmarks.run` writes (``SplitResult.to_dict()``).
The aggregate of a method is the mean and the sample standard deviation (``STD_DDOF``) over splits of the
per-split means (each per-split mean averages that split's test clips), next to the paper's number and the
relative difference ``(ours - paper) / |paper|``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tables import TablePreset, paper_row, paper_rows
from ccstereo.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from pipelines.io import atomic_write_bytes, atomic_write_text

# sample standard deviation over splits (ddof=1), what "mean +- std over splits" usually means; 0 for one split
STD_DDOF = 1


def aggregate(per_split: dict[str, dict[str, float]], columns: Sequence[str]) -> tuple[dict, dict]:
    """(mean, std) over splits of each column; ``std`` is 0.0 when there is a single split."""
    mean, std = {}, {}
    for c in columns:
        vals = np.array([m[c] for m in per_split.values()], dtype=np.float64)
        mean[c] = float(vals.mean()) if vals.size else math.nan
        std[c] = float(vals.std(ddof=STD_DDOF)) if vals.size > 1 else 0.0
    return mean, std


def relative_difference(ours: dict[str, float], paper: dict[str, float | None]) -> dict[str, float | None]:
    """``(ours - paper) / |paper|`` per column (None where the paper gives no number)."""
    out: dict[str, float | None] = {}
    for c, p in paper.items():
        if p is None or c not in ours or p == 0:
            out[c] = None
        else:
            out[c] = (ours[c] - p) / abs(p)
    return out


def build_summary(preset: TablePreset, results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The ``summary.json`` document: per section and method, per-split means, aggregate, paper numbers."""
    sections = []
    for section in preset.sections:
        methods = []
        for spec in section.methods:
            rows = [r for r in results if r["dataset"] == section.dataset and r["protocol"] == section.protocol
                    and r["method"] == spec.name]
            if not rows:
                continue
            per_split = {r["split"]: {c: r["metrics"][c] for c in METRIC_NAMES} for r in
                         sorted(rows, key=lambda r: _split_order(r["split"]))}
            mean, std = aggregate(per_split, preset.columns)
            paper = paper_row(preset.table, spec.name, section.dataset)
            paper_values = {c: paper["values"].get(c) for c in preset.columns} if paper else None
            methods.append({
                "method": spec.name,
                "n_splits": len(per_split),
                "n_clips": {r["split"]: r["n_clips"] for r in rows},
                "per_split": {s: {c: v[c] for c in preset.columns} for s, v in per_split.items()},
                "mean": mean,
                "std": std,
                "paper": paper_values,
                "relative_difference": relative_difference(mean, paper_values) if paper_values else None,
                "tdss": rows[0]["tdss"],
                "checkpoints": {r["split"]: r.get("checkpoint") for r in rows},
            })
        sections.append({
            "dataset": section.dataset,
            "protocol": section.protocol,
            "splits": list(section.splits),
            "methods": methods,
            "paper_rows": [r for r in paper_rows(preset.table) if r["dataset"] == section.dataset],
        })
    return {
        "table": preset.table,
        "title": preset.title,
        "columns": list(preset.columns),
        "lower_is_better": {c: c not in HIGHER_IS_BETTER for c in preset.columns},
        "aggregation": f"mean and standard deviation (ddof={STD_DDOF}) over splits of per-split means over test clips",
        "meta": meta,
        "sections": sections,
    }


def _split_order(split: str) -> tuple[int, str]:
    return (int(split), split) if split.isdigit() else (10**9, split)


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def render_markdown(summary: dict[str, Any], plots: Sequence[str] = ()) -> str:
    cols = summary["columns"]
    arrows = {c: ("↓" if summary["lower_is_better"][c] else "↑") for c in cols}
    meta = summary["meta"]
    lines = [f"# Table {summary['table']}: {summary['title']}", ""]
    lines += [
        "| setting | value |", "|---|---|",
        *(f"| {k} | {_md(v)} |" for k, v in _meta_rows(meta)),
        "",
        f"Aggregation: {summary['aggregation']}. Relative difference = (ours - paper) / paper; for ↓ columns a "
        "negative difference means ours is lower (better).",
        "",
    ]
    for sec in summary["sections"]:
        lines += [f"## {sec['dataset']} ({sec['protocol']}, splits {', '.join(sec['splits'])})", ""]
        head = "| method | " + " | ".join(f"{c} {arrows[c]}" for c in cols) + " |"
        several = len(sec["splits"]) > 1  # one split has no spread to report
        title = "mean ± std over splits" if several else "one split"
        lines += [f"### This run ({title})", "", head, "|---|" + "---|" * len(cols)]
        for m in sec["methods"]:
            cells = [_fmt(m["mean"][c]) + (f" ± {_fmt(m['std'][c])}" if several else "") for c in cols]
            lines.append(f"| {m['method']} | " + " | ".join(cells) + " |")
        lines += ["", "### Against the paper", "",
                  "| method | " + " | ".join(f"{c} ours / paper (diff)" for c in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for m in sec["methods"]:
            if not m["paper"]:
                lines.append(f"| {m['method']} | " + " | ".join(f"{_fmt(m['mean'][c])} / -" for c in cols)
                             + " |")
                continue
            cells = [f"{_fmt(m['mean'][c])} / {_fmt(m['paper'][c])} ({_pct(m['relative_difference'][c])})"
                     for c in cols]
            lines.append(f"| {m['method']} | " + " | ".join(cells) + " |")
        if sec["paper_rows"]:
            lines += ["", "### The paper's rows", "", head, "|---|" + "---|" * len(cols)]
            for r in sec["paper_rows"]:
                star = " ★" if r.get("extra_data") else ""
                lines.append(f"| {r['method']}{star} | " + " | ".join(_fmt(r['values'].get(c)) for c in cols)
                             + " |")
        lines += ["", "### Per split", "", "| method | split | clips | " + " | ".join(cols) + " |",
                  "|---|---|---|" + "---|" * len(cols)]
        for m in sec["methods"]:
            for split, vals in m["per_split"].items():
                lines.append(f"| {m['method']} | {split} | {m['n_clips'][split]} | "
                             + " | ".join(_fmt(vals[c]) for c in cols) + " |")
        lines.append("")
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
        lines.append("")
    return "\n".join(lines)


def _md(v: Any) -> str:
    text = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)
    return text.replace("|", "\\|")


def _meta_rows(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = ["commit", "device", "preset", "hop", "pad_mode", "select_on", "seeds", "max_steps", "packages",
            "data_manifests", "started", "finished"]
    return [(k, meta[k]) for k in keys if k in meta] + [(k, v) for k, v in meta.items() if k not in keys]


def write_split_files(out_dir: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    """Per-(split, method) JSON (everything) and CSV (one row per test clip, plus a mean row)."""
    stem = out_dir / f"{result['dataset']}-{result['protocol']}-{result['split']}" / result["method_slug"]
    json_path = stem.with_suffix(".json")
    csv_path = stem.with_suffix(".csv")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", *METRIC_NAMES])
    for clip in result["clips"]:
        w.writerow([clip["key"], *(repr(float(clip[c])) for c in METRIC_NAMES)])
    w.writerow(["mean", *(repr(float(result["metrics"][c])) for c in METRIC_NAMES)])
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(json_path, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return json_path, csv_path


def write_splits_table(path: Path, results: list[dict[str, Any]]) -> None:
    """One CSV row per (section, split, method): the per-split means, for spreadsheets."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "protocol", "split", "method", "n_clips", *METRIC_NAMES])
    for r in sorted(results, key=lambda r: (r["dataset"], r["protocol"], _split_order(r["split"]), r["method"])):
        w.writerow([r["dataset"], r["protocol"], r["split"], r["method"], r["n_clips"],
                    *(repr(float(r["metrics"][c])) for c in METRIC_NAMES)])
    atomic_write_text(path, buf.getvalue())


def plot_bars(summary: dict[str, Any], path: Path) -> Path:
    """One panel per column: this run's methods (mean ± std) beside every paper row of the same dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = summary["columns"]
    nsec = len(summary["sections"])
    fig, axes = plt.subplots(nsec, len(cols), figsize=(3.2 * len(cols), 3.6 * nsec), squeeze=False)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ccstereo.audio import stft

    def diff_spec(x: np.ndarray) -> np.ndarray:
        x = x / max(1e-20, float(np.abs(x).max()))  # as the metrics see it
        return stft(torch.from_numpy(np.ascontiguousarray(x[0] - x[1], dtype=np.float32))).numpy()

    gt, pr = diff_spec(true), diff_spec(pred)
    fig, axes = plt.subplots(6, 1, figsize=(8, 11), sharex=True)
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


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # a fixed Software tag and no timestamp: the same numbers give the same bytes
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": "ccstereo-toolkit"})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_reports(out_dir: Path, preset: TablePreset, results: list[dict[str, Any]], meta: dict[str, Any]
                  ) -> dict[str, Any]:
    """``summary.json``, ``splits.csv``, ``report.md`` and the bar plot for everything in ``results``."""
    summary = build_summary(preset, results, meta)
    write_splits_table(out_dir / "splits.csv", results)
    plots = [plot_bars(summary, out_dir / "plots" / "bars.png")]
    examples = sorted((out_dir / "plots").glob("spectrogram-*.png"))
    rel = [p.relative_to(out_dir).as_posix() for p in [*plots, *examples]]
    summary["plots"] = rel
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    atomic_write_text(out_dir / "report.md", render_markdown(summary, rel))
    return summary
