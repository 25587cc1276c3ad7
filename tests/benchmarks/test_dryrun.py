"""``ccs-bench run --dry-run`` (issue 15): it needs no weights, no GPU and no training; it prints the plan (tables,
splits, methods, the checkpoints to train, reuse or load) and an estimate labelled as one, whose step count is the
trainer's; ``--visual-init`` on ``ccs-bench run``; a real run without the weights stops before any job. (A real run
from weights fetched on loopback: tests/test_first_run.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from benchmarks.checkpoints import runs_to_train, train_config
from benchmarks.cli import main as bench_main
from benchmarks.plan import BenchConfig, plan
from ccstereo.config import preset
from pipelines.contract import DatasetLayout
from pipelines.synth.fakeshards import make_fake_dataset
from pipelines.weights import URL_ENV
from tests.helpers.weights import make_resnet18_file

PAPER_STEP = ["--train-batch-size", "2"]  # the paper network, measured at batch 2: seconds on a CPU, not minutes


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty torchvision cache (the weights were never fetched)."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(URL_ENV, raising=False)
    return home


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dry") / "data"
    make_fake_dataset(root, n_clips=12, protocols={"5-split": 5}, frame_size=(24, 48))
    return root


def dry(data, out, *extra):
    res = CliRunner().invoke(bench_main, ["run", "--table", "2", "--root", str(data), "--out", str(out),
                                          "--dry-run", "--splits", "1", *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_dry_run_needs_no_weights_no_gpu_no_training(data, tmp_path, no_weights, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    planned = dry(data, tmp_path / "out", *PAPER_STEP, "--device", "cuda", "--methods", "Mono-Mono",
                  "--methods", "CCStereo")
    assert planned["preset"] == "paper" and "no CUDA on this machine" in planned["device"]
    assert planned["sections"] == [{"dataset": "fair-play", "protocol": "5-split", "splits": ["1"],
                                    "methods": ["Mono-Mono", "CCStereo"]}]
    # the real run would start from ImageNet weights, which are not here: said, with the fix
    assert planned["visual_init"]["runs_start_from"] == ["imagenet"]
    assert planned["visual_init"]["imagenet"].startswith("missing") and "ccs-data fetch-weights" in \
        planned["visual_init"]["imagenet"]
    assert planned["note"].startswith("ESTIMATE") and "random trunk weights" in planned["note"]
    cc = next(j for j in planned["jobs"] if j["method"] == "CCStereo")
    assert cc["step_seconds"] > 0 and cc["estimated_seconds"] > 0
    # nothing trained, written or downloaded
    assert not (tmp_path / "out").exists() and not no_weights.exists()


def test_step_count_is_the_trainers(data, tmp_path, no_weights):
    """epochs x floor(train clips / batch), as ccstereo.train runs them (not ceil(epochs x clips / batch))."""
    n_train = len(DatasetLayout(data, "fair-play").read_split_keys("5-split", "1", "train"))
    epochs = preset("cpu-small").epochs
    assert n_train % 3  # a batch that does not divide the train list tells the two counts apart
    planned = dry(data, tmp_path / "out", "--preset", "cpu-small", "--train-batch-size", "3",
                  "--methods", "CCStereo")
    (job,) = planned["jobs"]
    assert job["action"] == f"train {epochs * (n_train // 3)} steps (batch 3)" and job["train_clips"] == n_train
    assert epochs * (n_train // 3) != -(-epochs * n_train // 3)


def test_plan_says_what_is_loaded_and_what_reused(data, tmp_path, no_weights):
    out = tmp_path / "out"
    run = out / "table-2" / "runs" / "fair-play-5-split-1" / "ccstereo"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"trained earlier")
    (run / "metadata.json").write_text(json.dumps({"finished": True}))
    planned = dry(data, out, "--preset", "cpu-small", "--train-batch-size", "2",
                  "--checkpoints", f"Mono2Binaural={tmp_path}/m2b-{{split}}.pt")
    actions = {j["method"]: j["action"] for j in planned["jobs"]}
    assert actions == {"Mono-Mono": "no training (diff = 0)", "Mono2Binaural": f"load {tmp_path}/m2b-1.pt",
                       "CCStereo": f"reuse {run / 'best.pt'} (trained by an earlier run)"}
    assert planned["visual_init"] == {"runs_start_from": []}  # nothing left to train: no weights needed


def test_run_without_weights_stops_before_any_job(data, tmp_path, no_weights):
    out = tmp_path / "out"
    res = CliRunner().invoke(bench_main, ["run", "--table", "2", "--root", str(data), "--out", str(out), "--splits",
                                          "1", "--quiet", "--methods", "Mono-Mono", "--methods", "CCStereo"])
    assert res.exit_code == 1 and "ImageNet ResNet-18 weights not found" in res.output
    assert "--visual-init PATH" in res.output and "ccs-data fetch-weights" in res.output
    assert not (out / "table-2" / "splits").exists()  # not even Mono-Mono was evaluated


def test_visual_init_reaches_every_run_to_train(data, tmp_path):
    weights = make_resnet18_file(tmp_path / "w")
    for given, want in ((None, "imagenet"), ("random", "random"), (str(weights), str(weights))):
        cfg = BenchConfig(table="2", root=str(data), out=str(tmp_path / "out"), splits=("1",), visual_init=given)
        _, jobs = plan(cfg)
        table_dir = cfg.table_dir("2")
        inits = {train_config(cfg, j, j.run_dir(table_dir), "paper").model.visual_init
                 for j in runs_to_train(cfg, jobs, table_dir)}
        assert inits == {want}
    res = CliRunner().invoke(bench_main, ["run", "--help"])
    assert "--visual-init" in res.output and "fetch-weights" in res.output
