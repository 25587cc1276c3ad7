"""``ccs-bench run --dry-run``: what a run would do per job, and an estimate of its compute from a training step
and an inference window measured here and now."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.checkpoints import train_config
from benchmarks.plan import BenchConfig, Job
from benchmarks.records import finished_result
from benchmarks.tables import MethodSpec, Section, TablePreset
from ccstereo.config import ModelConfig, TrainConfig
from ccstereo.constants import N_FREQ, N_SEGMENT_FRAMES, SEGMENT_SAMPLES
from ccstereo.infer import window_starts
from ccstereo.model import build_model
from ccstereo.provenance import device_description, resolve_device
from pipelines.contract import CLIP_SAMPLES, DatasetLayout

NOTE = ("estimate = steps x measured training step (network only, no data loading) + test windows x measured "
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
    """What ``run`` would do and an estimate of its compute, from a step time measured here and now."""
    device = resolve_device(cfg.device)
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
        action, steps = _action(cfg, spec, tcfg, n_train)
        key = json.dumps(tcfg.model.to_dict(), sort_keys=True) + str(tcfg.batch_size)
        if spec.arch != "mono-mono" and key not in measured:
            measured[key] = measure_step_seconds(tcfg.model, tcfg.batch_size, device, repeats=1)
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
    return {"table": preset.table, "preset": preset_name, "device": device_description(device),
            "jobs": lines, "estimated_seconds": round(total, 1), "jobs_without_estimate": unknown, "note": NOTE}


def _action(cfg: BenchConfig, spec: MethodSpec, tcfg: TrainConfig, n_train: int | None) -> tuple[str, int | None]:
    """(what the run does for this method, its training steps; None when unknown without the split lists)."""
    owner = spec.checkpoint_of or spec.name
    if spec.arch == "mono-mono":
        return "no training (diff = 0)", 0
    if cfg.checkpoints.get(owner):
        return f"load {cfg.checkpoints[owner]}", 0
    if spec.checkpoint_of:
        return f"reuse the {spec.checkpoint_of} checkpoint", 0
    if cfg.max_steps:
        steps = cfg.max_steps
    elif n_train is not None:
        steps = -(-tcfg.epochs * n_train // tcfg.batch_size)  # ceil(epochs x clips / batch)
    else:
        steps = None
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
