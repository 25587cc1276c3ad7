"""The internal validation metric that picks ``best.pt``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ccstereo.audio import segment_specs


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable[dict[str, Any]], device: torch.device, precision: str) -> dict[str, float]:
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
