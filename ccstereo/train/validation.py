"""The selection metric that picks ``best.pt``: the full-clip evaluation of ``ccs-bench`` (``ccstereo.evaluate``) on
the selection list, with the recipe's hop (or ``val_hop``), the tail zero-padded, TDSS (``val_tdss``), peak
normalisation and the SPEC section 10 STFT distance (released code: every 5 epochs, lowest full-clip STFT)."""

from __future__ import annotations

import torch

from ccstereo.audio import DEFAULT_PAD_MODE
from ccstereo.config import TrainConfig
from ccstereo.evaluate import EvalSettings, evaluate_clips
from ccstereo.metrics import mean_metrics
from ccstereo.train.plan import RunData


def selection_settings(cfg: TrainConfig) -> EvalSettings:
    """How validation predicts and scores the selection list."""
    return EvalSettings(hop=cfg.eval_hop, tdss=cfg.val_tdss, pad_mode=DEFAULT_PAD_MODE,
                        batch_size=max(32, cfg.batch_size))


def selection_stft(model: torch.nn.Module | None, cfg: TrainConfig, data: RunData, device: torch.device) -> float:
    """Mean full-clip STFT distance of ``model`` (None: Mono-Mono) over the selection list."""
    where = f"{cfg.dataset}/{cfg.protocol} split {cfg.split} {cfg.select_on} list"
    rows = evaluate_clips(data.shards, data.select_keys, model, cfg.model, selection_settings(cfg), device=device,
                          where=where)
    return mean_metrics(rows)["STFT"]
