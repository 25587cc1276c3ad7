"""Training losses (SPEC 8): MSE, APM (eq. 2), PHS (eq. 3), SCL/InfoNCE (eq. 6-7) and their weighted total.

Spectrograms are real tensors ``[B, 2, F, T]`` (real, imag).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ccstereo.audio import from_mono_diff
from ccstereo.config import ModelConfig

PHS_ENERGY_FRACTION = 0.2  # bins with energy above 0.2 x the mean carry sound (SPEC 8)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """l_MSE: mean squared error over (batch, real/imag, F, T)."""
    return F.mse_loss(pred.float(), target.float())


def magnitude(ri: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """|z| of a ``[..., 2, F, T]`` real/imag tensor. ``eps`` keeps the gradient finite at z = 0."""
    return (ri.select(-3, 0).pow(2) + ri.select(-3, 1).pow(2) + eps).sqrt()


def apm_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """l_APM (eq. 2): mean | |A_true| - |A_pred| | over the difference spectrogram's bins."""
    return (magnitude(target.float()) - magnitude(pred.float(), eps=1e-12)).abs().mean()


def safe_angle(ri: torch.Tensor) -> torch.Tensor:
    """Phase of ``[..., 2, F, T]``; bins with (near) zero magnitude get angle 0 and a zero (not NaN) gradient."""
    re, im = ri.select(-3, 0), ri.select(-3, 1)
    tiny = (re * re + im * im) < 1e-20
    return torch.atan2(torch.where(tiny, torch.zeros_like(im), im), torch.where(tiny, torch.ones_like(re), re))


def wrapped_phase_distance(theta_pred: torch.Tensor, theta_true: torch.Tensor) -> torch.Tensor:
    """``pi - | |theta_p - theta_t| - pi |``: the angular distance in [0, pi] for angles in (-pi, pi]."""
    return math.pi - ((theta_pred - theta_true).abs() - math.pi).abs()


def energy_mask(ri_true: torch.Tensor, fraction: float = PHS_ENERGY_FRACTION) -> torch.Tensor:
    """Bins whose energy exceeds ``fraction`` x the mean energy of their own spectrogram (per leading index)."""
    energy = magnitude(ri_true).pow(2)
    mean = energy.mean(dim=(-2, -1), keepdim=True)
    return energy > fraction * mean


def phase_loss(pred: torch.Tensor, target: torch.Tensor, fraction: float = PHS_ENERGY_FRACTION) -> torch.Tensor:
    """Mean wrapped phase distance over the bins of ``target`` that carry sound (``[..., 2, F, T]`` inputs).

    Returns 0 when no bin carries sound (silent target).
    """
    mask = energy_mask(target.float(), fraction)
    dist = wrapped_phase_distance(safe_angle(pred.float()), safe_angle(target.float()))
    return (dist * mask).sum() / mask.sum().clamp_min(1)


def phs_loss(pred_diff: torch.Tensor, true_diff: torch.Tensor, mono: torch.Tensor) -> torch.Tensor:
    """l_PHS (eq. 3) on the binaural spectrograms: L = (mono + diff) / 2, R = (mono - diff) / 2 (the STFT is linear,
    so this equals the phase of the STFT of the reconstructed waveforms up to iSTFT round-off)."""
    pred = from_mono_diff(mono, pred_diff, dim=1)  # [B, 2ch, 2ri, F, T]
    true = from_mono_diff(mono, true_diff, dim=1)
    return phase_loss(pred, true)


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """l_SCL (eq. 7) averaged over anchors: ``-log(e^{z.z+/t} / (e^{z.z+/t} + sum_n e^{z.z_n-/t}))``.

    ``anchor``, ``positive`` [B, D]; ``negatives`` [N, D] shared by every anchor (the batch's shuffled features).
    Vectors are L2-normalised first.
    """
    z = F.normalize(anchor.float(), dim=-1)
    pos = (z * F.normalize(positive.float(), dim=-1)).sum(-1, keepdim=True)  # [B, 1]
    neg = z @ F.normalize(negatives.float(), dim=-1).T  # [B, N]
    logits = torch.cat([pos, neg], dim=1) / temperature
    return -(logits[:, 0] - torch.logsumexp(logits, dim=1)).mean()


def total_loss(out: dict[str, torch.Tensor], true_diff: torch.Tensor, mono: torch.Tensor, cfg: ModelConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``l = l_MSE [+ zeta l_APM + eta l_PHS if loss == "rec"] [+ lambda l_SCL if scl_weight > 0]``.

    Returns the loss and its parts (detached tensors, so logging syncs the device only when it logs).
    """
    pred = out["diff"].float()
    loss = mse_loss(pred, true_diff)
    parts = {"mse": loss.detach()}
    if cfg.loss == "rec":
        apm, phs = apm_loss(pred, true_diff), phs_loss(pred, true_diff, mono)
        loss = loss + cfg.apm_weight * apm + cfg.phs_weight * phs
        parts.update(apm=apm.detach(), phs=phs.detach())
    if cfg.scl_weight > 0 and "z_pos" in out and "z_neg" in out:
        scl = info_nce(out["z"], out["z_pos"], out["z_neg"], cfg.scl_temperature)
        loss = loss + cfg.scl_weight * scl
        parts["scl"] = scl.detach()
    parts["loss"] = loss.detach()
    return loss, parts
