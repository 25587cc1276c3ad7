"""Full-clip evaluation (SPEC 9, 10): predict every clip of a list with sliding-window inference and score it with
the section 10 metrics. One code path for both users: ``ccs-train``'s model selection and ``ccs-bench``'s tables,
so that selecting on the test list with the official recipe is the released protocol (full-clip sliding window,
hop 1,008 with the tail zero-padded, TDSS, peak normalisation, STFT distance).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ccstereo.constants import INFER_HOP_SAMPLES
from ccstereo.infer import JpegFrames, binauralize
from ccstereo.metrics import METRIC_NAMES, SPATIAL_NAMES, compute_metrics_batch
from pipelines.shards import Clip, iter_clips

METRIC_CHUNK = 4  # clips scored together by the batched metrics (4 is fastest on CPU: cache)

# called with (key, prediction, ground truth) of the first clip evaluated, e.g. to plot it
ExampleHook = Callable[[str, np.ndarray, np.ndarray], None]
# called with (key, prediction, ground truth) of every clip: more scores for its row (e.g. a localisation error)
ExtraScores = Callable[[str, np.ndarray, np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class EvalSettings:
    """How clips are predicted and scored. ``shuffle_frames`` pairs each clip with the next clip's frames;
    ``spatial`` adds the beyond-the-paper spatial metrics (``ccstereo.metrics.SPATIAL_NAMES``)."""

    hop: int = INFER_HOP_SAMPLES
    tail: str = "pad"
    tdss: bool = True
    pad_mode: str = "constant"
    batch_size: int = 32  # windows per forward pass
    shuffle_frames: bool = False
    spatial: bool = False


def evaluate_clips(
    shards: Sequence[str | Path],
    keys: Sequence[str],
    model: torch.nn.Module | None,
    model_cfg: Any,
    settings: EvalSettings,
    *,
    device: torch.device | str = "cpu",
    where: str = "",
    progress: bool = False,
    example: ExampleHook | None = None,
    extra: ExtraScores | None = None,
) -> list[dict[str, Any]]:
    """Per-clip metrics of every clip in ``keys`` (sorted by key); ``model=None`` is Mono-Mono (L = R = mono / 2).

    ``where`` names the list in errors (e.g. "fair-play/5-split split 1 test"); ``extra`` adds scores per clip.
    """
    if not keys:
        raise ValueError(f"{where}: the list is empty")
    if settings.shuffle_frames and len(keys) < 2:
        raise ValueError(f"{where}: shuffling frames across clips needs >= 2 clips")
    clips = iter_clips(shards, keys)
    pairs = shuffled_pairs(clips) if settings.shuffle_frames else ((c, c.frames) for c in clips)
    bar = tqdm(pairs, total=len(keys), desc=f"eval {where}", unit="clip", disable=not progress, leave=False)

    def predictions() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for n, (clip, frames) in enumerate(bar):
            pred = predict(clip, frames, model, model_cfg, settings, device)
            if example is not None and n == 0:
                example(clip.key, pred, clip.audio)
            yield clip.key, pred, clip.audio

    rows: list[dict[str, Any]] = []
    for chunk in _chunks(predictions(), METRIC_CHUNK):
        rows += score(chunk, settings.pad_mode, settings.spatial, extra)
    missing = sorted(set(keys) - {r["key"] for r in rows})
    if missing:
        raise ValueError(f"{where}: {len(missing)} clip(s) not found in the shards, e.g. {missing[:3]}")
    return sorted(rows, key=lambda r: r["key"])


def predict(clip: Clip, frames: list[bytes], model: torch.nn.Module | None, model_cfg: Any, settings: EvalSettings,
            device: torch.device | str = "cpu") -> np.ndarray:
    """The binaural ``[2, T]`` prediction for one clip's mono mix (``L + R``) and the JPEG ``frames`` given."""
    mono = clip.audio[0] + clip.audio[1]
    if model is None:  # Mono-Mono
        return np.stack([mono / 2, mono / 2]).astype(np.float32)
    return binauralize(mono, JpegFrames(frames), model, model_cfg, hop=settings.hop, tdss=settings.tdss,
                       batch_size=settings.batch_size, device=device, tail=settings.tail)


def score(chunk: list[tuple[str, np.ndarray, np.ndarray]], pad_mode: str, spatial: bool = False,
          extra: ExtraScores | None = None) -> list[dict[str, Any]]:
    """One row per ``(key, prediction, ground truth)``: the key and every metric (scored as one batch), plus the
    spatial metrics with ``spatial`` and what ``extra`` returns."""
    m = compute_metrics_batch(np.stack([p for _, p, _ in chunk]), np.stack([t for _, _, t in chunk]),
                              pad_mode=pad_mode, chunk=METRIC_CHUNK, spatial=spatial)
    names = (*METRIC_NAMES, *SPATIAL_NAMES) if spatial else METRIC_NAMES
    rows = [{"key": key, **{name: float(m[name][i]) for name in names}} for i, (key, _, _) in enumerate(chunk)]
    if extra is not None:
        for row, (key, pred, true) in zip(rows, chunk):
            row.update(extra(key, pred, true))
    return rows


def shuffled_pairs(clips: Iterable[Clip]) -> Iterator[tuple[Clip, list[bytes]]]:
    """(clip i, frames of clip i + 1), ..., (last clip, frames of the first): a cyclic shift, never a clip's own."""
    first = prev = None
    for clip in clips:
        if prev is None:
            first = clip
        else:
            yield prev, clip.frames
        prev = clip
    if prev is not None and first is not None and prev is not first:
        yield prev, first.frames


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
