"""``ccs-data doctor --for bench TABLE``: what ``ccs-bench run --table TABLE`` needs from the machine.

Registered in the ``ccstereo.doctor`` entry-point group (pyproject.toml), since the doctor lives in ``pipelines``,
which may not import the tables or the presets. The needs: torch and torchvision; CUDA unless the preset is
``cpu-small``; the ImageNet ResNet-18 weights when a run still to train starts from them (``visual_init``); the
table's split lists and shards under the root; and room for the checkpoints of every run still to train.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from benchmarks.checkpoints import runs_to_train, train_config
from benchmarks.plan import BenchConfig, plan
from benchmarks.tables import TablePreset
from ccstereo.config import ModelConfig
from ccstereo.model import build_model
from pipelines.contract import SPLIT_PARTS, DatasetLayout
from pipelines.doctor import Target, TargetOptions
from pipelines.doctor_checks import Check

CPU_PRESET = "cpu-small"  # the preset made for machines without a GPU
CHECKPOINT_COPIES = 4  # best.pt (weights) + last.pt (weights and Adam's two moments): 4 x the network's bytes


def network_bytes(model_cfg: ModelConfig) -> int:
    """Bytes of the network's state dict (parameters and buffers) as a checkpoint stores it."""
    model = build_model(dataclasses.replace(model_cfg, visual_init="random"))
    return sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))


def data_check(table: TablePreset, root: Path) -> Check:
    """The table's split lists (train, val, test of every split) and its datasets' shards under ``root``."""
    missing = []
    for section in table.sections:
        layout = DatasetLayout(root, section.dataset)
        fix = (f"ccs-data fetch {section.dataset} --root {root}, then prepare and shard (ccs-data shard "
               f"{section.dataset} --root {root})")
        if not layout.shards():
            missing.append((f"no shards of {section.dataset} in {layout.shards_dir}", fix))
            continue
        absent = [sp for sp in section.splits
                  if not all(layout.split_list(section.protocol, sp, part).is_file() for part in SPLIT_PARTS)]
        if absent:
            missing.append((f"{section.dataset} {section.protocol}: no split lists for split(s) "
                            f"{', '.join(absent)} under {layout.splits_dir}", fix))
    if missing:
        return Check("data", "missing", "; ".join(m for m, _ in missing), missing[0][1])
    listed = "; ".join(f"{s.dataset} {s.protocol} splits {','.join(s.splits)}" for s in table.sections)
    return Check("data", "ok", f"shards and split lists present: {listed}")


def bench_target(arg: str, options: TargetOptions) -> Target:
    out = options.out or options.root
    cfg = BenchConfig(table=arg, root=str(options.root), out=str(out), preset=options.preset, progress=False)
    table, jobs = plan(cfg)
    preset_name = options.preset or table.default_preset
    table_dir = cfg.table_dir(table.table)
    training = [train_config(cfg, job, job.run_dir(table_dir), preset_name).model
                for job in runs_to_train(cfg, jobs, table_dir)]
    sizes: dict[str, int] = {}
    for model_cfg in training:
        sizes.setdefault(repr(model_cfg), network_bytes(model_cfg))
    need = sum(CHECKPOINT_COPIES * sizes[repr(m)] for m in training)
    needs = ("torch", "writable", "disk")
    needs += ("weights",) if any(m.visual_init == "imagenet" for m in training) else ()
    needs += ("cuda",) if preset_name != CPU_PRESET else ()
    return Target(f"ccs-bench run --table {arg} --root {options.root} --out {out} --preset {preset_name}", needs,
                  extra=(data_check(table, options.root),), disk_bytes=need, folder=out, folder_option="--out",
                  disk_basis=f"checkpoints of {len(training)} run(s) still to train, {CHECKPOINT_COPIES} x the "
                             "network's size each")
