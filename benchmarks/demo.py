"""The main job, end to end from nothing, offline: synth -> serve -> fetch -> prepare -> shard -> train -> bench.

    python -m benchmarks.demo --work DIR --seed N --port P      (what ``make demo`` runs)

1. generate the synthetic world (``pipelines.synth``) in ``DIR/world`` (kept if already there);
2. serve it on 127.0.0.1 and point its dataset specs at that port;
3. fetch, prepare, shard and verify the four datasets (``--datasets`` for fewer) into ``DIR/data`` through the
   same library functions ``ccs-data`` calls (each stage resumes: a rerun redoes nothing that is done);
4. ``ccs-bench run --table synthetic`` into ``DIR/bench``: Mono-Mono, Mono2Binaural, CCStereo (cpu-small) and
   CCStereo with frames shuffled across clips; the report is ``DIR/bench/table-synthetic/report.md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from pipelines.recipes import DATASETS


def build_data(work: Path, seed: int, port: int, size: str, datasets: tuple[str, ...], progress: bool) -> Path:
    """Steps 1-3; returns the data root holding ``<dataset>/shards`` and ``<dataset>/splits``."""
    from pipelines.chain import build_dataset
    from pipelines.serve import start_server, stop
    from pipelines.spec import load_spec
    from pipelines.synth.world import generate_world, write_specs

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
                raise click.ClickException(f"{dataset}: verify found {len(problems)} problems, first: {problems[0]}")
    finally:
        stop(server, thread)
    return data


def _say(msg: str) -> None:
    click.echo(msg, err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--work", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Working folder (world, data, bench output); reused and resumed on a rerun.")
@click.option("--seed", default=0, show_default=True, help="World and training seed.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Loopback port for the world's server (0: any free port).")
@click.option("--size", type=click.Choice(["tiny", "small"]), default="small", show_default=True,
              help="World size: small is enough to train on a CPU; tiny only checks the plumbing.")
@click.option("--datasets", multiple=True, type=click.Choice(DATASETS), default=DATASETS, show_default=True,
              help="Datasets to fetch/prepare/shard/verify (the synthetic table uses fair-play, always included).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Training steps per model (default: the cpu-small preset's epochs).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def main(work: Path, seed: int, port: int, size: str, datasets: tuple[str, ...], max_steps: int | None,
         quiet: bool) -> None:
    """Run the whole toolkit on the built-in synthetic world and write the synthetic table's report."""
    from benchmarks.run import BenchConfig, run_table

    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    if "fair-play" not in datasets:
        datasets = ("fair-play", *datasets)
    data = build_data(work, seed, port, size, datasets, progress=not quiet)
    _say("[4/4] ccs-bench run --table synthetic")
    summary = run_table(BenchConfig(table="synthetic", root=str(data), out=str(work / "bench"), seed=seed,
                                    max_steps=max_steps, progress=not quiet))
    report = work / "bench" / "table-synthetic" / "report.md"
    rows = {m["method"]: m["mean"] for m in summary["sections"][0]["methods"]}
    click.echo(json.dumps({"report": str(report), "seconds": round(time.perf_counter() - t0, 1),
                           "STFT": {k: round(v["STFT"], 4) for k, v in rows.items()}}, indent=1))


if __name__ == "__main__":
    main()
