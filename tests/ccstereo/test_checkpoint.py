"""Checkpoints (ccstereo.checkpoint): load_model's network, weights that do not match their config, the model config
fields a checkpoint predates."""

import dataclasses

import pytest
import torch
from click.testing import CliRunner

from ccstereo.checkpoint import LEGACY_MODEL_CONFIG, load_model, load_weights, save_checkpoint
from ccstereo.cli import infer_command
from ccstereo.config import ModelConfig
from ccstereo.model import build_model
from tests.helpers.media import make_video

torch.set_num_threads(2)
SMALL = ModelConfig(visual_init="random", resize=(40, 80), crop=(32, 64), aspp_hidden=32)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 2, 257, 64, generator=g), torch.randn(2, 3, 32, 64, generator=g)


def _save(path, cfg_dict, state, meta=None):
    save_checkpoint(path, {"model_config": cfg_dict, "model": state, "meta": meta or {}})


def test_load_model_returns_the_network_in_eval_mode_with_config_and_meta(tmp_path):
    torch.manual_seed(0)
    model = build_model(SMALL)  # left in training mode: load_model must switch to eval
    _save(tmp_path / "m.pt", SMALL.to_dict(), model.state_dict(), {"provenance": {"source": "test"}})
    loaded = load_model(tmp_path / "m.pt", device="cpu")
    assert not loaded.training and all(not m.training for m in loaded.modules())
    assert loaded.cfg == SMALL and loaded.meta == {"provenance": {"source": "test"}}
    mono, frame = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(mono, frame), model.eval()(mono, frame))


def test_weights_that_do_not_match_their_config_are_one_clear_error(tmp_path):
    torch.manual_seed(0)
    weights = build_model(SMALL).state_dict()
    other = dataclasses.replace(SMALL, aspp_hidden=16)  # the config says 16 ASPP channels, the weights have 32
    _save(tmp_path / "wrong.pt", other.to_dict(), weights)
    with pytest.raises(ValueError, match=r"wrong\.pt: the weights do not match the model config") as info:
        load_model(tmp_path / "wrong.pt")
    message = str(info.value)
    assert "\n" not in message and "with another shape" in message
    assert "[32, 512, 1, 1] instead of [16, 512, 1, 1]" in message

    partial = {k: v for k, v in weights.items() if not k.startswith("fusion.")}
    partial["extra.weight"] = torch.zeros(1)
    _save(tmp_path / "partial.pt", SMALL.to_dict(), partial)
    expected = r"partial\.pt: .*missing \(first: fusion\..*1 unexpected \(first: extra\.weight"
    with pytest.raises(ValueError, match=expected):
        load_model(tmp_path / "partial.pt")

    net = build_model(SMALL)
    with pytest.raises(ValueError, match="last.pt: the weights do not match"):
        load_weights(net, partial, "run/last.pt")  # the trainer's resume path


def test_ccs_infer_reports_mismatched_weights_in_one_line(tmp_path):
    torch.manual_seed(0)
    narrow = dataclasses.replace(SMALL, fusion_dim=64, unet_channels=(16, 32, 64, 128, 64))
    _save(tmp_path / "wrong.pt", narrow.to_dict(), build_model(SMALL).state_dict())
    make_video(tmp_path / "v.mp4", 1.0)
    result = CliRunner().invoke(infer_command, [str(tmp_path / "v.mp4"), "-c", str(tmp_path / "wrong.pt"), "-o",
                                                str(tmp_path / "out.wav")])
    assert result.exit_code == 1 and not isinstance(result.exception, RuntimeError)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "wrong.pt: the weights do not match the model config" in lines[0]
    assert not (tmp_path / "out.wav").exists()


def test_a_checkpoint_written_before_the_released_switches_rebuilds_its_own_network(tmp_path):
    torch.manual_seed(0)
    old_cfg = dataclasses.replace(SMALL, **LEGACY_MODEL_CONFIG)
    assert (old_cfg.aspp_negative_slope, old_cfg.mask_align_corners) == (0.2, False)
    model = build_model(old_cfg).eval()
    old_dict = {k: v for k, v in old_cfg.to_dict().items() if k not in LEGACY_MODEL_CONFIG}
    _save(tmp_path / "old.pt", old_dict, model.state_dict())
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.cfg == old_cfg
    mono, frame = _inputs()
    with torch.no_grad():
        expected = model(mono, frame)
        assert torch.equal(loaded(mono, frame), expected)
        today = build_model(SMALL).eval()  # today's defaults (the released values) give another network
        today.load_state_dict(model.state_dict())
        assert not torch.allclose(today(mono, frame), expected)


def test_bad_model_config_and_bad_files_are_clear_errors(tmp_path):
    _save(tmp_path / "cfg.pt", {**SMALL.to_dict(), "no_such_field": 1}, build_model(SMALL).state_dict())
    with pytest.raises(ValueError, match=r"cfg\.pt: bad model config .*no_such_field"):
        load_model(tmp_path / "cfg.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk\.pt: not a loadable checkpoint"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "absent.pt")
