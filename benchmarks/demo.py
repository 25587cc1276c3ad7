"""The main job, end to end from nothing, offline: synth -> serve -> fetch -> prepare -> shard -> train -> bench.

    ccs-bench demo --work DIR --seed N --port P      (what ``make demo`` runs)

1. generate the synthetic world (``pipelines.synth``) in ``DIR/world`` (kept if already there);
2. serve it on 127.0.0.1 and point its dataset specs at that port;
3. fetch, prepare, shard and verify the four datasets (``--datasets`` for fewer) into ``DIR/data`` through the
   same library functions ``ccs-data`` calls (each stage resumes: a rerun redoes nothing that is done);
4. ``ccs-bench run --table synthetic`` into ``DIR/bench``: Mono-Mono, Mono2Binaural, CCStereo (cpu-small) and
   CCStereo with frames shuffled across clips, with the localisation error from the world's ``truth.jsonl``;
   the reports are ``DIR/bench/table-synthetic/report.md`` and ``report.html`` (listening report).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from benchmarks.plan import BenchConfig
from benchmarks.run import run_table
from pipelines.chain import build_dataset
from pipelines.serve import start_server, stop
from pipelines.spec import load_spec
from pipelines.synth.specs import write_specs
from pipelines.synth.world import generate_world


def run_demo(work: Path, *, seed: int, port: int, size: str, datasets: Sequence[str], max_steps: int | None,
             progress: bool) -> dict[str, Any]:
    """Steps 1-4; returns where the report is, the seconds it all took and each method's STFT distance."""
    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    if "fair-play" not in datasets:
        datasets = ("fair-play", *datasets)
    data = build_data(work, seed, port, size, tuple(datasets), progress=progress)
    _say("[4/4] ccs-bench run --table synthetic")
    summary = run_table(BenchConfig(table="synthetic", root=str(data), out=str(work / "bench"), seed=seed,
                                    max_steps=max_steps, progress=progress, truth=str(work / "world" / "truth.jsonl")))
    report = work / "bench" / "table-synthetic" / "report.md"
    rows = {m["method"]: m["mean"] for m in summary["sections"][0]["methods"]}
    return {"report": str(report), "html": str(report.with_name("report.html")),
            "seconds": round(time.perf_counter() - t0, 1),
            "STFT": {k: round(v["STFT"], 4) for k, v in rows.items()}}


def build_data(work: Path, seed: int, port: int, size: str, datasets: tuple[str, ...], progress: bool) -> Path:
    """Steps 1-3; returns the data root holding ``<dataset>/shards`` and ``<dataset>/splits``."""
    world = work / "world"
    data = work / "data"
    if not (world / "truth.jsonl").is_file():
        _say(f"[1/4] synthesising the {size} world (seed {seed}) in {world}")
        generate_world(world, seed=seed, size=size, port=port, progress=progress)
    else:
        _say(f"[1/4] world already in {world}")
    server, thread, bound = start_server(world, port=port)
    try:
        specs = work / "specs"
        write_specs(world, bound, specs_dir=specs)  # the URLs name the port actually bound
        _say(f"[2/4] serving {world} at http://127.0.0.1:{bound}/")
        for dataset in datasets:
            spec = load_spec(specs / f"{dataset}.toml", dataset=dataset)
            _say(f"[3/4] {dataset}: fetch, prepare, shard, verify")
            problems = build_dataset(spec, data, progress=progress).problems
            if problems:
                raise ValueError(f"{dataset}: verify found {len(problems)} problems, first: {problems[0]}")
    finally:
        stop(server, thread)
    return data


def _say(msg: str) -> None:
    click.echo(msg, err=True)
