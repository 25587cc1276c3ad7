"""``ccs-bench``: reproduce the paper's tables with per-split reports (argument parsing only)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from benchmarks.run import BenchConfig, parse_checkpoint_args, run_table
from benchmarks.tables import TABLE_IDS, TABLES, paper_rows
from ccstereo.constants import INFER_HOP_SAMPLES, SEGMENT_SAMPLES
from ccstereo.metrics import PAD_MODES

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
def main() -> None:
    """Reproduce Tables 1-6 of the CCStereo paper (and a synthetic-world table) on sharded datasets.

    Each table knows its dataset, split protocol, splits, metric columns and methods. `run` trains (or loads)
    every method per split, evaluates every test clip with sliding-window inference and the SPEC section 10
    metrics, and writes per-split CSV/JSON, summary.json, report.md and plots to OUT/table-<N>/, next to the
    paper's numbers.
    """


@main.command("run")
@click.option("--table", required=True, type=click.Choice(TABLE_IDS),
              help="1: FAIR-Play 10-split; 2: FAIR-Play 5-split; 3: MUSIC-Stereo; 4: YT-MUSIC; 5: ablation "
                   "ladder (FAIR-Play 5-split split 2 + MUSIC-Stereo); 6: YT-CLEAN; synthetic: the built-in "
                   "world's FAIR-Play-like set, with a frames-shuffled control row.")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data root holding <root>/<dataset>/shards and splits (from `ccs-data shard`).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; reports go to OUT/table-<N>/.")
@click.option("--splits", multiple=True, help="Run only these splits (repeatable; default: the table's).")
@click.option("--methods", multiple=True, help="Run only these methods (repeatable, names as in the table).")
@click.option("--checkpoints", multiple=True, metavar="METHOD=PATH",
              help="Evaluate this checkpoint instead of training (repeatable); PATH may contain {split}.")
@click.option("--preset", type=click.Choice(["paper", "cpu-small"]), default=None,
              help="Training preset (default: paper; cpu-small for the synthetic table).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Cap training at this many steps per run (default: the preset's epochs).")
@click.option("--train-batch-size", type=click.IntRange(min=1), default=None,
              help="Training batch size (default: the preset's; paper 128, cpu-small 16).")
@click.option("--hop", type=click.IntRange(min=1, max=SEGMENT_SAMPLES), default=INFER_HOP_SAMPLES, show_default=True,
              help="Inference hop in samples (paper 1600; official code 1008).")
@click.option("--pad-mode", type=click.Choice(PAD_MODES), default="constant", show_default=True,
              help="STFT padding of the metrics: constant (zeros; librosa>=0.10, official CCStereo eval) or "
                   "reflect (older papers).")
@click.option("--select-on", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Model selection split; 'test' reproduces the official code and is labelled in reports.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Inference windows per forward pass.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the estimated compute (from a training step "
                                              "measured now), run nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_cmd(table, root, out, splits, methods, checkpoints, preset, max_steps, train_batch_size, hop, pad_mode,
            select_on, seed, device, batch_size, dry_run, quiet) -> None:
    """Train/evaluate one table and write its reports (finished splits are skipped on a rerun)."""
    try:
        cfg = BenchConfig(
            table=table, root=str(root), out=str(out), splits=tuple(splits) or None,
            methods=tuple(methods) or None, checkpoints=parse_checkpoint_args(checkpoints), preset=preset,
            max_steps=max_steps, train_batch_size=train_batch_size, hop=hop, pad_mode=pad_mode,
            select_on=select_on, seed=seed, device=device, batch_size=batch_size, dry_run=dry_run,
            progress=not quiet,
        )
        result = run_table(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        click.echo(json.dumps(result, indent=1))
        return
    target = Path(out) / f"table-{result['table']}"
    click.echo(f"wrote {target / 'report.md'} and {target / 'summary.json'}")
    for sec in result["sections"]:
        for m in sec["methods"]:
            vals = "  ".join(f"{c} {m['mean'][c]:.4f}" for c in result["columns"])
            click.echo(f"  {sec['dataset']:<13} {m['method']:<40} {vals}")


@main.command("tables")
def tables_cmd() -> None:
    """List the tables: dataset, protocol, splits, columns, methods, and the paper's rows."""
    for tid, t in TABLES.items():
        click.echo(f"Table {tid}: {t.title}  columns: {', '.join(t.columns)}")
        for s in t.sections:
            click.echo(f"  {s.dataset} {s.protocol} splits {','.join(s.splits)}: "
                       f"{', '.join(m.name for m in s.methods)}")
        for r in paper_rows(tid):
            vals = "  ".join(f"{c} {'-' if v is None else v}" for c, v in r["values"].items())
            click.echo(f"    paper {r['dataset']:<13} {r['method']:<16} {vals}")
