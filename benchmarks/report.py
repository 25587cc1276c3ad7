"""Reports of a table run: per-split CSV/JSON, ``splits.csv``, ``summary.json``, ``report.md`` and plots.

Inputs are the per-(split, method) result records :mod:`benchmarks.records` defines. The aggregate of a method
is the mean and the sample standard deviation (``STD_DDOF``) over splits of the per-split means (each per-split
mean averages that split's test clips), next to the paper's number and the relative difference
``(ours - paper) / |paper|``. The tables and the aggregation are pandas frames; the Markdown is written here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.plots import plot_bars
from benchmarks.tables import MethodSpec, Section, TablePreset, paper_row, paper_rows
from ccstereo.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from pipelines.io import atomic_write_text

# sample standard deviation over splits (ddof=1), what "mean +- std over splits" usually means; 0 for one split
STD_DDOF = 1
SPLITS_COLUMNS = ("dataset", "protocol", "split", "method", "n_clips", *METRIC_NAMES)  # splits.csv
CSV_OPTIONS = {"index": False, "lineterminator": "\n", "na_rep": "nan"}  # floats as repr() writes them


def results_frame(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (section, split, method) result with its per-split means, in ``splits.csv`` order: dataset,
    protocol, split (numerically), method."""
    rows = [{"dataset": r["dataset"], "protocol": r["protocol"], "split": r["split"], "method": r["method"],
             "n_clips": r["n_clips"], **{c: r["metrics"][c] for c in METRIC_NAMES}} for r in results]
    frame = pd.DataFrame(rows, columns=list(SPLITS_COLUMNS))
    return frame.sort_values(["dataset", "protocol", "split", "method"], kind="stable", ignore_index=True,
                             key=lambda col: col.map(_split_order) if col.name == "split" else col)


def aggregate(per_split: pd.DataFrame, columns: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    """(mean, std) over splits (the rows of ``per_split``) of each column; ``std`` is 0.0 for a single split."""
    values = per_split.loc[:, list(columns)].astype("float64")
    # numpy's summation, as before pandas did this: bottleneck (when installed) sums in another order
    with pd.option_context("compute.use_bottleneck", False):
        mean = values.mean(skipna=False)
        std = values.std(ddof=STD_DDOF, skipna=False) if len(values) > 1 else pd.Series(0.0, index=values.columns)
    return {c: float(mean[c]) for c in columns}, {c: float(std[c]) for c in columns}


def relative_difference(ours: Mapping[str, float], paper: Mapping[str, float | None]) -> dict[str, float | None]:
    """``(ours - paper) / |paper|`` per column of ``paper`` (None where the paper gives no number, or zero)."""
    theirs = pd.Series(paper, dtype="float64")  # None -> NaN
    known = theirs.notna() & theirs.ne(0) & theirs.index.isin(list(ours))
    rel = (pd.Series(ours, dtype="float64").reindex(theirs.index) - theirs) / theirs.abs()
    return {c: float(rel[c]) if known[c] else None for c in theirs.index}


def build_summary(preset: TablePreset, results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The ``summary.json`` document: per section and method, per-split means, aggregate, paper numbers."""
    frame = results_frame(results)
    sections = []
    for section in preset.sections:
        methods = [m for spec in section.methods
                   if (m := _method_summary(preset, section, spec, frame, results)) is not None]
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


def _method_summary(preset: TablePreset, section: Section, spec: MethodSpec, frame: pd.DataFrame,
                    results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One method's entry of a section (None when it was not run): per split, mean, std, the paper's row."""
    cell = (frame["dataset"] == section.dataset) & (frame["protocol"] == section.protocol) & (
        frame["method"] == spec.name)
    if not cell.any():
        return None
    per_split = frame[cell].set_index("split")
    records = [r for r in results if r["dataset"] == section.dataset and r["protocol"] == section.protocol
               and r["method"] == spec.name]
    mean, std = aggregate(per_split, preset.columns)
    paper = paper_row(preset.table, spec.name, section.dataset)
    paper_values = {c: paper["values"].get(c) for c in preset.columns} if paper else None
    return {
        "method": spec.name,
        "n_splits": len(per_split),
        "n_clips": {s: int(n) for s, n in per_split["n_clips"].items()},
        "per_split": per_split.loc[:, list(preset.columns)].astype("float64").to_dict(orient="index"),
        "mean": mean,
        "std": std,
        "paper": paper_values,
        "relative_difference": relative_difference(mean, paper_values) if paper_values else None,
        "tdss": records[0]["tdss"],
        "checkpoints": {r["split"]: r.get("checkpoint") for r in records},
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
        (f"Aggregation: {summary['aggregation']}. Relative difference = (ours - paper) / paper; for ↓ columns "
         "a negative difference means ours is lower (better)."),
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
    columns = ["key", *METRIC_NAMES]
    clips = pd.DataFrame(result["clips"], columns=columns)
    mean = pd.DataFrame([{"key": "mean", **result["metrics"]}], columns=columns)
    atomic_write_text(csv_path, pd.concat([clips, mean], ignore_index=True).to_csv(**CSV_OPTIONS))
    atomic_write_text(json_path, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return json_path, csv_path


def write_splits_table(path: Path, results: list[dict[str, Any]]) -> None:
    """One CSV row per (section, split, method): the per-split means, for spreadsheets."""
    atomic_write_text(path, results_frame(results).to_csv(**CSV_OPTIONS))


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
