"""``ccs-data``: the command-line layer over the pipeline library (argument parsing only).

Every command is registered here on the one ``main`` group; the work is in the stage modules. Dataset choices come
from the recipe registry (``pipelines.recipes``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from pipelines.contract import DatasetLayout
from pipelines.doctor import Environment, TargetOptions, render, resolve_target, run_checks
from pipelines.errors import StyledGroup
from pipelines.fetch import fetch_dataset
from pipelines.io import read_jsonl
from pipelines.prepare import PrepareError, prepare_dataset
from pipelines.recipes import DATASETS, datasets_with_360_video
from pipelines.recipes.youtube import parse_rate
from pipelines.serve import NotLoopback, start_server, stop
from pipelines.shard import DEFAULT_MAXCOUNT, ShardError, shard_dataset
from pipelines.spec import VAL_SOURCES, SpecError, load_spec, with_val_from
from pipelines.status import dataset_status, format_status, status_json
from pipelines.verify import verify_dataset
from pipelines.weights import URL_ENV, fetch_weights

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

_DATASET = click.Choice(DATASETS)
_ROOT = click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Data root: the dataset lives in ROOT/<dataset>/ (where `ccs-data fetch` put it).")
_SPEC = click.option("--spec", "spec_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     default=None, help="Dataset spec TOML (default: manifests/<dataset>.toml).")


@click.group(name="ccs-data", cls=StyledGroup, context_settings=CONTEXT_SETTINGS)
def main() -> None:
    """Acquire, clean and shard the binaural audio-visual datasets (MUSIC-Stereo, YT-MUSIC, YT-CLEAN,
    FAIR-Play), or generate and serve the built-in synthetic world that mirrors them offline.

    Data flow: fetch -> prepare -> shard -> verify; status reports each stage.
    """


# ------------------------------------------------------------------------------------------------ fetch, status


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("fetch")
@click.argument("dataset", type=_DATASET)
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
    1 on a setup error (bad spec, list checksum mismatch, damaged archive), 3 when a list or archive server
    cannot be reached (rerun later: it resumes).
    """
    id_list = [i for chunk in ids for i in chunk.replace(",", " ").split()] or None
    spec = load_spec(spec_path, dataset=dataset)
    summary = fetch_dataset(spec, root, jobs=jobs, limit=limit, ids=id_list, retry_failed=retry_failed,
                            cookies=cookies, rate_limit=rate_limit, progress=not no_progress)
    for line in summary.lines():
        click.echo(line)


@main.command("status")
@click.argument("dataset", type=_DATASET)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Data root holding ROOT/DATASET/.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def status_command(dataset, root, as_json):
    """Counts per stage for DATASET: listed, fetched, failed by reason class, prepared videos and clips
    (dropped by reason), shards and split sizes. Reads only what exists."""
    status = dataset_status(root, dataset)
    click.echo(status_json(status) if as_json else format_status(status))


# ------------------------------------------------------------------------------------------------ prepare, shard, verify


@main.command("prepare")
@click.argument("dataset", type=_DATASET)
@_ROOT
@_SPEC
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Videos prepared in parallel (one process each).")
@click.option("--min-lr-diff", type=click.FloatRange(min=0), default=None,
              help="Non-binaural filter: keep a video iff mean |L-R| of its 16 kHz waveform is at least this "
                   "(default: the spec's; MUSIC-Stereo 0.001, none for the others). lr_diff and lr_diff_sum are "
                   "recorded either way.")
@click.option("--decoder", type=click.Choice(["magls", "vls8"]), default="magls", show_default=True,
              help="YT sets: FOA -> binaural decoder (spaudiopy magLS order 1, or 8 virtual loudspeakers).")
@click.option("--hrir", default="kemar", show_default=True,
              help="YT sets: HRIRs for the decoder: 'kemar' (MIT KEMAR) or 'sofa:PATH' (any SOFA file).")
@click.option("--av-mismatch", type=click.Choice(["keep-common", "drop"]), default="keep-common", show_default=True,
              help="Videos whose audio and video lengths differ by more than 1 s: cut clips from the span both "
                   "streams cover (the reason is recorded), or drop them.")
@click.option("--overrides", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Projection override file (default: manifests/projection-overrides.toml).")
@click.option("--val-from", type=click.Choice(VAL_SOURCES), default=None,
              help="Protocols without an upstream val list (YT-MUSIC, YT-CLEAN): 'train' carves a seeded by-video "
                   "share of the train list (the spec's default, 10%), 'test' makes the test list the val list as "
                   "the paper did (runs and reports then say 'selected on test').")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def prepare_command(dataset, root, spec_path, jobs, min_lr_diff, decoder, hrir, av_mismatch, overrides, val_from,
                    progress):
    """Cut the fetched videos of DATASET into clean 10 s clips (16 kHz binaural audio + 100 frames of 480x240).

    Every video gets one record in ROOT/DATASET/ledger/prepare.jsonl (done, or dropped with a reason:
    corrupt, no-audio, no-video, mono, unexpected-channels, av-length-mismatch, too-short, non-binaural).
    Decisions go to videos-prepared.jsonl, clips to clips.jsonl. Rerunning resumes: finished videos are skipped.
    """
    try:
        spec = with_val_from(load_spec(spec_path, dataset=dataset), val_from)
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


@main.command("shard")
@click.argument("dataset", type=_DATASET)
@_ROOT
@click.option("--maxcount", type=click.IntRange(min=1), default=None,
              help="Samples (10 s clips) per shard (default 256, about 1 GB).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def shard_command(dataset, root, maxcount, progress):
    """Write the prepared clips of DATASET as WebDataset shards (ROOT/DATASET/shards/DATASET-NNNNNN.tar) and the
    split key lists (ROOT/DATASET/splits/<protocol>/<split>/{train,val,test}.txt). Same input, same bytes."""
    try:
        summary = shard_dataset(root, dataset, maxcount=maxcount or DEFAULT_MAXCOUNT, progress=progress)
    except ShardError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{dataset}: {summary.samples} samples in {len(summary.shards)} shards")
    for name, n in summary.split_lists.items():
        click.echo(f"  {name}: {n} keys")


@main.command("verify")
@click.argument("dataset", type=_DATASET)
@_ROOT
@click.option("--headers-only", is_flag=True,
              help="Check JPEG frames by their headers only (much faster; misses damage inside the image data).")
@click.option("--progress/--no-progress", default=False, help="Show a progress bar.")
def verify_command(dataset, root, headers_only, progress):
    """Read every shard of DATASET with plain webdataset and check the schema, keys, split lists and counts.
    Prints each problem; exits with status 1 if there is any."""
    problems = verify_dataset(root, dataset, progress=progress, decode_frames=not headers_only)
    for p in problems:
        click.echo(str(p))
    if problems:
        click.echo(f"{dataset}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{dataset}: shards and split lists OK")


@main.command("projections")
@click.argument("dataset", type=click.Choice(datasets_with_360_video()))
@_ROOT
@click.option("--json", "as_json", is_flag=True, help="One JSON object per video instead of a table.")
def projections_command(dataset, root, as_json):
    """List every prepared 360 video of DATASET with its upstream and final projection label, what decided it
    (override, container metadata, upstream label, pixel detector, default), the detector's confidence and
    scores, and the reason. Needs `ccs-data prepare` first."""
    layout = DatasetLayout(root, dataset)
    if not layout.prepared_videos.exists():
        raise click.ClickException(f"{layout.prepared_videos}: missing; run `ccs-data prepare {dataset}` first")
    rows = [r for r in read_jsonl(layout.prepared_videos) if r.get("projection")]
    for r in rows:
        p = r["projection"]
        if as_json:
            click.echo(json.dumps({"video_id": r["video_id"], **p}, sort_keys=True))
            continue
        scores = ", ".join(f"{k}={v:.2f}" for k, v in sorted(p.get("detector_scores", {}).items())) or "-"
        conf = p.get("detector_confidence")
        click.echo(f"{r['video_id']}  upstream={p['upstream'] or '-'} final={p['final']}  by {p['source']}; "
                   f"detector={p['detector'] or '-'} confidence={'-' if conf is None else f'{conf:.4f}'} "
                   f"[{scores}]; {p.get('reason', '')}")
    relabelled = sum(1 for r in rows if r["projection"].get("upstream") not in (None, r["projection"]["final"]))
    if not as_json:
        click.echo(f"{len(rows)} 360 video(s), {relabelled} relabelled", err=True)


# ------------------------------------------------------------------------------------------------ weights, doctor


@main.command("fetch-weights")
@click.option("--url", envvar=URL_ENV, default=None, metavar="URL",
              help="Where to download from (default: the URL torchvision publishes for "
                   f"ResNet18_Weights.IMAGENET1K_V1; also ${URL_ENV}). The file name must be "
                   "resnet18-<sha256 prefix>.pth: the download is checked against that prefix.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def fetch_weights_command(url, progress):
    """Download torchvision's ImageNet ResNet-18 weights into its cache (<torch hub dir>/checkpoints; $TORCH_HOME
    moves it), where `--visual-init imagenet` (the paper preset's default) finds them.

    The only command that downloads them: training and benchmarks never do. The download is checked against the
    sha256 prefix in the file's published name before it gets that name; an interrupted download resumes on the
    next run; an intact copy already there is kept. Exit status 1 when the URL or the file is wrong, 3 when the
    server cannot be reached (rerun later: it resumes).
    """
    with tqdm(unit="B", unit_scale=True, disable=not progress, desc="resnet18", file=sys.stderr) as bar:
        got = fetch_weights(url, on_bytes=bar.update)
    resumed = f", resumed after {got.resumed_from} bytes" if got.resumed_from else ""
    click.echo(f"ImageNet ResNet-18 weights {got.action}: {got.path} ({got.bytes} bytes, sha256 {got.sha256}"
               f"{resumed})")
    click.echo("ccs-train and ccs-bench run find them with --visual-init imagenet (the paper preset's default)")


@main.command("doctor")
@click.option("--for", "target", nargs=2, default=None, metavar="COMMAND ARG",
              help="Check for one command and exit 0 only when all it needs is here: 'fetch DATASET', "
                   "'prepare DATASET' (prepare and shard) or 'bench TABLE' (ccs-bench run --table TABLE). "
                   "Without it, every check counts.")
@_ROOT
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="bench: the folder `ccs-bench run --out` will write to (default: the root).")
@click.option("--preset", default=None,
              help="bench: the training preset (default: the table's). paper needs CUDA and the ImageNet "
                   "weights; cpu-small needs neither.")
@click.option("--cookies", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="fetch: the cookies file you will give `ccs-data fetch --cookies` (readable, Netscape format, "
                   "youtube.com cookies not expired).")
def doctor_command(target, root, out, preset, cookies):
    """One screen of what a real run needs from this machine, and how to fix each missing piece: ffmpeg and its
    v360 filter and opus decoder, yt-dlp's age and a JavaScript runtime it uses, the cookies file, torch and
    torchvision, CUDA devices and their memory, the ImageNet ResNet-18 weights, write access and free disk space
    (against the dataset's estimated size) at the root; bench adds the table's shards and split lists.

    Downloads and changes nothing. Exit status 0 when everything the command named by --for needs is here (every
    check without --for), 1 otherwise.
    """
    options = TargetOptions(root=root, out=out, preset=preset)
    chosen = None if target is None else resolve_target(target[0], target[1], options)
    report = run_checks(options, chosen, Environment(cookies=cookies))
    for line in render(report):
        click.echo(line)
    if not report.ready:
        sys.exit(1)


# ------------------------------------------------------------------------------------------------ synthetic world


@main.command("synth")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the world into (created; existing world files are overwritten).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed: the same seed gives byte-identical files.")
@click.option("--size", default="tiny", show_default=True, type=click.Choice(["tiny", "small"]),
              help="tiny: ~20 short videos + 20 FAIR-Play-like clips, for unit tests (seconds). "
                   "small: 300 FAIR-Play-like clips + modest YouTube-like sets, enough to train on a CPU (minutes).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535),
              help="Port written into specs/*.toml URLs (http://127.0.0.1:PORT/...); serve the world on it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_command(out: Path, seed: int, size: str, port: int, quiet: bool) -> None:
    """Generate the synthetic audio-visual world: a seeded, offline mirror of the real datasets.

    \b
    OUT/upstream/   list files in the real upstream formats (MUSIC JSON, spatialaudiogen .lst and
                    video/audio_formats.txt, PseudoBinaural 5-split txt, FAIR-Play archives + 10-split h5)
    OUT/media/      <id>.mp4 (MUSIC-like: h264 + stereo AAC, binaural via KEMAR HRIRs) and <id>.mkv
                    (YT-like 360 video, EQR or EAC frames, 4-channel ambiX opus/AAC)
    OUT/specs/      dataset specs (schema of manifests/*.toml) pointing at http://127.0.0.1:PORT/
    OUT/truth.jsonl per video: sources and their azimuth per 0.1 s, faults, true projection

    Every source is a coloured shape whose horizontal position is its azimuth (left of the picture = left);
    the sound is independent of the position, so only the picture tells where a source is. Deliberate faults
    (mono-as-stereo, 1-channel, truncated, no audio, missing (404), too short, audio/video length mismatch,
    mislabelled projection, WXY) exercise the cleaning stages. Then: ccs-data serve OUT --port PORT.
    """
    # lazy: the world generator (scenes, renderers, encoders) adds about 0.6 s to every ccs-data call (measured)
    from pipelines.synth.world import generate_world

    summary = generate_world(out, seed=seed, size=size, port=port, progress=not quiet)
    click.echo(json.dumps(summary, indent=2))


@main.command("serve")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to bind (127.0.0.1, ::1 or localhost); other addresses are refused.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def serve_command(directory: Path, port: int, host: str, verbose: bool) -> None:
    """Serve DIRECTORY (e.g. a synthetic world) over HTTP on loopback until interrupted.

    GET and HEAD with single-range requests (Range: bytes=a-b, a-, -n -> 206; outside the file -> 416),
    404 for missing files and for any path outside DIRECTORY. A world's specs/*.toml name the port it was
    generated for; serve it on that port (or rewrite the specs with pipelines.synth.write_specs).
    """
    try:
        server, thread, bound = start_server(directory, port=port, host=host, quiet=not verbose)
    except NotLoopback as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving {directory.resolve()} at http://{shown}:{bound}/ (Ctrl-C to stop)", err=True)
    try:
        while thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop(server, thread)
