"""Several seeds of one table (``TablePreset.seeds``): each seed is a whole table run of its own in
``OUT/table-<N>/seed-<s>/``; this writes ``OUT/table-<N>/summary.json`` and ``report.md`` with, per method, the
mean and sample standard deviation over the seeds of its per-seed values (each the run's mean over its splits),
and the change of each row from the row above (the ablation ladder's question: what does each rung add?)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.tables import TablePreset
from pipelines.io import atomic_write_text


def seed_summary(preset: TablePreset, per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The seeds' summaries folded into one: per section and method, the per-seed means, their mean and std."""
    first = next(iter(per_seed.values()))
    columns = first["columns"]
    sections = []
    for i, sec in enumerate(first["sections"]):
        methods = []
        for m in sec["methods"]:
            values = {s: next(x for x in summ["sections"][i]["methods"] if x["method"] == m["method"])["mean"]
                      for s, summ in per_seed.items()}
            mean = {c: statistics.fmean(v[c] for v in values.values()) for c in columns}
            std = {c: statistics.stdev(v[c] for v in values.values()) if len(values) > 1 else 0.0 for c in columns}
            methods.append({"method": m["method"], "per_seed": {str(s): {c: v[c] for c in columns}
                                                                 for s, v in values.items()},
                            "mean": mean, "std": std, "note": m.get("note")})
        for above, m in zip(methods, methods[1:]):
            m["change_from_above"] = {c: (m["mean"][c] - above["mean"][c]) / abs(above["mean"][c])
                                      if above["mean"][c] else None for c in columns}
        sections.append({"dataset": sec["dataset"], "protocol": sec["protocol"], "splits": sec["splits"],
                         "methods": methods})
    return {"table": preset.table, "title": preset.title, "columns": columns, "seeds": sorted(per_seed),
            "lower_is_better": first["lower_is_better"],
            "aggregation": "mean and standard deviation (ddof=1) over seeds of each seed's run (its mean over "
                           "splits of per-split means over test clips); change = (row - row above) / |row above|",
            "meta": {"per_seed": {str(s): summ["meta"] for s, summ in per_seed.items()}},
            "sections": sections}


def render_seed_markdown(summary: dict[str, Any]) -> str:
    cols = summary["columns"]
    arrows = {c: "↓" if summary["lower_is_better"][c] else "↑" for c in cols}
    lines = [f"# Table {summary['table']}: {summary['title']}", "",
             f"Seeds {', '.join(map(str, summary['seeds']))}; {summary['aggregation']}. Each seed's own report: "
             "`seed-<s>/table-" + summary["table"] + "/report.md`.", ""]
    for sec in summary["sections"]:
        lines += [f"## {sec['dataset']} ({sec['protocol']}, split {', '.join(sec['splits'])})", "",
                  "| method | " + " | ".join(f"{c} {arrows[c]}" for c in cols) + " | STFT change from above | note |",
                  "|---|" + "---|" * (len(cols) + 2)]
        for m in sec["methods"]:
            change = m.get("change_from_above", {}).get("STFT")
            lines.append(f"| {m['method']} | " + " | ".join(f"{m['mean'][c]:.4f} ± {m['std'][c]:.4f}" for c in cols)
                         + f" | {'-' if change is None else f'{100 * change:+.1f}%'} | {m.get('note') or ''} |")
        lines += ["", "| method | seed | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
        for m in sec["methods"]:
            for s, v in m["per_seed"].items():
                lines.append(f"| {m['method']} | {s} | " + " | ".join(f"{v[c]:.4f}" for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def write_seed_summary(table_dir: Path, preset: TablePreset, per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``summary.json`` and ``report.md`` of a several-seed table in ``table_dir``; returns the summary."""
    summary = seed_summary(preset, per_seed)
    atomic_write_text(table_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(table_dir / "report.md", render_seed_markdown(summary))
    return summary
