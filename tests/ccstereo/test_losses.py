"""Losses (SPEC 8): the released forms against independent references written here from the released code's
facts (issue 12), the paper's forms on hand-computed cases, and the recipe switch of the total."""

import math

import numpy as np
import pytest
import torch

from ccstereo.audio import from_mono_diff, segment_specs
from ccstereo.config import ModelConfig
from ccstereo.losses import (
    LOSS_FORMS,
    Targets,
    apm_official,
    apm_paper,
    mse_loss,
    phs_official,
    phs_paper,
    predicted_stereo,
    scl_official,
    scl_paper,
    total_loss,
    wrapped_phase_distance,
)


def ri(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([z.real, z.imag], dim=-3)


# --------------------------------------------------------------------------------- independent references
def ref_apm(pred: np.ndarray, target: np.ndarray) -> float:
    """Loop form of the released APM: a = sqrt(sum over T of x^2) per (b, re/im, f), mean |a_pred - a_true|."""
    b, c, f, _ = pred.shape
    total = 0.0
    for i in range(b):
        for j in range(c):
            for k in range(f):
                total += abs(math.sqrt(float(np.sum(pred[i, j, k].astype(np.float64) ** 2)))
                             - math.sqrt(float(np.sum(target[i, j, k].astype(np.float64) ** 2))))
    return total / (b * c * f)


def ref_stft(x: np.ndarray) -> np.ndarray:
    """torch.stft(n_fft 512, hop 160, win 400 periodic Hann, center, reflect) in numpy: [..., 257, frames]."""
    n_fft, hop, win = 512, 160, 400
    window = np.zeros(n_fft)
    window[(n_fft - win) // 2:(n_fft - win) // 2 + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    padded = np.pad(x.astype(np.float64), [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)], mode="reflect")
    n_frames = 1 + (padded.shape[-1] - n_fft) // hop
    frames = np.stack([padded[..., t * hop:t * hop + n_fft] * window for t in range(n_frames)], axis=-1)
    return np.fft.rfft(frames, axis=-2)


def ref_phs(pred_wave: np.ndarray, true_wave: np.ndarray) -> float:
    """The released call PhaseLoss(ignore_below=0.2)(data=true, target=pred), row by row."""
    data = ref_stft(true_wave).reshape(-1)
    target = ref_stft(pred_wave).reshape(-1)
    e_data = np.abs(data.real) + np.abs(data.imag)
    e_target = np.abs(target.real) + np.abs(target.imag)
    thr = 0.2 * e_target.mean()
    vals = []
    for d, t, ed, et in zip(data, target, e_data, e_target):
        if et > thr and ed > thr:
            diff = abs(math.atan2(d.real, d.imag) - math.atan2(t.real, t.imag))
            vals.append(math.pi - abs(diff - math.pi))
    return sum(vals) / len(vals)


def ref_scl(z: np.ndarray, zp: np.ndarray, zn: np.ndarray, tau: float) -> float:
    """The released supervised-contrastive loss over [z; z+; z-] with labels (i, i, i + 10000), with loops."""
    rows = [v / np.linalg.norm(v) for v in (*z, *zp, *zn)]
    b = len(z)
    labels = list(range(b)) * 2 + [i + 10000 for i in range(b)]
    n = len(rows)
    total = 0.0
    for r in range(n):
        logits = [float(np.dot(rows[r], rows[k])) / tau for k in range(n)]
        negatives = [k for k in range(n) if labels[k] != labels[r]]
        positives = [j for j in range(n) if j != r and labels[j] == labels[r]]
        neg = sum(math.exp(logits[k]) for k in negatives)
        log_p = [logits[j] - math.log(math.exp(logits[j]) + neg) for j in positives]
        total += -sum(log_p) / (len(positives) + 1e-8)
    return total / n


# --------------------------------------------------------------------------------------------- released
def test_apm_official_equals_the_reference_and_is_not_eq_2():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 2, 9, 13, generator=g), torch.randn(3, 2, 9, 13, generator=g)
    assert apm_official(pred, target).item() == pytest.approx(ref_apm(pred.numpy(), target.numpy()), abs=1e-5)
    # a time-axis L2 norm: scaling every frame by 2 doubles it, rotating the phase of each bin does not cancel out
    assert apm_official(2 * target, target).item() == pytest.approx(ref_apm(target.numpy(), 0 * target.numpy()), rel=1e-5)
    assert apm_official(pred, target).item() != pytest.approx(apm_paper(pred, target).item(), rel=0.1)
    zero = torch.zeros(1, 2, 3, 4, requires_grad=True)
    apm_official(zero, torch.ones(1, 2, 3, 4)).backward()
    assert torch.isfinite(zero.grad).all()


def test_phs_official_equals_the_reference_on_stereo_waveforms():
    g = torch.Generator().manual_seed(1)
    t = torch.arange(10080) / 16000
    true = torch.stack([torch.sin(2 * math.pi * 440 * t), 0.5 * torch.sin(2 * math.pi * 440 * t + 0.3)])[None]
    true = true + 0.05 * torch.randn(2, 2, 10080, generator=g)
    pred = true + 0.2 * torch.randn(2, 2, 10080, generator=g)
    assert phs_official(pred, true).item() == pytest.approx(ref_phs(pred.numpy(), true.numpy()), abs=1e-5)
    assert phs_official(true, true).item() == pytest.approx(0.0, abs=1e-6)
    # the mask's threshold is the mean energy of the PREDICTION (the released argument order): a louder prediction
    # keeps fewer bins of a quiet truth, so the loss is the reference's and not the symmetric form's
    loud = 4 * pred
    assert phs_official(loud, true).item() == pytest.approx(ref_phs(loud.numpy(), true.numpy()), abs=1e-5)
    assert phs_official(loud, true).item() != pytest.approx(ref_phs(true.numpy(), loud.numpy()), abs=1e-3)
    p = pred.clone().requires_grad_(True)
    phs_official(p, true).backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    silent = torch.zeros(1, 2, 10080, requires_grad=True)
    assert phs_official(silent, torch.zeros(1, 2, 10080)).item() == 0.0  # no row kept


def test_predicted_stereo_inverts_the_training_spectrograms():
    g = torch.Generator().manual_seed(2)
    stereo = 0.1 * torch.randn(2, 2, 10080, generator=g)
    mono_spec, diff_spec = segment_specs(stereo)
    mono_wave = stereo[:, 0] + stereo[:, 1]
    assert torch.allclose(predicted_stereo(mono_wave, diff_spec), stereo, atol=1e-5)
    assert phs_official(predicted_stereo(mono_wave, diff_spec), stereo).item() < 2e-3


def test_scl_official_equals_the_reference():
    g = torch.Generator().manual_seed(3)
    z, zp, zn = (torch.randn(5, 16, generator=g) for _ in range(3))
    got = scl_official(z, zp, zn, 0.1).item()
    assert got == pytest.approx(ref_scl(z.numpy(), zp.numpy(), zn.numpy(), 0.1), abs=1e-5)
    # every other instance is a negative: collapsing all anchors and positives onto one point is not a minimum
    e = torch.eye(16)
    collapsed = scl_official(e[:1].repeat(5, 1), e[:1].repeat(5, 1), e[1:6], 0.1).item()
    distinct = scl_official(e[:5], e[:5], e[5:10], 0.1).item()
    assert distinct < 0.01 < collapsed
    assert collapsed == pytest.approx(ref_scl(e[:1].repeat(5, 1).numpy(), e[:1].repeat(5, 1).numpy(), e[1:6].numpy(), 0.1), abs=1e-5)
    # ... whereas the paper-text InfoNCE, whose only negatives are the shuffled rows, is satisfied by the collapse
    assert scl_paper(e[:1].repeat(5, 1), e[:1].repeat(5, 1), e[1:6], 0.1).item() < 1e-3


# ------------------------------------------------------------------------------------------- paper text
def test_mse_by_hand():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).reshape(1, 2, 2, 2)
    assert mse_loss(pred, target).item() == pytest.approx((1 + 4 + 1) / 8)


def test_apm_paper_compares_bin_magnitudes_only():
    z = torch.complex(torch.tensor([[3.0, 0.0]]), torch.tensor([[4.0, 1.0]]))  # |z| = 5, 1
    rotated = z * torch.exp(torch.tensor(1j * 0.7))
    assert apm_paper(ri(rotated)[None], ri(z)[None]).item() == pytest.approx(0.0, abs=1e-6)
    assert apm_paper(ri(2 * z)[None], ri(z)[None]).item() == pytest.approx((5 + 1) / 2, rel=1e-5)


def test_wrapped_phase_distance():
    assert wrapped_phase_distance(torch.tensor(3.0), torch.tensor(-3.0)).item() == pytest.approx(2 * math.pi - 6.0, abs=1e-6)
    assert wrapped_phase_distance(torch.tensor(0.5), torch.tensor(0.2)).item() == pytest.approx(0.3, abs=1e-6)


def test_phs_paper_averages_every_binaural_bin():
    g = torch.Generator().manual_seed(4)
    mono = torch.randn(2, 2, 8, 5, generator=g)
    diff = torch.randn(2, 2, 8, 5, generator=g)
    assert phs_paper(diff, diff, mono).item() == pytest.approx(0.0, abs=1e-6)
    # by hand: the wrapped angle distance of L = (m + d) / 2 and R = (m - d) / 2, averaged over all 2 x 8 x 5 bins
    pred = torch.randn(2, 2, 8, 5, generator=g)
    angle = lambda x: torch.atan2(x[:, :, 1], x[:, :, 0])  # noqa: E731
    p, t = from_mono_diff(mono, pred, dim=1), from_mono_diff(mono, diff, dim=1)
    d = (angle(p) - angle(t)).abs()
    assert phs_paper(pred, diff, mono).item() == pytest.approx(torch.minimum(d, 2 * math.pi - d).mean().item(), abs=1e-6)
    # a prediction of exactly -mono makes L (or R) exactly zero: the gradient must stay finite
    pred = (-mono).clone().requires_grad_(True)
    phs_paper(pred, diff, mono).backward()
    assert torch.isfinite(pred.grad).all()


def test_scl_paper_extremes():
    d = 8
    anchor = torch.eye(d)[:1].repeat(4, 1)  # four identical anchors e0
    negatives = torch.eye(d)[1:5]  # orthogonal to the anchor
    assert scl_paper(anchor, anchor.clone(), negatives, 0.1).item() == pytest.approx(math.log1p(4 * math.exp(-10)), rel=2e-2)
    n_neg = 6
    assert scl_paper(anchor, anchor.clone(), anchor[:1].repeat(n_neg, 1), 0.1).item() == pytest.approx(math.log(1 + n_neg), rel=1e-5)


# ---------------------------------------------------------------------------------------------- total
@pytest.mark.parametrize("recipe", ["official", "paper-text"])
def test_total_loss_switches_and_recipe_forms(recipe):
    g = torch.Generator().manual_seed(5)
    stereo = 0.1 * torch.randn(2, 2, 10080, generator=g)
    mono, diff = segment_specs(stereo)
    pred = diff + 0.1 * torch.randn(diff.shape, generator=g)
    z = torch.randn(2, 16, generator=g)
    out = {"diff": pred, "z": z, "z_pos": z + 0.1, "z_neg": torch.randn(2, 16, generator=g)}
    targets = Targets(diff, mono, stereo)
    loss_mse, parts = total_loss(out, targets, ModelConfig(loss="mse", scl_weight=0.0), recipe)
    assert set(parts) == {"mse", "loss"} and loss_mse.item() == pytest.approx(mse_loss(pred, diff).item())
    loss_all, parts = total_loss(out, targets, ModelConfig(), recipe)
    expected = parts["mse"] + 0.005 * parts["apm"] + 1.0 * parts["phs"] + 0.1 * parts["scl"]
    assert loss_all.item() == pytest.approx(float(expected), rel=1e-5)
    forms = LOSS_FORMS[recipe]
    assert parts["apm"].item() == pytest.approx(forms.apm(pred, diff).item())
    assert parts["scl"].item() == pytest.approx(forms.scl(out["z"], out["z_pos"], out["z_neg"], 0.1).item())
    if recipe == "official":
        assert parts["phs"].item() == pytest.approx(phs_official(predicted_stereo(stereo.sum(1), pred), stereo).item())
    else:
        assert parts["phs"].item() == pytest.approx(phs_paper(pred, diff, mono).item())
