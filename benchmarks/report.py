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
from ccstereo.metrics import BEYOND_PAPER, METRIC_NAMES, lower_is_better
from pipelines.io import atomic_write_text

# sample standard deviation over splits (ddof=1), what "mean +- std over splits" usually means; 0 for one split
STD_DDOF = 1
SPLITS_COLUMNS = ("dataset", "protocol", "split", "method", "n_clips", *METRIC_NAMES)  # splits.csv
CSV_OPTIONS = {"index": False, "lineterminator": "\n", "na_rep": "nan"}  # floats as repr() writes them
BEYOND_MARK = "†"  # marks the columns beyond the paper in every table
BEYOND_LEGEND = {
    "ILD": "interaural level difference error per ERB band, energy-weighted (dB)",
    "ITD": "interaural time difference error, GCC-PHAT below 1.5 kHz (µs)",
    "IC": "interaural coherence error (0-1)",
    "SWAP": "STFT distance with the predicted channels swapped: equal to STFT for a prediction that cannot tell "
            "left from right, higher when it can",
    "LOC": "localisation error: azimuth implied by the predicted cues (KEMAR lookup) against the true source "
           "azimuth, single-source clips of the synthetic world (degrees)",
}


def beyond_columns(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The beyond-the-paper metrics the results carry (every result of a run is scored alike)."""
    return [c for c in BEYOND_PAPER if any(c in r["metrics"] for r in results)]


def results_frame(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (section, split, method) result with its per-split means, in ``splits.csv`` order: dataset,
    protocol, split (numerically), method; the paper's metrics, then those beyond it (NaN where not scored)."""
    metric_columns = [*METRIC_NAMES, *beyond_columns(results)]
    rows = [{"dataset": r["dataset"], "protocol": r["protocol"], "split": r["split"], "method": r["method"],
             "n_clips": r["n_clips"], **{c: r["metrics"].get(c, math.nan) for c in metric_columns}}
            for r in results]
    frame = pd.DataFrame(rows, columns=[*SPLITS_COLUMNS, *metric_columns[len(METRIC_NAMES):]])
    return frame.sort_values(["dataset", "protocol", "split", "method"], kind="stable", ignore_index=True,
                             key=lambda col: col.map(split_order) if col.name == "split" else col)


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
    beyond = beyond_columns(results)
    sections = []
    for section in preset.sections:
        methods = [m for spec in section.methods
                   if (m := _method_summary(preset, section, spec, frame, results, beyond)) is not None]
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
        "beyond_paper_columns": beyond,
        "lower_is_better": {c: lower_is_better(c) for c in (*preset.columns, *beyond)},
        "aggregation": f"mean and standard deviation (ddof={STD_DDOF}) over splits of per-split means over test clips",
        "meta": meta,
        "sections": sections,
    }


def _method_summary(preset: TablePreset, section: Section, spec: MethodSpec, frame: pd.DataFrame,
                    results: list[dict[str, Any]], beyond: Sequence[str] = ()) -> dict[str, Any] | None:
    """One method's entry of a section (None when it was not run): per split, mean, std, the paper's row."""
    cell = (frame["dataset"] == section.dataset) & (frame["protocol"] == section.protocol) & (
        frame["method"] == spec.name)
    if not cell.any():
        return None
    per_split = frame[cell].set_index("split")
    records = [r for r in results if r["dataset"] == section.dataset and r["protocol"] == section.protocol
               and r["method"] == spec.name]
    columns = [*preset.columns, *beyond]
    mean, std = aggregate(per_split, columns)
    paper = paper_row(preset.table, spec.name, section.dataset)
    paper_values = {c: paper["values"].get(c) for c in preset.columns} if paper else None
    return {
        "method": spec.name,
        "n_splits": len(per_split),
        "n_clips": {s: int(n) for s, n in per_split["n_clips"].items()},
        "per_split": per_split.loc[:, columns].astype("float64").to_dict(orient="index"),
        "mean": mean,
        "std": std,
        "paper": paper_values,
        "relative_difference": relative_difference(mean, paper_values) if paper_values else None,
        "tdss": records[0]["tdss"],
        "note": records[0].get("note"),
        "checkpoints": {r["split"]: r.get("checkpoint") for r in records},
    }


def split_order(split: str) -> tuple[int, str]:
    return (int(split), split) if split.isdigit() else (10**9, split)


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _mean_std(mean: float, std: float | None) -> str:
    text = _fmt(mean)
    return text if std is None or text == "-" else f"{text} ± {_fmt(std)}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def column_title(summary: dict[str, Any], c: str) -> str:
    """``STFT ↓``, ``ILD† ↓``: the arrow says which way is better, the mark that the paper has no such column."""
    mark = BEYOND_MARK if c in summary.get("beyond_paper_columns", ()) else ""
    return f"{c}{mark} {'↓' if summary['lower_is_better'][c] else '↑'}"


def beyond_legend(summary: dict[str, Any]) -> str:
    """One sentence per beyond-the-paper column (empty when the run has none)."""
    beyond = summary.get("beyond_paper_columns", [])
    if not beyond:
        return ""
    return (f"{BEYOND_MARK} Beyond the paper (no published numbers): "
            + "; ".join(f"{c}: {BEYOND_LEGEND[c]}" for c in beyond) + ".")


def _notes(items: Sequence[Mapping[str, Any]]) -> bool:
    return any(i.get("note") for i in items)


def render_markdown(summary: dict[str, Any], plots: Sequence[str] = ()) -> str:
    meta = summary["meta"]
    lines = [f"# Table {summary['table']}: {summary['title']}", ""]
    lines += [
        "| setting | value |", "|---|---|",
        *(f"| {k} | {_md(v)} |" for k, v in meta_rows(meta)),
        "",
        (f"Aggregation: {summary['aggregation']}. Relative difference = (ours - paper) / paper; for ↓ columns "
         "a negative difference means ours is lower (better)."),
        "",
    ]
    if legend := beyond_legend(summary):
        lines += [legend, ""]
    for sec in summary["sections"]:
        lines += _section_markdown(summary, sec)
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
        lines.append("")
    if summary.get("html"):
        lines += [f"Listening report (audio, spectrograms, ILD over time): [{summary['html']}]({summary['html']})", ""]
    return "\n".join(lines)


def _section_markdown(summary: dict[str, Any], sec: dict[str, Any]) -> list[str]:
    paper_cols = summary["columns"]
    cols = [*paper_cols, *summary.get("beyond_paper_columns", [])]
    titles = [column_title(summary, c) for c in cols]
    method_notes, row_notes = _notes(sec["methods"]), _notes(sec["paper_rows"])
    lines = [f"## {sec['dataset']} ({sec['protocol']}, splits {', '.join(sec['splits'])})", ""]
    several = len(sec["splits"]) > 1  # one split has no spread to report
    title = "mean ± std over splits" if several else "one split"
    lines += [f"### This run ({title})", "", _head(titles, method_notes)]
    for m in sec["methods"]:
        cells = [_mean_std(m["mean"][c], m["std"][c] if several else None) for c in cols]
        lines.append(_row(m["method"], cells, m.get("note") if method_notes else None))
    lines += ["", "### Against the paper", "",
              _head([f"{c} ours / paper (diff)" for c in paper_cols], False), ]
    for m in sec["methods"]:
        if not m["paper"]:
            lines.append(_row(m["method"], [f"{_fmt(m['mean'][c])} / -" for c in paper_cols]))
            continue
        lines.append(_row(m["method"], [f"{_fmt(m['mean'][c])} / {_fmt(m['paper'][c])} "
                                        f"({_pct(m['relative_difference'][c])})" for c in paper_cols]))
    if sec["paper_rows"]:
        lines += ["", "### The paper's rows", "", _head(titles, row_notes)]
        for r in sec["paper_rows"]:
            star = " ★" if r.get("extra_data") else ""
            lines.append(_row(f"{r['method']}{star}", [_fmt(r["values"].get(c)) for c in cols],
                              r.get("note") if row_notes else None))
    lines += ["", "### Per split", "", "| method | split | clips | " + " | ".join(titles) + " |",
              "|---|---|---|" + "---|" * len(cols)]
    for m in sec["methods"]:
        for split, vals in m["per_split"].items():
            lines.append(f"| {m['method']} | {split} | {m['n_clips'][split]} | "
                         + " | ".join(_fmt(vals[c]) for c in cols) + " |")
    lines.append("")
    return lines


def _head(titles: Sequence[str], note: bool) -> str:
    extra = " note |" if note else ""
    return ("| method | " + " | ".join(titles) + f" |{extra}\n|---|" + "---|" * len(titles)
            + ("---|" if note else ""))


def _row(name: str, cells: Sequence[str], note: str | None = None) -> str:
    tail = "" if note is None else f" {_md(note or '')} |"
    return f"| {_md(name)} | " + " | ".join(cells) + f" |{tail}"


def _md(v: Any) -> str:
    text = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)
    return text.replace("|", "\\|")


def meta_rows(meta: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = ["commit", "device", "preset", "hop", "pad_mode", "select_on", "seeds", "max_steps", "packages",
            "data_manifests", "started", "finished"]
    return [(k, meta[k]) for k in keys if k in meta] + [(k, v) for k, v in meta.items() if k not in keys]


def write_split_files(out_dir: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    """Per-(split, method) JSON (everything) and CSV (one row per test clip, plus a mean row)."""
    stem = out_dir / f"{result['dataset']}-{result['protocol']}-{result['split']}" / result["method_slug"]
    json_path = stem.with_suffix(".json")
    csv_path = stem.with_suffix(".csv")
    columns = ["key", *METRIC_NAMES, *beyond_columns([result])]
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
    write_summary(out_dir, summary)
    return summary


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and ``report.md`` of ``summary`` (the HTML report calls it again to add its link)."""
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
    atomic_write_text(out_dir / "report.md", render_markdown(summary, summary.get("plots", [])))
