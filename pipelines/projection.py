"""The projection of a 360 video: equirectangular (``ER``) or YouTube's 3x2 equi-angular cubemap (``EAC``).

Upstream labels (``video_formats.txt``) are sometimes wrong (SPEC section 3.5), so the label used is decided from
four sources: the override file ``manifests/projection-overrides.toml`` > the container's spherical metadata >
the upstream label, which the pixel detector may replace only when its evidence against it is strong (or when
there is no upstream label). Every source's answer, the detector's confidence and scores, and the reason for the
final label are recorded.

**The detector compares two hypotheses** instead of thresholding cues. Read as ER or as EAC (``pipelines/sphere``,
the mapping prepare's ffmpeg ``v360`` uses), a frame says which pixel pairs are neighbours on the sphere. The two
readings disagree about some pairs:

* EAC only: the two sides of a cube edge that are apart in the frame (the top strip's upper border against the
  bottom strip, the bottom strip's outer borders, the turned faces).
* ER only: the left and right columns (the longitude wrap) and two points of the top or bottom row half a turn
  apart (the same pole). The rows on either side of H/2 (EAC's seam between its strips) are not used: in ER they
  are the horizon, often a sharp edge in real footage.

In a natural picture, neighbours on the sphere look alike. For each hypothesis its own pairs' mean difference is
divided by that of ordinary neighbours next to them (``mismatch``, about 1 when the hypothesis holds, larger when
its "neighbours" are far apart in reality). The frame's evidence is ``log(mismatch_ER) - log(mismatch_EAC)``:
positive for EAC. A grey-level floor on both means keeps flat and dark frames near zero evidence.

Frames are taken across the video; repeated (near-identical) frames count once. The video's evidence is their
mean, and the **confidence** is the probability that this mean has the right sign given the scatter between
frames, with a floor on the scatter (``EVIDENCE_SPREAD_FLOOR``; calibration measured in BENCHMARKS.md,
"Projection decision").
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import sphere
from pipelines.ids import validate_id
from pipelines.manifests import MANIFEST_DIR

LABELS = ("ER", "EAC")
OVERRIDES_PATH = MANIFEST_DIR / "projection-overrides.toml"

DETECT_WIDTH, DETECT_HEIGHT = 768, 512  # frames are judged at this size (3 x 2 faces of 256 under EAC)
GREY_FLOOR = 2.0  # grey levels added to every mean difference: compression noise, flat and dark frames
EVIDENCE_CAP = 4.0  # one frame's |evidence| is capped: no single frame decides a video
EVIDENCE_SPREAD_FLOOR = 0.35  # smallest frame-to-frame scatter assumed (log units; BENCHMARKS.md)
DUPLICATE_FRAME_LEVEL = 1.0  # mean |difference| (grey levels) under which two frames count as one
ADOPT_CONFIDENCE = 0.9  # the detector's label is used when there is no upstream label and it is this sure
OVERRIDE_CONFIDENCE = 0.999  # ... and replaces an upstream label only when at least this sure
OVERRIDE_EVIDENCE = 0.5  # ... and its mean evidence is at least this strong
_FAR_PIXELS = 4.0  # a pair is one hypothesis' own when the other puts it at least this many pixels apart


class OverrideError(ValueError):
    """The override file is malformed; the message names the file and the entry."""


# ------------------------------------------------------------------------------------------------ pixel pairs


@dataclass(frozen=True)
class PairSet:
    """Pixel position pairs (p, q) one hypothesis calls neighbours, and the ordinary neighbours beside them
    (controls), as [n, 2] (column, row) float arrays."""

    p: np.ndarray
    q: np.ndarray
    ctrl_a: np.ndarray
    ctrl_b: np.ndarray


def _xy(x, y) -> np.ndarray:
    return np.stack([np.asarray(x, float).ravel(), np.asarray(y, float).ravel()], axis=1)


def _eac_edge_points(width: int, height: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """For every face edge: (edge pixel, its neighbour across the cube edge, the pixel after that, the pixel
    inside the face next to the edge pixel), all as [n, 2]."""
    fw, fh = width // 3, height // 2
    out = []
    for (r, c) in sphere.EAC_TILES:
        x0, y0 = c * fw, r * fh
        along_x = np.arange(x0 + 2, x0 + fw - 2, dtype=float)
        along_y = np.arange(y0 + 2, y0 + fh - 2, dtype=float)
        # (edge positions, outward step) for the top, bottom, left and right edges
        for xs, ys, dx, dy in ((along_x, np.full_like(along_x, y0), 0, -1),
                               (along_x, np.full_like(along_x, y0 + fh - 1), 0, 1),
                               (np.full_like(along_y, x0), along_y, -1, 0),
                               (np.full_like(along_y, x0 + fw - 1), along_y, 1, 0)):
            across = [_xy(*sphere.eac_pixel(sphere.eac_direction(xs + k * dx, ys + k * dy, width, height, (r, c)),
                                            width, height)) for k in (1, 2)]
            out.append((_xy(xs, ys), across[0], across[1], _xy(xs - dx, ys - dy)))
    return out


def _er_far(a: np.ndarray, b: np.ndarray, width: int, height: int) -> np.ndarray:
    da = sphere.er_direction(a[:, 0], a[:, 1], width, height)
    db = sphere.er_direction(b[:, 0], b[:, 1], width, height)
    return sphere.angle_between(da, db) > _FAR_PIXELS * math.pi / height


def _eac_far(a: np.ndarray, b: np.ndarray, width: int, height: int) -> np.ndarray:
    da = sphere.eac_direction(a[:, 0], a[:, 1], width, height)
    db = sphere.eac_direction(b[:, 0], b[:, 1], width, height)
    return sphere.angle_between(da, db) > _FAR_PIXELS * (math.pi / 2) / (width / 3)


def _stack(parts: list[tuple[np.ndarray, ...]], keep: list[np.ndarray]) -> PairSet:
    cols = [np.concatenate([part[i][k] for part, k in zip(parts, keep)]) for i in range(4)]
    return PairSet(*cols)


@lru_cache(maxsize=8)
def hypothesis_pairs(width: int, height: int) -> dict[str, PairSet]:
    """The ER-only and EAC-only neighbour pairs of a ``width`` x ``height`` frame (see the module docstring)."""
    eac_parts, eac_keep = [], []
    for p, q, q2, p_in in _eac_edge_points(width, height):
        apart_in_frame = np.linalg.norm(p - q, axis=1) > 1.5  # frame neighbours already: both readings agree
        eac_parts.append((p, q, p_in, q2))
        eac_keep.append(apart_in_frame & _er_far(p, q, width, height))
    # The controls of a pair are (p, p_in) and (q, q2); PairSet holds them as ctrl_a - ctrl_b rows of both.
    eac = _stack(eac_parts, eac_keep)
    eac = PairSet(eac.p, eac.q, np.concatenate([eac.p, eac.q]), np.concatenate([eac.ctrl_a, eac.ctrl_b]))

    rows = np.arange(height, dtype=float)
    lat = 90 - (rows + 0.5) * 180 / height
    rows = rows[np.abs(lat) < 60]  # near the poles a row is too short for its ends to be a fair wrap sample
    half = np.arange(width // 2, dtype=float)
    w1, h1 = width - 1.0, height - 1.0
    er_parts = [
        (_xy(0 * rows, rows), _xy(0 * rows + w1, rows), _xy(0 * rows + 1, rows), _xy(0 * rows + w1 - 1, rows)),
        (_xy(half, 0 * half), _xy(half + width // 2, 0 * half), _xy(half, 0 * half + 1),
         _xy(half + width // 2, 0 * half + 1)),
        (_xy(half, 0 * half + h1), _xy(half + width // 2, 0 * half + h1), _xy(half, 0 * half + h1 - 1),
         _xy(half + width // 2, 0 * half + h1 - 1)),
    ]
    er_keep = [_eac_far(p, q, width, height) for p, q, _, _ in er_parts]
    er = _stack(er_parts, er_keep)
    er = PairSet(er.p, er.q, np.concatenate([er.p, er.q]), np.concatenate([er.ctrl_a, er.ctrl_b]))
    return {"ER": er, "EAC": eac}


# ------------------------------------------------------------------------------------------------ evidence


def _mean_difference(img: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    va = sphere.bilinear(img, a[:, 0], a[:, 1])
    vb = sphere.bilinear(img, b[:, 0], b[:, 1])
    return float(np.abs(va - vb).mean())


def frame_scores(frame: np.ndarray) -> dict[str, float]:
    """``mismatch_ER``, ``mismatch_EAC`` and ``evidence`` (> 0 favours EAC) of one [H, W, 3] frame.

    Any size works: the pairs are laid out for the frame's own size (its width a multiple of 3 and its height
    of 2 keep the EAC faces on whole pixels, as :data:`DETECT_WIDTH` x :data:`DETECT_HEIGHT` and 480x240 do).
    """
    img = np.asarray(frame, dtype=np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    h, w = img.shape[:2]
    out = {}
    for label, pairs in hypothesis_pairs(w, h).items():
        pair = _mean_difference(img, pairs.p, pairs.q)
        ctrl = _mean_difference(img, pairs.ctrl_a, pairs.ctrl_b)
        out[f"mismatch_{label}"] = (pair + GREY_FLOOR) / (ctrl + GREY_FLOOR)
    evidence = math.log(out["mismatch_ER"]) - math.log(out["mismatch_EAC"])
    out["evidence"] = float(np.clip(evidence, -EVIDENCE_CAP, EVIDENCE_CAP))
    return out


@dataclass(frozen=True)
class Detection:
    """The pixel detector's answer: ``label`` is None when no frame could be read."""

    label: str | None
    confidence: float  # probability that ``label`` is right (0.5: no evidence either way)
    scores: dict[str, float]  # evidence (mean over frames), spread, mismatch_ER, mismatch_EAC (medians)
    n_frames: int  # distinct frames judged


def distinct_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """``frames`` without those nearly identical to an earlier one (a still picture is one piece of evidence)."""
    kept: list[np.ndarray] = []
    for f in frames:
        f32 = np.asarray(f, dtype=np.float32)
        if all(g.shape != f32.shape or np.abs(g - f32).mean() >= DUPLICATE_FRAME_LEVEL for g in kept):
            kept.append(f32)
    return kept


def sign_confidence(evidence: list[float]) -> float:
    """Probability that the mean of ``evidence`` has the sign it shows, for frames whose evidence scatters
    normally about the video's value with the spread measured between them, floored at
    :data:`EVIDENCE_SPREAD_FLOOR` (so one frame, or a still picture, is never taken as noise-free)."""
    n = len(evidence)
    if n == 0:
        return 0.5
    mean = float(np.mean(evidence))
    spread = max(float(np.std(evidence, ddof=1)) if n > 1 else 0.0, EVIDENCE_SPREAD_FLOOR)
    return float(0.5 * (1 + math.erf(abs(mean) * math.sqrt(n) / spread / math.sqrt(2))))


def detect_projection(frames: list[np.ndarray]) -> Detection:
    """ER or EAC from the distinct ``frames`` (each in the video's own layout, ideally at DETECT_WIDTH x
    DETECT_HEIGHT), with the confidence of :func:`sign_confidence`."""
    scores = [frame_scores(f) for f in distinct_frames(frames)]
    if not scores:
        return Detection(None, 0.5, {}, 0)
    ev = [s["evidence"] for s in scores]
    mean = float(np.mean(ev))
    summary = {
        "evidence": round(mean, 4),
        "spread": round(float(np.std(ev, ddof=1)) if len(ev) > 1 else 0.0, 4),
        "mismatch_ER": round(float(np.median([s["mismatch_ER"] for s in scores])), 4),
        "mismatch_EAC": round(float(np.median([s["mismatch_EAC"] for s in scores])), 4),
    }
    return Detection("EAC" if mean > 0 else "ER", sign_confidence(ev), summary, len(scores))


def cubemap_structure(frames: list[np.ndarray], min_confidence: float = OVERRIDE_CONFIDENCE) -> Detection | None:
    """The detection, when prepared (equirectangular) ``frames`` still look like an EAC layout; else None."""
    det = detect_projection(frames)
    if det.label == "EAC" and det.confidence >= min_confidence and det.scores["evidence"] >= OVERRIDE_EVIDENCE:
        return det
    return None


# ------------------------------------------------------------------------------------------------ decision


@dataclass(frozen=True)
class ProjectionDecision:
    video_id: str
    final: str
    source: str  # override | metadata | upstream | detector | default
    reason: str  # why ``final`` is what it is, in words
    upstream: str | None
    metadata: str | None
    detector: str | None
    detector_confidence: float | None = None
    detector_scores: dict[str, float] = field(default_factory=dict)
    detector_frames: int = 0
    override: str | None = None
    override_reason: str | None = None

    @property
    def differs_from_upstream(self) -> bool:
        return self.upstream is not None and self.final != self.upstream

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metadata_label(spherical: str | None) -> str | None:
    """Map ffmpeg's spherical projection name to ER / EAC (None when absent or not one of the two)."""
    if spherical is None:
        return None
    s = spherical.strip().lower()
    if s in ("equirectangular", "tiled equirectangular"):
        return "ER"
    if s in ("cubemap", "eac", "equi-angular cubemap"):
        return "EAC"
    return None


@dataclass(frozen=True)
class Override:
    projection: str
    reason: str


def load_overrides(path: str | Path | None = None) -> dict[str, Override]:
    """The override file: ``[videos.<youtube id>] projection = "ER" | "EAC", reason = "..."``; ids validated."""
    path = Path(path) if path is not None else OVERRIDES_PATH
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OverrideError(f"{path}: override file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise OverrideError(f"{path}: not valid TOML: {exc}") from None
    videos = raw.get("videos", {})
    if not isinstance(videos, dict):
        raise OverrideError(f"{path}: 'videos' must be a table of tables")
    out: dict[str, Override] = {}
    for video_id, entry in videos.items():
        try:
            validate_id(video_id, "youtube")
        except ValueError as exc:
            raise OverrideError(f"{path}: videos.{video_id}: {exc}") from None
        if not isinstance(entry, dict):
            raise OverrideError(f"{path}: videos.{video_id} must be a table")
        label = entry.get("projection")
        if label not in LABELS:
            raise OverrideError(f"{path}: videos.{video_id}.projection must be one of {', '.join(LABELS)}, got {label!r}")
        reason = entry.get("reason", "")
        if not isinstance(reason, str) or not reason.strip():
            raise OverrideError(f"{path}: videos.{video_id}.reason must be a non-empty string (cite the evidence)")
        out[video_id] = Override(label, reason)
    return out


def _detector_verdict(detection: Detection | None, upstream: str | None) -> tuple[str | None, str]:
    """(label the detector imposes or None, reason) given the upstream label."""
    if detection is None or detection.label is None:
        return None, "no detector frames"
    label, conf = detection.label, detection.confidence
    evidence = abs(detection.scores.get("evidence", 0.0))
    said = f"detector says {label} with confidence {conf:.4f} (evidence {evidence:.2f}, {detection.n_frames} frames)"
    if upstream in LABELS:
        if label == upstream:
            return None, f"upstream {upstream} kept; {said}"
        if conf >= OVERRIDE_CONFIDENCE and evidence >= OVERRIDE_EVIDENCE:
            return label, f"upstream {upstream} replaced: {said}"
        return None, (f"upstream {upstream} kept: {said}, below the {OVERRIDE_CONFIDENCE} / {OVERRIDE_EVIDENCE} "
                      "needed to replace it")
    if conf >= ADOPT_CONFIDENCE:
        return label, f"no upstream label; {said}"
    return None, f"no upstream label and the detector is unsure: {said}"


def decide_projection(
    video_id: str,
    *,
    upstream: str | None,
    metadata: str | None,
    detection: Detection | None,
    override: Override | None = None,
) -> ProjectionDecision:
    """override > container metadata > upstream label, which the detector replaces only on strong evidence
    (:data:`OVERRIDE_CONFIDENCE`, :data:`OVERRIDE_EVIDENCE`) > the detector alone (:data:`ADOPT_CONFIDENCE`) > ER."""
    imposed, det_reason = _detector_verdict(detection, upstream)
    if override is not None:
        final, source, reason = override.projection, "override", f"override file: {override.reason}"
    elif metadata is not None:
        final, source, reason = metadata, "metadata", "container spherical metadata"
    elif imposed is not None:
        final, source, reason = imposed, "detector", det_reason
    elif upstream in LABELS:
        final, source, reason = upstream, "upstream", det_reason
    else:
        final, source, reason = "ER", "default", f"nothing known, ER assumed; {det_reason}"
    return ProjectionDecision(
        video_id=video_id,
        final=final,
        source=source,
        reason=reason,
        upstream=upstream,
        metadata=metadata,
        detector=detection.label if detection is not None else None,
        detector_confidence=round(detection.confidence, 6) if detection is not None else None,
        detector_scores=dict(detection.scores) if detection is not None else {},
        detector_frames=detection.n_frames if detection is not None else 0,
        override=override.projection if override is not None else None,
        override_reason=override.reason if override is not None else None,
    )
