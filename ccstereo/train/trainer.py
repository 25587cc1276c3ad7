"""The streaming trainer (SPEC 8): :func:`train` sets a run up and a :class:`Trainer` runs its steps.

Exact resume: ``last.pt`` holds the weights, optimiser, scheduler, best-so-far and every rank's RNG state, and the
data stream is a pure function of (seed, epoch, batch), so N steps equal N/2 steps + stop + resume + N/2 steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ccstereo.audio import segment_specs
from ccstereo.checkpoint import capture_rng_state, load_checkpoint, load_weights, restore_rng_state, save_checkpoint
from ccstereo.config import TrainConfig
from ccstereo.data import EpochStream, StreamConfig, TrainStream, worker_error
from ccstereo.frames import augment_batch
from ccstereo.losses import Targets, total_loss
from ccstereo.model import build_model, visual_parameters
from ccstereo.train.distributed import (
    DistInfo,
    barrier,
    broadcast_from_main,
    gather_from_all,
    setup_processes,
    training_device,
)
from ccstereo.train.plan import RunData, Schedule
from ccstereo.train.records import RunLog, run_metadata, write_metadata
from ccstereo.train.validation import selection_stft
from pipelines.io import remove_stale_temp_files, sha256_file

# Settings a resumed run may change without breaking exactness ("out": the run is wherever its last.pt is now).
RESUME_MUTABLE = ("stop_after", "progress", "threads", "device", "out")
# What a last.pt holds beyond what best.pt does: a best.pt copied over last.pt cannot be resumed.
RESUME_KEYS = ("train_config", "optimizer", "scheduler", "step", "best_metric", "best_step", "world", "rng")
# What inference needs of a checkpoint: best.pt holds only these (no optimiser or RNG state).
BEST_KEYS = ("model_config", "train_config", "model", "step", "best_metric", "meta")


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


def param_digest(model: torch.nn.Module, buffers: bool = True) -> str:
    """sha256 over every parameter (and buffer, e.g. BN running statistics): resume and replica equality checks."""
    h = hashlib.sha256()
    tensors = model.state_dict() if buffers else dict(model.named_parameters())
    for name, t in sorted(tensors.items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _same_setting(key: str, stored: Any, given: Any) -> bool:
    """Equal settings; the data root compared as the folder it names (``./data`` and its absolute path agree)."""
    if key == "root" and isinstance(stored, str) and isinstance(given, str):
        return Path(stored).resolve() == Path(given).resolve()
    return stored == given


def _check_resume_config(stored: TrainConfig, given: TrainConfig) -> TrainConfig:
    a, b = stored.to_dict(), given.to_dict()
    diff = [k for k in a if k not in RESUME_MUTABLE and not _same_setting(k, a[k], b[k])]
    if diff:
        details = "; ".join(f"{k}: run has {a[k]!r}, given {b[k]!r}" for k in diff)
        # ccs-bench resumes its runs by itself: name only options both commands have
        raise ValueError(f"{given.out} holds a run with other settings ({details}); resume it with the same "
                         "settings, or choose another --out for a new run")
    return dataclasses.replace(stored, **{k: getattr(given, k) for k in RESUME_MUTABLE if hasattr(given, k)})


def open_run(cfg: TrainConfig, resume: bool, info: DistInfo) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The run's config and, when resuming, its ``last.pt``; refuses to overwrite a run or to resume a different one."""
    last_path = Path(cfg.out) / "last.pt"
    ckpt = None
    if info.main:  # what a killed run was writing (a checkpoint, the log, the metadata) never became a file
        remove_stale_temp_files(cfg.out)
    if resume and not last_path.is_file():
        raise FileNotFoundError(f"--resume: {cfg.out} holds no last.pt to continue; start the run without --resume")
    if resume:
        ckpt = load_checkpoint(last_path, map_location="cpu")
        missing = [k for k in RESUME_KEYS if k not in ckpt]
        if missing:
            raise ValueError(f"{last_path}: not a checkpoint a run can resume from (no {', '.join(missing)}; a best.pt "
                             "copied over last.pt?): only the last.pt a run writes holds the state to continue")
        cfg = _check_resume_config(TrainConfig.from_dict(ckpt["train_config"]), cfg)
        if ckpt["world"] != info.world:
            raise ValueError(f"{last_path} was written by {ckpt['world']} process(es); resume with the same number (got {info.world})")
    elif not resume and last_path.exists():
        raise FileExistsError(f"{cfg.out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
    if cfg.batch_size % info.world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {info.world} processes")
    return cfg, ckpt


def build_training(cfg: TrainConfig, device: torch.device, schedule: Schedule) -> tuple[torch.nn.Module, Any, Any]:
    """(model, optimizer, scheduler) as a run starts; no optimiser for Mono-Mono, which has nothing to train.

    Adam with the visual learning rate for the visual network (CCStereo: trunk + ASPP; Mono2Binaural: the trunk)
    and the other for the rest; stepped every iteration: polynomial decay to zero at the last step (released), or
    x ``lr_step_factor`` every ``lr_step_epochs`` epochs (2.5D Visual Sound).
    """
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    np.random.seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    if cfg.model.arch == "mono-mono":
        return model, None, None
    visual = visual_parameters(model)
    visual_ids = {id(p) for p in visual}
    other = [p for p in model.parameters() if id(p) not in visual_ids]
    optimizer = torch.optim.Adam(
        [{"params": visual, "lr": cfg.lr_visual}, {"params": other, "lr": cfg.lr_other}],
        betas=cfg.betas, weight_decay=cfg.weight_decay,
    )
    if cfg.lr_schedule == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step_epochs * schedule.batches_per_epoch,
                                                    gamma=cfg.lr_step_factor)
    else:
        scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=schedule.total_steps, power=cfg.poly_power)
    return model, optimizer, scheduler


class Trainer:
    """One run's state (network, optimiser, step, best so far) and its outputs in ``cfg.out``.

    Every rank builds one; only the main rank writes files, and every rank joins the collective calls (RNG
    gather for checkpoints, best-so-far broadcast, replica check).
    """

    def __init__(self, cfg: TrainConfig, info: DistInfo, device: torch.device, data: RunData, schedule: Schedule,
                 ckpt: dict[str, Any] | None):
        self.cfg, self.info, self.device, self.data, self.schedule = cfg, info, device, data, schedule
        self.out = Path(cfg.out)
        self.last_path, self.best_path, self.meta_path = self.out / "last.pt", self.out / "best.pt", self.out / "metadata.json"
        self.model, self.optimizer, self.scheduler = build_training(cfg, device, schedule)
        self.trainable = self.optimizer is not None
        self.use_scl = cfg.model.arch == "ccstereo" and cfg.model.scl_weight > 0
        self.step, self.best_metric, self.best_step = 0, None, None
        self.mono_mono_stft: float | None = None  # the selection list's Mono-Mono STFT, computed once
        if ckpt is not None:
            self._restore(ckpt)
        ddp = info.world > 1 and self.trainable
        self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None) if ddp else self.model

        self.out.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.out, self.step if ckpt is not None else None) if info.main else None
        self.metadata = run_metadata(cfg, info.world, device, data, schedule)
        if info.main:
            write_metadata(self.meta_path, self.metadata)
        self.stream_cfg = StreamConfig(cfg.batch_size // info.world, cfg.samples_per_clip, cfg.shuffle_buffer, cfg.model.resize,
                                       cfg.model.crop, self.use_scl, cfg.seed)
        sampler = EpochStream if cfg.sampler == "epoch" else TrainStream
        self.stream = sampler(data.train, self.stream_cfg, info.rank, info.world, cfg.num_workers)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        load_weights(self.model, ckpt["model"], self.last_path)
        if self.trainable:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step, self.best_metric, self.best_step = ckpt["step"], ckpt["best_metric"], ckpt["best_step"]
        rng = ckpt["rng"]
        restore_rng_state(rng[self.info.rank] if self.info.rank < len(rng) else rng[0])

    # ------------------------------------------------------------------------------------------- checkpoints
    def payload(self) -> dict[str, Any]:
        """``last.pt``: everything an exact resume needs. Every rank must call it (the RNG states are gathered)."""
        cfg, step, per_epoch = self.cfg, self.step, self.schedule.batches_per_epoch
        return {
            "model_config": cfg.model.to_dict(), "train_config": cfg.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.trainable else {},
            "scheduler": self.scheduler.state_dict() if self.trainable else {},
            "step": step, "epoch": step // per_epoch, "batch_in_epoch": step % per_epoch,
            "best_metric": self.best_metric, "best_step": self.best_step, "world": self.info.world,
            "rng": gather_from_all(capture_rng_state(), self.info),
            "meta": {"select_on": cfg.select_on, "selected_on": self.metadata["selected_on"],
                     "selection_note": self.metadata["selection_note"],
                     "recipe": cfg.recipe, "dataset": cfg.dataset, "protocol": cfg.protocol, "split": cfg.split,
                     "preset": cfg.preset, "seed": cfg.seed, "step": step, "versions": self.metadata["versions"]},
        }

    def save(self, also_best: bool = False) -> None:
        data = self.payload()  # every rank joins the RNG gather
        if self.info.main:
            # best.pt first: last.pt is what a resumed run continues from, so a kill between the two leaves a best.pt
            # the resumed run writes again, never a last.pt that records a best step whose best.pt was not written
            if also_best:
                save_checkpoint(self.best_path, {k: data[k] for k in BEST_KEYS})
            save_checkpoint(self.last_path, data)

    def validate(self) -> tuple[dict[str, float], bool]:
        """The selection metric (main rank) and whether it improved, best-so-far shared with every rank; the caller
        logs the step, then saves (:meth:`save`)."""
        metrics: dict[str, float] = {}
        improved = False
        if self.info.main:
            if self.mono_mono_stft is None:
                self.mono_mono_stft = selection_stft(None, self.cfg, self.data, self.device)
            stft = self.mono_mono_stft if not self.trainable else selection_stft(self.model, self.cfg, self.data, self.device)
            metrics = {"val_stft": stft, "val_stft_mono_mono": self.mono_mono_stft}
            if self.best_metric is None or metrics["val_stft"] < self.best_metric:
                self.best_metric, self.best_step, improved = metrics["val_stft"], self.step, True
        improved, self.best_metric, self.best_step = broadcast_from_main([improved, self.best_metric, self.best_step], self.info)
        return metrics, improved

    # -------------------------------------------------------------------------------------------------- steps
    def _scl_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The previous frame (positive) and a spatial permutation of the visual tokens (negative) for SCL."""
        prev = augment_batch(batch["prev_frame"].to(self.device, non_blocking=True), batch["prev_brightness"], batch["prev_saturation"])
        # one permutation per step, a pure function of (seed, step): nothing to save for resume
        n_visual = self.cfg.model.visual_grid[0] * self.cfg.model.visual_grid[1]
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.step)
        return {"prev_frame": prev, "shuffle_perm": torch.randperm(n_visual, generator=generator).to(self.device)}

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``; returns the loss parts (detached)."""
        cfg, device = self.cfg, self.device
        stereo = batch["segment"].to(device, non_blocking=True)
        mono, diff = segment_specs(stereo)
        frame = augment_batch(batch["frame"].to(device, non_blocking=True), batch["brightness"], batch["saturation"])
        kwargs = self._scl_inputs(batch) if self.use_scl and self.step >= cfg.scl_start_step else {}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            out = self.net(mono, frame, return_features=True, **kwargs)
        loss, parts = total_loss(out, Targets(diff, mono, stereo), cfg.model, cfg.recipe)
        parts["mse_mono_mono"] = diff.detach().pow(2).mean()  # what predicting diff = 0 would score on this batch
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return parts

    def _after_step(self, parts: dict[str, torch.Tensor], started: float, bar: tqdm) -> None:
        """Log, validate or checkpoint after ``self.step`` as the schedule says."""
        step, schedule = self.step, self.schedule
        record: dict[str, Any] | None = None
        if step % self.cfg.log_every == 0 or schedule.validates(step) or step == schedule.stop_at:
            lrs = self.scheduler.get_last_lr()
            record = {"step": step, "epoch": step / schedule.batches_per_epoch, "lr_visual": lrs[0], "lr_other": lrs[1],
                      **{k: float(v) for k, v in parts.items()}, "seconds": time.perf_counter() - started}
            bar.set_postfix(loss=f"{record['loss']:.4g}")
        improved = None
        if schedule.validates(step):
            metrics, improved = self.validate()
            record.update(metrics)
        # the step's record before its checkpoint: a resumed run cuts the log back to the checkpoint's step, so a
        # kill between the two loses the record when it comes second (a fault-campaign finding)
        if record is not None and self.log is not None:
            self.log.write(record)
        if improved is not None:
            self.save(also_best=improved)
        elif step % self.cfg.checkpoint_every == 0 or step == schedule.stop_at:
            self.save()

    def run(self) -> None:
        """Train from ``self.step`` to the schedule's ``stop_at``, one pass of the stream per epoch."""
        cfg, schedule = self.cfg, self.schedule
        bar = tqdm(total=schedule.stop_at, initial=self.step, desc="ccs-train", unit="step",
                   disable=not (cfg.progress and self.info.main), dynamic_ncols=True)
        started = time.perf_counter()
        if not self.trainable:  # Mono-Mono: nothing to optimise; validate once so the run has the same outputs
            metrics, improved = self.validate()
            if self.log:
                self.log.write({"step": 0, "epoch": 0, **metrics, "seconds": 0.0})
            self.save(also_best=improved)
            self.step = schedule.total_steps
        while self.step < schedule.stop_at:
            epoch, start_batch = divmod(self.step, schedule.batches_per_epoch)
            self.stream.set_epoch(epoch, schedule.batches_per_epoch, start_batch)
            loader = DataLoader(self.stream, batch_size=None, num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda")
            for batch in _batches(loader):
                parts = self.train_step(batch)
                self.step += 1
                bar.update(1)
                self._after_step(parts, started, bar)
                if self.step >= schedule.stop_at:
                    break
        bar.close()

    def finish(self) -> TrainResult:
        """Check that DDP replicas agree, complete ``metadata.json`` and say what the run produced."""
        digest = param_digest(self.model)
        # Parameters only: DDP broadcasts rank 0's BN statistics before each forward, and the last step's local
        # update of them differs per rank; checkpoints hold rank 0's.
        replica_digests = gather_from_all(param_digest(self.model, buffers=False), self.info)
        if len(set(replica_digests)) != 1:
            raise RuntimeError(f"DDP replicas diverged: parameter digests {replica_digests}")
        if self.info.main:
            self.metadata.update(steps_done=self.step, best_metric=self.best_metric, best_step=self.best_step,
                                 param_digest=digest, replica_digests=replica_digests,
                                 finished=self.step >= self.schedule.total_steps,
                                 best_sha256=sha256_file(self.best_path) if self.best_path.exists() else None)
            write_metadata(self.meta_path, self.metadata)
        barrier(self.info)
        best = self.best_path if self.best_path.exists() else None
        history = list(self.log.records) if self.log else []
        return TrainResult(self.out, best, self.last_path, self.step, self.best_metric, self.best_step, digest, history)


def _batches(loader: DataLoader) -> Any:
    """The loader's batches; a sample that does not decode in a worker is raised as its one-line error."""
    try:
        yield from loader
    except (ValueError, OSError, RuntimeError) as exc:
        error = worker_error(exc)
        if error is exc:
            raise
        raise error from None


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Train per ``cfg``; with ``resume`` continue ``OUT/last.pt`` exactly where it stopped."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    info = setup_processes(cfg.device)
    device = training_device(cfg.device, info)
    cfg, ckpt = open_run(cfg, resume, info)
    data = RunData.load(cfg)
    trainer = Trainer(cfg, info, device, data, Schedule.of(cfg, data.train.n_clips), ckpt)
    trainer.run()
    return trainer.finish()
