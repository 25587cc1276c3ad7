"""The ``ccs-train`` and ``ccs-infer`` commands: argument parsing only; the work is :func:`ccstereo.train.train` and
:func:`ccstereo.infer.infer_file`.

``python -m ccstereo.train`` (and so ``torchrun --nproc_per_node N -m ccstereo.train ...``) runs ``ccs-train``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ccstereo.audio import DEFAULT_PAD_MODE
from ccstereo.config import ARCHS, PRESETS, RECIPES, SAMPLERS, preset
from ccstereo.constants import INFER_HOP_SAMPLES, SEGMENT_SAMPLES
from ccstereo.infer import infer_file
from ccstereo.infer_report import write_infer_report
from ccstereo.train import train
from pipelines.contract import SAMPLE_RATE
from pipelines.errors import StyledCommand


def _hw(text: str | None, option: str) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW, e.g. 224x448, got {text!r}", param_hint=option) from None
    return h, w


@click.command(name="ccs-train", cls=StyledCommand,
               context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Data root holding <dataset>/shards and <dataset>/splits.")
@click.option("--dataset", required=True, help="Dataset name (music-stereo, yt-music, yt-clean, fair-play).")
@click.option("--protocol", required=True, help="Split protocol, e.g. 5-split, 10-split, 80-10-10, official.")
@click.option("--split", "split", required=True, help="Split name within the protocol, e.g. 1.")
@click.option("--preset", "preset_name", type=click.Choice(PRESETS), default="paper", help="paper: SPEC values; cpu-small: small frames/batch for CPUs and the synthetic world.")
@click.option("--recipe", type=click.Choice(RECIPES), default=None, help="official (default): the released code's loss forms and selection hop 1008, behind the published numbers; paper-text: the paper's equations and hop 1600 (docs/FIDELITY.md).")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="epoch (default, released): each training clip once per epoch, shuffled; stream: K segments per clip read through a shuffle buffer (faster, visits part of the clips per epoch).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (last.pt, best.pt, metadata.json, log.jsonl, log.csv).")
@click.option("--max-steps", type=int, default=None, help="Train this many steps instead of the preset's epochs (also the horizon of the learning-rate decay).")
@click.option("--epochs", type=int, default=None, help="Epochs (an epoch = one segment per training clip); default from the preset.")
@click.option("--stop-after", type=int, default=None, help="Stop after this many steps of the schedule, e.g. to split a run into time slots; continue with --resume.")
@click.option("--resume", is_flag=True, help="Continue OUT/last.pt exactly (same parameters as an uninterrupted run).")
@click.option("--arch", type=click.Choice(ARCHS), default=None, help="Network: CCStereo or a baseline (Mono2Binaural trains with MSE only; Mono-Mono is not trained).")
@click.option("--no-avad", is_flag=True, help="Ablation: plain BN instead of AVAD at the first decoder layer.")
@click.option("--loss", type=click.Choice(["mse", "rec"]), default=None, help="Ablation: MSE only, or the REC loss (MSE + APM + PHS).")
@click.option("--scl-weight", type=float, default=None, help="Weight of the spatial contrastive loss (0 disables it).")
@click.option("--scl-start-step", type=click.IntRange(min=0), default=None, help="Step at which SCL joins the loss (paper preset 0, as released; cpu-small 100: BENCHMARKS.md, 'Recipes and SCL').")
@click.option("--samples-per-clip", type=int, default=None, help="--sampler stream: K random segments drawn from each clip read from a shard.")
@click.option("--batch-size", type=int, default=None, help="Global batch size (split over processes).")
@click.option("--num-workers", type=int, default=None, help="DataLoader worker processes per rank.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None, help="fp32, or bf16 autocast.")
@click.option("--grad-clip", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option("--resize", "resize_hw", default=None, help="HxW the frame is resized to before cropping (paper 240x480).")
@click.option("--crop", "crop_hw", default=None, help="HxW of the crop fed to the network (paper 224x448).")
@click.option("--lr-visual", type=float, default=None, help="Learning rate of the visual network: ResNet-18 trunk + ASPP (paper 5e-5).")
@click.option("--lr-other", type=float, default=None, help="Learning rate of the audio network, fusion and AVAD (paper 5e-4).")
@click.option("--visual-init", default=None, help="imagenet (torchvision's cache; `ccs-data fetch-weights` puts them there), random, or a path to ResNet-18 weights.")
@click.option("--select-on", type=click.Choice(["val", "test"]), default=None, help="List that picks best.pt by the full-clip STFT distance. 'test' is the released protocol and is recorded as such.")
@click.option("--val-every-epochs", type=int, default=None, help="Validate (and maybe update best.pt) every N epochs.")
@click.option("--val-hop", type=click.IntRange(min=1, max=SEGMENT_SAMPLES), default=None, help="Hop of the full-clip validation (default: the recipe's, 1008 or 1600); larger is cheaper.")
@click.option("--seed", type=int, default=None, help="Seed of the weights, the data stream and the augmentation.")
@click.option("--threads", type=int, default=None, help="torch CPU threads per process.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Training device.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train_command(root, dataset, protocol, split, preset_name, recipe, sampler, out, max_steps, epochs, stop_after, resume,
                  arch, no_avad, loss, scl_weight, scl_start_step, samples_per_clip, batch_size, num_workers, precision, grad_clip, resize_hw,
                  crop_hw, lr_visual, lr_other, visual_init, select_on, val_every_epochs, val_hop, seed, threads, device,
                  no_progress):
    """Train CCStereo (or a baseline) on a dataset's shards; best checkpoint chosen on the validation list by the
    full-clip evaluation of ccs-bench (recipe hop, TDSS, peak normalisation, STFT distance).

    Runs under `torchrun --nproc_per_node N ccs-train ...` for multi-process training.
    """
    model_overrides = {"arch": arch, "avad": False if no_avad else None, "loss": loss, "scl_weight": scl_weight, "visual_init": visual_init,
                       "resize": _hw(resize_hw, "--resize"), "crop": _hw(crop_hw, "--crop")}
    if arch == "mono2binaural":  # the 2.5D baseline trains with MSE only
        model_overrides.update(loss=loss or "mse", scl_weight=scl_weight or 0.0)
    cfg = preset(preset_name, model_overrides, root=str(root), dataset=dataset, protocol=protocol, split=str(split), out=str(out),
                 recipe=recipe, sampler=sampler, scl_start_step=scl_start_step, max_steps=max_steps, epochs=epochs, lr_visual=lr_visual, lr_other=lr_other, stop_after=stop_after, samples_per_clip=samples_per_clip, batch_size=batch_size,
                 num_workers=num_workers, precision=precision, grad_clip=grad_clip, select_on=select_on,
                 val_every_epochs=val_every_epochs, val_hop=val_hop, seed=seed, threads=threads, device=device, progress=False if no_progress else None)
    try:
        result = train(cfg, resume=resume)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        best = f"{result.best} ({cfg.select_on} STFT {result.best_metric:.5g} at step {result.best_step})" if result.best else "none yet"
        click.echo(f"steps {result.steps}; best: {best}; last: {result.last}")


@click.command(name="ccs-infer", cls=StyledCommand,
               context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--checkpoint", "-c", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A ccs-train checkpoint (.pt); it carries the model config.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the binaural result (16-bit, 16 kHz, 2-channel wav).")
@click.option("--tdss/--no-tdss", default=True, show_default=True,
              help="Test-time dynamic scene simulation: crop each frame at one of five positions by frame "
                   "index (paper). --no-tdss resizes the whole frame to the crop size.")
@click.option("--hop", default=INFER_HOP_SAMPLES, show_default=True,
              type=click.IntRange(min=1, max=SEGMENT_SAMPLES),
              help="Sliding-window hop in samples at 16 kHz (default: the released code's int(0.1 x 10080) = 1008, "
                   "windows continuing past the end of the clip, zero-padded; the paper's text: 1600 = 0.1 s; "
                   "2.5D Visual Sound 800).")
@click.option("--compare", is_flag=True,
              help="Also print the metrics (SPEC section 10) of the output against the video's own stereo "
                   "track; needs a stereo input.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Windows per forward pass.")
@click.option("--device", default=None, help="torch device (default: cpu).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a listening page to REPORT/report.html (+ REPORT/listen/): input frames, mono, the "
                   "prediction, and with a stereo input the ground truth, the error and the metrics; the first 60 s.")
def infer_command(video: Path, checkpoint: Path, output: Path, tdss: bool, hop: int, compare: bool, batch_size: int,
                  device: str | None, report_dir: Path | None) -> None:
    """Binauralise VIDEO (any file ffmpeg reads, with mono or stereo audio) with a trained model.

    The audio is decoded to 16 kHz (stereo is downmixed to mono = L + R), the frames are read at 10 fps and
    resized to 480x240, a 0.63 s window slides over the clip every HOP samples, each window is paired with the
    frame at its centre, and the overlapping predictions are averaged (SPEC section 9).
    """
    try:
        result = infer_file(video, checkpoint, output, hop=hop, tdss=tdss, compare=compare,
                            batch_size=batch_size, device=device)
        if report_dir is not None:
            page = write_infer_report(video, result.out_path, report_dir, {
                "video": video, "checkpoint": checkpoint, "output": result.out_path, "hop": hop,
                "tdss": "on" if tdss else "off"})
            click.echo(f"wrote {page}")
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {result.out_path} ({result.n_samples / SAMPLE_RATE:.2f} s, {result.n_windows} windows, "
               f"{result.n_frames} frames, tdss={'on' if tdss else 'off'}, hop={hop})")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.clipped:
        click.echo("warning: the output exceeded [-1, 1] and was clipped in the 16-bit file", err=True)
    if result.metrics is not None:
        click.echo(json.dumps({"pad_mode": DEFAULT_PAD_MODE, **result.metrics}, indent=1))
