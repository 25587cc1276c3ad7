"""Training throughput of the `paper` preset (batch 128, 224x448 crops, full loss with SCL): fp32 vs bf16 autocast,
samples/s and peak GPU memory, on the card it runs on. Two numbers per precision: the model step alone on
resident tensors, and the whole step fed by the streaming loader (W worker processes).

    ccs-bench speed train-gpu [--batch 128] [--steps 20] [--workers 8] [--device cuda]

The visual trunk is randomly initialised (throughput does not depend on the weights; no download is needed).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from ccstereo.audio import segment_specs
from ccstereo.config import TrainConfig, preset
from ccstereo.data import ShardPlan, StreamConfig, TrainStream
from ccstereo.frames import augment_batch
from ccstereo.losses import Targets, total_loss
from ccstereo.model import build_model
from pipelines.synth.fakeshards import make_fake_dataset


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig, device: torch.device,
            precision: str) -> Callable[[dict[str, Any], int], None]:
    """One full training step (augmentation, forward with SCL inputs, total loss, backward, Adam) on a batch."""
    n_visual = cfg.model.visual_grid[0] * cfg.model.visual_grid[1]

    def step(batch, i):
        stereo = batch["segment"].to(device, non_blocking=True)
        mono, diff = segment_specs(stereo)
        frame = augment_batch(batch["frame"].to(device, non_blocking=True), batch["brightness"], batch["saturation"])
        prev = augment_batch(batch["prev_frame"].to(device, non_blocking=True), batch["prev_brightness"], batch["prev_saturation"])
        perm = torch.randperm(n_visual, generator=torch.Generator().manual_seed(i)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(mono, frame, prev_frame=prev, shuffle_perm=perm, return_features=True)
        loss, _ = total_loss(out, Targets(diff, mono, stereo), cfg.model, cfg.recipe)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def measure_training(batch: int = 128, steps: int = 20, warmup: int = 5, workers: int = 8, clips: int = 64,
                     device: str = "cuda", precisions: Sequence[str] = ("fp32", "bf16"),
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Samples/s of the model step and of the fed step, and peak GPU memory, per precision (``log`` gets one line
    per precision as it finishes)."""
    dev = torch.device(device)
    torch.backends.cudnn.benchmark = True
    cfg = preset("paper", {"visual_init": "random"}, batch_size=batch)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    results: dict[str, Any] = {"device": card, "batch": batch, "torch": str(torch.__version__), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        info = make_fake_dataset(tmp, n_clips=clips, protocols={"bench": 1}, clips_per_shard=8)
        plan = ShardPlan.build(info.shards, info.splits[("bench", "1")]["train"])
        sc = StreamConfig(batch, cfg.samples_per_clip, 512, cfg.model.resize, cfg.model.crop, True, 0)
        stream = TrainStream(plan, sc, num_workers=workers)
        stream.set_epoch(0, 1)
        resident = next(iter(DataLoader(stream, batch_size=None, num_workers=workers)))
        for precision in precisions:
            run = _measure_precision(cfg, stream, resident, dev, precision, steps=steps, warmup=warmup,
                                     workers=workers)
            results["runs"][precision] = run
            log(f"{precision} {run}")
    return results


def _measure_precision(cfg: TrainConfig, stream: TrainStream, resident: dict[str, Any], device: torch.device,
                       precision: str, *, steps: int, warmup: int, workers: int) -> dict[str, float]:
    """A fresh model (seed 0) timed on the resident batch, then fed by ``workers`` loader processes."""
    batch = cfg.batch_size
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr_other, weight_decay=cfg.weight_decay)
    step = step_fn(model, opt, cfg, device, precision)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + steps):
        sync(device)
        t = time.perf_counter()
        step(resident, i)
        sync(device)
        times.append(time.perf_counter() - t)
    model_only = batch / statistics.median(times[warmup:])
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    stream.set_epoch(1, warmup + steps)
    loader = DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=device.type == "cuda")
    t = None
    for i, fed_batch in enumerate(loader):
        if i == warmup:
            sync(device)
            t = time.perf_counter()
        step(fed_batch, i)
    sync(device)
    fed = batch * steps / (time.perf_counter() - t)
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"model_step_samples_per_s": round(model_only, 1), "fed_samples_per_s": round(fed, 1),
            "peak_memory_gib": round(peak, 2)}
