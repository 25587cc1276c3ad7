"""``ccs-bench run --dry-run``: what a run would do per job, and an estimate of its compute from a training step
and an inference window measured here and now."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.checkpoints import runs_to_train, train_config, trained_earlier
from benchmarks.plan import BenchConfig, Job
from benchmarks.records import finished_result
from benchmarks.tables import Section, TablePreset
from ccstereo.blocks import resnet18_weights_path
from ccstereo.config import ModelConfig, TrainConfig
from ccstereo.constants import N_FREQ, N_SEGMENT_FRAMES, SEGMENT_SAMPLES
from ccstereo.infer import window_starts
from ccstereo.model import build_model
from ccstereo.provenance import device_description, resolve_device
from ccstereo.train.plan import Schedule
from pipelines.contract import CLIP_SAMPLES, DatasetLayout

NOTE = ("ESTIMATE, not a measurement of the run: steps (the trainer's own count, epochs x floor(train clips / "
        "batch), or --max-steps) x one training step measured here on random input with random trunk weights "
        "(network only: no data loading, no SCL/REC passes, so a lower bound) + test windows x the measured "
        "inference time per window")


def measure_step_seconds(model_cfg: ModelConfig, batch_size: int, device: torch.device, repeats: int = 2
                         ) -> tuple[float, float]:
    """(seconds per training step at ``batch_size``, seconds per inference window) measured on random input.

    The step is forward + MSE + backward + Adam on the real network; data loading and the SCL/REC extra
    passes are not included, so the estimate is a lower bound.
    """
    model = build_model(model_cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return 0.0, 0.0
    opt = torch.optim.Adam(params, lr=1e-4)
    spec = torch.randn(batch_size, 2, N_FREQ, N_SEGMENT_FRAMES, device=device)
    img = torch.randn(batch_size, 3, *model_cfg.crop, device=device)
    times = []
    model.train()
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(spec, img), spec)
        loss.backward()
        opt.step()
        _sync(device)
        if i:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        model(spec, img)
        _sync(device)
        window = (time.perf_counter() - t0) / batch_size
    return float(np.median(times)), window


def dry_run(cfg: BenchConfig, preset: TablePreset, jobs: list[Job], preset_name: str) -> dict[str, Any]:
    """What ``run`` would do and an estimate of its compute, from a step time measured here and now.

    Needs no weights (the step is measured with a random trunk), no GPU (without one it is measured on the CPU, and
    says so) and no training; without split lists the jobs are listed without an estimate."""
    device, device_note = _measuring_device(cfg.device)
    root = Path(cfg.root)
    table_dir = cfg.table_dir(preset.table)
    measured: dict[str, tuple[float, float]] = {}  # network + batch size -> (step, window) seconds
    lines, total, unknown = [], 0.0, 0
    for job in jobs:
        spec = job.method
        tcfg = train_config(cfg, job, table_dir / "dry-run", preset_name)
        n_train = count_keys(root, job.section, job.split, "train")
        n_test = count_keys(root, job.section, job.split, "test")
        done = finished_result(job.result_json(table_dir)) is not None
        action, steps = _action(cfg, job, tcfg, n_train, table_dir)
        key = json.dumps(tcfg.model.to_dict(), sort_keys=True) + str(tcfg.batch_size)
        if spec.arch != "mono-mono" and key not in measured:
            random_trunk = dataclasses.replace(tcfg.model, visual_init="random")  # the dry run needs no weights
            measured[key] = measure_step_seconds(random_trunk, tcfg.batch_size, device, repeats=1)
        step_s, window_s = measured.get(key, (0.0, 0.0))
        windows = len(window_starts(CLIP_SAMPLES, cfg.eval_hop(spec), SEGMENT_SAMPLES, spec.tail or "pad")) * (n_test or 0)
        # unknown without the split lists (data not sharded yet): say so rather than estimate zero
        est = None if steps is None or n_test is None else steps * step_s + windows * window_s
        if not done:
            if est is None:
                unknown += 1
            else:
                total += est
        lines.append({
            "dataset": job.section.dataset, "protocol": job.section.protocol, "split": job.split,
            "method": spec.name, "action": "skip (finished)" if done else action, "train_clips": n_train,
            "test_clips": n_test, "step_seconds": round(step_s, 4),
            "estimated_seconds": None if est is None else round(est, 1),
        })
    sections = [{"dataset": sec.dataset, "protocol": sec.protocol,
                 "splits": list(dict.fromkeys(j.split for j in jobs if j.section is sec)),
                 "methods": list(dict.fromkeys(j.method.name for j in jobs if j.section is sec))}
                for sec in preset.sections if any(j.section is sec for j in jobs)]
    return {"table": preset.table, "preset": preset_name, "sections": sections,
            "device": device_description(device) + device_note, "visual_init": _visual_init(cfg, jobs, table_dir,
                                                                                             preset_name),
            "jobs": lines, "estimated_seconds": round(total, 1), "jobs_without_estimate": unknown, "note": NOTE}


def _measuring_device(requested: str) -> tuple[torch.device, str]:
    """Where the step is measured: the run's device, or the CPU when it asks for CUDA and there is none here."""
    if requested.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu"), " (measured here: no CUDA on this machine, where the run asks for it)"
    return resolve_device(requested), ""


def _visual_init(cfg: BenchConfig, jobs: list[Job], table_dir: Path, preset_name: str) -> dict[str, Any]:
    """The trunk weights the runs still to train start from, and whether they are here (the real run needs them)."""
    inits = sorted({train_config(cfg, j, j.run_dir(table_dir), preset_name).model.visual_init
                    for j in runs_to_train(cfg, jobs, table_dir)})
    out: dict[str, Any] = {"runs_start_from": inits}
    for init in inits:
        if init == "random":
            continue
        try:
            out[init] = str(resnet18_weights_path(init))
        except FileNotFoundError as exc:
            out[init] = f"missing (the real run needs them): {exc}"
    return out


def _action(cfg: BenchConfig, job: Job, tcfg: TrainConfig, n_train: int | None, table_dir: Path
            ) -> tuple[str, int | None]:
    """(what the run does for this method, its training steps; None when unknown without the split lists)."""
    spec = job.method
    owner = spec.checkpoint_of or spec.name
    if spec.arch == "mono-mono":
        return "no training (diff = 0)", 0
    if cfg.checkpoints.get(owner):
        return f"load {cfg.given_checkpoint(owner, job.split)}", 0
    if spec.checkpoint_of:
        return f"reuse the {spec.checkpoint_of} checkpoint", 0
    if trained_earlier(job.run_dir(table_dir)):
        return f"reuse {job.run_dir(table_dir) / 'best.pt'} (trained by an earlier run)", 0
    # the trainer's own count (epochs x floor(clips / batch), or max_steps), not a second formula
    steps = None if n_train is None and cfg.max_steps is None else Schedule.of(tcfg, n_train or 0).total_steps
    return f"train {steps if steps is not None else '?'} steps (batch {tcfg.batch_size})", steps


def count_keys(root: Path, section: Section, split: str, part: str) -> int | None:
    """Number of clips in a split list, or None when the list does not exist (data not sharded yet)."""
    layout = DatasetLayout(root, section.dataset)
    if not layout.split_list(section.protocol, split, part).is_file():
        return None
    return len(layout.read_split_keys(section.protocol, split, part))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # CUDA runs asynchronously: wait for the step before reading the clock
        torch.cuda.synchronize()
