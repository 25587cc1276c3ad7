"""The localisation error on the synthetic world: each test clip's true source azimuths come from the world's
``truth.jsonl`` (``ccs-bench run --truth``), the implied azimuth from the predicted cues is looked up in the HRIR
set that rendered the world (KEMAR at 16 kHz, ``pipelines.synth.audio.kemar_at``); see
:func:`ccstereo.spatial.localisation_error`. Only single-source clips are scored (NaN otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ccstereo.spatial import HrirCues, localisation_error
from pipelines.contract import FRAMES_PER_CLIP, SAMPLE_RATE, parse_sample_key
from pipelines.io import read_jsonl
from pipelines.synth.audio import kemar_at

# (key, prediction [2, T], ground truth [2, T]) -> LOC in degrees, NaN where it does not apply
Localiser = Callable[[str, np.ndarray, np.ndarray], float]


def read_truth(path: Path) -> list[dict[str, Any]]:
    """The world's truth records; one clear error for a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such truth file (the synthetic world's truth.jsonl)")
    try:
        records = read_jsonl(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not a truth file ({exc})") from None
    bad = [i for i, r in enumerate(records) if not {"dataset", "video_id", "sources"} <= set(r)]
    if bad:
        raise ValueError(f"{path}: record {bad[0] + 1} lacks dataset, video_id or sources (not a world truth file)")
    return records


def single_source_azimuths(records: list[dict[str, Any]], dataset: str) -> dict[str, np.ndarray]:
    """video id -> the 10 fps azimuth track of its only source, for the videos of ``dataset`` with one source."""
    return {r["video_id"]: np.asarray(r["sources"][0]["azimuth_deg"], dtype=np.float64)
            for r in records if r["dataset"] == dataset and len(r["sources"]) == 1}


def make_localiser(truth_path: Path, dataset: str) -> Localiser:
    """LOC of a test clip of ``dataset``: its sample key names the video and the clip's 10 s window."""
    tracks = single_source_azimuths(read_truth(truth_path), dataset)
    cues = HrirCues.from_hrirs(kemar_at(SAMPLE_RATE))
    per_clip = FRAMES_PER_CLIP

    def localise(key: str, pred: np.ndarray, true: np.ndarray) -> float:
        video_id, index = parse_sample_key(key)
        track = tracks.get(video_id)
        if track is None:
            return math.nan
        window = track[index * per_clip:(index + 1) * per_clip]
        return localisation_error(pred, true, window, cues) if window.size else math.nan

    return localise
