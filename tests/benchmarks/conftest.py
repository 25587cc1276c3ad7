"""A small finished table run shared by the report tests: the synthetic table's Mono-Mono, CCStereo (a seeded
untrained network given as a checkpoint) and the shuffled-frames row on a fake FAIR-Play-like shard set, one split,
windows tiling the clips; ``ccs-bench run`` writes every report, report.html included."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.plan import BenchConfig
from benchmarks.run import run_table
from ccstereo.checkpoint import save_checkpoint
from ccstereo.config import preset
from ccstereo.model import build_model
from pipelines.synth.fakeshards import make_fake_dataset

REPORT_METHODS = ("Mono-Mono", "CCStereo", "CCStereo, frames shuffled across clips")


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The table folder (``OUT/table-synthetic``) of a finished run."""
    root = tmp_path_factory.mktemp("report-run")
    make_fake_dataset(root / "data", n_clips=12, protocols={"5-split": 5}, frame_size=(60, 120))
    torch.manual_seed(0)
    mc = preset("cpu-small", {"arch": "ccstereo"}).model
    save_checkpoint(root / "ccstereo.pt", {"model_config": mc.to_dict(), "model": build_model(mc).state_dict()})
    run_table(BenchConfig(table="synthetic", root=str(root / "data"), out=str(root / "out"), splits=("1",),
                          methods=REPORT_METHODS, checkpoints={"CCStereo": str(root / "ccstereo.pt")}, hop=10_080,
                          progress=False))
    return root / "out" / "table-synthetic"
