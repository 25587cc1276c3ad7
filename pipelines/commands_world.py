"""``ccs-data synth`` and ``ccs-data serve``: the offline synthetic world and its loopback server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from pipelines.cli import main


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
    from pipelines.serve import NotLoopback, start_server, stop

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
