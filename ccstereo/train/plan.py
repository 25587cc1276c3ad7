"""What a run trains on (the train and selection lists in the dataset's shards) and for how many steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccstereo.config import TrainConfig
from ccstereo.data import ShardPlan
from pipelines.shards import list_shards, read_split_keys


@dataclass(frozen=True)
class RunData:
    """The train list feeds the sampler; the selection list (val, or test to mimic the official code) the metric.
    The test list is read only to say what the selection list is (a val list equal to the test list is a
    selection on test, as in the paper's YouTube-360 protocol)."""

    shards: list[Path]
    train: ShardPlan
    select_keys: list[str]
    test_keys: list[str]

    @classmethod
    def load(cls, cfg: TrainConfig) -> RunData:
        shards = list_shards(cfg.root, cfg.dataset)
        lists = {part: read_split_keys(cfg.root, cfg.dataset, cfg.protocol, cfg.split, part)
                 for part in ("train", cfg.select_on, "test")}
        if not lists["train"] or not lists[cfg.select_on]:
            raise ValueError(f"empty train or {cfg.select_on} list for {cfg.dataset} {cfg.protocol}/{cfg.split}")
        return cls(shards, ShardPlan.build(shards, lists["train"]), lists[cfg.select_on], lists["test"])

    @property
    def selected_on(self) -> str:
        """``test`` when the selection list holds test clips (``--select-on test``, or a val list taken from the
        test list), else ``val``."""
        return "test" if set(self.select_keys) & set(self.test_keys) else "val"


@dataclass(frozen=True)
class Schedule:
    """Step counts of a run; ``stop_at`` < ``total_steps`` when ``stop_after`` cuts it short (resume continues)."""

    batches_per_epoch: int
    total_steps: int
    val_every: int
    stop_at: int

    @classmethod
    def of(cls, cfg: TrainConfig, n_clips: int) -> Schedule:
        batches_per_epoch = max(1, n_clips // cfg.batch_size)  # an epoch = one segment per training clip
        total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * batches_per_epoch
        val_every = max(1, cfg.val_every_epochs * batches_per_epoch)
        stop_at = min(total_steps, cfg.stop_after) if cfg.stop_after is not None else total_steps
        return cls(batches_per_epoch, total_steps, val_every, stop_at)

    def validates(self, step: int) -> bool:
        """Validation (and maybe a new best.pt) after ``step``: every ``val_every`` steps and at the very end."""
        return step % self.val_every == 0 or step == self.total_steps
