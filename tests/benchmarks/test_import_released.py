"""ccs-bench import-released, then ccs-bench run --table 2 --splits 2 with the imported checkpoint, on the tiny
synthetic world's FAIR-Play-like shards (issue 16)."""

from __future__ import annotations

import argparse
import hashlib
import json

import torch
from click.testing import CliRunner

from benchmarks.cli import main as bench_main
from ccstereo.released import RELEASED_NOTE
from tests.helpers.released import fake_released

FAST_HOP = 10_080  # windows tile the clip: the same code path as the paper's hop with a sixth of the compute


def test_import_released_then_table_2_split_2_names_the_provenance(world_chain, tmp_path):
    data_root, _ = world_chain
    src = tmp_path / "best_model.pth"
    torch.save({"state_dict": fake_released(seed=1)}, src)
    dst = tmp_path / "ccstereo-released.pt"
    res = CliRunner().invoke(bench_main, ["import-released", str(src), "-o", str(dst)])
    assert res.exit_code == 0, res.output
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    assert sha in res.output and RELEASED_NOTE in res.output and dst.is_file()

    out = tmp_path / "bench"
    res = CliRunner().invoke(bench_main, ["run", "--table", "2", "--splits", "2", "--root", str(data_root),
                                          "--out", str(out), "--methods", "CCStereo", "--checkpoints",
                                          f"CCStereo={dst}", "--hop", str(FAST_HOP), "--quiet"])
    assert res.exit_code == 0, res.output
    t = out / "table-2"
    summary = json.loads((t / "summary.json").read_text())
    (method,) = summary["sections"][0]["methods"]
    assert method["method"] == "CCStereo" and list(method["per_split"]) == ["2"]
    assert method["n_clips"]["2"] > 0 and method["checkpoints"] == {"2": str(dst)}
    provenance = summary["meta"]["checkpoint_provenance"]["fair-play/5-split/2/CCStereo"]
    assert provenance["source"] == RELEASED_NOTE and provenance["source_sha256"] == sha
    record = json.loads((t / "splits" / "fair-play-5-split-2" / "ccstereo.json").read_text())
    assert record["checkpoint_provenance"] == provenance
    assert record["model_config"]["aspp_negative_slope"] == 0.01 and record["model_config"]["mask_align_corners"]
    report = (t / "report.md").read_text()
    assert RELEASED_NOTE in report and sha in report


def test_a_pickled_released_file_is_refused_in_one_line_without_the_trust_flag(tmp_path):
    src = tmp_path / "last.ckpt"
    state = {f"autoencoder.{k}": v for k, v in fake_released().items()}
    torch.save({"state_dict": state, "hyper_parameters": argparse.Namespace(backbone=18)}, src)
    res = CliRunner().invoke(bench_main, ["import-released", str(src), "-o", str(tmp_path / "out.pt")])
    assert res.exit_code == 1 and not (tmp_path / "out.pt").exists()
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "last.ckpt" in lines[0] and "--trust-pickle" in lines[0]
    res = CliRunner().invoke(bench_main, ["import-released", str(src), "-o", str(tmp_path / "out.pt"),
                                          "--trust-pickle"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.pt").is_file()
