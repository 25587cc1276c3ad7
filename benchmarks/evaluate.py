"""Evaluation of one method on one split: predict every test clip, score it with the SPEC section 10 metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.localisation import Localiser
from benchmarks.tables import MethodSpec, Section
from ccstereo.infer import JpegFrames, binauralize
from ccstereo.metrics import LOC, METRIC_NAMES, SPATIAL_NAMES, compute_metrics_batch
from pipelines.shards import Clip, iter_clips, list_shards, read_split_keys

METRIC_CHUNK = 4  # test clips scored together by the batched metrics (4 is fastest on CPU: cache)

# called with (key, prediction, ground truth) of the first clip of a split, e.g. to plot it
ExampleHook = Callable[[str, np.ndarray, np.ndarray], None]


def evaluate_split(
    root: Path,
    section: Section,
    split: str,
    spec: MethodSpec,
    model: torch.nn.Module | None,
    model_cfg: Any,
    *,
    hop: int,
    pad_mode: str,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
    example: ExampleHook | None = None,
    localiser: Localiser | None = None,
) -> list[dict[str, Any]]:
    """Per-clip metrics of ``spec`` on every test clip of one split (sorted by key).

    Each clip is scored with the six metrics and the spatial ones, and with LOC when a ``localiser`` is given.
    ``model=None`` is Mono-Mono (L = R = mono / 2). With ``spec.shuffle_frames`` each clip is paired with the
    frames of the next test clip in key order (the last with the first): same network, wrong picture.
    """
    keys = read_split_keys(root, section.dataset, section.protocol, split, "test")
    if not keys:
        raise ValueError(f"{section.key} split {split}: the test list is empty")
    if spec.shuffle_frames and len(keys) < 2:
        raise ValueError(f"{section.key} split {split}: shuffling frames across clips needs >= 2 test clips")
    clips = iter_clips(list_shards(root, section.dataset), keys)
    pairs = shuffled_pairs(clips) if spec.shuffle_frames else ((c, c.frames) for c in clips)
    bar = tqdm(pairs, total=len(keys), desc=f"eval {spec.name} {section.dataset} split {split}", unit="clip",
               disable=not progress, leave=False)

    def predictions() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for n, (clip, frames) in enumerate(bar):
            pred = predict(clip, frames, model, model_cfg, tdss=spec.tdss, hop=hop, batch_size=batch_size,
                           device=device)
            if example is not None and n == 0:
                example(clip.key, pred, clip.audio)
            yield clip.key, pred, clip.audio

    rows: list[dict[str, Any]] = []
    for chunk in _chunks(predictions(), METRIC_CHUNK):
        rows += score(chunk, pad_mode, localiser)
    missing = sorted(set(keys) - {r["key"] for r in rows})
    if missing:
        raise ValueError(f"{section.key} split {split}: {len(missing)} test clip(s) not found in the shards, "
                         f"e.g. {missing[:3]}")
    return sorted(rows, key=lambda r: r["key"])


def predict(clip: Clip, frames: list[bytes], model: torch.nn.Module | None, model_cfg: Any, *, tdss: bool,
            hop: int, batch_size: int, device: torch.device) -> np.ndarray:
    """The binaural ``[2, T]`` prediction for one clip's mono mix (``L + R``) and the JPEG ``frames`` given."""
    mono = clip.audio[0] + clip.audio[1]
    if model is None:  # Mono-Mono
        return np.stack([mono / 2, mono / 2]).astype(np.float32)
    return binauralize(mono, JpegFrames(frames), model, model_cfg, hop=hop, tdss=tdss, batch_size=batch_size,
                       device=device)


def score(chunk: list[tuple[str, np.ndarray, np.ndarray]], pad_mode: str, localiser: Localiser | None = None
          ) -> list[dict[str, Any]]:
    """One row per ``(key, prediction, ground truth)``: the key and every metric (the paper's and the spatial
    ones, scored as one batch; LOC from ``localiser``)."""
    m = compute_metrics_batch(np.stack([p for _, p, _ in chunk]), np.stack([t for _, _, t in chunk]),
                              pad_mode=pad_mode, chunk=METRIC_CHUNK, spatial=True)
    rows = [{"key": key, **{name: float(m[name][i]) for name in (*METRIC_NAMES, *SPATIAL_NAMES)}}
            for i, (key, _, _) in enumerate(chunk)]
    if localiser is not None:
        for row, (key, pred, true) in zip(rows, chunk):
            row[LOC] = localiser(key, pred, true)
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
