"""``report.html`` of a table run: the metric tables (this run, the paper's numbers, per split; sortable), the
bars, the provenance block of ``report.md``, and a listening section per table section.

Listening: on the first split of each section, the clips that are best, median and worst by the STFT distance of
the reference method (CCStereo when it ran, else the first method with a network), plus ``SAMPLE_CLIPS`` drawn
with the run's seed. Each chosen clip is predicted again by every method of that split, from the checkpoint its
result record names (the sha256 must match: a prediction is only shown for the network that was scored), with the
record's hop and TDSS. ``ccs-bench report OUT`` rebuilds every report of an existing run (:func:`rebuild`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import report
from benchmarks.records import finished_result
from benchmarks.tables import get_table
from ccstereo.checkpoint import load_model
from ccstereo.evaluate import EvalSettings, predict
from ccstereo.infer import JpegFrames
from ccstereo.listening import ClipView, esc, html_table, number_cell, render_clip, write_page
from pipelines.io import sha256_file
from pipelines.shards import iter_clips, list_shards, read_split_keys

SAMPLE_CLIPS = 2
REFERENCE_METHOD = "CCStereo"


def choose_clips(rows: Sequence[dict[str, Any]], seed: int, n_sample: int = SAMPLE_CLIPS) -> list[tuple[str, str]]:
    """(key, why) of the best, median and worst clip by STFT, then ``n_sample`` others drawn with ``seed``."""
    order = sorted(rows, key=lambda r: (r["STFT"], r["key"]))
    picks = [(order[0]["key"], "best by STFT"), (order[len(order) // 2]["key"], "median by STFT"),
             (order[-1]["key"], "worst by STFT")]
    chosen: list[tuple[str, str]] = []
    for key, why in picks:
        if key not in {k for k, _ in chosen}:
            chosen.append((key, why))
    rest = sorted({r["key"] for r in rows} - {k for k, _ in chosen})
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(rest), size=min(n_sample, len(rest)), replace=False) if rest else []
    chosen += [(rest[i], f"seeded sample (seed {seed})") for i in sorted(int(i) for i in drawn)]
    return chosen


def _columns(summary: dict[str, Any]) -> list[str]:
    return [*summary["columns"], *summary.get("beyond_paper_columns", [])]


def _section_tables(summary: dict[str, Any], sec: dict[str, Any]) -> str:
    cols = _columns(summary)
    titles = [report.column_title(summary, c) for c in cols]
    several = len(sec["splits"]) > 1
    rows, classes = [], []
    for m in sec["methods"]:
        rows.append([m["method"], "this run", *(number_cell(m["mean"][c], spread=m["std"][c] if several else None)
                                                 for c in cols), m.get("note") or ""])
        classes.append("")
    for r in sec["paper_rows"]:
        star = " ★" if r.get("extra_data") else ""
        rows.append([r["method"] + star, "paper", *(number_cell(r["values"].get(c)) for c in cols),
                     r.get("note") or ""])
        classes.append("paper")
    main = html_table(["method", "source", *titles, "note"], rows, row_classes=classes, note_column=len(cols) + 2,
                      ident=f"methods-{sec['dataset']}-{sec['protocol']}")
    against = []
    for m in sec["methods"]:
        paper, rel = m.get("paper") or {}, m.get("relative_difference") or {}
        cells: list = [m["method"]]
        for c in summary["columns"]:
            diff = rel.get(c)
            cells += [number_cell(m["mean"][c]), number_cell(paper.get(c)),
                      ("-", None) if diff is None else (f"{100 * diff:+.1f}%", diff)]
        against.append(cells)
    head = ["method", *(f"{c} {part}" for c in summary["columns"] for part in ("ours", "paper", "diff"))]
    per_split = [[m["method"], (s, report.split_order(s)[0]), (str(m["n_clips"][s]), m["n_clips"][s]),
                  *(number_cell(v[c]) for c in cols)] for m in sec["methods"] for s, v in m["per_split"].items()]
    return (f"<h3>This run ({'mean ± std over splits' if several else 'one split'}) and the paper's rows</h3>{main}"
            f"<h3>Against the paper</h3>{html_table(head, against)}"
            f"<h3>Per split</h3>{html_table(['method', 'split', 'clips', *titles], per_split)}")


def _provenance(meta: dict[str, Any]) -> str:
    rows = [[k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)]
            for k, v in report.meta_rows(meta)]
    return "<h2>Provenance</h2>" + html_table(["setting", "value"], rows, note_column=1)


def _clip_metrics(records: Sequence[dict[str, Any]], key: str, cols: Sequence[str], summary: dict[str, Any]) -> str:
    rows = []
    for rec in records:
        row = next((c for c in rec["clips"] if c["key"] == key), None)
        if row is not None:
            rows.append([rec["method"], *(number_cell(row.get(c)) for c in cols)])
    return html_table(["method", *(report.column_title(summary, c) for c in cols)], rows)


def _checkpoint_problem(rec: dict[str, Any]) -> str | None:
    """Why the record's network cannot be loaded to predict again (None: it can, or it has no network)."""
    path = rec.get("checkpoint")
    if not path:
        return None
    if not Path(path).is_file():
        return f"checkpoint {path} not found: no prediction to play"
    if rec.get("checkpoint_sha256") and sha256_file(path) != rec["checkpoint_sha256"]:
        return f"checkpoint {path} changed since it was scored: no prediction to play"
    return None


def _section_clips(table_dir: Path, summary: dict[str, Any], sec: dict[str, Any], records: list[dict[str, Any]],
                   root: Path, device: torch.device, seed: int, batch_size: int) -> str:
    """The listening part of one section (first split it ran): chosen clips predicted by every method."""
    split = min({r["split"] for r in records}, key=report.split_order)
    recs = [r for r in records if r["split"] == split]
    ref = next((r for r in recs if r["method"] == REFERENCE_METHOD), None) or next(
        (r for r in recs if r.get("checkpoint")), recs[0])
    chosen = choose_clips(ref["clips"], seed)
    keys = sorted(read_split_keys(root, sec["dataset"], sec["protocol"], split, "test"))
    following = {k: keys[(i + 1) % len(keys)] for i, k in enumerate(keys)}  # the shuffled pairing: next in key order
    wanted = {k for k, _ in chosen} | {following[k] for k, _ in chosen}
    clips = {c.key: c for c in iter_clips(list_shards(root, sec["dataset"]), sorted(wanted))}
    models: dict[str, Any] = {}
    parts = [f"<h3>Listening: {esc(sec['dataset'])} split {esc(split)}, clips chosen by {esc(ref['method'])}</h3>"]
    for n, (key, why) in enumerate(chosen):
        clip = clips[key]
        predictions, notes = {}, {}
        for rec in recs:
            if (problem := _checkpoint_problem(rec)) is not None:
                notes[rec["method"]] = problem
                continue
            if rec.get("checkpoint") and rec["checkpoint"] not in models:
                models[rec["checkpoint"]] = load_model(rec["checkpoint"], device)
            model = models.get(rec.get("checkpoint") or "")
            frames = clips[following[key]].frames if rec.get("shuffle_frames") else clip.frames
            settings = EvalSettings(hop=rec["hop"], tail=rec.get("tail", "pad"), tdss=rec["tdss"],
                                    batch_size=batch_size)
            predictions[rec["method"]] = predict(clip, frames, model, None if model is None else model.cfg,
                                                 settings, device)
        view = ClipView(slug=f"{sec['dataset']}-{sec['protocol']}-{split}-{n}", title=f"{key} ({why})",
                        frames=JpegFrames(clip.frames), mono=clip.audio[0] + clip.audio[1], truth=clip.audio,
                        predictions=predictions, notes=notes,
                        metrics_html=_clip_metrics(recs, key, _columns(summary), summary))
        parts.append(render_clip(view, table_dir))
    return "\n".join(parts)


def write_html_report(table_dir: Path, summary: dict[str, Any], results: list[dict[str, Any]], *, root: Path,
                      device: torch.device, seed: int = 0, batch_size: int = 32) -> Path:
    """``table_dir/report.html`` (and its ``listen/`` media); links it from ``report.md`` and ``summary.json``."""
    body = [_provenance(summary["meta"]),
            f"<p class=\"legend\">Aggregation: {esc(summary['aggregation'])}. {esc(report.beyond_legend(summary))}"
            " Click a column header to sort.</p>"]
    for p in summary.get("plots", []):
        if Path(p).name == "bars.png":
            body.append(f'<img class="figure" src="{esc(p)}" alt="bars against the paper">')
    for sec in summary["sections"]:
        body.append(f"<h2>{esc(sec['dataset'])} ({esc(sec['protocol'])}, splits {esc(', '.join(sec['splits']))})</h2>")
        body.append(_section_tables(summary, sec))
        records = [r for r in results if r["dataset"] == sec["dataset"] and r["protocol"] == sec["protocol"]]
        if records:
            body.append(_section_clips(table_dir, summary, sec, records, root, device, seed, batch_size))
    path = write_page(table_dir / "report.html", f"Table {summary['table']}: {summary['title']}", "\n".join(body))
    summary["html"] = path.name
    report.write_summary(table_dir, summary)
    return path


def table_dirs(out: Path) -> list[Path]:
    """``out`` itself when it holds a ``summary.json``, else its ``table-*`` folders that do."""
    out = Path(out)
    if (out / "summary.json").is_file():
        return [out]
    found = sorted(p for p in out.glob("table-*") if (p / "summary.json").is_file())
    if not found:
        raise FileNotFoundError(f"{out}: no summary.json here or in a table-* folder (not a ccs-bench run output)")
    return found


def rebuild(out: Path, *, root: Path | None = None, device: str = "cpu", batch_size: int = 32) -> list[Path]:
    """``ccs-bench report OUT``: summary.json, splits.csv, report.md, plots and report.html of every table of an
    existing run, from its finished per-split records (the data root of the run, or ``root``)."""
    written = []
    for table_dir in table_dirs(out):
        try:
            old = json.loads((table_dir / "summary.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{table_dir / 'summary.json'}: unreadable ({exc})") from None
        results = [r for p in sorted((table_dir / "splits").rglob("*.json")) if (r := finished_result(p))]
        if not results:
            raise ValueError(f"{table_dir}: no finished per-split results under splits/")
        meta = old.get("meta", {})
        data_root = Path(root if root is not None else meta.get("root", ""))
        if not data_root.is_dir():
            raise FileNotFoundError(f"{table_dir}: data root {data_root} not found (give --root)")
        summary = report.write_reports(table_dir, get_table(old["table"]), results, meta)
        seed = int((meta.get("seeds") or {}).get("bench", 0))
        written.append(write_html_report(table_dir, summary, results, root=data_root, device=torch.device(device),
                                         seed=seed, batch_size=batch_size))
    return written
