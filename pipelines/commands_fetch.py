"""Click commands ``ccs-data fetch`` and ``ccs-data status`` (argument parsing only; the work is in
``pipelines.fetch`` and ``pipelines.status``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipelines.cli import main
from pipelines.fetch import FetchSetupError, fetch_dataset
from pipelines.lists import ListFormatError
from pipelines.recipes import DATASETS
from pipelines.spec import SpecError, load_spec
from pipelines.status import dataset_status, format_status, status_json
from pipelines.youtube import parse_rate


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("fetch")
@click.argument("dataset", type=click.Choice(DATASETS))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Data root; the dataset goes to ROOT/DATASET/.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Dataset spec to use instead of manifests/DATASET.toml (e.g. a synthetic world's "
                   "specs/DATASET.toml).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel downloads (threads).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Fetch at most N videos in this run (the rest stay for the next run).")
@click.option("--ids", multiple=True, metavar="ID",
              help="Fetch only these ids (repeat the option or separate ids with spaces/commas).")
@click.option("--retry-failed", is_flag=True,
              help="Also retry permanent and corrupt failures (transient ones are always retried).")
@click.option("--cookies", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Netscape cookies file for yt-dlp (for videos that need a signed-in session).")
@click.option("--rate-limit", callback=_rate, metavar="RATE",
              help="Maximum download speed in bytes/s, with K, M or G suffix, e.g. 2M.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def fetch_command(dataset, root, spec_path, jobs, limit, ids, retry_failed, cookies, rate_limit, no_progress):
    """Download and verify DATASET's upstream lists and media into ROOT/DATASET/.

    Resumable: interrupt and rerun at any time. Every list is checked against its pinned sha256; every video is
    probed before it counts as done; per-video outcomes go to ROOT/DATASET/ledger/fetch.jsonl with a reason
    class for failures (permanent, transient, corrupt, invalid-id). A rerun skips what is done, retries
    transient failures, and retries the others only with --retry-failed.

    Exit status: 0 when the run completed (even if some videos failed: see the summary and the ledger),
    2 on a setup error (bad spec, list checksum mismatch, unreachable list or archive).
    """
    id_list = [i for chunk in ids for i in chunk.replace(",", " ").split()] or None
    try:
        spec = load_spec(spec_path, dataset=dataset)
        summary = fetch_dataset(
            spec,
            root,
            jobs=jobs,
            limit=limit,
            ids=id_list,
            retry_failed=retry_failed,
            cookies=cookies,
            rate_limit=rate_limit,
            progress=not no_progress,
        )
    except (SpecError, FetchSetupError, ListFormatError) as exc:
        click.echo(f"ccs-data fetch: error: {exc}", err=True)
        sys.exit(2)
    for line in summary.lines():
        click.echo(line)


@main.command("status")
@click.argument("dataset", type=click.Choice(DATASETS))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Data root holding ROOT/DATASET/.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def status_command(dataset, root, as_json):
    """Counts per stage for DATASET: listed, fetched, failed by reason class, prepared videos and clips
    (dropped by reason), shards and split sizes. Reads only what exists."""
    status = dataset_status(root, dataset)
    click.echo(status_json(status) if as_json else format_status(status))
