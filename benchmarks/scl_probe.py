"""What the fused vector of a CCStereo checkpoint has learned to tell apart (issue 12: why SCL held the small network
at the Mono-Mono level).

SCL (paper eq. 6-7) pulls the pooled fusion output ``z`` of (audio, frame t) towards ``z+`` of (audio, frame t - 1)
and away from ``z-`` of (audio, spatially shuffled tokens of frame t). The shortcut hypothesis: with only each
anchor's own shuffled copy as a negative, ``z`` can separate "tokens in their places" from "tokens shuffled" through
the learned positions alone, without the sound and without telling one clip from another. On a batch of training
samples (the loader's own crops and jitter), this measures, with the network in eval mode:

* ``shuffle_acc``: the share of anchors closer (cosine) to their positive than to their shuffled negative, i.e.
  what eq. 7 rewards; ``shuffle_acc_no_audio``: the same with the mono spectrogram set to zero. High with the
  audio zeroed = the decision does not use the sound;
* ``instance_acc``: the share of anchors whose nearest positive among the whole batch is their own (what the
  released form, with every other instance as a negative, rewards); ``anchor_cos``: the mean cosine of the anchors
  of different samples (1 = collapsed to one point);
* ``instance_acc_no_audio``: the same with the audio zeroed (anchor and positive share their audio, so
  ``instance_acc`` alone can be won from the sound; this one can only be won from the picture);
* ``audio_cos``: the mean cosine of ``z`` with and without the audio (1 = ``z`` ignores the sound);
  ``visual_cos``: the mean cosine of ``z`` with its own frame and with another sample's (1 = ``z`` ignores the
  picture); ``output_visual_share``: ``|diff - diff_other| / |diff|`` of the predicted difference spectrogram with
  the other sample's frame (0 = the output ignores the picture, i.e. the network is a Mono-Mono predictor);
* ``attention_entropy``: the entropy of the audio queries' cross-attention over the visual tokens, as a share of
  its maximum log(number of visual tokens: 98 at the paper's size, 8 for ``cpu-small``) (small = each
  query looks at a few tokens), and ``attention_same``: the mean cosine between
  the attention maps of different samples (1 = where the network looks does not depend on the clip);
* both SCL losses on the batch.

    python -m benchmarks.scl_probe CHECKPOINT --root DATA [--dataset fair-play --protocol 5-split --split 1]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
import torch
import torch.nn.functional as F

from ccstereo.audio import segment_specs
from ccstereo.checkpoint import load_model
from ccstereo.data import EpochStream, ShardPlan, StreamConfig
from ccstereo.frames import augment_batch
from ccstereo.losses import scl_official, scl_paper
from pipelines.shards import list_shards, read_split_keys


def probe_batch(root: str | Path, dataset: str, protocol: str, split: str, resize: tuple[int, int],
                crop: tuple[int, int], n: int = 64, seed: int = 0) -> dict[str, Any]:
    """``n`` training samples (segment, frame, previous frame) drawn as the epoch sampler draws them."""
    keys = read_split_keys(root, dataset, protocol, split, "train")
    plan = ShardPlan.build(list_shards(root, dataset), keys)
    stream = EpochStream(plan, StreamConfig(n, 1, 1, resize, crop, True, seed))
    stream.set_epoch(0, 1)
    return next(iter(stream))


@torch.no_grad()
def scl_probe(model: torch.nn.Module, batch: dict[str, Any], seed: int = 0, temperature: float = 0.1) -> dict[str, float]:
    """The measurements of the module docstring for ``model`` (a CCStereo network) on ``batch``."""
    model.eval()
    mono, _ = segment_specs(batch["segment"])
    frame = augment_batch(batch["frame"], batch["brightness"], batch["saturation"])
    prev = augment_batch(batch["prev_frame"], batch["prev_brightness"], batch["prev_saturation"])
    grid = model.cfg.visual_grid
    perm = torch.randperm(grid[0] * grid[1], generator=torch.Generator().manual_seed(seed))

    def features(spec: torch.Tensor, frames: torch.Tensor = frame) -> tuple[torch.Tensor, ...]:
        out = model(spec, frames, prev_frame=prev, shuffle_perm=perm, return_features=True)
        return tuple(F.normalize(out[k].float(), dim=-1) for k in ("z", "z_pos", "z_neg")) + (out["diff"].float(),)

    z, zp, zn, diff = features(mono)
    z0, zp0, zn0, _ = features(torch.zeros_like(mono))
    # every sample's audio with the next sample's frame: what of z and of the output comes from the picture
    z_other, _, _, diff_other = features(mono, frame.roll(1, dims=0))
    b = z.shape[0]
    off = ~torch.eye(b, dtype=torch.bool)
    attn = cross_attention(model, mono, frame)  # [B, audio tokens, visual tokens]
    entropy = -(attn * attn.clamp_min(1e-12).log()).sum(-1).mean() / math.log(attn.shape[-1])
    maps = F.normalize(attn.flatten(1), dim=-1)
    return {
        "n": b,
        "shuffle_acc": float(((z * zp).sum(-1) > (z * zn).sum(-1)).float().mean()),
        "shuffle_acc_no_audio": float(((z0 * zp0).sum(-1) > (z0 * zn0).sum(-1)).float().mean()),
        "shuffle_margin": float(((z * zp).sum(-1) - (z * zn).sum(-1)).mean()),
        "shuffle_margin_no_audio": float(((z0 * zp0).sum(-1) - (z0 * zn0).sum(-1)).mean()),
        "instance_acc": float(((z @ zp.T).argmax(dim=1) == torch.arange(b)).float().mean()),
        "instance_acc_no_audio": float(((z0 @ zp0.T).argmax(dim=1) == torch.arange(b)).float().mean()),
        "visual_cos": float((z * z_other).sum(-1).mean()),
        "output_visual_share": float((diff - diff_other).norm() / diff.norm().clamp_min(1e-12)),
        "anchor_cos": float((z @ z.T)[off].mean()),
        "audio_cos": float((z * z0).sum(-1).mean()),
        "attention_entropy": float(entropy),
        "attention_same": float((maps @ maps.T)[off].mean()),
        "scl_paper": float(scl_paper(z, zp, zn, temperature)),
        "scl_official": float(scl_official(z, zp, zn, temperature)),
    }


def cross_attention(model: torch.nn.Module, mono: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """The fusion's cross-attention weights (averaged over heads) of the audio tokens over the visual tokens, with
    the inputs the fusion builds (``ccstereo.model.CrossModalFusion.forward``)."""
    fusion = model.fusion
    a = model.encoder(mono)[-1].flatten(2).transpose(1, 2)
    v = fusion.visual_proj(model.visual(frame)).flatten(2).transpose(1, 2)
    return fusion.cross(a + fusion.pos_audio, v + fusion.pos_visual, v, need_weights=True)[1]


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Data root of the training shards.")
@click.option("--dataset", default="fair-play")
@click.option("--protocol", default="5-split")
@click.option("--split", default="1")
@click.option("--samples", default=64, help="Training samples in the probe batch.")
@click.option("--seed", default=0, help="Seed of the batch draw and of the token permutation.")
def main(checkpoint: Path, root: str, dataset: str, protocol: str, split: str, samples: int, seed: int) -> None:
    """Print the SCL probe of CHECKPOINT as JSON."""
    model = load_model(checkpoint)
    if model.cfg.arch != "ccstereo":
        raise click.ClickException(f"{checkpoint}: SCL features exist for arch ccstereo only, not {model.cfg.arch}")
    batch = probe_batch(root, dataset, protocol, split, model.cfg.resize, model.cfg.crop, samples, seed)
    click.echo(json.dumps({"checkpoint": str(checkpoint), "step": model.meta.get("step"),
                           **scl_probe(model, batch, seed, model.cfg.scl_temperature)}, indent=1))


if __name__ == "__main__":
    main()
