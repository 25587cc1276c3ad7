"""ccs-train: loss goes down, exact resume, DDP under torchrun, baselines, selection = the full-clip evaluation,
recipes, learning-rate groups and schedules, CLI errors."""

import json
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from ccstereo.checkpoint import load_checkpoint, load_model
from ccstereo.cli import train_command
from ccstereo.config import preset
from ccstereo.evaluate import EvalSettings, evaluate_clips
from ccstereo.metrics import mean_metrics
from ccstereo.train import train
from ccstereo.train.plan import RunData, Schedule
from ccstereo.train.records import selection_note
from ccstereo.train.trainer import build_training
from pipelines.shards import list_shards, read_split_keys
from pipelines.synth.fakeshards import make_fake_dataset

torch.set_num_threads(2)
TINY_MODEL = {"resize": (36, 72), "crop": (32, 64), "aspp_hidden": 32, "scl_weight": 0.1}  # SCL on: resume covers its RNG


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    make_fake_dataset(root, n_clips=12, protocols={"5-split": 1}, frame_size=(36, 72), clips_per_shard=6)
    return root


def tiny(root, out, model=None, **kw):
    base = dict(root=str(root), dataset="fair-play", protocol="5-split", split="1", out=str(out), batch_size=4,
                samples_per_clip=2, shuffle_buffer=8, threads=2, progress=False, checkpoint_every=1000,
                val_every_epochs=1000, val_hop=10_080, log_every=1, scl_start_step=0)  # SCL from step 0 (cpu-small: 100)
    base.update(kw)
    return preset("cpu-small", {**TINY_MODEL, **(model or {})}, **base)


def test_a_few_steps_reduce_the_loss(root, tmp_path):
    result = train(tiny(root, tmp_path / "run", {"loss": "mse", "scl_weight": 0.0}, max_steps=10, lr_other=2e-3, lr_visual=2e-3))
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert len(losses) == 10
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])
    for name in ("best.pt", "last.pt", "metadata.json", "log.jsonl", "log.csv"):
        assert (tmp_path / "run" / name).is_file()
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["select_on"] == "val" and meta["steps_done"] == 10 and meta["finished"]
    assert meta["n_train_clips"] == 8 and meta["config"]["model"]["crop"] == [32, 64]
    model = load_model(result.best)
    assert model.cfg.crop == (32, 64) and model.meta["select_on"] == "val" and not model.training
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny(root, tmp_path / "run", {"loss": "mse", "scl_weight": 0.0}, max_steps=10))


def test_resume_is_exact(root, tmp_path):
    straight = train(tiny(root, tmp_path / "a", max_steps=4))
    assert all("scl" in r for r in straight.history)  # SCL's inputs (previous frame, permutation) are resumed too
    half = train(tiny(root, tmp_path / "b", max_steps=4, stop_after=2))
    assert half.steps == 2 and load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 2
    with pytest.raises(ValueError, match="batch_size"):
        train(tiny(root, tmp_path / "b", max_steps=4, batch_size=2), resume=True)
    resumed = train(tiny(root, tmp_path / "b", max_steps=4), resume=True)
    assert resumed.steps == 4
    assert resumed.param_digest == straight.param_digest
    assert [r["step"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]


def test_ddp_two_processes_keep_replicas_identical(root, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ccstereo.train",
           "--root", str(root), "--dataset", "fair-play", "--protocol", "5-split", "--split", "1", "--preset", "cpu-small",
           "--out", str(out), "--max-steps", "2", "--batch-size", "4", "--samples-per-clip", "2", "--threads", "1",
           "--no-progress", "--device", "cpu", "--precision", "bf16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["steps_done"] == 2
    assert len(meta["replica_digests"]) == 2 and len(set(meta["replica_digests"])) == 1
    assert (out / "best.pt").is_file()


def test_ccs_train_scl_start_step_reaches_the_config(tmp_path, monkeypatch):
    import ccstereo.cli as cli

    seen = {}

    def fake_train(cfg, resume=False):
        seen["cfg"] = cfg
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "train", fake_train)
    base = ["--root", str(tmp_path), "--dataset", "fair-play", "--protocol", "5-split", "--split", "1",
            "--out", str(tmp_path / "run")]
    for extra, want in (([], 100), (["--scl-start-step", "0"], 0), (["--scl-start-step", "40"], 40)):
        res = CliRunner().invoke(train_command, [*base, "--preset", "cpu-small", *extra])
        assert "stop here" in res.output and seen["cfg"].scl_start_step == want
    res = CliRunner().invoke(train_command, [*base, "--scl-start-step", "-1"])
    assert res.exit_code == 2 and "--scl-start-step" in res.output


def test_scl_joins_the_loss_at_scl_start_step_and_resume_keeps_it(root, tmp_path):
    straight = train(tiny(root, tmp_path / "a", max_steps=4, scl_start_step=2))
    assert [("scl" in r) for r in straight.history] == [False, False, True, True]
    assert all(r["scl"] > 0 for r in straight.history[2:])
    half = train(tiny(root, tmp_path / "b", max_steps=4, scl_start_step=2, stop_after=3))
    resumed = train(tiny(root, tmp_path / "b", max_steps=4, scl_start_step=2), resume=True)
    assert half.steps == 3 and resumed.param_digest == straight.param_digest
    with pytest.raises(ValueError, match="scl_start_step"):
        tiny(root, tmp_path / "c", scl_start_step=-1)


def test_mono_mono_is_not_trained_and_selection_on_test_is_recorded(root, tmp_path):
    result = train(tiny(root, tmp_path / "mm", {"arch": "mono-mono"}, select_on="test"))
    assert result.best is not None and len(result.history) == 1  # validated once, never trained
    record = result.history[0]
    assert record["val_stft"] == pytest.approx(record["val_stft_mono_mono"])
    meta = json.loads((tmp_path / "mm" / "metadata.json").read_text())
    assert meta["select_on"] == "test" and "official code" in meta["selection_note"]
    assert load_model(result.best).cfg.arch == "mono-mono"


@pytest.mark.parametrize("recipe", ["official", "paper-text"])
def test_selection_is_the_full_clip_evaluation_of_ccs_bench(root, tmp_path, recipe):
    """--select-on test with the recipe: best.pt's selection STFT is what the benchmark's evaluation of best.pt on the
    test list gives (same windows, TDSS, peak normalisation), so selecting on test is the released protocol."""
    result = train(tiny(root, tmp_path / "sel", select_on="test", max_steps=2, val_hop=5040, recipe=recipe))
    assert {"apm", "phs", "scl"} <= set(result.history[-1])
    model = load_model(result.best)
    keys = read_split_keys(root, "fair-play", "5-split", "1", "test")
    rows = evaluate_clips(list_shards(root, "fair-play"), keys, model, model.cfg, EvalSettings(hop=5040), where="test")
    assert mean_metrics(rows)["STFT"] == pytest.approx(result.best_metric, rel=1e-6)
    meta = json.loads((tmp_path / "sel" / "metadata.json").read_text())
    assert meta["recipe"] == recipe and meta["sampler"] == "epoch" and meta["selected_on"] == "test"
    assert meta["selection_eval"] == {"hop": 5040, "tail": "pad", "tdss": True, "every_epochs": 1000}
    assert model.meta["recipe"] == recipe and model.meta["selected_on"] == "test"


def test_a_val_list_that_is_the_test_list_is_named_a_selection_on_test():
    def note(data, select_on="val"):
        return selection_note(select_on, data.select_keys, data.test_keys)

    same = RunData([], None, ["a", "b"], ["b", "a"])
    assert same.selected_on == "test" and "the val list is the test list" in note(same)
    shared = RunData([], None, ["a", "c"], ["a", "b"])
    assert shared.selected_on == "test" and "shares 1 clip" in note(shared)
    apart = RunData([], None, ["c"], ["a", "b"])
    assert apart.selected_on == "val" and note(apart).startswith("selected on the validation list")
    assert "not a fair test result" in note(apart, "test")


def test_visual_learning_rate_covers_trunk_and_aspp_and_the_step_schedule(root, tmp_path):
    cfg = tiny(root, tmp_path / "lr")
    model, opt, sched = build_training(cfg, torch.device("cpu"), Schedule.of(cfg, 8))
    visual = {id(p) for p in opt.param_groups[0]["params"]}
    assert visual == {id(p) for p in model.visual.parameters()}  # f_phi: ResNet-18 trunk + ASPP head
    assert {id(p) for p in model.visual.head.parameters()} <= visual
    assert not {id(p) for p in model.fusion.parameters()} & visual  # conv1x1_rgb is on the audio side (released)
    assert opt.param_groups[0]["lr"] == cfg.lr_visual and opt.param_groups[1]["lr"] == cfg.lr_other
    m2b = tiny(root, tmp_path / "m2b", {"arch": "mono2binaural"}, lr_schedule="step", lr_step_epochs=2, lr_step_factor=0.5)
    schedule = Schedule.of(m2b, 8)  # 2 batches per epoch: x0.5 every 4 steps
    model, opt, sched = build_training(m2b, torch.device("cpu"), schedule)
    assert {id(p) for p in opt.param_groups[0]["params"]} == {id(p) for p in model.trunk.parameters()}
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[1]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([m2b.lr_other * 0.5 ** (i // 4) for i in range(9)])


def test_cli_errors_are_clear(root, tmp_path, monkeypatch):
    runner = CliRunner()
    assert "--samples-per-clip" in runner.invoke(train_command, ["--help"]).output
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "nohub"))
    args = ["--root", str(root), "--dataset", "fair-play", "--protocol", "5-split", "--split", "1", "--out", str(tmp_path / "x")]
    res = runner.invoke(train_command, args + ["--preset", "paper", "--max-steps", "1"])
    assert res.exit_code != 0 and "--visual-init random" in res.output
    res = runner.invoke(train_command, args + ["--preset", "cpu-small", "--split", "7"])
    assert res.exit_code != 0 and "splits/5-split/7/train.txt" in res.output
