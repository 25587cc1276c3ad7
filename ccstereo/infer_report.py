"""``ccs-infer --report DIR``: the listening page of one binauralised video (the same parts as ``ccs-bench``'s
report.html, :mod:`ccstereo.listening`): a strip of input frames, the mono input, the prediction, the ground truth
and the prediction error when the video has a stereo track, with its metrics (the paper's and the spatial ones),
log-magnitude spectrograms of L - R and the ILD over time.

It reads what ``ccs-infer`` wrote (the output WAV) and decodes the video again, streaming, up to
``REPORT_MAX_SECONDS`` (a page of an hour-long video would hold an hour of audio per track).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ccstereo.listening import ClipView, esc, html_table, number_cell, render_clip, write_page
from ccstereo.metrics import METRIC_NAMES, compute_metrics
from ccstereo.spatial import SPATIAL_NAMES, UNITS
from pipelines.contract import FPS, SAMPLE_RATE
from pipelines.media import FrameSpec, MediaError, iter_audio, iter_frames
from pipelines.probe import ProbeError, probe

REPORT_MAX_SECONDS = 60.0


def _first_samples(chunks, n: int) -> np.ndarray:
    """The first ``n`` samples of a stream of ``[C, t]`` chunks, as one ``[C, <= n]`` array."""
    out, have = [], 0
    for chunk in chunks:
        out.append(chunk[:, : n - have])
        have += out[-1].shape[1]
        if have >= n:
            break
    return np.concatenate(out, axis=1) if out else np.zeros((0, 0), dtype=np.float32)


def _metrics_table(pred: np.ndarray, truth: np.ndarray) -> str:
    m = compute_metrics(pred, truth, spatial=True)
    names = [*METRIC_NAMES, *SPATIAL_NAMES]
    heads = [n + (f" ({UNITS[n]})" if UNITS.get(n) else "") + ("†" if n in SPATIAL_NAMES else "") for n in names]
    return (html_table(["against the video's own stereo track", *heads],
                       [["prediction", *(number_cell(m[n]) for n in names)]])
            + '<p class="legend">† beyond the paper: ILD, ITD, IC errors and SWAP (the STFT distance with the '
              "predicted channels swapped; equal to STFT when the prediction cannot tell left from right).</p>")


def write_infer_report(video: Path, prediction_wav: Path, report_dir: Path, settings: Mapping[str, Any]) -> Path:
    """``report_dir/report.html`` (+ ``listen/``) for ``video`` and its binauralised ``prediction_wav``."""
    try:
        info = probe(video)
    except ProbeError as exc:
        raise ValueError(str(exc)) from None
    channels = info.audio.channels if info.audio is not None else 0
    if channels not in (1, 2):
        raise ValueError(f"{video}: a report needs mono or stereo audio, the file has {channels} channel(s)")
    pred, rate = sf.read(prediction_wav, dtype="float32", always_2d=True, frames=int(REPORT_MAX_SECONDS * SAMPLE_RATE))
    if rate != SAMPLE_RATE or pred.shape[1] != 2:
        raise ValueError(f"{prediction_wav}: not a 16 kHz 2-channel ccs-infer output")
    pred = pred.T
    try:
        audio = _first_samples(iter_audio(video, in_channels=channels, out_channels=channels), pred.shape[1])
        frames = list(iter_frames(video, FrameSpec(), max_frames=int(np.ceil(pred.shape[1] / SAMPLE_RATE * FPS))))
    except MediaError as exc:
        raise ValueError(str(exc)) from None
    n = min(pred.shape[1], audio.shape[1])
    pred, audio = pred[:, :n], audio[:, :n]
    truth = audio if channels == 2 else None
    mono = audio[0] + audio[1] if channels == 2 else 2 * audio[0]
    shown = f"the first {n / SAMPLE_RATE:.2f} s" + (" (the page stops at 60 s)" if n >= REPORT_MAX_SECONDS * SAMPLE_RATE
                                                     else "")
    view = ClipView(slug="video", title=f"{video.name}: {shown}", frames=frames, mono=mono, truth=truth,
                    predictions={"ccs-infer": pred},
                    metrics_html=_metrics_table(pred, truth) if truth is not None and n > 1 else "")
    body = [html_table(["setting", "value"], [[k, str(v)] for k, v in settings.items()], note_column=1)]
    if truth is None:
        body.append(f'<p class="legend">{esc(video.name)} has mono audio: no ground truth to compare with.</p>')
    body.append(render_clip(view, report_dir))
    return write_page(report_dir / "report.html", f"ccs-infer: {video.name}", "\n".join(body))
