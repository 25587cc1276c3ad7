"""``ccs-bench run``: train (or load) each method per split, evaluate every test clip, write the reports.

The table folder's layout is in :mod:`benchmarks.plan`. A split whose result record exists (``status: done``)
with the same evaluation settings and checkpoint is not redone on a rerun; an interrupted training run resumes
from its own ``last.pt`` (``ccs-train`` resumes).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks import report
from benchmarks.checkpoints import Trained, checkpoint_for, require_visual_init
from benchmarks.dryrun import dry_run
from benchmarks.evaluate import ExampleHook, evaluate_split, settings_for
from benchmarks.html_report import write_html_report
from benchmarks.localisation import Localiser, make_localiser
from benchmarks.plan import BenchConfig, Job, plan
from benchmarks.plots import plot_spectrograms
from benchmarks.records import eval_settings, finished_result, result_record, run_metadata, utc_now
from benchmarks.seeds import write_seed_summary
from benchmarks.tables import TablePreset
from ccstereo.checkpoint import load_model
from ccstereo.metrics import mean_metrics
from ccstereo.provenance import resolve_device
from pipelines.io import sha256_file


@dataclass
class _TableRun:
    """What the jobs of one table run share: settings, where things go, and what earlier jobs left."""

    cfg: BenchConfig
    preset: TablePreset
    preset_name: str
    table_dir: Path
    device: torch.device
    trained: Trained = field(default_factory=dict)
    examples_done: set[tuple[str, str]] = field(default_factory=set)  # (section key, method) plotted already
    localisers: dict[str, Localiser] = field(default_factory=dict)  # dataset -> LOC from cfg.truth


def run_table(cfg: BenchConfig) -> dict[str, Any]:
    """Run (or resume) a table; returns the summary (see :mod:`benchmarks.report`). ``dry_run``: the plan.

    A table with several seeds (``TablePreset.seeds``, or ``cfg.seeds``) is one run per seed in
    ``OUT/table-<N>/seed-<s>/`` and a summary of mean and spread over the seeds (:mod:`benchmarks.seeds`).
    """
    preset, jobs = plan(cfg)
    preset_name = cfg.preset or preset.default_preset
    if cfg.dry_run:
        return dry_run(cfg, preset, jobs, preset_name)
    seeds = cfg.seeds if cfg.seeds is not None else preset.seeds
    if len(seeds) > 1:
        table_dir = cfg.table_dir(preset.table)
        per_seed = {s: run_table(replace(cfg, seed=s, seeds=(s,), out=str(table_dir / f"seed-{s}"))) for s in seeds}
        return write_seed_summary(table_dir, preset, per_seed)
    run = _TableRun(cfg, preset, preset_name, cfg.table_dir(preset.table), resolve_device(cfg.device))
    require_visual_init(cfg, jobs, run.table_dir, preset_name)  # before any job: not after Mono-Mono's evaluation
    torch.manual_seed(cfg.seed)
    started = utc_now()
    results: list[dict[str, Any]] = []
    for job in jobs:
        split_json = job.result_json(run.table_dir)
        prior = finished_result(split_json)
        # a finished split is kept unless it was evaluated with other settings (hop, padding, checkpoint...)
        if prior is not None and _prior_matches(prior, cfg, job, run.table_dir):
            results.append(prior)
            _log(cfg, f"skip {job.split_dir} {job.method.name}: finished ({split_json})")
            continue
        result = _run_job(run, job)
        report.write_split_files(run.table_dir / "splits", result)
        results.append(result)
        _log(cfg, f"done {job.split_dir} {job.method.name}: STFT {result['metrics']['STFT']:.4f} "
                  f"({result['n_clips']} clips)")
    meta = run_metadata(cfg, preset, jobs, results, preset_name=preset_name, device=run.device, started=started)
    summary = report.write_reports(run.table_dir, preset, results, meta)
    if cfg.listening_report:
        write_html_report(run.table_dir, summary, results, root=Path(cfg.root), device=run.device, seed=cfg.seed,
                          batch_size=cfg.batch_size)
    return summary


def _run_job(run: _TableRun, job: Job) -> dict[str, Any]:
    """Get the job's checkpoint (training it if needed), evaluate it on the split's test clips; the record."""
    cfg = run.cfg
    ckpt = checkpoint_for(cfg, job, run.table_dir, run.preset_name, run.trained)
    model = None if ckpt is None else load_model(ckpt, run.device)
    model_cfg, provenance = (None, None) if model is None else (model.cfg, model.meta.get("provenance"))
    t0 = time.perf_counter()
    clips = evaluate_split(Path(cfg.root), job.section, job.split, job.method, model, model_cfg,
                           settings_for(cfg, job.method), device=run.device, progress=cfg.progress,
                           example=_example_plot(run, job), localiser=_localiser(run, job))
    return result_record(cfg, run.preset, job, run.preset_name, clips=clips, metrics=mean_metrics(clips),
                         checkpoint=ckpt, model_cfg=model_cfg, eval_seconds=time.perf_counter() - t0,
                         device=run.device, checkpoint_provenance=provenance,
                         checkpoint_meta=None if model is None else model.meta)


def _localiser(run: _TableRun, job: Job) -> Localiser | None:
    """LOC for the job's dataset from ``--truth`` (read once per dataset), or None without a truth file."""
    if run.cfg.truth is None:
        return None
    dataset = job.section.dataset
    if dataset not in run.localisers:
        run.localisers[dataset] = make_localiser(Path(run.cfg.truth), dataset)
    return run.localisers[dataset]


def _example_plot(run: _TableRun, job: Job) -> ExampleHook | None:
    """A hook plotting the first clip of the first split each (section, method) is evaluated on, or None."""
    ex_key = (job.section.key, job.method.name)
    if not run.cfg.spectrogram_examples or ex_key in run.examples_done:
        return None
    run.examples_done.add(ex_key)
    path = run.table_dir / "plots" / f"spectrogram-{job.split_dir}-{job.method.slug}.png"

    def plot(key: str, pred: np.ndarray, true: np.ndarray) -> None:
        plot_spectrograms(pred, true, f"{job.method.name}: {key} (difference L - R)", path)

    return plot


def _prior_matches(prior: dict[str, Any], cfg: BenchConfig, job: Job, table_dir: Path) -> bool:
    """A finished result still stands when its settings and its checkpoint (given, or trained here) are unchanged."""
    given = cfg.given_checkpoint(job.owner.name, job.split)
    current: Path | None
    if given is not None:
        if not given.is_file():
            return False
        current = given
    elif job.method.arch == "mono-mono":
        current = None
    else:
        current = job.run_dir(table_dir) / "best.pt"
        if not current.is_file():
            current = None  # trained elsewhere or removed since: keep the result, its hash is in the record
    if current is not None and prior.get("checkpoint_sha256") != sha256_file(current):
        return False
    want = eval_settings(cfg, job.method, prior.get("checkpoint_sha256"))
    return all(prior.get(k) == v for k, v in want.items())


def _log(cfg: BenchConfig, msg: str) -> None:
    if cfg.progress:
        tqdm.write(msg, file=sys.stderr)
