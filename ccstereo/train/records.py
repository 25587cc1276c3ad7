"""What a run writes besides its checkpoints: ``log.jsonl`` + ``log.csv`` (one record per logged step) and
``metadata.json`` (settings, data, provenance; completed with the results when the run ends)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ccstereo.config import TrainConfig
from ccstereo.provenance import device_description, git_commit, package_versions
from ccstereo.train.plan import RunData, Schedule
from pipelines.contract import DatasetLayout
from pipelines.io import atomic_write_text, read_jsonl, sha256_file, write_jsonl

LOG_COLUMNS = ("step", "epoch", "lr_visual", "lr_other", "loss", "mse", "mse_mono_mono", "apm", "phs", "scl", "val_stft", "val_stft_mono_mono", "seconds")


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


def selection_note(select_on: str, select_keys: Sequence[str], test_keys: Sequence[str]) -> str:
    """What picks ``best.pt`` from the ``select_on`` list, in words for the metadata and the reports."""
    shared = len(set(select_keys) & set(test_keys))
    if select_on == "test":
        return "selected on the test list, as the official code does: not a fair test result"
    if shared == len(set(select_keys)) == len(set(test_keys)):
        return ("selected on test: the val list is the test list (the protocol's val_from = test, as in the paper), "
                "not a fair test result")
    if shared:
        return f"selected on a val list that shares {shared} clip(s) with the test list: not a fair test result"
    return "selected on the validation list (disjoint from the test list)"


def run_metadata(cfg: TrainConfig, world: int, device: torch.device, data: RunData, schedule: Schedule) -> dict[str, Any]:
    """``metadata.json`` as a run starts (``finish`` adds the results)."""
    layout = DatasetLayout(Path(cfg.root), cfg.dataset)
    return {
        "config": cfg.to_dict(), "recipe": cfg.recipe, "sampler": cfg.sampler, "select_on": cfg.select_on,
        "selected_on": data.selected_on, "selection_note": selection_note(cfg.select_on, data.select_keys, data.test_keys),
        "selection_eval": {"hop": cfg.eval_hop, "tail": "pad", "tdss": cfg.val_tdss, "every_epochs": cfg.val_every_epochs},
        "seed": cfg.seed, "world_size": world, "device": device_description(device),
        "versions": package_versions(), "git_commit": git_commit(), "command": sys.argv,
        "n_train_clips": data.train.n_clips, "missing_train_keys": list(data.train.missing), "n_select_clips": len(data.select_keys),
        "batches_per_epoch": schedule.batches_per_epoch, "total_steps": schedule.total_steps,
        "split_lists": {p: sha256_file(layout.split_list(cfg.protocol, cfg.split, p)) for p in ("train", cfg.select_on)},
        "shards": [s.name for s in data.shards],
    }


def write_metadata(path: Path, metadata: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(metadata, indent=2, sort_keys=True) + "\n")
