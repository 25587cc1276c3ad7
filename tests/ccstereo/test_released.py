"""The released CCStereo checkpoint (ccstereo.released): a fake file with every released key and shape
(tests/helpers/released.py), converted, loaded strictly, and run against a re-implementation of the released
forward's ASPP, AVAD and last resize written here."""

import argparse
import dataclasses
import hashlib

import pytest
import torch
import torch.nn.functional as F

from ccstereo.checkpoint import LEGACY_MODEL_CONFIG, load_model
from ccstereo.model import build_model
from ccstereo.released import RELEASED_NOTE, convert_state, import_released, released_model_config
from tests.helpers.released import ASPP, AVAD, DROPPED, A, fake_released

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def released() -> dict[str, torch.Tensor]:
    return fake_released()


def test_the_fake_file_has_the_released_layout(released):
    assert len(released) == 254
    assert sum(t.numel() for t in released.values()) == 17_658_244


def test_every_key_is_converted_or_deliberately_dropped_and_loads_strictly(released):
    network = build_model(dataclasses.replace(released_model_config(), visual_init="random"))
    state, dropped = convert_state(released, network.state_dict())
    assert sorted(dropped) == sorted(DROPPED)
    assert len(state) == 256 == len(network.state_dict())
    assert network.load_state_dict(state, strict=True).missing_keys == []
    # the count: 254 - 12 dropped + 15 (map_bn split in four) - 1 (two projections in one) = 256
    assert 254 - len(dropped) + 15 - 1 == len(state)
    for i in range(4):  # map_bn chunk i -> branch i; its batch counter copied to all four
        assert torch.equal(state[f"visual.head.branches.{i}.1.running_var"],
                           released[ASPP + "map_bn.running_var"][256 * i:256 * (i + 1)])
        assert state[f"visual.head.branches.{i}.1.num_batches_tracked"] == released[ASPP + "map_bn.num_batches_tracked"]
    assert torch.equal(state["visual.head.project.0.weight"][:, :1024], released[ASPP + "red_conv.weight"])
    assert torch.equal(state["decoder.ups.0.norm.pos_audio"][0, :, 2, 3], released[AVAD + "pos_embed_a"][0, 2 * 4 + 3])
    with pytest.raises(ValueError, match="does not know.*first: net_audio.extra"):
        convert_state({**released, A + "extra.weight": torch.zeros(1)}, network.state_dict())
    partial = {k: v for k, v in released.items() if "audionet_convlayer3" not in k}
    with pytest.raises(ValueError, match="7 missing.*first: encoder.blocks.2.0.weight"):
        convert_state(partial, network.state_dict())
    other_grid = {**released, AVAD + "pos_embed_a": torch.zeros(1, 60, 128)}
    with pytest.raises(ValueError, match=r"1 with another shape; first: decoder.ups.0.norm.pos_audio \[1, 128, 60\]"):
        convert_state(other_grid, network.state_dict())
    with pytest.raises(ValueError, match=r"released .*pos_embed_v \[98, 128\] does not have the shape"):
        convert_state({**released, AVAD + "pos_embed_v": torch.zeros(98, 128)}, network.state_dict())


# ------------------------------------------------------------- the released forward's details, written here
def released_aspp(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The released head: the four maps through ONE BN of 1024 channels, LeakyReLU's default slope 0.01,
    red_conv(maps) + pool_red_conv(global pooling) and red_bn."""
    def bn(t, p):
        return F.batch_norm(t, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"])

    maps = [F.conv2d(x, sd[ASPP + "map_convs.0.weight"])]
    maps += [F.conv2d(x, sd[f"{ASPP}map_convs.{i}.weight"], padding=d, dilation=d)
             for i, d in ((1, 6), (2, 12), (3, 18))]
    out = F.conv2d(F.leaky_relu(bn(torch.cat(maps, 1), ASPP + "map_bn."), 0.01), sd[ASPP + "red_conv.weight"])
    pool = x.mean(dim=(2, 3), keepdim=True)
    pool = F.leaky_relu(bn(F.conv2d(pool, sd[ASPP + "global_pooling_conv.weight"]), ASPP + "global_pooling_bn."), 0.01)
    out = out + F.conv2d(pool, sd[ASPP + "pool_red_conv.weight"]).repeat(1, 1, x.shape[2], x.shape[3])
    return F.leaky_relu(bn(out, ASPP + "red_bn."), 0.01)


def released_avad(sd: dict[str, torch.Tensor], x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
    """The released AVAD: token-major features [B, tokens, C] with their position tables, cosine relevance."""
    normed = F.batch_norm(x, sd[AVAD + "param_free_norm.running_mean"], sd[AVAD + "param_free_norm.running_var"])
    v = F.conv2d(visual, sd[AVAD + "visual_conv.weight"], sd[AVAD + "visual_conv.bias"])
    a_tok = normed.flatten(2).transpose(1, 2) + sd[AVAD + "pos_embed_a"]
    v_tok = v.flatten(2).transpose(1, 2) + sd[AVAD + "pos_embed_v"]
    rel = torch.bmm(F.normalize(v_tok, dim=-1), F.normalize(a_tok, dim=-1).transpose(1, 2))
    rel = rel.reshape(x.shape[0], -1, x.shape[2], x.shape[3])
    h = F.relu(F.conv2d(rel, sd[AVAD + "mlp_shared.0.weight"], sd[AVAD + "mlp_shared.0.bias"], padding=2))
    gamma = F.conv2d(h, sd[AVAD + "mlp_gamma.weight"], sd[AVAD + "mlp_gamma.bias"], padding=2)
    beta = F.conv2d(h, sd[AVAD + "mlp_beta.weight"], sd[AVAD + "mlp_beta.bias"], padding=2)
    return normed * (1 + gamma) + beta


def released_forward(sd, model, mono: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """The released network's output, with the toolkit's modules only where the weights are copied unchanged."""
    visual = released_aspp(sd, model.visual.trunk(frame))
    feats = model.encoder(mono)
    x = model.fusion(feats[-1], visual)
    x = torch.cat([F.relu(released_avad(sd, model.decoder.ups[0].conv(x), visual)), feats[3]], 1)
    for i in (1, 2, 3):
        x = torch.cat([model.decoder.ups[i](x), feats[3 - i]], 1)
    mask = 2 * torch.sigmoid(model.decoder.last(x)) - 1  # [B, 2, 256, 64]
    mask = F.interpolate(mask, size=(257, 64), mode="bilinear", align_corners=True)
    (mr, mi), (sr, si) = mask.unbind(1), mono.unbind(1)
    return torch.stack([mr * sr - mi * si, mr * si + mi * sr], 1)


def test_import_writes_a_checkpoint_whose_forward_is_the_released_one(released, tmp_path):
    src = tmp_path / "best_model.pth"
    torch.save({"state_dict": released}, src)
    result = import_released(src, tmp_path / "ccstereo-released.pt")
    assert result.n_released == 254 and len(result.dropped) == 12 and result.n_converted == 256
    model = load_model(tmp_path / "ccstereo-released.pt")
    assert not model.training and model.cfg == released_model_config()
    assert (model.cfg.aspp_negative_slope, model.cfg.mask_align_corners) == (0.01, True)
    prov = model.meta["provenance"]
    assert prov["source"] == RELEASED_NOTE and prov["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert model.meta["select_on"] == "test" and model.meta["split"] == "2"

    g = torch.Generator().manual_seed(3)
    mono = torch.randn(2, 2, 257, 64, generator=g, dtype=torch.float64)
    frame = torch.randn(2, 3, 224, 448, generator=g, dtype=torch.float64)
    sd = {k: v.double() if v.is_floating_point() else v for k, v in released.items()}
    model.double()
    with torch.no_grad():
        ours, theirs = model(mono, frame), released_forward(sd, model, mono, frame)
        assert theirs.abs().max() > 0.1  # a real signal, not a saturated or zero mask
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-10), (ours - theirs).abs().max()
        # each architecture switch matters: the project's earlier value of either one gives another network (the
        # legacy position-init widths only change the starting weights, which the loaded state replaces)
        for field in ("aspp_negative_slope", "mask_align_corners"):
            value = LEGACY_MODEL_CONFIG[field]
            old = build_model(dataclasses.replace(model.cfg, visual_init="random", **{field: value})).double().eval()
            old.load_state_dict(model.state_dict())
            assert (old(mono, frame) - theirs).abs().max() > 1e-3, field


def test_lightning_checkpoint_needs_the_trust_flag_and_wrappers_are_stripped(released, tmp_path):
    wrapped = {f"autoencoder.{k}": v for k, v in released.items()}
    wrapped.update({"flow_model.fnet.conv1.weight": torch.zeros(64, 3, 7, 7), "sdstft.window": torch.ones(400),
                    "mel_scale.fb": torch.zeros(257, 64)})
    ckpt = tmp_path / "epoch=99.ckpt"
    torch.save({"state_dict": wrapped, "epoch": 99, "hyper_parameters": argparse.Namespace(lr=5e-4)}, ckpt)
    with pytest.raises(ValueError, match=r"epoch=99\.ckpt: .*needs full unpickling.*--trust-pickle") as info:
        import_released(ckpt, tmp_path / "a.pt")
    assert "\n" not in str(info.value) and not (tmp_path / "a.pt").exists()
    from_ckpt = import_released(ckpt, tmp_path / "a.pt", trust_pickle=True)
    assert len(from_ckpt.dropped) == 12 + 3

    parallel = tmp_path / "parallel.pth"
    torch.save({f"module.{k}": v for k, v in released.items()}, parallel)  # a bare, DataParallel-prefixed dict
    import_released(parallel, tmp_path / "b.pt")
    a, b = load_model(tmp_path / "a.pt").state_dict(), load_model(tmp_path / "b.pt").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_files_that_are_not_released_checkpoints_are_clear_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth: not a loadable torch checkpoint"):
        import_released(tmp_path / "junk.pth", tmp_path / "out.pt")
    torch.save({"state_dict": {"net_visual.segment.aspp.map_bn.weight": torch.zeros(1024)}}, tmp_path / "part.pth")
    with pytest.raises(ValueError, match=r"part\.pth: the released weights do not fill the toolkit network"):
        import_released(tmp_path / "part.pth", tmp_path / "out.pt")
    torch.save({"state_dict": {"a": 1}}, tmp_path / "notensors.pth")
    with pytest.raises(ValueError, match="no state dict of tensors"):
        import_released(tmp_path / "notensors.pth", tmp_path / "out.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_released(tmp_path / "absent.pth", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
