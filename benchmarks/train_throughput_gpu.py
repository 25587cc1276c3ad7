"""Training throughput of the `paper` preset (batch 128, 224x448 crops, full loss with SCL): fp32 vs bf16 autocast,
samples/s and peak GPU memory, on the card it runs on. Two numbers per precision: the model step alone on
resident tensors, and the whole step fed by the streaming loader (W worker processes).

    python benchmarks/train_throughput_gpu.py [--batch 128] [--steps 20] [--workers 8] [--device cuda]

The visual trunk is randomly initialised (throughput does not depend on the weights; no download is needed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]

from ccstereo.audio import segment_specs
from ccstereo.config import preset
from ccstereo.data import ShardPlan, StreamConfig, TrainStream
from ccstereo.frames import augment_batch
from ccstereo.losses import total_loss
from ccstereo.model import build_model
from pipelines.synth.fakeshards import make_fake_dataset


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_fn(model, opt, cfg, device, precision):
    n_visual = cfg.model.visual_grid[0] * cfg.model.visual_grid[1]

    def step(batch, i):
        mono, diff = segment_specs(batch["segment"].to(device, non_blocking=True))
        frame = augment_batch(batch["frame"].to(device, non_blocking=True), batch["brightness"], batch["saturation"])
        prev = augment_batch(batch["prev_frame"].to(device, non_blocking=True), batch["prev_brightness"], batch["prev_saturation"])
        perm = torch.randperm(n_visual, generator=torch.Generator().manual_seed(i)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(mono, frame, prev_frame=prev, shuffle_perm=perm, return_features=True)
        loss, _ = total_loss(out, diff, mono, cfg.model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", default="fp32,bf16")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    cfg = preset("paper", {"visual_init": "random"}, batch_size=args.batch)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = {"device": card, "batch": args.batch, "torch": str(torch.__version__), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        info = make_fake_dataset(tmp, n_clips=args.clips, protocols={"bench": 1}, clips_per_shard=8)
        plan = ShardPlan.build(info.shards, info.splits[("bench", "1")]["train"])
        sc = StreamConfig(args.batch, cfg.samples_per_clip, 512, cfg.model.resize, cfg.model.crop, True, 0)
        stream = TrainStream(plan, sc, num_workers=args.workers)
        stream.set_epoch(0, 1)
        resident = next(iter(DataLoader(stream, batch_size=None, num_workers=args.workers)))
        for precision in args.precisions.split(","):
            torch.manual_seed(0)
            model = build_model(cfg.model).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr_other, weight_decay=cfg.weight_decay)
            step = step_fn(model, opt, cfg, device, precision)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for i in range(args.warmup + args.steps):
                sync(device)
                t = time.perf_counter()
                step(resident, i)
                sync(device)
                times.append(time.perf_counter() - t)
            model_only = args.batch / statistics.median(times[args.warmup:])
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
            stream.set_epoch(1, args.warmup + args.steps)
            loader = DataLoader(stream, batch_size=None, num_workers=args.workers, pin_memory=device.type == "cuda")
            t = None
            for i, batch in enumerate(loader):
                if i == args.warmup:
                    sync(device)
                    t = time.perf_counter()
                step(batch, i)
            sync(device)
            fed = args.batch * args.steps / (time.perf_counter() - t)
            results["runs"][precision] = {"model_step_samples_per_s": round(model_only, 1), "fed_samples_per_s": round(fed, 1),
                                          "peak_memory_gib": round(peak, 2)}
            print(precision, results["runs"][precision], flush=True)
            del model, opt
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
