"""The processes of a run: one plain process, or ``torchrun --nproc_per_node N`` (DDP: gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ccstereo.provenance import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_processes(device: str) -> DistInfo:
    """This process's place in the run (torchrun's environment); joins the process group when there are several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolve_device(device).type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def training_device(device: str, info: DistInfo) -> torch.device:
    """The device of this rank for a ``--device`` setting (auto, cpu, cuda): one GPU per local rank."""
    if resolve_device(device).type != "cuda":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available")
    torch.cuda.set_device(info.local_rank)
    return torch.device("cuda", info.local_rank)


def gather_from_all(value: Any, info: DistInfo) -> list[Any]:
    """``value`` of every rank, in rank order (``[value]`` in a single process)."""
    if info.world == 1:
        return [value]
    gathered: list[Any] = [None] * info.world
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_from_main(values: list[Any], info: DistInfo) -> list[Any]:
    """Rank 0's ``values`` on every rank (unchanged in a single process)."""
    if info.world > 1:
        dist.broadcast_object_list(values, src=0)
    return values


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()
