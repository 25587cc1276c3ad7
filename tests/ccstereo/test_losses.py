"""Losses on hand-computed cases (SPEC 8)."""

import math

import pytest
import torch

from ccstereo.config import ModelConfig
from ccstereo.losses import (
    apm_loss,
    energy_mask,
    info_nce,
    mse_loss,
    phase_loss,
    phs_loss,
    total_loss,
    wrapped_phase_distance,
)


def ri(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([z.real, z.imag], dim=-3)


def test_mse_by_hand():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).reshape(1, 2, 2, 2)
    assert mse_loss(pred, target).item() == pytest.approx((1 + 4 + 1) / 8)


def test_apm_compares_magnitudes_only():
    z = torch.complex(torch.tensor([[3.0, 0.0]]), torch.tensor([[4.0, 1.0]]))  # |z| = 5, 1
    rotated = z * torch.exp(torch.tensor(1j * 0.7))
    assert apm_loss(ri(rotated)[None], ri(z)[None]).item() == pytest.approx(0.0, abs=1e-6)
    assert apm_loss(ri(2 * z)[None], ri(z)[None]).item() == pytest.approx((5 + 1) / 2, rel=1e-5)


def test_wrapped_phase_distance():
    assert wrapped_phase_distance(torch.tensor(3.0), torch.tensor(-3.0)).item() == pytest.approx(2 * math.pi - 6.0, abs=1e-6)
    assert wrapped_phase_distance(torch.tensor(0.5), torch.tensor(0.2)).item() == pytest.approx(0.3, abs=1e-6)


def test_phase_loss_zero_for_identical_and_pi_for_sign_flip():
    g = torch.Generator().manual_seed(0)
    z = torch.complex(torch.randn(2, 2, 9, 7, generator=g), torch.randn(2, 2, 9, 7, generator=g))
    assert phase_loss(ri(z), ri(z)).item() == pytest.approx(0.0, abs=1e-6)
    assert phase_loss(ri(-z), ri(z)).item() == pytest.approx(math.pi, abs=1e-5)


def test_phase_loss_ignores_silent_bins():
    target = torch.zeros(1, 2, 4, 4, dtype=torch.complex64)
    target[..., 0, 0] = 1 + 0j  # only this bin carries energy
    pred = -target.clone()
    pred[..., 1:, :] = 1j  # wrong phase where the target is silent: must not count
    pred[..., 0, 0] = 1 + 0j  # right phase where it has energy
    assert energy_mask(ri(target)).sum().item() == 2  # one bin per channel
    assert phase_loss(ri(pred), ri(target)).item() == pytest.approx(0.0, abs=1e-6)


def test_phs_loss_on_binaural_channels_and_finite_gradient():
    g = torch.Generator().manual_seed(1)
    mono = torch.randn(2, 2, 8, 5, generator=g)
    diff = torch.randn(2, 2, 8, 5, generator=g)
    assert phs_loss(diff, diff, mono).item() == pytest.approx(0.0, abs=1e-6)
    # a prediction of exactly -mono makes L (or R) exactly zero: the gradient must stay finite
    pred = (-mono).clone().requires_grad_(True)
    phs_loss(pred, diff, mono).backward()
    assert torch.isfinite(pred.grad).all()


def test_info_nce_extremes():
    d = 8
    anchor = torch.eye(d)[:1].repeat(4, 1)  # four identical anchors e0
    negatives = torch.eye(d)[1:5]  # orthogonal to the anchor
    assert info_nce(anchor, anchor.clone(), negatives, 0.1).item() == pytest.approx(math.log1p(4 * math.exp(-10)), rel=2e-2)
    same = anchor.clone()
    n_neg = 6
    assert info_nce(anchor, same, same[:1].repeat(n_neg, 1), 0.1).item() == pytest.approx(math.log(1 + n_neg), rel=1e-5)


def test_total_loss_switches():
    g = torch.Generator().manual_seed(2)
    mono, diff, pred = (torch.randn(2, 2, 6, 5, generator=g) for _ in range(3))
    z = torch.randn(2, 16, generator=g)
    out = {"diff": pred, "z": z, "z_pos": z + 0.1, "z_neg": torch.randn(2, 16, generator=g)}
    loss_mse, parts = total_loss(out, diff, mono, ModelConfig(loss="mse", scl_weight=0.0))
    assert set(parts) == {"mse", "loss"} and loss_mse.item() == pytest.approx(mse_loss(pred, diff).item())
    loss_all, parts = total_loss(out, diff, mono, ModelConfig())
    expected = parts["mse"] + 0.005 * parts["apm"] + 1.0 * parts["phs"] + 0.1 * parts["scl"]
    assert loss_all.item() == pytest.approx(float(expected), rel=1e-5)
