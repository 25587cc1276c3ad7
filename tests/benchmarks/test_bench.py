"""ccs-bench: the paper's numbers as data, table presets, per-split runs and reports, rerun skipping, dry run,
and the ccs-infer command line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from benchmarks import report
from benchmarks.checkpoints import train_config
from benchmarks.cli import main as bench_main
from benchmarks.evaluate import settings_for
from benchmarks.plan import BenchConfig, parse_checkpoint_args, plan
from benchmarks.records import protocol_note
from benchmarks.seeds import seed_summary
from benchmarks.tables import TABLES, get_table, paper_row, paper_rows, slugify
from ccstereo.checkpoint import save_checkpoint
from ccstereo.cli import infer_command as infer_main
from ccstereo.config import preset
from ccstereo.metrics import METRIC_NAMES, SPATIAL_NAMES
from ccstereo.model import build_model
from pipelines.synth.fakeshards import make_fake_dataset
from tests.helpers.media import make_video

FAST_HOP = 10_080  # windows tile the clip (16 per 10 s clip instead of 95): same code path, a sixth of the compute


def test_paper_numbers_hold_every_row_of_tables_1_to_6():
    counts = {"1": 8, "2": 7, "3": 7, "4": 4, "5": 10, "6": 4}
    for table, n in counts.items():
        rows = paper_rows(table)
        assert len(rows) == n, table
        for r in rows:
            assert set(r["values"]) == set(TABLES[table].columns), (table, r["method"])
    assert paper_row("2", "CCStereo", "fair-play")["values"] == {
        "STFT": 0.883, "ENV": 0.137, "Mag": 1.766, "Phs": 1.454, "SNR": 6.475}
    assert paper_row("1", "CMC", "fair-play")["values"]["WAV"] is None
    assert paper_row("3", "Sep-Stereo", "music-stereo")["extra_data"] is True
    assert paper_row("5", "+SCL", "fair-play")["values"]["STFT"] == 0.885
    assert paper_row("5", "Baseline", "music-stereo")["values"]["SNR"] == 11.972
    assert paper_row("6", "Ambisonics", "yt-clean")["values"] == {"STFT": 1.435, "ENV": 0.155}
    assert paper_rows("synthetic") == []


def test_table_presets_know_dataset_protocol_splits_and_methods():
    t1, t2, t5 = get_table("1"), get_table("2"), get_table("5")
    assert (t1.sections[0].dataset, t1.sections[0].protocol, len(t1.sections[0].splits)) == ("fair-play", "10-split", 10)
    assert t2.sections[0].splits == ("1", "2", "3", "4", "5")
    assert [(s.dataset, s.splits) for s in t5.sections] == [("fair-play", ("2",)), ("music-stereo", ("1",))]
    ladder = t5.sections[0].methods
    assert [m.name for m in ladder] == ["Baseline", "+TDSS", "+AVAD", "+REC", "+SCL"]
    assert not ladder[0].tdss and ladder[1].tdss and ladder[1].checkpoint_of == "Baseline"
    assert ladder[0].model == {"avad": False, "loss": "mse", "scl_weight": 0.0}
    assert ladder[4].model["scl_weight"] == 0.1 and ladder[4].trains
    syn = get_table("synthetic")
    shuffled = syn.sections[0].methods[-1]
    assert shuffled.shuffle_frames and shuffled.checkpoint_of == "CCStereo" and not shuffled.trains
    assert syn.default_preset == "cpu-small"
    # every method the toolkit runs and the paper reports has the paper's row to stand next to
    for tid in ("1", "2", "3", "4", "5", "6"):
        for s in TABLES[tid].sections:
            for m in s.methods:
                if m.name in ("CCStereo", "Mono2Binaural") or tid == "5":
                    assert paper_row(tid, m.name, s.dataset) is not None, (tid, m.name)
    assert slugify("CCStereo, frames shuffled across clips") == "ccstereo-frames-shuffled-across-clips"
    assert slugify("+TDSS") == "plus-tdss"
    with pytest.raises(ValueError, match="unknown table"):
        get_table("7")


def test_plan_filters_and_rejects_unknown_names():
    _, jobs = plan(BenchConfig(table="2", root="r", out="o", splits=("2", "4"), methods=("CCStereo",)))
    assert [(j.split, j.method.name) for j in jobs] == [("2", "CCStereo"), ("4", "CCStereo")]
    with pytest.raises(ValueError, match="no method"):
        plan(BenchConfig(table="2", root="r", out="o", methods=("PseudoBinaural2",)))
    with pytest.raises(ValueError, match="no split"):
        plan(BenchConfig(table="3", root="r", out="o", splits=("2",)))
    with pytest.raises(ValueError, match="pad_mode"):
        BenchConfig(table="2", root="r", out="o", pad_mode="edge")
    assert parse_checkpoint_args(["CCStereo=/a/{split}/best.pt"]) == {"CCStereo": "/a/{split}/best.pt"}
    with pytest.raises(ValueError, match="METHOD=PATH"):
        parse_checkpoint_args(["best.pt"])


def test_aggregate_and_relative_difference():
    per_split = pd.DataFrame.from_dict({"1": {"STFT": 1.0}, "2": {"STFT": 2.0}, "3": {"STFT": 3.0}}, orient="index")
    mean, std = report.aggregate(per_split, ["STFT"])
    assert mean == {"STFT": 2.0} and std == {"STFT": pytest.approx(1.0)}
    assert report.aggregate(pd.DataFrame.from_dict({"1": {"STFT": 1.5}}, orient="index"), ["STFT"])[1] == {"STFT": 0.0}
    rel = report.relative_difference({"STFT": 0.9, "SNR": 5.0}, {"STFT": 1.0, "SNR": None})
    assert rel["STFT"] == pytest.approx(-0.1) and rel["SNR"] is None


def test_mono2binaural_gets_2_5d_recipe_where_it_meets_the_paper_and_labels_are_in_place():
    job = next(j for j in plan(BenchConfig(table="2", root="r", out="o", splits=("1",)))[1]
               if j.method.name == "Mono2Binaural")
    run_dir = job.run_dir(BenchConfig(table="2", root="r", out="o").table_dir("2"))
    tcfg = train_config(BenchConfig(table="2", root="r", out="o"), job, run_dir, "paper")
    assert (tcfg.batch_size, tcfg.lr_visual, tcfg.lr_other, tcfg.lr_schedule) == (256, 1e-4, 1e-3, "step")
    assert (tcfg.lr_step_epochs, tcfg.lr_step_factor, tcfg.model.loss, tcfg.recipe) == (10, 0.94, "mse", "official")
    settings = settings_for(BenchConfig(table="2", root="r", out="o"), job.method)
    assert (settings.hop, settings.tail, settings.tdss) == (800, "end", False) and "2.5D" in job.method.note
    cc = get_table("2").sections[0].method("CCStereo")
    assert settings_for(BenchConfig(table="2", root="r", out="o"), cc).hop == 1008
    assert settings_for(BenchConfig(table="2", root="r", out="o", recipe="paper-text"), cc).hop == 1600
    assert settings_for(BenchConfig(table="2", root="r", out="o", hop=4000), job.method).hop == 4000  # --hop wins
    # the command line's batch size still wins over the method's recipe
    small = train_config(BenchConfig(table="2", root="r", out="o", train_batch_size=8), job, run_dir, "cpu-small")
    assert small.batch_size == 8 and small.lr_schedule == "step"
    syn = get_table("synthetic").sections[0].method("Mono2Binaural")
    assert syn.train == {"val_tdss": False} and "not 2.5D's own" in syn.note
    assert "re-implementation" in paper_row("2", "CMC", "fair-play")["note"]
    assert "own seeded by-video 80/10/10 split" in protocol_note(get_table("3").sections[0])
    assert "val is a seeded by-video 10% of the train list" in protocol_note(get_table("4").sections[0])
    assert protocol_note(get_table("2").sections[0]) is None  # FAIR-Play's published lists


def test_synthetic_ablation_table_and_its_seed_summary():
    t = get_table("synthetic-ablation")
    assert t.seeds == (0, 1, 2) and t.default_preset == "cpu-small"
    assert [m.name for m in t.sections[0].methods] == ["Mono-Mono", "Baseline", "+TDSS", "+AVAD", "+REC", "+SCL"]
    cfg = BenchConfig(table="synthetic-ablation", root="r", out="o")
    jobs = {j.method.name: j for j in plan(cfg)[1]}
    trains = {name: train_config(cfg, jobs[name], jobs[name].run_dir(cfg.table_dir("synthetic-ablation")), "cpu-small")
              for name in ("+REC", "+SCL")}
    assert trains["+REC"].model.scl_weight == 0.0 and trains["+REC"].model.loss == "rec"
    # cpu-small's SCL joins at step 100 (a shortcut at step 0 leaves the picture out); the paper preset's at 0
    assert (trains["+SCL"].model.scl_weight, trains["+SCL"].scl_start_step) == (0.1, 100)
    assert preset("paper").scl_start_step == 0 and preset("cpu-small").eval_hop == 10_080
    summaries = {}
    for seed, base in ((0, 1.0), (1, 1.2), (2, 1.4)):
        summaries[seed] = {"columns": ["STFT"], "lower_is_better": {"STFT": True}, "meta": {"seed": seed},
                           "sections": [{"dataset": "fair-play", "protocol": "5-split", "splits": ["1"], "methods": [
                               {"method": "Baseline", "mean": {"STFT": base}},
                               {"method": "+TDSS", "mean": {"STFT": base - 0.1}}]}]}
    out = seed_summary(t, summaries)
    base, tdss = out["sections"][0]["methods"]
    assert base["mean"]["STFT"] == pytest.approx(1.2) and base["std"]["STFT"] == pytest.approx(np.std([1, 1.2, 1.4], ddof=1))
    assert tdss["change_from_above"]["STFT"] == pytest.approx(-0.1 / 1.2)
    assert tdss["per_seed"] == {"0": {"STFT": 0.9}, "1": {"STFT": pytest.approx(1.1)}, "2": {"STFT": pytest.approx(1.3)}}


@pytest.fixture(scope="module")
def fake_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    make_fake_dataset(root / "data", n_clips=12, protocols={"5-split": 5}, frame_size=(60, 120))
    torch.manual_seed(0)
    mc = preset("cpu-small", {"arch": "ccstereo"}).model
    save_checkpoint(root / "ccstereo.pt", {"model_config": mc.to_dict(), "model": build_model(mc).state_dict()})
    return root


def test_table_2_with_given_checkpoints_writes_per_split_reports_and_skips_on_rerun(fake_world):
    out = fake_world / "out"
    args = ["run", "--table", "2", "--root", str(fake_world / "data"), "--out", str(out),
            "--methods", "Mono-Mono", "--methods", "CCStereo", "--checkpoints", f"CCStereo={fake_world}/ccstereo.pt",
            "--splits", "1", "--splits", "3", "--hop", str(FAST_HOP), "--quiet"]
    res = CliRunner().invoke(bench_main, args)
    assert res.exit_code == 0, res.output
    t = out / "table-2"
    summary = json.loads((t / "summary.json").read_text())
    sec = summary["sections"][0]
    assert [m["method"] for m in sec["methods"]] == ["Mono-Mono", "CCStereo"]
    for m in sec["methods"]:
        assert sorted(m["per_split"]) == ["1", "3"]
        vals = [m["per_split"][s]["STFT"] for s in "13"]
        assert m["mean"]["STFT"] == pytest.approx(np.mean(vals))
        assert m["std"]["STFT"] == pytest.approx(np.std(vals, ddof=1))
        assert m["paper"] is not None and set(m["paper"]) == {"STFT", "ENV", "Mag", "Phs", "SNR"}
        assert m["relative_difference"]["STFT"] == pytest.approx((m["mean"]["STFT"] - m["paper"]["STFT"]) / m["paper"]["STFT"])
    assert len(sec["paper_rows"]) == 7
    meta = summary["meta"]
    for k in ("commit", "packages", "device", "seeds", "hop", "pad_mode", "select_on", "checkpoints", "data_manifests"):
        assert k in meta, k
    assert meta["hop"] == FAST_HOP and meta["pad_mode"] == "constant"
    assert meta["recipe"].startswith("official (the released code's") and "fair-play/5-split/1" in meta["selection"]
    assert meta["selection"]["fair-play/5-split/1"].startswith("selected on the validation list")
    assert any(k.endswith("5-split/3/test.txt") for k in meta["data_manifests"]["fair-play/5-split"])
    # the per-split files: JSON with every clip, CSV with one row per clip plus the mean
    one = json.loads((t / "splits" / "fair-play-5-split-3" / "ccstereo.json").read_text())
    assert one["n_clips"] == len(one["clips"]) == 2 and one["checkpoint_sha256"]
    assert one["recipe"].startswith("unknown") and one["tail"] == "pad" and "recipe unknown" in one["note"]
    rows = list(csv.reader((t / "splits" / "fair-play-5-split-3" / "ccstereo.csv").open()))
    assert rows[0] == ["key", *METRIC_NAMES, *SPATIAL_NAMES] and len(rows) == 1 + 2 + 1 and rows[-1][0] == "mean"
    # Mono-Mono predicts no difference: its Phs is the same whatever the split's content, near pi/2
    mono = json.loads((t / "splits" / "fair-play-5-split-1" / "mono-mono.json").read_text())
    assert 1.2 < mono["metrics"]["Phs"] < 2.0
    md = (t / "report.md").read_text()
    assert "PseudoBinaural" in md and "| CCStereo | 3 | 2 |" in md and "0.883" in md
    assert (t / "plots" / "bars.png").stat().st_size > 1000
    assert (t / "plots" / "spectrogram-fair-play-5-split-1-ccstereo.png").is_file()
    assert len(list(csv.reader((t / "splits.csv").open()))) == 1 + 4

    # rerun: nothing is recomputed (the per-split JSON files are untouched), same summary numbers
    before = {p: p.stat().st_mtime_ns for p in (t / "splits").rglob("*.json")}
    res = CliRunner().invoke(bench_main, args)
    assert res.exit_code == 0, res.output
    assert {p: p.stat().st_mtime_ns for p in (t / "splits").rglob("*.json")} == before
    again = json.loads((t / "summary.json").read_text())
    assert again["sections"] == summary["sections"]

    # other evaluation settings make a finished split stale: it is recomputed
    res = CliRunner().invoke(bench_main, [*args[:-7], "--splits", "1", "--hop", "8000", "--quiet"])
    assert res.exit_code == 0, res.output
    redone = json.loads((t / "splits" / "fair-play-5-split-1" / "ccstereo.json").read_text())
    assert redone["hop"] == 8000


def test_dry_run_prints_plan_with_measured_estimate(fake_world):
    res = CliRunner().invoke(bench_main, ["run", "--table", "synthetic", "--root", str(fake_world / "data"),
                                          "--out", str(fake_world / "dry"), "--dry-run", "--max-steps", "50",
                                          "--train-batch-size", "2",
                                          "--methods", "Mono-Mono", "--methods", "CCStereo",
                                          "--methods", "CCStereo, frames shuffled across clips"])
    assert res.exit_code == 0, res.output
    planned = json.loads(res.output)
    actions = {j["method"]: j["action"] for j in planned["jobs"]}
    assert actions["Mono-Mono"].startswith("no training")
    assert actions["CCStereo"] == "train 50 steps (batch 2)"
    assert actions["CCStereo, frames shuffled across clips"] == "reuse the CCStereo checkpoint"
    cc = next(j for j in planned["jobs"] if j["method"] == "CCStereo")
    assert cc["step_seconds"] > 0 and cc["estimated_seconds"] >= 50 * cc["step_seconds"]
    assert cc["test_clips"] == 2 and cc["train_clips"] == 8
    assert not (fake_world / "dry").exists()


def test_missing_checkpoint_and_missing_data_are_clear_errors(fake_world, tmp_path):
    res = CliRunner().invoke(bench_main, ["run", "--table", "2", "--root", str(fake_world / "data"), "--out",
                                          str(tmp_path), "--methods", "CCStereo", "--checkpoints",
                                          "CCStereo=/nonexistent/{split}.pt", "--quiet"])
    assert res.exit_code != 0 and "/nonexistent/1.pt" in res.output
    res = CliRunner().invoke(bench_main, ["run", "--table", "3", "--root", str(tmp_path / "none"), "--out",
                                          str(tmp_path), "--methods", "Mono-Mono", "--quiet"])
    assert res.exit_code != 0 and "split list" in res.output


def test_ccs_infer_cli_writes_binaural_wav_and_compares(fake_world, tmp_path):
    video = tmp_path / "in.mp4"
    make_video(video, seconds=1.5)
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(infer_main, [str(video), "--checkpoint", str(fake_world / "ccstereo.pt"), "-o", str(out),
                                          "--hop", "4000", "--compare", "--no-tdss"])
    assert res.exit_code == 0, res.output
    audio, sr = sf.read(out)
    assert sr == 16_000 and audio.shape[1] == 2 and abs(audio.shape[0] - 24_000) < 1000
    metrics = json.loads(res.output[res.output.index("{"):])
    assert set(METRIC_NAMES) <= set(metrics) and metrics["pad_mode"] == "constant"
    res = CliRunner().invoke(infer_main, [str(video), "--checkpoint", str(tmp_path / "in.mp4"), "-o", str(out)])
    assert res.exit_code != 0 and "checkpoint" in res.output


def test_table_2_reproduction_trains_every_method_on_all_five_splits(world_chain, tmp_path):
    """The reproducibility check: ccs-bench run --table 2 on the tiny synthetic world's FAIR-Play-like set
    (fetched, prepared and sharded by ccs-data, with its 5-split lists), a few training steps per split; the
    report has five per-split rows per method, the aggregate and the paper's rows, and a rerun reuses everything."""
    data_root, _ = world_chain
    out = tmp_path / "t2"
    # Mono2Binaural trains through the same code path as CCStereo; it is left out here only to keep CI short
    args = ["run", "--table", "2", "--root", str(data_root), "--out", str(out), "--preset", "cpu-small",
            "--methods", "Mono-Mono", "--methods", "CCStereo",
            "--max-steps", "1", "--train-batch-size", "2", "--hop", str(FAST_HOP), "--quiet"]
    res = CliRunner().invoke(bench_main, args)
    assert res.exit_code == 0, res.output
    t = out / "table-2"
    summary = json.loads((t / "summary.json").read_text())
    sec = summary["sections"][0]
    assert [m["method"] for m in sec["methods"]] == ["Mono-Mono", "CCStereo"]
    for m in sec["methods"]:
        assert sorted(m["per_split"]) == ["1", "2", "3", "4", "5"]
        # Table 2's columns, then the spatial ones beyond the paper (no LOC: a real dataset has no true azimuths)
        assert set(m["mean"]) == set(m["std"]) == {"STFT", "ENV", "Mag", "Phs", "SNR", *SPATIAL_NAMES}
        assert m["paper"]["STFT"] == paper_row("2", m["method"], "fair-play")["values"]["STFT"]
        for split in "12345":
            assert (t / "splits" / f"fair-play-5-split-{split}" / f"{slugify(m['method'])}.csv").is_file()
    # each trained method has its own run per split, selected on val, with the checkpoint hash recorded
    for split in "12345":
        meta = json.loads((t / "runs" / f"fair-play-5-split-{split}" / "ccstereo" / "metadata.json").read_text())
        assert meta["steps_done"] == 1 and meta["select_on"] == "val" and meta["finished"]
        assert meta["recipe"] == "official" and meta["selection_eval"]["hop"] == 10_080  # cpu-small's val_hop
    assert summary["meta"]["select_on"] == "val" and summary["meta"]["preset"] == "cpu-small"
    assert len([k for k, v in summary["meta"]["checkpoints"].items() if v]) == 5
    md = (t / "report.md").read_text()
    assert md.count("| CCStereo | ") >= 2 + 5 and "BeyondM2B" in md
    before = {p: p.stat().st_mtime_ns for p in t.rglob("*.pt")}
    res = CliRunner().invoke(bench_main, args)
    assert res.exit_code == 0, res.output
    assert {p: p.stat().st_mtime_ns for p in t.rglob("*.pt")} == before
