"""``ccs-train``: the streaming trainer (SPEC 8). Library entry point :func:`train`; the click CLI only parses.

Runs in a plain process or under ``torchrun --nproc_per_node N`` (DDP: gloo on CPU, nccl on GPU). Writes into
``OUT``: ``last.pt`` (exact resume state), ``best.pt`` (best on the selection split), ``metadata.json``,
``log.jsonl`` and ``log.csv``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

import ccstereo
from ccstereo.audio import segment_specs
from ccstereo.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from ccstereo.config import ARCHS, PRESETS, TrainConfig, preset
from ccstereo.data import ShardPlan, StreamConfig, TrainStream, iter_eval_batches
from ccstereo.frames import augment_batch
from ccstereo.losses import total_loss
from ccstereo.model import build_model, visual_trunk_parameters
from pipelines.io import atomic_write_text, read_jsonl, sha256_file, write_jsonl
from pipelines.shards import list_shards, read_split_keys

LOG_COLUMNS = ("step", "epoch", "lr_visual", "lr_other", "loss", "mse", "mse_mono_mono", "apm", "phs", "scl", "val_stft", "val_stft_mono_mono", "val_mse", "seconds")
# Settings a resumed run may change without breaking exactness.
RESUME_MUTABLE = ("stop_after", "progress", "threads", "device")


@dataclass
class TrainResult:
    out: Path
    best: Path | None  # None only when the run stopped (stop_after) before its first validation
    last: Path
    steps: int
    best_metric: float | None
    best_step: int | None
    param_digest: str
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_setup(device_kind: str) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _pick_device(cfg: TrainConfig, info: DistInfo) -> torch.device:
    kind = cfg.device
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda requested but CUDA is not available")
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def param_digest(model: torch.nn.Module, buffers: bool = True) -> str:
    """sha256 over every parameter (and buffer, e.g. BN running statistics): resume and replica equality checks."""
    h = hashlib.sha256()
    tensors = model.state_dict() if buffers else dict(model.named_parameters())
    for name, t in sorted(tensors.items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    import torchvision

    return {"python": platform.python_version(), "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "numpy": str(np.__version__), "ccstereo": str(ccstereo.__version__)}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, device: torch.device, precision: str) -> dict[str, float]:
    """Internal validation metric on fixed segments: ``val_stft`` = sum over L, R of the mean squared error of the
    (real, imag) STFT, averaged over segments (SPEC 10's STFT distance on RMS-normalised segments, without peak
    normalisation); also the same for Mono-Mono (diff = 0) and the MSE of the difference spectrogram."""
    was_training = model.training
    model.eval()
    totals = {"val_stft": 0.0, "val_stft_mono_mono": 0.0, "val_mse": 0.0}
    n = 0
    for batch in batches:
        mono, diff = segment_specs(batch["segment"].to(device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            pred = model(mono, batch["frame"].to(device)).float()
        err = pred - diff  # L and R errors are +-err / 2
        per_seg = 2 * (err / 2).pow(2).mean(dim=(1, 2, 3))
        totals["val_stft"] += per_seg.sum().item()
        totals["val_stft_mono_mono"] += (2 * (diff / 2).pow(2).mean(dim=(1, 2, 3))).sum().item()
        totals["val_mse"] += err.pow(2).mean(dim=(1, 2, 3)).sum().item()
        n += err.shape[0]
    model.train(was_training)
    if n == 0:
        raise ValueError("no validation segments")
    return {k: v / n for k, v in totals.items()}


class RunLog:
    """log.jsonl + log.csv of the main rank; on resume both are cut back to the resumed step."""

    def __init__(self, out: Path, resume_step: int | None):
        self.jsonl, self.csv = out / "log.jsonl", out / "log.csv"
        records = [r for r in read_jsonl(self.jsonl) if resume_step is not None and r["step"] <= resume_step]
        write_jsonl(self.jsonl, records)
        lines = [",".join(LOG_COLUMNS) + "\n"] + [self._row(r) for r in records]
        atomic_write_text(self.csv, "".join(lines))
        self.records = records

    @staticmethod
    def _row(record: dict[str, Any]) -> str:
        return ",".join("" if record.get(c) is None else f"{record[c]:.6g}" if isinstance(record[c], float) else str(record[c]) for c in LOG_COLUMNS) + "\n"

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        with open(self.csv, "a", encoding="utf-8") as fh:
            fh.write(self._row(record))


def _check_resume_config(stored: TrainConfig, given: TrainConfig) -> TrainConfig:
    a, b = stored.to_dict(), given.to_dict()
    diff = [k for k in a if k not in RESUME_MUTABLE and a[k] != b[k]]
    if diff:
        details = "; ".join(f"{k}: run has {a[k]!r}, given {b[k]!r}" for k in diff)
        raise ValueError(f"--resume with settings that differ from the run being resumed ({details})")
    return dataclasses.replace(stored, **{k: getattr(given, k) for k in RESUME_MUTABLE if hasattr(given, k)})


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Train per ``cfg``; with ``resume`` continue ``OUT/last.pt`` exactly where it stopped."""
    out = Path(cfg.out)
    last_path, best_path, meta_path = out / "last.pt", out / "best.pt", out / "metadata.json"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device_kind = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    info = _dist_setup(device_kind)
    device = _pick_device(cfg, info)

    ckpt = None
    if resume and last_path.is_file():
        ckpt = load_checkpoint(last_path, map_location="cpu")
        cfg = _check_resume_config(TrainConfig.from_dict(ckpt["train_config"]), cfg)
        if ckpt["world"] != info.world:
            raise ValueError(f"{last_path} was written by {ckpt['world']} process(es); resume with the same number (got {info.world})")
    elif not resume and last_path.exists():
        raise FileExistsError(f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
    if cfg.batch_size % info.world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {info.world} processes")

    # Data: the train list feeds the stream; the selection list (val, or test to mimic the official code) the metric.
    shards = list_shards(cfg.root, cfg.dataset)
    train_keys = read_split_keys(cfg.root, cfg.dataset, cfg.protocol, cfg.split, "train")
    select_keys = read_split_keys(cfg.root, cfg.dataset, cfg.protocol, cfg.split, cfg.select_on)
    if not train_keys or not select_keys:
        raise ValueError(f"empty train or {cfg.select_on} list for {cfg.dataset} {cfg.protocol}/{cfg.split}")
    plan = ShardPlan.build(shards, train_keys)
    batches_per_epoch = max(1, plan.n_clips // cfg.batch_size)  # an epoch = one segment per training clip
    total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * batches_per_epoch
    val_every = max(1, cfg.val_every_epochs * batches_per_epoch)
    stop_at = min(total_steps, cfg.stop_after) if cfg.stop_after is not None else total_steps

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    np.random.seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    trainable = cfg.model.arch != "mono-mono"
    use_scl = cfg.model.arch == "ccstereo" and cfg.model.scl_weight > 0
    n_visual = cfg.model.visual_grid[0] * cfg.model.visual_grid[1]

    optimizer = scheduler = None
    if trainable:
        visual = visual_trunk_parameters(model)
        visual_ids = {id(p) for p in visual}
        other = [p for p in model.parameters() if id(p) not in visual_ids]
        optimizer = torch.optim.Adam(
            [{"params": visual, "lr": cfg.lr_visual}, {"params": other, "lr": cfg.lr_other}],
            betas=cfg.betas, weight_decay=cfg.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total_steps, power=cfg.poly_power)

    step, best_metric, best_step = 0, None, None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        if trainable:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        step, best_metric, best_step = ckpt["step"], ckpt["best_metric"], ckpt["best_step"]
        restore_rng_state(ckpt["rng"][info.rank] if info.rank < len(ckpt["rng"]) else ckpt["rng"][0])
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if info.world > 1 and trainable else model

    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, step if ckpt is not None else None) if info.main else None
    metadata = {
        "config": cfg.to_dict(), "select_on": cfg.select_on,
        "selection_note": "selected on the test list to mimic the official code: not a fair test result" if cfg.select_on == "test" else "selected on the validation list",
        "seed": cfg.seed, "world_size": info.world, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "versions": _versions(), "git_commit": _git_commit(), "command": sys.argv,
        "n_train_clips": plan.n_clips, "missing_train_keys": list(plan.missing), "n_select_clips": len(select_keys),
        "batches_per_epoch": batches_per_epoch, "total_steps": total_steps,
        "split_lists": {p: sha256_file(Path(cfg.root) / cfg.dataset / "splits" / cfg.protocol / cfg.split / f"{p}.txt") for p in ("train", cfg.select_on)},
        "shards": [s.name for s in shards],
    }
    if info.main:
        atomic_write_text(meta_path, json.dumps(metadata, indent=2, sort_keys=True) + "\n")

    stream_cfg = StreamConfig(cfg.batch_size // info.world, cfg.samples_per_clip, cfg.shuffle_buffer, cfg.model.resize, cfg.model.crop, use_scl, cfg.seed)
    stream = TrainStream(plan, stream_cfg, info.rank, info.world, cfg.num_workers)

    def payload() -> dict[str, Any]:
        rng_states = [capture_rng_state()]
        if info.world > 1:
            gathered: list[Any] = [None] * info.world
            dist.all_gather_object(gathered, rng_states[0])
            rng_states = gathered
        return {
            "model_config": cfg.model.to_dict(), "train_config": cfg.to_dict(), "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if trainable else {}, "scheduler": scheduler.state_dict() if trainable else {},
            "step": step, "epoch": step // batches_per_epoch, "batch_in_epoch": step % batches_per_epoch,
            "best_metric": best_metric, "best_step": best_step, "world": info.world, "rng": rng_states,
            "meta": {"select_on": cfg.select_on, "dataset": cfg.dataset, "protocol": cfg.protocol, "split": cfg.split,
                     "preset": cfg.preset, "seed": cfg.seed, "step": step, "versions": metadata["versions"]},
        }

    def checkpoint(also_best: bool = False) -> None:
        data = payload()  # every rank joins the RNG gather
        if info.main:
            save_checkpoint(last_path, data)
            if also_best:  # inference needs only the weights and config: no optimiser or RNG state
                save_checkpoint(best_path, {k: data[k] for k in ("model_config", "train_config", "model", "step", "best_metric", "meta")})

    def validate() -> dict[str, float]:
        nonlocal best_metric, best_step
        metrics: dict[str, float] = {}
        improved = False
        if info.main:
            batches = iter_eval_batches(shards, select_keys, cfg.model.resize, cfg.model.crop, cfg.val_segments_per_clip, stream_cfg.batch_size)
            metrics = evaluate(model, batches, device, cfg.precision)
            if best_metric is None or metrics["val_stft"] < best_metric:
                best_metric, best_step, improved = metrics["val_stft"], step, True
        if info.world > 1:
            flag = [improved, best_metric, best_step]
            dist.broadcast_object_list(flag, src=0)
            improved, best_metric, best_step = flag
        checkpoint(also_best=improved)
        return metrics

    bar = tqdm(total=stop_at, initial=step, desc="ccs-train", unit="step", disable=not (cfg.progress and info.main), dynamic_ncols=True)
    t0 = time.perf_counter()
    if not trainable:  # Mono-Mono: nothing to optimise; validate once so the run has the same outputs
        metrics = validate()
        if log:
            log.write({"step": 0, "epoch": 0, **metrics, "seconds": 0.0})
        step = stop_at = total_steps
    while step < stop_at:
        epoch, start_batch = divmod(step, batches_per_epoch)
        stream.set_epoch(epoch, batches_per_epoch, start_batch)
        loader = DataLoader(stream, batch_size=None, num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
        for batch in loader:
            segment = batch["segment"].to(device, non_blocking=True)
            mono, diff = segment_specs(segment)
            frame = augment_batch(batch["frame"].to(device, non_blocking=True), batch["brightness"], batch["saturation"])
            kwargs: dict[str, Any] = {}
            if use_scl:
                kwargs["prev_frame"] = augment_batch(batch["prev_frame"].to(device, non_blocking=True), batch["prev_brightness"], batch["prev_saturation"])
                # one spatial permutation per step, a pure function of (seed, step): nothing to save for resume
                kwargs["shuffle_perm"] = torch.randperm(n_visual, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                out_dict = net(mono, frame, return_features=True, **kwargs)
            loss, parts = total_loss(out_dict, diff, mono, cfg.model)
            parts["mse_mono_mono"] = diff.detach().pow(2).mean()  # what predicting diff = 0 would score on this batch
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            record: dict[str, Any] | None = None
            if step % cfg.log_every == 0 or step % val_every == 0 or step == stop_at or step == total_steps:
                lrs = scheduler.get_last_lr()
                record = {"step": step, "epoch": step / batches_per_epoch, "lr_visual": lrs[0], "lr_other": lrs[1],
                          **{k: float(v) for k, v in parts.items()}, "seconds": time.perf_counter() - t0}
                bar.set_postfix(loss=f"{record['loss']:.4g}")
            if step % val_every == 0 or step == total_steps:
                record.update(validate())
            elif step % cfg.checkpoint_every == 0 or step == stop_at:
                checkpoint()
            if record is not None and log is not None:
                log.write(record)
            if step >= stop_at:
                break
    bar.close()

    digest = param_digest(model)
    replica_digests = [param_digest(model, buffers=False)]
    if info.world > 1:
        # Parameters only: DDP broadcasts rank 0's BN statistics before each forward, and the last step's local
        # update of them differs per rank; checkpoints hold rank 0's.
        local = replica_digests[0]
        replica_digests = [None] * info.world
        dist.all_gather_object(replica_digests, local)
        if len(set(replica_digests)) != 1:
            raise RuntimeError(f"DDP replicas diverged: parameter digests {replica_digests}")
    if info.main:
        metadata.update(steps_done=step, best_metric=best_metric, best_step=best_step, param_digest=digest,
                        replica_digests=replica_digests, finished=step >= total_steps,
                        best_sha256=sha256_file(best_path) if best_path.exists() else None)
        atomic_write_text(meta_path, json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    if info.world > 1:
        dist.barrier()
    return TrainResult(out, best_path if best_path.exists() else None, last_path, step, best_metric, best_step, digest,
                       list(log.records) if log else [])


# ----------------------------------------------------------------------------------------------------------- CLI
@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Data root holding <dataset>/shards and <dataset>/splits.")
@click.option("--dataset", required=True, help="Dataset name (music-stereo, yt-music, yt-clean, fair-play).")
@click.option("--protocol", required=True, help="Split protocol, e.g. 5-split, 10-split, 80-10-10, official.")
@click.option("--split", "split", required=True, help="Split name within the protocol, e.g. 1.")
@click.option("--preset", type=click.Choice(PRESETS), default="paper", help="paper: SPEC values; cpu-small: small frames/batch for CPUs and the synthetic world.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (last.pt, best.pt, metadata.json, log.jsonl, log.csv).")
@click.option("--max-steps", type=int, default=None, help="Train this many steps instead of the preset's epochs (also the horizon of the learning-rate decay).")
@click.option("--epochs", type=int, default=None, help="Epochs (an epoch = one segment per training clip); default from the preset.")
@click.option("--stop-after", type=int, default=None, help="Stop after this many steps of the schedule, e.g. to split a run into time slots; continue with --resume.")
@click.option("--resume", is_flag=True, help="Continue OUT/last.pt exactly (same parameters as an uninterrupted run).")
@click.option("--arch", type=click.Choice(ARCHS), default=None, help="Network: CCStereo or a baseline (Mono2Binaural trains with MSE only; Mono-Mono is not trained).")
@click.option("--no-avad", is_flag=True, help="Ablation: plain BN instead of AVAD at the first decoder layer.")
@click.option("--loss", type=click.Choice(["mse", "rec"]), default=None, help="Ablation: MSE only, or the REC loss (MSE + APM + PHS).")
@click.option("--scl-weight", type=float, default=None, help="Weight of the spatial contrastive loss (0 disables it).")
@click.option("--samples-per-clip", type=int, default=None, help="K random segments drawn from each clip read from a shard.")
@click.option("--batch-size", type=int, default=None, help="Global batch size (split over processes).")
@click.option("--num-workers", type=int, default=None, help="DataLoader worker processes per rank.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None, help="fp32, or bf16 autocast.")
@click.option("--grad-clip", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option("--resize", "resize_hw", default=None, help="HxW the frame is resized to before cropping (paper 240x480).")
@click.option("--crop", "crop_hw", default=None, help="HxW of the crop fed to the network (paper 224x448).")
@click.option("--lr-visual", type=float, default=None, help="Learning rate of the ResNet-18 trunk (paper 5e-5).")
@click.option("--lr-other", type=float, default=None, help="Learning rate of everything else (paper 5e-4).")
@click.option("--visual-init", default=None, help="imagenet (torchvision's cache), random, or a path to ResNet-18 weights.")
@click.option("--select-on", type=click.Choice(["val", "test"]), default=None, help="List that picks best.pt. 'test' only mimics the official code and is recorded as such.")
@click.option("--val-every-epochs", type=int, default=None, help="Validate (and maybe update best.pt) every N epochs.")
@click.option("--seed", type=int, default=None, help="Seed of the weights, the data stream and the augmentation.")
@click.option("--threads", type=int, default=None, help="torch CPU threads per process.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Training device.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def main(root, dataset, protocol, split, preset, out, max_steps, epochs, stop_after, resume, arch, no_avad, loss, scl_weight,
         samples_per_clip, batch_size, num_workers, precision, grad_clip, resize_hw, crop_hw, lr_visual, lr_other, visual_init,
         select_on, val_every_epochs, seed, threads, device, no_progress):
    """Train CCStereo (or a baseline) on a dataset's shards; best checkpoint chosen on the validation list.

    Runs under `torchrun --nproc_per_node N ccs-train ...` for multi-process training.
    """
    model_overrides = {"arch": arch, "avad": False if no_avad else None, "loss": loss, "scl_weight": scl_weight, "visual_init": visual_init,
                       "resize": _hw(resize_hw, "--resize"), "crop": _hw(crop_hw, "--crop")}
    if arch == "mono2binaural":  # the 2.5D baseline trains with MSE only
        model_overrides.update(loss=loss or "mse", scl_weight=scl_weight or 0.0)
    cfg = _preset(preset, model_overrides, root=str(root), dataset=dataset, protocol=protocol, split=str(split), out=str(out),
                  max_steps=max_steps, epochs=epochs, lr_visual=lr_visual, lr_other=lr_other, stop_after=stop_after, samples_per_clip=samples_per_clip, batch_size=batch_size,
                  num_workers=num_workers, precision=precision, grad_clip=grad_clip, select_on=select_on,
                  val_every_epochs=val_every_epochs, seed=seed, threads=threads, device=device, progress=False if no_progress else None)
    try:
        result = train(cfg, resume=resume)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        best = f"{result.best} ({cfg.select_on} STFT {result.best_metric:.5g} at step {result.best_step})" if result.best else "none yet"
        click.echo(f"steps {result.steps}; best: {best}; last: {result.last}")


_preset = preset


def _hw(text: str | None, option: str) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW, e.g. 224x448, got {text!r}", param_hint=option) from None
    return h, w

if __name__ == "__main__":
    main()
