"""``ccs-bench``: the paper's tables with per-split reports, the end-to-end demo, the speed benchmarks (argument
parsing only: each command calls one library function and prints what it returns)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from benchmarks.demo import run_demo
from benchmarks.faults import FIGURES, STAGES, run_campaign
from benchmarks.fetch_speed import measure_fetch
from benchmarks.html_report import rebuild
from benchmarks.infer_memory import measure_infer_memory
from benchmarks.infer_speed import measure_inference
from benchmarks.loader_throughput import measure_loader
from benchmarks.metrics_speed import measure_metrics
from benchmarks.plan import BenchConfig, parse_checkpoint_args
from benchmarks.prepare_throughput import measure_prepare
from benchmarks.projection_eval import evaluate_projection
from benchmarks.run import run_table
from benchmarks.tables import TABLE_IDS, TABLES, paper_rows
from benchmarks.train_throughput_gpu import measure_training
from benchmarks.world_speed import measure_world
from ccstereo.config import RECIPES
from ccstereo.constants import INFER_HOP_SAMPLES, SEGMENT_SAMPLES
from ccstereo.metrics import PAD_MODES
from ccstereo.released import TRUST_FLAG, describe, import_released
from pipelines.errors import StyledGroup
from pipelines.io import atomic_write_text
from pipelines.recipes import DATASETS

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PRESETS = click.Choice(["paper", "cpu-small"])


@click.group(name="ccs-bench", cls=StyledGroup, context_settings=CONTEXT_SETTINGS)
def main() -> None:
    """Reproduce Tables 1-6 of the CCStereo paper (and a synthetic-world table) on sharded datasets.

    Each table knows its dataset, split protocol, splits, metric columns and methods. `run` trains (or loads)
    every method per split, evaluates every test clip with sliding-window inference, the SPEC section 10
    metrics and the spatial ones beyond the paper, and writes per-split CSV/JSON, summary.json, report.md,
    plots and report.html (a listening report) to OUT/table-<N>/, next to the paper's numbers; `report`
    rebuilds them for an existing run. `import-released` converts the authors' released model for
    `run --checkpoints`. `demo` runs the whole toolkit on the built-in synthetic world; `speed` holds the
    throughput benchmarks.
    """


@main.command("run")
@click.option("--table", required=True, type=click.Choice(TABLE_IDS),
              help="1: FAIR-Play 10-split; 2: FAIR-Play 5-split; 3: MUSIC-Stereo; 4: YT-MUSIC; 5: ablation "
                   "ladder (FAIR-Play 5-split split 2 + MUSIC-Stereo); 6: YT-CLEAN; synthetic: the built-in "
                   "world's FAIR-Play-like set, with a frames-shuffled control row; synthetic-ablation: Table 5's "
                   "ladder on that set, 3 seeds per rung.")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Data root holding <root>/<dataset>/shards and splits (from `ccs-data shard`).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; reports go to OUT/table-<N>/.")
@click.option("--splits", multiple=True, help="Run only these splits (repeatable; default: the table's).")
@click.option("--methods", multiple=True, help="Run only these methods (repeatable, names as in the table).")
@click.option("--checkpoints", multiple=True, metavar="METHOD=PATH",
              help="Evaluate this checkpoint instead of training (repeatable); PATH may contain {split}.")
@click.option("--preset", type=PRESETS, default=None,
              help="Training preset (default: paper; cpu-small for the synthetic table).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Cap training at this many steps per run (default: the preset's epochs).")
@click.option("--train-batch-size", type=click.IntRange(min=1), default=None,
              help="Training batch size (default: the preset's; paper 128, cpu-small 16).")
@click.option("--visual-init", default=None, metavar="INIT",
              help="Initial trunk weights of the networks trained: imagenet (torchvision's cache; `ccs-data "
                   "fetch-weights` puts them there), random, or a path to ResNet-18 weights (default: the "
                   "preset's; paper imagenet, cpu-small random). As ccs-train's --visual-init.")
@click.option("--recipe", type=click.Choice(RECIPES), default="official", show_default=True,
              help="official: the released code's loss forms, full-clip selection and hop 1008 (the computations "
                   "behind the published numbers); paper-text: the paper's equations and hop 1600 "
                   "(docs/FIDELITY.md). Recorded in every checkpoint, record and report.")
@click.option("--hop", type=click.IntRange(min=1, max=SEGMENT_SAMPLES), default=None,
              help="Inference hop in samples for every method (default: the recipe's, 1008 or 1600, with the last "
                   "window zero-padded past the end; Mono2Binaural on the paper's tables: 2.5D's 800).")
@click.option("--pad-mode", type=click.Choice(PAD_MODES), default="constant", show_default=True,
              help="STFT padding of the metrics: constant (zeros; librosa>=0.10, official CCStereo eval) or "
                   "reflect (older papers).")
@click.option("--select-on", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Model selection split; 'test' reproduces the official code and is labelled in reports.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--seeds", default=None, metavar="S,S,...",
              help="Train and evaluate every row once per seed (default: the table's; synthetic-ablation: 0,1,2); "
                   "the report gives the mean and spread over seeds.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Inference windows per forward pass.")
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The synthetic world's truth.jsonl: adds the localisation error (LOC, degrees) of single-source "
                   "clips to the spatial metrics.")
@click.option("--dry-run", is_flag=True, help="Print the plan (jobs: train, reuse, load or skip) and an estimate of "
                                              "the compute from a training step measured now with random weights; "
                                              "needs no weights, GPU or training, runs nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_cmd(table, root, out, splits, methods, checkpoints, preset, max_steps, train_batch_size, visual_init, recipe,
            hop, pad_mode, select_on, seed, seeds, device, batch_size, truth, dry_run, quiet) -> None:
    """Train/evaluate one table and write its reports (finished splits are skipped on a rerun)."""
    try:
        cfg = BenchConfig(
            table=table, root=str(root), out=str(out), splits=tuple(splits) or None,
            methods=tuple(methods) or None, checkpoints=parse_checkpoint_args(checkpoints), preset=preset,
            max_steps=max_steps, train_batch_size=train_batch_size, visual_init=visual_init, recipe=recipe, hop=hop,
            pad_mode=pad_mode,
            select_on=select_on, seed=seed, seeds=_seeds(seeds), device=device, batch_size=batch_size,
            dry_run=dry_run,
            progress=not quiet, truth=None if truth is None else str(truth),
        )
        result = run_table(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        click.echo(json.dumps(result, indent=1))
        return
    target = cfg.table_dir(result["table"])
    click.echo(f"wrote {target / 'report.md'}, {target / 'report.html'} and {target / 'summary.json'}")
    for sec in result["sections"]:
        for m in sec["methods"]:
            vals = "  ".join(f"{c} {m['mean'][c]:.4f}" for c in result["columns"])
            click.echo(f"  {sec['dataset']:<13} {m['method']:<40} {vals}")


@main.command("import-released")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", "dst", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The toolkit checkpoint to write (.pt), for `run --checkpoints CCStereo=DST`.")
@click.option(TRUST_FLAG, "trust_pickle", is_flag=True,
              help="Read SRC with full unpickling (a Lightning .ckpt holding other objects). Unpickling can run "
                   "code from the file: only for a file you trust.")
def import_released_cmd(src: Path, dst: Path, trust_pickle: bool) -> None:
    """Convert the authors' released CCStereo checkpoint SRC (best_model.pth; FAIR-Play 5-split split 2) into a
    toolkit checkpoint with the released architecture details and its provenance (docs/RELEASED_MODEL.md)."""
    try:
        result = import_released(src, dst, trust_pickle=trust_pickle)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(describe(result))


@main.command("report")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Data root of the run (default: the one its summary.json names).")
@click.option("--device", default="cpu", show_default=True, help="Where the chosen clips are predicted again.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Inference windows per forward pass.")
def report_cmd(out: Path, root: Path | None, device: str, batch_size: int) -> None:
    """Rebuild the reports of an existing run: OUT is a table folder (OUT/table-<N>) or a run's --out folder.

    From the finished per-split records: summary.json, splits.csv, report.md, plots and report.html (the
    chosen clips are predicted again with the checkpoints the records name)."""
    try:
        pages = rebuild(out, root=root, device=device, batch_size=batch_size)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    for page in pages:
        click.echo(f"wrote {page} and {page.with_name('report.md')}")


def _seeds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"expected seeds like 0,1,2, got {text!r}", param_hint="--seeds") from None


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


@main.command("demo")
@click.option("--work", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Working folder (world, data, bench output); reused and resumed on a rerun.")
@click.option("--seed", default=0, show_default=True, help="World and training seed.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Loopback port for the world's server (0: any free port).")
@click.option("--size", type=click.Choice(["tiny", "small"]), default="small", show_default=True,
              help="World size: small is enough to train on a CPU; tiny only checks the plumbing.")
@click.option("--datasets", multiple=True, type=click.Choice(DATASETS), default=DATASETS, show_default=True,
              help="Datasets to fetch/prepare/shard/verify (the synthetic table uses fair-play, always included).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Training steps per model (default: the cpu-small preset's epochs).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo_cmd(work: Path, seed: int, port: int, size: str, datasets: tuple[str, ...], max_steps: int | None,
             quiet: bool) -> None:
    """Run the whole toolkit on the built-in synthetic world and write the synthetic table's report
    (synth -> serve -> fetch -> prepare -> shard -> verify -> train -> bench; what `make demo` runs)."""
    try:
        result = run_demo(work, seed=seed, port=port, size=size, datasets=datasets, max_steps=max_steps,
                          progress=not quiet)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, indent=1))


def _stages(ctx: click.Context, param: click.Parameter, text: str) -> tuple[str, ...]:
    stages = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise click.BadParameter(f"{', '.join(unknown) or 'none given'}: the stages are {', '.join(STAGES)}")
    return stages


@main.command("faults")
@click.option("--work", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Working folder (the world, its server's copy, references, logs; faults.json and trials.jsonl "
                   "are written here); reused by a rerun.")
@click.option("--trials", default=120, show_default=True, type=click.IntRange(min=1),
              help="Trials, the stages in turn.")
@click.option("--seed", default=0, show_default=True, help="Seed of every trial's choices (set, jobs, "
              "--rate-limit, signal, moment).")
@click.option("--stages", default=",".join(STAGES), show_default=True, callback=_stages,
              help="Comma-separated stages to interrupt.")
def faults_cmd(work: Path, trials: int, seed: int, stages: tuple[str, ...]) -> None:
    """The fault campaign (issue 10): interrupt ccs-data fetch/prepare/shard and ccs-train at seeded random
    moments (SIGKILL, or SIGINT as Ctrl-C does), kill the loopback server mid-download, change upstream archives
    between runs; rerun each as a user would and compare with an uninterrupted run. Prints one line per trial
    and the figures (goal: 0 lost, missing, left, tracebacks)."""
    summary = run_campaign(work, trials=trials, seed=seed, stages=stages, log=click.echo)
    for name in FIGURES:
        click.echo(f"{name}: {summary[name]}")
    click.echo(f"wrote {Path(work) / 'faults.json'} ({summary['minutes']} min)")


# ------------------------------------------------------------------------------------------- speed benchmarks


@main.group("speed", context_settings=CONTEXT_SETTINGS)
def speed() -> None:
    """Throughput benchmarks: each prints one JSON object (BENCHMARKS.md records their results)."""


def _echo_json(result: dict[str, Any], indent: int) -> None:
    click.echo(json.dumps(result, indent=indent))


@speed.command("fetch")
@click.option("--world", type=click.Path(file_okay=False, path_type=Path),
              help="An existing world (`ccs-data synth --out DIR`; default: generate a tiny one).")
@click.option("--repeats", default=3, show_default=True)
@click.option("--rate", default="256K", show_default=True, help="Per-download rate limit.")
@click.option("--jobs", default=4, show_default=True, help="Parallel downloads of the parallel variant.")
def speed_fetch(world: Path | None, repeats: int, rate: str, jobs: int) -> None:
    """`ccs-data fetch` on the synthetic world served on loopback: jobs=1 vs jobs=N, and a no-op rerun."""
    _echo_json(measure_fetch(world, repeats=repeats, rate=rate, jobs=jobs), indent=2)


@speed.command("prepare")
@click.option("--videos", default=3, show_default=True)
@click.option("--seconds", default=30.0, show_default=True, help="Length of each generated video.")
@click.option("--repeats", default=3, show_default=True)
@click.option("--jobs", default=2, show_default=True, help="Videos prepared in parallel by the parallel variant.")
def speed_prepare(videos: int, seconds: float, repeats: int, jobs: int) -> None:
    """`ccs-data prepare` on 640x360 30 fps h264 input: per core, in parallel, against decoding alone."""
    _echo_json(measure_prepare(videos=videos, seconds=seconds, repeats=repeats, jobs=jobs), indent=1)


@speed.command("world")
@click.option("--repeats", default=3, show_default=True)
@click.option("--serve-mb", default=64, show_default=True, help="Size of the file downloaded from the server.")
@click.option("--skip-generate", is_flag=True, help="Measure the server only.")
def speed_world(repeats: int, serve_mb: int, skip_generate: bool) -> None:
    """Tiny synthetic world generation (against ffmpeg alone) and Range serving (against http.server)."""
    _echo_json(measure_world(repeats=repeats, serve_mb=serve_mb, skip_generate=skip_generate), indent=2)


@speed.command("metrics")
@click.option("--clips", default=200, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--chunk", default=4, show_default=True, help="Clips per batched transform.")
@click.option("--threads", default=None, type=int,
              help="Torch CPU threads (default: torch's choice); 1 compares like with like against numpy.")
@click.option("--device", default="cpu", show_default=True, help="Where the batched metrics run (cpu, cuda).")
def speed_metrics(clips: int, repeats: int, seed: int, chunk: int, threads: int | None, device: str) -> None:
    """Batched metrics against the per-clip numpy/scipy reference on the same clips (and their agreement)."""
    _echo_json(measure_metrics(clips=clips, repeats=repeats, seed=seed, chunk=chunk, threads=threads,
                               device=device), indent=1)


@speed.command("infer")
@click.option("--preset", "preset_name", type=PRESETS, default="cpu-small", show_default=True,
              help="Model size (paper: 224x448 frames, the published network).")
@click.option("--arch", default="ccstereo", show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--hop", default=INFER_HOP_SAMPLES, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=None, type=int, help="Torch CPU threads (default: torch's choice).")
def speed_infer(preset_name: str, arch: str, repeats: int, batch_size: int, hop: int, device: str,
                threads: int | None) -> None:
    """Sliding-window inference on a 10 s clip: batched vs one window at a time, TDSS on vs off."""
    _echo_json(measure_inference(preset_name, arch=arch, repeats=repeats, batch_size=batch_size, hop=hop,
                                 device=device, threads=threads), indent=1)


@speed.command("infer-memory")
@click.option("--seconds", default="10,120,1200", show_default=True, help="Comma-separated video lengths (s).")
@click.option("--preset", "preset_name", type=PRESETS, default="paper", show_default=True)
@click.option("--hop", default=10_080, show_default=True, help="Sliding-window hop (large: long runs stay short).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--baseline-max", default=120.0, show_default=True,
              help="Run the in-memory baseline on lengths up to this many seconds.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the generated test videos here and reuse them (default: a temporary folder).")
def speed_infer_memory(seconds: str, preset_name: str, hop: int, batch_size: int, baseline_max: float,
                       work: Path | None) -> None:
    """Peak memory of streaming ccs-infer against the video's length, the in-memory path as baseline."""
    lengths = [float(s) for s in seconds.split(",") if s.strip()]
    _echo_json(measure_infer_memory(lengths, preset_name=preset_name, hop=hop, batch_size=batch_size,
                                    baseline_max_s=baseline_max, work=work), indent=1)


@main.command("projection")
@click.option("--seed", default=0, show_default=True)
@click.option("--scenes-per-kind", default=4, show_default=True, help="Panoramas per kind (each in ER and EAC).")
@click.option("--yaws", default=4, show_default=True, help="Frames (yaw angles) per panorama and projection.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every frame's and video's row as JSON to this file.")
def projection_cmd(seed: int, scenes_per_kind: int, yaws: int, out: Path | None) -> None:
    """Accuracy and confidence calibration of the projection decision on a labelled set of natural-looking 360
    frames (photographs, rooms, sky and floor, 1/f noise, low texture, dark scenes, a relief map) at YouTube's
    sizes, ER and EAC; prints the summary as JSON."""
    result = evaluate_projection(seed=seed, scenes_per_kind=scenes_per_kind, yaws_per_scene=yaws)
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=1))
    _echo_json(result["summary"], indent=1)


@speed.command("loader")
@click.option("--preset", "preset_name", type=PRESETS, default="paper", show_default=True,
              help="Frame sizes and K of the preset (batches of 32, shuffle buffer 256).")
@click.option("--batches", default=20, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--clips", default=48, show_default=True, help="Clips of the fake 480x240 dataset read.")
@click.option("--baseline-samples", default=64, show_default=True, help="Samples of the naive baseline.")
@click.option("--compare-readers", is_flag=True,
              help="Also time the header-parsing reader (the same shards without index files) in the same run.")
def speed_loader(preset_name: str, batches: int, repeats: int, clips: int, baseline_samples: int,
                 compare_readers: bool) -> None:
    """Training-input throughput per core: the streaming loader against a naive per-sample pipeline."""
    _echo_json(measure_loader(preset_name, batches=batches, repeats=repeats, clips=clips,
                              baseline_samples=baseline_samples, compare_readers=compare_readers), indent=1)


@speed.command("train-gpu")
@click.option("--batch", default=128, show_default=True)
@click.option("--steps", default=20, show_default=True)
@click.option("--warmup", default=5, show_default=True)
@click.option("--workers", default=8, show_default=True, help="Loader worker processes of the fed variant.")
@click.option("--clips", default=64, show_default=True, help="Clips of the fake dataset the loader reads.")
@click.option("--device", default="cuda", show_default=True)
@click.option("--precisions", default="fp32,bf16", show_default=True, help="Comma-separated: fp32, bf16.")
def speed_train_gpu(batch: int, steps: int, warmup: int, workers: int, clips: int, device: str,
                    precisions: str) -> None:
    """Training throughput of the paper preset: fp32 vs bf16, model step alone and fed by the loader."""
    result = measure_training(batch=batch, steps=steps, warmup=warmup, workers=workers, clips=clips, device=device,
                              precisions=precisions.split(","), log=click.echo)
    _echo_json(result, indent=2)
