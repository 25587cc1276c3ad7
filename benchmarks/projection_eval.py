"""The projection decision on frames that look like the real world (``ccs-bench projection``; BENCHMARKS.md).

A labelled evaluation set: natural panoramas (``pipelines.synth.textures``: shipped photographs stitched around the
sphere, rooms with strong vertical edges, some on the EAC face borders, sky and floor, 1/f noise, low texture,
dark scenes, a relief map), each turned to several yaw angles and encoded as a short H.264 video in both
projections at the sizes YouTube serves: ER 1280x640 and 16:9 1280x720 (ffmpeg ``scale``), EAC 960x640 and
1536x1024 (ffmpeg ``v360=input=e:output=eac``, as YouTube-style EAC is made). Each frame is grabbed the way
prepare grabs it and judged alone; each video is judged over its frames, and the decision is taken twice, with a
correct and with a wrong upstream label.

Results: per-frame accuracy (abstaining = confidence under the adoption threshold), per-video decisions, how often
a correct upstream label was overridden (must be never), how often a wrong one was corrected, the confidence
calibration (accuracy per confidence band), and as the baseline, measured on the same frames, the cue-threshold
detector this decision replaced.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.media import grab_frames
from pipelines.projection import (
    ADOPT_CONFIDENCE,
    DETECT_HEIGHT,
    DETECT_WIDTH,
    decide_projection,
    detect_projection,
)
from pipelines.synth.encode import VideoFormat, encode_media
from pipelines.synth.textures import KINDS, panorama, yawed

SIZES = {"ER": ((1280, 640), (1280, 720)), "EAC": ((960, 640), (1536, 1024))}
PANORAMA_SIZE = (2048, 1024)
CONFIDENCE_BANDS = (0.5, 0.9, 0.99, 0.999, 1.0)


@dataclass(frozen=True)
class EvalVideo:
    name: str
    kind: str
    projection: str
    size: tuple[int, int]
    yaws: tuple[float, ...]
    path: Path


def _video_filter(projection: str, size: tuple[int, int]) -> str:
    w, h = size
    if projection == "EAC":
        return f"v360=input=e:output=eac:w={w}:h={h}"
    return f"scale={w}:{h}:flags=area"


def build_eval_set(out_dir: Path, *, seed: int = 0, scenes_per_kind: int = 3, yaws_per_scene: int = 4,
                   crf: int = 23, kinds: tuple[str, ...] = tuple(KINDS)) -> list[EvalVideo]:
    """Encode the evaluation videos under ``out_dir``: every kind x ``scenes_per_kind`` panoramas, each in both
    projections (sizes alternating), ``yaws_per_scene`` frames at 1 fps, one yaw each."""
    videos = []
    pw, ph = PANORAMA_SIZE
    for kind in kinds:
        k_index = list(KINDS).index(kind)
        for s in range(scenes_per_kind):
            rng = np.random.default_rng([seed, k_index, s])
            pano = panorama(kind, rng, pw, ph)
            start = float(rng.uniform(0, 360))
            yaws = tuple(round((start + j * 360 / yaws_per_scene + float(rng.uniform(-20, 20))) % 360, 1)
                         for j in range(yaws_per_scene))
            for projection in ("ER", "EAC"):
                size = SIZES[projection][(s + (projection == "EAC")) % 2]
                name = f"{kind}-{s}-{projection}-{size[0]}x{size[1]}"
                path = out_dir / f"{name}.mkv"
                frames = (yawed(pano, y).tobytes() for y in yaws)
                encode_media(path, "matroska", frames, VideoFormat(pw, ph, 1, _video_filter(projection, size), crf),
                             None, None)
                videos.append(EvalVideo(name, kind, projection, size, yaws, path))
    return videos


# The cue-threshold detector this decision replaced (main at b9cde7f), kept as the benchmark's baseline: three cues
# on the frame squashed to 480x240, each a ratio to the frame's own neighbour differences, majority vote.
_OLD_THRESHOLDS = {"wrap": 1.0, "poles": 0.35, "seam": 8.0}


def threshold_baseline(frame: np.ndarray) -> str | None:
    """The old detector's label for one frame (None: too flat to judge)."""
    img = np.asarray(Image.fromarray(frame).resize((480, 240), Image.BOX), dtype=np.float32).mean(axis=2)
    if img.std() < 2.0:
        return None
    h, w = img.shape
    d = w // 8
    cues = {
        "wrap": float(np.abs(img[:, 0] - img[:, -1]).mean()) / max(float(np.abs(img[:, d:] - img[:, :-d]).mean()), 1e-3),
        "poles": 0.5 * (float(img[0].std()) + float(img[-1].std())) / max(float(np.median(img.std(axis=1))), 1.0),
        "seam": float(np.abs(img[h // 2 - 1] - img[h // 2]).mean()) / max(float(np.abs(np.diff(img, axis=0)).mean()),
                                                                           1e-3),
    }
    return "EAC" if sum(cues[k] > _OLD_THRESHOLDS[k] for k in cues) >= 2 else "ER"


def _band(conf: float) -> str:
    for lo, hi in zip(CONFIDENCE_BANDS, CONFIDENCE_BANDS[1:]):
        if conf < hi or hi == 1.0:
            return f"[{lo}, {hi}{']' if hi == 1.0 else ')'}"
    return "?"


def judge(videos: list[EvalVideo]) -> dict[str, Any]:
    """Run the detector and the decision on every frame and video; the summary plus one row per frame/video."""
    frame_rows, video_rows = [], []
    for v in videos:
        frames = grab_frames(v.path, [float(j) for j in range(len(v.yaws))], width=DETECT_WIDTH,
                             height=DETECT_HEIGHT)
        if len(frames) != len(v.yaws):
            raise RuntimeError(f"{v.path}: grabbed {len(frames)} of {len(v.yaws)} frames")
        for yaw, f in zip(v.yaws, frames):
            det = detect_projection([f])
            frame_rows.append({"video": v.name, "kind": v.kind, "truth": v.projection, "yaw": yaw,
                               "label": det.label, "confidence": det.confidence, **det.scores,
                               "baseline_label": threshold_baseline(f)})
        det = detect_projection(frames)
        wrong = "ER" if v.projection == "EAC" else "EAC"
        kept = decide_projection(v.name, upstream=v.projection, metadata=None, detection=det)
        fixed = decide_projection(v.name, upstream=wrong, metadata=None, detection=det)
        video_rows.append({"video": v.name, "kind": v.kind, "truth": v.projection, "label": det.label,
                           "confidence": det.confidence, "frames": det.n_frames, **det.scores,
                           "with_correct_upstream": kept.final, "with_wrong_upstream": fixed.final})
    return {"summary": summarise(frame_rows, video_rows), "frames": frame_rows, "videos": video_rows}


def summarise(frame_rows: list[dict[str, Any]], video_rows: list[dict[str, Any]]) -> dict[str, Any]:
    decided = [r for r in frame_rows if r["confidence"] >= ADOPT_CONFIDENCE]
    bands: dict[str, list[int]] = {}
    for r in frame_rows:
        bands.setdefault(_band(r["confidence"]), []).append(int(r["label"] == r["truth"]))
    by_kind: dict[str, list[int]] = {}
    for r in frame_rows:
        by_kind.setdefault(r["kind"], []).append(int(r["label"] == r["truth"]))
    return {
        "frames": len(frame_rows),
        "frame_accuracy": float(np.mean([r["label"] == r["truth"] for r in frame_rows])),
        "frames_decided": len(decided),
        "frames_decided_wrong": sum(r["label"] != r["truth"] for r in decided),
        "frame_accuracy_by_kind": {k: float(np.mean(v)) for k, v in by_kind.items()},
        "calibration": {b: {"frames": len(v), "accuracy": float(np.mean(v))} for b, v in sorted(bands.items())},
        "videos": len(video_rows),
        "video_accuracy": float(np.mean([r["label"] == r["truth"] for r in video_rows])),
        "correct_upstream_overridden": sum(r["with_correct_upstream"] != r["truth"] for r in video_rows),
        "wrong_upstream_corrected": sum(r["with_wrong_upstream"] == r["truth"] for r in video_rows),
        "min_video_confidence": float(min(r["confidence"] for r in video_rows)),
        # the old detector outranked the upstream label: each wrong frame label would have overridden it
        "baseline_frame_accuracy": float(np.mean([r["baseline_label"] == r["truth"] for r in frame_rows])),
        "baseline_frame_accuracy_by_kind": {
            k: float(np.mean([r["baseline_label"] == r["truth"] for r in frame_rows if r["kind"] == k]))
            for k in by_kind},
    }


def evaluate_projection(*, seed: int = 0, scenes_per_kind: int = 3, yaws_per_scene: int = 4,
                        kinds: tuple[str, ...] = tuple(KINDS), work: Path | None = None) -> dict[str, Any]:
    """Build the set in ``work`` (a temporary folder when None), judge it; the result of :func:`judge` plus timing."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        videos = build_eval_set(Path(tmp), seed=seed, scenes_per_kind=scenes_per_kind,
                                yaws_per_scene=yaws_per_scene, kinds=kinds)
        t1 = time.perf_counter()
        result = judge(videos)
    result["summary"].update(seed=seed, build_s=round(t1 - t0, 1), judge_s=round(time.perf_counter() - t1, 1))
    return result
