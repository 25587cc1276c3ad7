"""The fault campaign's CI subset (issue 10): one seeded trial per stage through the same library function as
``ccs-bench faults`` -- fetch, prepare (--jobs 2), shard and train interrupted by SIGINT as Ctrl-C does, the server
killed mid-download, an upstream archive changed between runs -- and the goal figures (BENCHMARKS.md, "Fault
campaign (issue 10)", holds the full run)."""

from __future__ import annotations

import json

from benchmarks.faults import STAGES, plan_trials, run_campaign

SEED = 8  # its six trials: 4 SIGINT (fetch jobs 1, prepare jobs 2, shard, train), server and upstream SIGKILL


def test_the_plan_is_seeded_and_covers_every_stage():
    plan = plan_trials(6, SEED)
    assert plan == plan_trials(6, SEED) and plan != plan_trials(6, SEED + 1)
    assert [t.stage for t in plan] == list(STAGES)
    assert sum(t.signal == "INT" for t in plan) == 4 and any(t.jobs == 2 for t in plan if t.stage == "prepare")


def test_a_seeded_subset_loses_nothing_and_leaves_nothing(tiny_world, tmp_path):
    summary = run_campaign(tmp_path / "work", trials=6, seed=SEED, world=tiny_world)
    assert summary["problems"] == [], json.dumps(summary["problems"], indent=1)
    figures = {k: summary[k] for k in ("trials", "identical", "videos_lost", "ledger_records_missing",
                                       "temp_files_left", "tracebacks_seen", "sigint_trials", "sigint_not_one_line",
                                       "workers_outliving_parent")}
    assert figures == {"trials": 6, "identical": 6, "videos_lost": 0, "ledger_records_missing": 0,
                       "temp_files_left": 0, "tracebacks_seen": 0, "sigint_trials": figures["sigint_trials"],
                       "sigint_not_one_line": 0, "workers_outliving_parent": 0}
    assert figures["sigint_trials"] >= 3  # the signal arrived while the command ran (the moments are fractions)
    written = json.loads((tmp_path / "work/faults.json").read_text())
    assert {k: written[k] for k in figures} == figures
    assert len((tmp_path / "work/trials.jsonl").read_text().splitlines()) == 6


def test_the_command_refuses_an_unknown_stage(tmp_path):
    from click.testing import CliRunner

    from benchmarks.cli import main

    res = CliRunner().invoke(main, ["faults", "--work", str(tmp_path), "--stages", "fetch,nope"])
    assert res.exit_code == 2 and "nope: the stages are fetch, prepare, shard, train, server, upstream" in res.output
    assert not list(tmp_path.iterdir())
