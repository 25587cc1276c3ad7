"""Batched metrics (``ccstereo.metrics.compute_metrics_batch``) against the per-clip numpy/scipy reference
(``benchmarks/metrics_reference.py``) on the same clips, in one run; also checks that both agree.

    ccs-bench speed metrics --clips 200 --repeats 3

Prints one JSON object: median seconds of each, the speed-up, the largest relative disagreement.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from benchmarks.metrics_reference import reference_metrics
from ccstereo.metrics import METRIC_NAMES, compute_metrics_batch
from pipelines.contract import CLIP_SAMPLES, SAMPLE_RATE


def make_clips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of 10 s binaural clips: a harmonic source + noise, and a prediction with errors."""
    rng = np.random.default_rng(seed)
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    true = np.empty((n, 2, CLIP_SAMPLES), np.float32)
    pred = np.empty_like(true)
    for i in range(n):
        f0 = rng.uniform(100, 500)
        src = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 4))
        src = 0.2 * src * (1 + np.sin(2 * np.pi * rng.uniform(0.2, 2) * t)) + rng.normal(0, 0.01, CLIP_SAMPLES)
        g = rng.uniform(0.2, 0.8)
        true[i] = [src * (1 + g), src * (1 - g)]
        gp = g + rng.normal(0, 0.2)
        pred[i] = [src * (1 + gp), src * (1 - gp)] + rng.normal(0, 0.005, (2, CLIP_SAMPLES))
    return pred, true


def measure_metrics(clips: int = 200, repeats: int = 3, seed: int = 0, chunk: int = 4, threads: int | None = None,
                    device: str = "cpu") -> dict[str, Any]:
    """Median seconds of the reference and of the batched metrics on the same ``clips``, and how far apart their
    numbers are; ``threads`` sets torch's CPU threads (1 compares like with like against numpy)."""
    if threads:
        torch.set_num_threads(threads)
    pred, true = make_clips(clips, seed)
    ref_times, batch_times = [], []
    ref = batched = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref = [reference_metrics(pred[i], true[i]) for i in range(clips)]
        ref_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batched = compute_metrics_batch(pred, true, chunk=chunk, device=device)
        batch_times.append(time.perf_counter() - t0)
    worst = max(abs(batched[k][i] - ref[i][k]) / max(abs(ref[i][k]), 1e-12)
                for k in METRIC_NAMES for i in range(clips))
    return {
        "clips": clips, "repeats": repeats, "chunk": chunk, "device": device,
        "torch_threads": torch.get_num_threads(),
        "reference_s": float(np.median(ref_times)), "batched_s": float(np.median(batch_times)),
        "speedup": float(np.median(ref_times) / np.median(batch_times)),
        "max_relative_disagreement": float(worst),
    }
