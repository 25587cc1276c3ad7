"""Training-input throughput per CPU core: the streaming loader (K samples per tar read, decode only the frames
used, DCT-downscaled JPEG decode, batched jitter + normalisation) and the epoch sampler (each clip once per epoch,
shuffled: three seeks per sample) against a naive per-sample pipeline measured in the same run (one tar read and
a full audio decode per sample, full-size decode, per-sample float augmentation); and what an epoch of each sampler
covers (share of the clips visited, share of batch samples whose clip is in the batch more than once).

    ccs-bench speed loader [--preset paper|cpu-small] [--batches 20] [--repeats 3] [--compare-readers]

``--compare-readers`` also runs the streaming loader and ``ShardPlan.build`` on a copy of the same shards without
their index files, interleaved with the index runs: the header-parsing reader as the baseline of the index reader.
Runs in one process with one torch thread, so samples/s is per core. Prints wall-clock and CPU-time rates
(CPU time is the robust number on a shared machine).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccstereo.audio import normalise_rms
from ccstereo.config import preset
from ccstereo.constants import SEGMENT_SAMPLES
from ccstereo.data import EpochStream, ShardPlan, StreamConfig, TrainStream
from ccstereo.frames import (
    JITTER_RANGE,
    augment_batch,
    colour_jitter,
    crop,
    decode_jpeg,
    normalise_imagenet,
    resize,
    segment_frame_index,
    to_unit_float,
)
from pipelines.contract import CLIP_SAMPLES
from pipelines.shards import iter_clips
from pipelines.synth.fakeshards import make_fake_dataset


def streaming(plan: ShardPlan, cfg, batches: int, seed: int, augment: bool, sampler: type = TrainStream
              ) -> tuple[float, float, int]:
    """Steady state: timed from the first batch on (the shuffle buffer's first fill is a one-off per epoch)."""
    sc = StreamConfig(cfg.batch_size, cfg.samples_per_clip, cfg.shuffle_buffer, cfg.model.resize, cfg.model.crop, True, seed)
    stream = sampler(plan, sc)
    stream.set_epoch(seed, batches + 1)
    it = iter(stream)
    next(it)
    w, c = time.perf_counter(), time.process_time()
    n = 0
    for b in it:
        if augment:  # normally on the training device, batched
            augment_batch(b["frame"], b["brightness"], b["saturation"])
            augment_batch(b["prev_frame"], b["prev_brightness"], b["prev_saturation"])
        n += len(b["keys"])
    return time.perf_counter() - w, time.process_time() - c, n


def naive(shards: list[Path], keys: list[str], cfg, samples: int, seed: int) -> int:
    """One clip read + full decode per sample, per-sample float augmentation (what a map-style dataset does)."""
    rng = np.random.default_rng(seed)
    n = 0
    while n < samples:
        key = keys[int(rng.integers(len(keys)))]
        clip = next(iter_clips(shards, [key]))
        start = int(rng.integers(0, CLIP_SAMPLES - SEGMENT_SAMPLES + 1))
        normalise_rms(torch.from_numpy(clip.audio[:, start : start + SEGMENT_SAMPLES]))
        k = segment_frame_index(start, len(clip.frames))
        for idx in (k, max(k - 1, 0)):
            img = resize(decode_jpeg(clip.frames[idx]), cfg.model.resize)
            top = int(rng.integers(0, cfg.model.resize[0] - cfg.model.crop[0] + 1))
            left = int(rng.integers(0, cfg.model.resize[1] - cfg.model.crop[1] + 1))
            x = to_unit_float(crop(img, top, left, cfg.model.crop))[None]
            f = torch.tensor([rng.uniform(*JITTER_RANGE)])
            normalise_imagenet(colour_jitter(x, f, torch.tensor([rng.uniform(*JITTER_RANGE)])))
        n += 1
    return n


def timed(fn) -> tuple[float, float, int]:
    w, c = time.perf_counter(), time.process_time()
    n = fn()
    return time.perf_counter() - w, time.process_time() - c, n


def without_index(shards: list[Path], dest: Path) -> list[Path]:
    """Copies of ``shards`` without their index files, so every reader parses the tar headers."""
    dest.mkdir()
    copies = [dest / s.name for s in shards]
    for src, copy in zip(shards, copies):
        shutil.copyfile(src, copy)
    return copies


def plan_builds(shards: list[Path], keys: list[str], builds: int = 20) -> int:
    """Build the plan ``builds`` times; returns the number of shards scanned."""
    for _ in range(builds):
        ShardPlan.build(shards, keys)
    return builds * len(shards)


def measure(cfg, *, clips: int, batches: int, repeats: int, baseline_samples: int,
            compare_readers: bool) -> dict[str, list[tuple[float, float, int]]]:
    """(wall s, CPU s, items) of every variant and repeat; variants interleaved within each repeat."""
    with tempfile.TemporaryDirectory() as tmp:
        info = make_fake_dataset(tmp, n_clips=clips, protocols={"bench": 1}, clips_per_shard=16)  # 480x240 frames
        keys = info.splits[("bench", "1")]["train"]
        plan = ShardPlan.build(info.shards, keys)
        bare = without_index(info.shards, Path(tmp) / "bare") if compare_readers else []
        bare_plan = ShardPlan.build(bare, keys) if bare else None
        rows: dict[str, list[tuple[float, float, int]]] = {"streaming": [], "streaming+aug": [], "naive": []}
        for r in range(repeats):
            rows["streaming"].append(streaming(plan, cfg, batches, r, augment=False))
            if bare_plan is not None:
                headers = streaming(bare_plan, cfg, batches, r, augment=False)
                rows.setdefault("streaming, headers", []).append(headers)
                rows.setdefault("plan, index", []).append(timed(lambda: plan_builds(info.shards, keys)))
                rows.setdefault("plan, headers", []).append(timed(lambda: plan_builds(bare, keys)))
            rows["streaming+aug"].append(streaming(plan, cfg, batches, r, augment=True))
            rows.setdefault("epoch", []).append(streaming(plan, cfg, batches, r, augment=False, sampler=EpochStream))
            rows["naive"].append(timed(partial(naive, info.shards, keys, cfg, baseline_samples, r)))
    return rows


def coverage(plan: ShardPlan, cfg, sampler: type, epochs: int = 3) -> dict[str, float]:
    """Per epoch of ``n_clips // batch`` batches (the trainer's epoch): the share of the clips drawn at least once
    and the share of samples whose clip appears more than once in their batch; means over ``epochs``."""
    sc = StreamConfig(cfg.batch_size, cfg.samples_per_clip, cfg.shuffle_buffer, cfg.model.resize, cfg.model.crop,
                      False, 0)
    stream = sampler(plan, sc)
    visited, shared = [], []
    for epoch in range(epochs):
        stream.set_epoch(epoch, max(1, plan.n_clips // cfg.batch_size))
        batches = [b["keys"] for b in stream]
        visited.append(len({k for keys in batches for k in keys}) / plan.n_clips)
        shared.append(sum(keys.count(k) > 1 for keys in batches for k in keys) / sum(len(k) for k in batches))
    return {"clips_visited": statistics.fmean(visited), "samples_sharing_a_clip": statistics.fmean(shared)}


def measure_loader(preset_name: str = "paper", *, batches: int = 20, repeats: int = 3, clips: int = 48,
                   baseline_samples: int = 64, compare_readers: bool = False) -> dict[str, Any]:
    """Median samples/s (wall and per CPU-second, one torch thread) of every loader variant; plan builds in shards/s."""
    torch.set_num_threads(1)
    cfg = preset(preset_name, batch_size=32, shuffle_buffer=256)
    runs = measure(cfg, clips=clips, batches=batches, repeats=repeats, baseline_samples=baseline_samples,
                   compare_readers=compare_readers)
    rates = {name: {"wall_per_s": statistics.median(n / w for w, _, n in r),
                    "per_cpu_s": statistics.median(n / c for _, c, n in r),
                    "unit": "shards" if name.startswith("plan") else "samples"} for name, r in runs.items()}
    return {"preset": preset_name, "resize": list(cfg.model.resize), "crop": list(cfg.model.crop),
            "samples_per_clip": cfg.samples_per_clip, "batch_size": cfg.batch_size, "repeats": repeats,
            "torch_threads": 1, "rates": rates}
