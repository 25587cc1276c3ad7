"""Click commands ``prepare``, ``shard``, ``verify`` and ``projections`` (argument parsing only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipelines.recipes import DATASETS

_DATASET = click.Choice(DATASETS)
_ROOT = click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Data root: the dataset lives in ROOT/<dataset>/ (where `ccs-data fetch` put it).")
_SPEC = click.option("--spec", "spec_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     default=None, help="Dataset spec TOML (default: manifests/<dataset>.toml).")


def register(main: click.Group) -> None:
    main.add_command(prepare)
    main.add_command(shard)
    main.add_command(verify)
    main.add_command(projections)


@click.command()
@click.argument("dataset", type=_DATASET)
@_ROOT
@_SPEC
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Videos prepared in parallel (one process each).")
@click.option("--min-lr-diff", type=click.FloatRange(min=0), default=None,
              help="MUSIC-Stereo non-binaural filter: keep a video iff mean |L-R| of its 16 kHz waveform is at "
                   "least this (default: the spec's, 0.001). lr_diff and lr_diff_sum are recorded either way.")
@click.option("--decoder", type=click.Choice(["magls", "vls8"]), default="magls", show_default=True,
              help="YT sets: FOA -> binaural decoder (spaudiopy magLS order 1, or 8 virtual loudspeakers).")
@click.option("--hrir", default="kemar", show_default=True,
              help="YT sets: HRIRs for the decoder: 'kemar' (MIT KEMAR) or 'sofa:PATH' (any SOFA file).")
@click.option("--av-mismatch", type=click.Choice(["keep-common", "drop"]), default="keep-common", show_default=True,
              help="Videos whose audio and video lengths differ by more than 1 s: cut clips from the span both "
                   "streams cover (the reason is recorded), or drop them.")
@click.option("--overrides", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Projection override file (default: manifests/projection-overrides.toml).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def prepare(dataset, root, spec_path, jobs, min_lr_diff, decoder, hrir, av_mismatch, overrides, progress):
    """Cut the fetched videos of DATASET into clean 10 s clips (16 kHz binaural audio + 100 frames of 480x240).

    Every video gets one record in ROOT/DATASET/ledger/prepare.jsonl (done, or dropped with a reason:
    corrupt, no-audio, no-video, mono, unexpected-channels, av-length-mismatch, too-short, non-binaural).
    Decisions go to videos-prepared.jsonl, clips to clips.jsonl. Rerunning resumes: finished videos are skipped.
    """
    from pipelines.prepare import PrepareError, prepare_dataset
    from pipelines.spec import SpecError, load_spec

    try:
        spec = load_spec(spec_path, dataset=dataset)
        summary = prepare_dataset(spec, root, jobs=jobs, min_lr_diff=min_lr_diff, decoder=decoder, hrir=hrir,
                                  progress=progress, overrides_path=overrides,
                                  drop_av_mismatch=av_mismatch == "drop")
    except (PrepareError, SpecError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    reasons = ", ".join(f"{k}: {v}" for k, v in summary.reasons.items()) or "none"
    click.echo(f"{dataset}: {summary.videos} videos: {summary.done} done, {summary.dropped} dropped, "
               f"{summary.failed} failed, {summary.resumed} already prepared")
    click.echo(f"clips cut: {summary.clips} (dropped clips: {summary.clips_dropped}); reasons: {reasons}")
    click.echo(f"{summary.seconds:.1f} s, {summary.clips_per_s:.2f} clips/s, "
               f"{summary.realtime_factor:.1f}x real time with {jobs} job(s)")
    if summary.failed:
        click.echo("some videos failed (see ledger/prepare.jsonl); rerun to retry them", err=True)


@click.command()
@click.argument("dataset", type=_DATASET)
@_ROOT
@click.option("--maxcount", type=click.IntRange(min=1), default=None,
              help="Samples (10 s clips) per shard (default 256, about 1 GB).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def shard(dataset, root, maxcount, progress):
    """Write the prepared clips of DATASET as WebDataset shards (ROOT/DATASET/shards/DATASET-NNNNNN.tar) and the
    split key lists (ROOT/DATASET/splits/<protocol>/<split>/{train,val,test}.txt). Same input, same bytes."""
    from pipelines.shard import DEFAULT_MAXCOUNT, ShardError, shard_dataset

    try:
        summary = shard_dataset(root, dataset, maxcount=maxcount or DEFAULT_MAXCOUNT, progress=progress)
    except ShardError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{dataset}: {summary.samples} samples in {len(summary.shards)} shards")
    for name, n in summary.split_lists.items():
        click.echo(f"  {name}: {n} keys")


@click.command()
@click.argument("dataset", type=_DATASET)
@_ROOT
@click.option("--headers-only", is_flag=True,
              help="Check JPEG frames by their headers only (much faster; misses damage inside the image data).")
@click.option("--progress/--no-progress", default=False, help="Show a progress bar.")
def verify(dataset, root, headers_only, progress):
    """Read every shard of DATASET with plain webdataset and check the schema, keys, split lists and counts.
    Prints each problem; exits with status 1 if there is any."""
    from pipelines.verify import verify_dataset

    problems = verify_dataset(root, dataset, progress=progress, decode_frames=not headers_only)
    for p in problems:
        click.echo(str(p))
    if problems:
        click.echo(f"{dataset}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{dataset}: shards and split lists OK")


@click.command()
@click.argument("dataset", type=click.Choice(["yt-music", "yt-clean"]))
@_ROOT
@click.option("--json", "as_json", is_flag=True, help="One JSON object per video instead of a table.")
def projections(dataset, root, as_json):
    """List the 360 videos of DATASET whose final projection label differs from the upstream one, with the
    evidence (override, container metadata, pixel-detector scores). Needs `ccs-data prepare` first."""
    from pipelines.contract import DatasetLayout
    from pipelines.io import read_jsonl

    layout = DatasetLayout(root, dataset)
    if not layout.prepared_videos.exists():
        raise click.ClickException(f"{layout.prepared_videos}: missing; run `ccs-data prepare {dataset}` first")
    rows = [r for r in read_jsonl(layout.prepared_videos) if r.get("projection")
            and r["projection"].get("upstream") is not None
            and r["projection"]["final"] != r["projection"]["upstream"]]
    for r in rows:
        p = r["projection"]
        if as_json:
            click.echo(json.dumps({"video_id": r["video_id"], **p}, sort_keys=True))
            continue
        scores = ", ".join(f"{k}={v:.2f}" for k, v in sorted(p.get("detector_scores", {}).items())) or "-"
        evidence = f"override ({p['override_reason']})" if p["source"] == "override" else p["source"]
        click.echo(f"{r['video_id']}  upstream={p['upstream']} -> final={p['final']}  by {evidence}; "
                   f"metadata={p['metadata'] or '-'} detector={p['detector'] or '-'} [{scores}]")
    if not as_json:
        click.echo(f"{len(rows)} video(s) relabelled", err=True)


def _attach() -> None:
    from pipelines.cli import main

    register(main)


_attach()
