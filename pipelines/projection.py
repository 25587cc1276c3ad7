"""The projection of a 360 video: equirectangular (``ER``) or YouTube's 3x2 equi-angular cubemap (``EAC``).

Upstream labels (``video_formats.txt``) are sometimes wrong (SPEC section 3), so the label used is decided from
four sources in this order of trust: the override file ``manifests/projection-overrides.toml`` > the container's
spherical metadata > a pixel detector > the upstream label. Every source's answer is recorded.

Pixel cues (SPEC section 3), each a ratio against the image's own typical neighbour difference so it does not
depend on contrast:

* wrap: in ER the first and last columns are neighbours on the sphere (left/right wrap continuity);
  in EAC they belong to different faces.
* poles: in ER the top and bottom rows are single points (the poles), so each row is nearly uniform;
  in EAC they are face edges with ordinary image content.
* seam: in EAC the two face rows meet at H/2 with a strong discontinuity; in ER row H/2 is the horizon, an
  ordinary row.

The 1/3 and 2/3 column seams are not used (unreliable). Scores are averaged over several frames.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.ids import validate_id
from pipelines.manifests import MANIFEST_DIR

LABELS = ("ER", "EAC")
OVERRIDES_PATH = MANIFEST_DIR / "projection-overrides.toml"

# Decision thresholds on the averaged cues (see frame_cues for the ranges measured on synthetic ER/EAC frames:
# this project's test scenes with sharp horizons and the synthetic world's smooth ones).
WRAP_EAC_RATIO = 1.0
POLE_EAC_RATIO = 0.35
SEAM_EAC_RATIO = 8.0
_FLAT_STD = 2.0  # grey-level standard deviation under which a frame has too little content to judge


class OverrideError(ValueError):
    """The override file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Detection:
    """The pixel detector's answer: ``label`` is None when the frames carry too little texture to judge."""

    label: str | None
    scores: dict[str, float]
    votes: dict[str, str | None]
    n_frames: int


@dataclass(frozen=True)
class ProjectionDecision:
    video_id: str
    final: str
    source: str  # override | metadata | detector | upstream | default
    upstream: str | None
    metadata: str | None
    detector: str | None
    detector_scores: dict[str, float] = field(default_factory=dict)
    override: str | None = None
    override_reason: str | None = None

    @property
    def differs_from_upstream(self) -> bool:
        return self.upstream is not None and self.final != self.upstream

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_cues(frame: np.ndarray) -> dict[str, float] | None:
    """Wrap, pole and seam ratios of one [H, W, 3] frame, or None for a (nearly) featureless frame.

    * wrap: mean |first column - last column| over the mean difference of columns W/8 (45 degrees) apart. Adjacent
      columns are no yardstick: on smooth content their difference is near zero and compression noise at the
      frame edge dominates. ER ~ 0.1-0.6 (the wrap looks like neighbouring columns), EAC ~ 2-3.
    * poles: mean standard deviation of the top and bottom rows over the median row's (floor 1 grey level).
      ER ~ 0-0.15, EAC ~ 0.6-1.
    * seam: mean |row H/2-1 - row H/2| over the mean adjacent-row difference. EAC ~ 40; ER ~ 1, but a sharp
      horizon at exactly H/2 gives ER a high score too, so this cue only breaks ties.
    """
    img = np.asarray(frame, dtype=np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2)
    h, w = img.shape
    if img.std() < _FLAT_STD:
        return None
    d = max(1, w // 8)
    far_cols = float(np.abs(img[:, d:] - img[:, :-d]).mean())
    wrap = float(np.abs(img[:, 0] - img[:, -1]).mean())
    pole_std = 0.5 * (float(img[0].std()) + float(img[-1].std()))
    typical_std = float(np.median(img.std(axis=1)))
    near_rows = float(np.abs(np.diff(img, axis=0)).mean())
    seam = float(np.abs(img[h // 2 - 1] - img[h // 2]).mean())
    eps = 1e-3
    return {
        "wrap": wrap / max(far_cols, eps),
        "poles": pole_std / max(typical_std, 1.0),
        "seam": seam / max(near_rows, eps),
    }


def detect_projection(frames: list[np.ndarray]) -> Detection:
    """ER or EAC from the cues averaged over ``frames`` (majority of the three cues; None if undecidable)."""
    cues = [c for c in (frame_cues(f) for f in frames) if c is not None]
    if not cues:
        return Detection(None, {}, {}, 0)
    scores = {k: float(np.mean([c[k] for c in cues])) for k in ("wrap", "poles", "seam")}
    votes = {
        "wrap": "EAC" if scores["wrap"] > WRAP_EAC_RATIO else "ER",
        "poles": "EAC" if scores["poles"] > POLE_EAC_RATIO else "ER",
        "seam": "EAC" if scores["seam"] > SEAM_EAC_RATIO else "ER",
    }
    n_eac = sum(v == "EAC" for v in votes.values())
    return Detection("EAC" if n_eac >= 2 else "ER", scores, votes, len(cues))


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


def decide_projection(
    video_id: str,
    *,
    upstream: str | None,
    metadata: str | None,
    detection: Detection | None,
    override: Override | None = None,
) -> ProjectionDecision:
    """override > container metadata > pixel detector > upstream label (> ER when nothing is known)."""
    det_label = detection.label if detection is not None else None
    if override is not None:
        final, source = override.projection, "override"
    elif metadata is not None:
        final, source = metadata, "metadata"
    elif det_label is not None:
        final, source = det_label, "detector"
    elif upstream in LABELS:
        final, source = upstream, "upstream"
    else:
        final, source = "ER", "default"
    return ProjectionDecision(
        video_id=video_id,
        final=final,
        source=source,
        upstream=upstream,
        metadata=metadata,
        detector=det_label,
        detector_scores=dict(detection.scores) if detection is not None else {},
        override=override.projection if override is not None else None,
        override_reason=override.reason if override is not None else None,
    )
