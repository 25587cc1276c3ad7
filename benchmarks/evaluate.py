"""Evaluation of one method on one split of a table: the full-clip evaluation of ``ccstereo.evaluate`` (the one
model selection uses) on the split's test list, scored with the SPEC section 10 metrics and the spatial ones, and
with LOC when the synthetic world's truth is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmarks.localisation import Localiser
from benchmarks.plan import BenchConfig
from benchmarks.tables import MethodSpec, Section
from ccstereo.evaluate import EvalSettings, ExampleHook, evaluate_clips
from ccstereo.metrics import LOC
from pipelines.shards import list_shards, read_split_keys

__all__ = ["ExampleHook", "evaluate_split", "settings_for"]


def settings_for(cfg: BenchConfig, spec: MethodSpec) -> EvalSettings:
    """How ``spec`` is predicted and scored in this run: its hop (``BenchConfig.eval_hop``) and tail, TDSS, the
    frames-shuffled control, the metrics' padding."""
    return EvalSettings(hop=cfg.eval_hop(spec), tail=spec.tail or "pad", tdss=spec.tdss, pad_mode=cfg.pad_mode,
                        batch_size=cfg.batch_size, shuffle_frames=spec.shuffle_frames, spatial=True)


def evaluate_split(
    root: Path,
    section: Section,
    split: str,
    spec: MethodSpec,
    model: torch.nn.Module | None,
    model_cfg: Any,
    settings: EvalSettings,
    *,
    device: torch.device,
    progress: bool = True,
    example: ExampleHook | None = None,
    localiser: Localiser | None = None,
) -> list[dict[str, Any]]:
    """Per-clip metrics of ``spec`` on every test clip of one split (sorted by key).

    ``model=None`` is Mono-Mono (L = R = mono / 2). With ``settings.shuffle_frames`` each clip is paired with the
    frames of the next test clip in key order (the last with the first): same network, wrong picture.
    """
    keys = read_split_keys(root, section.dataset, section.protocol, split, "test")
    extra = None if localiser is None else (lambda key, pred, true: {LOC: localiser(key, pred, true)})
    return evaluate_clips(list_shards(root, section.dataset), keys, model, model_cfg, settings, device=device,
                          where=f"{section.key} split {split} test ({spec.name})", progress=progress,
                          example=example, extra=extra)
