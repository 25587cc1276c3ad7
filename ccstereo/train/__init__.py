"""The streaming trainer behind ``ccs-train`` (SPEC 8). Library entry point :func:`train`.

Runs in a plain process or under ``torchrun --nproc_per_node N -m ccstereo.train ...`` (DDP: gloo on CPU, nccl on
GPU). Writes into ``OUT``: ``last.pt`` (exact resume state), ``best.pt`` (best on the selection split),
``metadata.json``, ``log.jsonl`` and ``log.csv``.

Modules: ``trainer`` (set-up, steps, checkpoints, validation), ``plan`` (data lists and step counts),
``records`` (log and metadata), ``validation`` (the selection metric), ``distributed`` (ranks and collectives).
"""

from ccstereo.train.trainer import Trainer, TrainResult, param_digest, train

__all__ = ["TrainResult", "Trainer", "param_digest", "train"]
