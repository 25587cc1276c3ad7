"""The streaming trainer behind ``ccs-train`` (SPEC 8). Library entry point :func:`train`.

Runs in a plain process or under ``torchrun --nproc_per_node N -m ccstereo.train ...`` (DDP: gloo on CPU, nccl on
GPU). Writes into ``OUT``: ``last.pt`` (exact resume state), ``best.pt`` (best on the selection split),
``metadata.json``, ``log.jsonl`` and ``log.csv``.

Modules: ``trainer`` (set-up, steps, checkpoints, validation), ``plan`` (data lists and step counts),
``records`` (log and metadata), ``validation`` (the selection metric), ``distributed`` (ranks and collectives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["TrainResult", "Trainer", "param_digest", "train"]

if TYPE_CHECKING:
    from ccstereo.train.trainer import Trainer, TrainResult, param_digest, train


def __getattr__(name: str) -> Any:
    # lazy (PEP 562): ``python -m ccstereo.train`` (what torchrun starts) imports this package before its
    # ``__main__``, and importing the trainer (torch) here would put seconds without the error style before it:
    # Ctrl-C then ended in an import traceback instead of the one ``interrupted`` line
    if name in __all__:
        from ccstereo.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
