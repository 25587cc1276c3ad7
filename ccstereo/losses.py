"""Training losses (SPEC 8) in the two recipes' forms, and their weighted total.

``official`` (the released code, behind the published numbers) and ``paper-text`` (the paper's equations) differ in
APM, PHS and SCL; each form is one small function here, and :data:`LOSS_FORMS` says which a recipe uses
(docs/FIDELITY.md lists every difference). Spectrograms are real tensors ``[B, 2, F, T]`` (real, imag);
waveforms ``[B, 2, T]`` (L, R).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ccstereo.audio import from_mono_diff, network_wave, stft
from ccstereo.config import ModelConfig

PHS_ENERGY_FRACTION = 0.2  # released PhaseLoss(ignore_below=0.2): rows below 0.2 x the mean energy are ignored
SUPCON_NEGATIVE_OFFSET = 10_000  # released labels of the shuffled rows: i + 10000, so they match nothing


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """l_MSE (eq. 1): mean squared error over (batch, real/imag, F, T)."""
    return F.mse_loss(pred.float(), target.float())


# ------------------------------------------------------------------------------------------------------- APM
def magnitude(ri: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """|z| of a ``[..., 2, F, T]`` real/imag tensor. ``eps`` keeps the gradient finite at z = 0."""
    return (ri.select(-3, 0).pow(2) + ri.select(-3, 1).pow(2) + eps).sqrt()


def apm_paper(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """l_APM as eq. 2: mean over the bins of | |a_true| - |a_pred| |, |.| the complex modulus of each bin."""
    return (magnitude(target.float()) - magnitude(pred.float(), eps=1e-12)).abs().mean()


def apm_official(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """l_APM as released: for ``[B, 2, F, T]`` (dim 1 = real, imag), ``a = sqrt(sum over T of x^2)`` for every
    (b, re/im, f), then the mean over (b, re/im, f) of ``|a_pred - a_true|``: an L2 norm over time, taken
    separately for the real and the imaginary part (about 5.5x eq. 2's value; zeta = 0.005 was tuned for it)."""
    norm_pred = torch.linalg.vector_norm(pred.float(), dim=-1)  # subgradient 0 at a zero row
    norm_true = torch.linalg.vector_norm(target.float(), dim=-1)
    return (norm_pred - norm_true).abs().mean()


# ------------------------------------------------------------------------------------------------------- PHS
def safe_angle(ri: torch.Tensor) -> torch.Tensor:
    """Phase of ``[..., 2, F, T]``; bins with (near) zero magnitude get angle 0 and a zero (not NaN) gradient."""
    re, im = ri.select(-3, 0), ri.select(-3, 1)
    tiny = (re * re + im * im) < 1e-20
    return torch.atan2(torch.where(tiny, torch.zeros_like(im), im), torch.where(tiny, torch.ones_like(re), re))


def wrapped_phase_distance(theta_pred: torch.Tensor, theta_true: torch.Tensor) -> torch.Tensor:
    """``pi - | |theta_p - theta_t| - pi |``: the angular distance in [0, pi] for angles in (-pi, pi]."""
    return math.pi - ((theta_pred - theta_true).abs() - math.pi).abs()


def phs_paper(pred_diff: torch.Tensor, true_diff: torch.Tensor, mono: torch.Tensor) -> torch.Tensor:
    """l_PHS as eq. 3: the phase distance of the binaural spectrograms ``(mono +- diff) / 2`` averaged over every
    bin of both channels (L = T x F per channel). The distance between two angles is read as the wrapped one, in
    [0, pi] (angles 2 pi apart are one phase)."""
    pred = from_mono_diff(mono.float(), pred_diff.float(), dim=1)  # [B, 2ch, 2ri, F, T]
    true = from_mono_diff(mono.float(), true_diff.float(), dim=1)
    return wrapped_phase_distance(safe_angle(pred), safe_angle(true)).mean()


def stft_rows(wave: torch.Tensor) -> torch.Tensor:
    """``[B, 2, T]`` waveforms -> ``[N, 2]`` rows of (re, im), one per (b, channel, f, frame): the released
    PhaseLoss's view (torch.stft, periodic Hann 400, n_fft 512, hop 160, centred, reflect padding)."""
    spec = stft(wave.float(), pad_mode="reflect")
    return torch.view_as_real(spec).reshape(-1, 2)


def phs_official(pred_wave: torch.Tensor, true_wave: torch.Tensor, fraction: float = PHS_ENERGY_FRACTION) -> torch.Tensor:
    """l_PHS as released, on stereo waveforms ``[B, 2, T]`` (``pred_wave`` from the iSTFT of the prediction).

    The released trainer calls its PhaseLoss as loss(data = true stereo, target = predicted stereo); with those
    roles: energy ``e = |re| + |im|`` per STFT row; keep the rows where ``e_target > fraction x mean(e_target)``
    and ``e_data > fraction x mean(e_target)`` (means over the whole batch); angles ``atan2(re, im)``; loss = mean
    over the kept rows of ``pi - | |angle_data - angle_target| - pi |``. 0 when no row is kept.
    """
    data, target = stft_rows(true_wave), stft_rows(pred_wave)  # the released argument order
    e_target = target.abs().sum(-1)
    e_data = data.abs().sum(-1)
    threshold = fraction * e_target.mean()
    keep = (e_target > threshold) & (e_data > threshold)
    if not bool(keep.any()):
        return pred_wave.sum() * 0.0
    data, target = data[keep], target[keep]
    d = (torch.atan2(data[:, 0], data[:, 1]) - torch.atan2(target[:, 0], target[:, 1])).abs()
    return (math.pi - (d - math.pi).abs()).mean()


def predicted_stereo(mono_wave: torch.Tensor, pred_diff: torch.Tensor) -> torch.Tensor:
    """``[B, 2, T]``: ``((mono + iSTFT(diff)) / 2, (mono - iSTFT(diff)) / 2)`` at the segment's length
    (``audio.network_wave``)."""
    return from_mono_diff(mono_wave.float(), network_wave(pred_diff, mono_wave.shape[-1]))


# ------------------------------------------------------------------------------------------------------- SCL
def scl_paper(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """l_SCL as eq. 7, averaged over anchors: ``-log(e^{z.z+/t} / (e^{z.z+/t} + sum_n e^{z.z_n-/t}))``.

    ``anchor``, ``positive`` [B, D]; ``negatives`` [N, D] shared by every anchor (the batch's shuffled features,
    the set N of eq. 6). Vectors are L2-normalised first.
    """
    z = F.normalize(anchor.float(), dim=-1)
    pos = (z * F.normalize(positive.float(), dim=-1)).sum(-1, keepdim=True)  # [B, 1]
    neg = z @ F.normalize(negatives.float(), dim=-1).T  # [B, N]
    logits = torch.cat([pos, neg], dim=1) / temperature
    return -(logits[:, 0] - torch.logsumexp(logits, dim=1)).mean()


def scl_official(z: torch.Tensor, z_pos: torch.Tensor, z_neg: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """l_SCL as released: a symmetric supervised-contrastive loss over the 3B stacked rows ``X = [z; z+; z-]``.

    Rows are L2-normalised, labelled (i, i, i + 10000); ``l = X X^T / t``. For row r the positives are the other
    rows with r's label, the negatives every row with another label (so every other instance's anchor and positive,
    and every shuffled row, are negatives); ``log p_rj = l_rj - log(e^{l_rj} + sum over negatives k of e^{l_rk})``;
    the row's loss is minus the mean over its positives (the z- rows have none and contribute 0); loss = the mean
    over all 3B rows. (The released code subtracts each row's maximum from l first, which changes nothing here.)
    """
    x = F.normalize(torch.cat([z, z_pos, z_neg]).float(), dim=-1)
    b = z.shape[0]
    idx = torch.arange(b, device=x.device)
    labels = torch.cat([idx, idx, idx + SUPCON_NEGATIVE_OFFSET])
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(3 * b, dtype=torch.bool, device=x.device)
    logits = x @ x.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    neg_sum = (logits.exp() * (~same)).sum(dim=1, keepdim=True)
    log_prob = logits - torch.log(logits.exp() + neg_sum)
    row = -(log_prob * positive).sum(dim=1) / (positive.sum(dim=1) + 1e-8)
    return row.mean()


# ----------------------------------------------------------------------------------------------------- total
@dataclass(frozen=True)
class LossForms:
    """The APM, PHS and SCL forms of one recipe (PHS: ``waveform`` forms take stereo waveforms)."""

    apm: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    scl: Callable[..., torch.Tensor]
    phs_on_waveforms: bool


LOSS_FORMS = {
    "official": LossForms(apm=apm_official, scl=scl_official, phs_on_waveforms=True),
    "paper-text": LossForms(apm=apm_paper, scl=scl_paper, phs_on_waveforms=False),
}


@dataclass(frozen=True)
class Targets:
    """What a training step compares the network's output with: STFT(L - R), the network's input STFT(L + R),
    and the RMS-normalised stereo segment ``[B, 2, T]`` (for the waveform-domain PHS)."""

    diff: torch.Tensor
    mono: torch.Tensor
    stereo: torch.Tensor


def total_loss(out: dict[str, torch.Tensor], targets: Targets, cfg: ModelConfig, recipe: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``l = l_MSE [+ zeta l_APM + eta l_PHS if loss == "rec"] [+ lambda l_SCL if scl_weight > 0]``, in the forms
    of ``recipe`` (:data:`LOSS_FORMS`).

    Returns the loss and its parts (detached tensors, so logging syncs the device only when it logs).
    """
    forms = LOSS_FORMS[recipe]
    pred = out["diff"].float()
    loss = mse_loss(pred, targets.diff)
    parts = {"mse": loss.detach()}
    if cfg.loss == "rec":
        apm = forms.apm(pred, targets.diff)
        if forms.phs_on_waveforms:
            mono_wave = targets.stereo[:, 0] + targets.stereo[:, 1]
            phs = phs_official(predicted_stereo(mono_wave, pred), targets.stereo)
        else:
            phs = phs_paper(pred, targets.diff, targets.mono)
        loss = loss + cfg.apm_weight * apm + cfg.phs_weight * phs
        parts.update(apm=apm.detach(), phs=phs.detach())
    if cfg.scl_weight > 0 and "z_pos" in out and "z_neg" in out:
        scl = forms.scl(out["z"], out["z_pos"], out["z_neg"], cfg.scl_temperature)
        loss = loss + cfg.scl_weight * scl
        parts["scl"] = scl.detach()
    parts["loss"] = loss.detach()
    return loss, parts
