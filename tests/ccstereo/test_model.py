"""Model blocks at the paper's sizes, AVAD behaviour, baselines, visual init and checkpoints (SPEC 7)."""

import dataclasses

import pytest
import torch
import torchvision

from ccstereo.audio import complex_mul_ri
from ccstereo.blocks import resnet18_trunk
from ccstereo.checkpoint import load_model, save_checkpoint
from ccstereo.config import ModelConfig, preset
from ccstereo.losses import mse_loss
from ccstereo.model import AVAD, CCStereo, build_model

torch.set_num_threads(2)
SMALL = dict(visual_init="random", resize=(40, 80), crop=(32, 64), aspp_hidden=32)


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return CCStereo(ModelConfig(visual_init="random")).eval()


def test_blocks_have_the_paper_shapes(paper_model):
    m = paper_model
    frame = torch.randn(2, 3, 224, 448)
    mono = torch.randn(2, 2, 257, 64)
    with torch.no_grad():
        trunk = m.visual.trunk(frame)
        visual = m.visual.head(trunk)
        feats = m.encoder(mono)
        fused = m.fusion(feats[-1], visual)
        mask = m.decoder(fused, feats[-2::-1], visual)
        out = m(mono, frame, prev_frame=frame, shuffle_perm=torch.randperm(98), return_features=True)
    assert trunk.shape == (2, 512, 7, 14)
    assert visual.shape == (2, 128, 7, 14)  # 98 visual tokens
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 128, 32), (32, 64, 16), (64, 32, 8), (128, 16, 4), (128, 8, 2)]
    assert fused.shape == (2, 128, 8, 2)  # 16 audio tokens
    assert mask.shape == (2, 2, 257, 64) and mask.abs().max() <= 1
    assert out["diff"].shape == (2, 2, 257, 64)
    assert out["z"].shape == out["z_pos"].shape == out["z_neg"].shape == (2, 128)
    assert not torch.allclose(out["z"], out["z_neg"])  # shuffling the visual tokens changes the fusion
    assert m.cfg.visual_grid == (7, 14)


def test_output_is_the_mask_times_the_mono_spectrogram(paper_model):
    with torch.no_grad():
        assert torch.count_nonzero(paper_model(torch.zeros(1, 2, 257, 64), torch.randn(1, 3, 224, 448))) == 0


def test_avad_depends_on_vision_and_reduces_to_bn_when_alpha_beta_are_zero():
    torch.manual_seed(0)
    avad = AVAD(channels=16, visual_channels=8, n_visual=6, audio_hw=(4, 4)).eval()
    avad.norm.running_mean.normal_()
    avad.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 16, 4, 4)
    v1, v2 = torch.randn(2, 8, 2, 3), torch.randn(2, 8, 2, 3)
    with torch.no_grad():
        assert not torch.allclose(avad(x, v1), avad(x, v2))
        for head in (avad.alpha, avad.beta):
            head.weight.zero_()
            head.bias.zero_()
        plain = (x - avad.norm.running_mean[:, None, None]) / torch.sqrt(avad.norm.running_var[:, None, None] + avad.norm.eps)
        assert torch.allclose(avad(x, v1), plain, atol=1e-5)
        assert torch.allclose(avad(x, v2), plain, atol=1e-5)


def test_no_avad_uses_batchnorm():
    m = build_model(ModelConfig(avad=False, **SMALL))
    assert not any(isinstance(mod, AVAD) for mod in m.modules())
    assert any(isinstance(mod, AVAD) for mod in build_model(ModelConfig(**SMALL)).modules())


def test_baselines():
    torch.manual_seed(0)
    m2b = build_model(ModelConfig(arch="mono2binaural", visual_init="random")).eval()
    assert m2b.visual_dim == 784  # 8 x 7 x 14 at 224x448
    mono = torch.randn(2, 2, 257, 64)
    with torch.no_grad():
        assert m2b(mono, torch.randn(2, 3, 224, 448)).shape == (2, 2, 257, 64)
    mm = build_model(ModelConfig(arch="mono-mono", visual_init="random"))
    assert list(mm.parameters()) == []
    assert torch.equal(mm(mono, None), torch.zeros_like(mono))


def test_visual_init_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="--visual-init random"):
        resnet18_trunk("imagenet")
    reference = torchvision.models.resnet18(weights=None)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    trunk = resnet18_trunk("imagenet")
    assert torch.equal(trunk[0].weight, reference.conv1.weight)
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a ResNet-18"):
        resnet18_trunk(str(tmp_path / "bad.pth"))


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = build_model(ModelConfig(loss="mse", scl_weight=0.0, **SMALL))
    g = torch.Generator().manual_seed(0)
    mono = torch.randn(2, 2, 257, 64, generator=g)
    target = complex_mul_ri(torch.tensor([0.6, -0.3]).view(1, 2, 1, 1).expand(2, 2, 257, 64), mono)  # a mask can say this
    frame = torch.randn(2, 3, 32, 64, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = mse_loss(model(mono, frame), target)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert min(losses[-3:]) < 0.05 * losses[0]


def test_checkpoint_roundtrip_rebuilds_the_model(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(**SMALL)
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / "m.pt", {"model_config": cfg.to_dict(), "model": model.state_dict(), "meta": {"note": "x"}})
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.cfg == cfg and loaded.meta == {"note": "x"}
    mono, frame = torch.randn(2, 2, 257, 64), torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(model(mono, frame), loaded(mono, frame))
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a ccstereo checkpoint"):
        load_model(tmp_path / "x.pt")


def test_presets():
    paper = preset("paper")
    assert paper.batch_size == 128 and paper.lr_visual == 5e-5 and paper.lr_other == 5e-4 and paper.weight_decay == 5e-4
    assert paper.model.resize == (240, 480) and paper.model.crop == (224, 448) and paper.model.visual_init == "imagenet"
    assert (paper.model.apm_weight, paper.model.phs_weight, paper.model.scl_weight) == (0.005, 1.0, 0.1)
    small = preset("cpu-small", {"avad": False}, batch_size=8)
    assert small.model.visual_init == "random" and not small.model.avad and small.batch_size == 8
    with pytest.raises(ValueError):
        ModelConfig(crop=(300, 448))
    assert dataclasses.replace(small) == type(small).from_dict(small.to_dict())
