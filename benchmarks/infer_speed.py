"""Sliding-window inference on a 10 s clip: windows batched through the model against one window at a time
(what the published demo code does), and TDSS on against off, measured in one run on the same model.

    ccs-bench speed infer --preset cpu-small --repeats 3

The model has random weights (speed does not depend on them). Prints one JSON object with the median seconds
of each variant and the ratios.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ccstereo.config import preset as train_preset
from ccstereo.constants import INFER_HOP_SAMPLES
from ccstereo.infer import binauralize, window_starts
from ccstereo.model import build_model
from pipelines.contract import CLIP_SAMPLES, FRAME_HEIGHT, FRAME_WIDTH, FRAMES_PER_CLIP


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure_inference(preset_name: str = "cpu-small", arch: str = "ccstereo", repeats: int = 3, batch_size: int = 32,
                      hop: int = INFER_HOP_SAMPLES, device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Median seconds of the three variants (batched with TDSS, one window at a time with TDSS, batched without)
    and their ratios; ``threads`` sets torch's CPU threads."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = train_preset(preset_name, {"arch": arch, "visual_init": "random"}).model
    model = build_model(cfg).to(device).eval()
    rng = np.random.default_rng(0)
    mono = (0.1 * rng.standard_normal(CLIP_SAMPLES)).astype(np.float32)
    frames = rng.integers(0, 256, (FRAMES_PER_CLIP, FRAME_HEIGHT, FRAME_WIDTH, 3), dtype=np.uint8)

    def run(bs: int, tdss: bool) -> None:
        binauralize(mono, frames, model, cfg, hop=hop, tdss=tdss, batch_size=bs, device=device)

    run(batch_size, True)  # warm-up: allocator, kernel selection
    # the variants take turns within each repeat, so a shared machine's load drifts over all of them alike
    times: dict[str, list[float]] = {"batched": [], "one_by_one": [], "no_tdss": []}
    for _ in range(repeats):
        times["batched"].append(_median_time(lambda: run(batch_size, True), 1))
        times["one_by_one"].append(_median_time(lambda: run(1, True), 1))
        times["no_tdss"].append(_median_time(lambda: run(batch_size, False), 1))
    batched, one_by_one, no_tdss = (float(np.median(times[k])) for k in ("batched", "one_by_one", "no_tdss"))
    return {
        "preset": preset_name, "arch": arch, "device": device, "torch_threads": torch.get_num_threads(),
        "windows": len(window_starts(CLIP_SAMPLES, hop)), "hop": hop, "batch_size": batch_size,
        "repeats": repeats, "batched_tdss_s": batched, "one_window_at_a_time_tdss_s": one_by_one,
        "batched_no_tdss_s": no_tdss, "batching_speedup": one_by_one / batched,
        "tdss_cost_ratio": batched / no_tdss,
    }
