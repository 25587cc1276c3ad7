"""The per-video checks of prepare, shared by the recipes: each raises :class:`~pipelines.clips.VideoDropped` with its
documented reason (``corrupt``, ``no-audio``, ``no-video``, ``mono``, ``unexpected-channels``,
``av-length-mismatch``, ``too-short``, ``non-binaural``) and a message naming the file.

Audio/video length policy: a mismatch of more than ``max_av_mismatch_s`` (1 s) is recorded as the video's reason
``av-length-mismatch`` and clips are cut only from the span both streams cover (both start at t = 0), so no clip
pairs sound with missing pictures; ``PrepareConfig.drop_av_mismatch`` drops such videos instead (FAIR-Play pairs
are always dropped: one clip per id).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.clips import PrepareConfig, VideoDropped
from pipelines.media import MediaError, decode_audio, packet_durations
from pipelines.probe import MediaInfo, ProbeError, probe


def probe_or_drop(path: str) -> MediaInfo:
    try:
        return probe(path)
    except ProbeError as exc:
        raise VideoDropped("corrupt", str(exc)) from None


def require_streams(info: MediaInfo, path: str) -> None:
    """A YouTube download must hold both an audio and a video stream."""
    if info.audio is None:
        raise VideoDropped("no-audio", f"{path}: no audio stream")
    if info.video is None:
        raise VideoDropped("no-video", f"{path}: no video stream")


def check_channels(channels: int, wanted: tuple[int, ...], path: str) -> None:
    if channels in wanted:
        return
    if channels == 1:
        raise VideoDropped("mono", f"{path}: the audio stream has 1 channel")
    raise VideoDropped("unexpected-channels", f"{path}: the audio stream has {channels} channels, expected "
                       f"{' or '.join(map(str, wanted))}")


def decode_or_drop(path: str, in_channels: int, out_channels: int, threads: int | None) -> np.ndarray:
    try:
        audio = decode_audio(path, in_channels=in_channels, out_channels=out_channels, threads=threads)
    except MediaError as exc:
        raise VideoDropped("corrupt", str(exc)) from None
    if audio.shape[1] == 0:
        raise VideoDropped("corrupt", f"{path}: the audio stream decodes to no samples")
    return audio


def declared_video_seconds(info: MediaInfo) -> float | None:
    if info.video is not None and info.video.duration_s:
        return float(info.video.duration_s)
    return float(info.duration_s) if info.duration_s else None


def declared_audio_seconds(info: MediaInfo) -> float | None:
    """The audio stream's own declared length (not the container's, which is the longest stream's)."""
    if info.audio is not None and info.audio.duration_s:
        return float(info.audio.duration_s)
    return None


def video_seconds(path: str, info: MediaInfo) -> float | None:
    """The video stream's length: declared per stream (mp4), else measured from its packets (mkv/webm)."""
    if info.video is not None and info.video.duration_s:
        return float(info.video.duration_s)
    try:
        return packet_durations(path)["video"]
    except MediaError as exc:
        raise VideoDropped("corrupt", str(exc)) from None


def check_truncated(path: str, audio_s: float, info: MediaInfo, tolerance_s: float) -> None:
    declared = declared_audio_seconds(info)
    if declared is not None and declared - audio_s > tolerance_s:
        raise VideoDropped("corrupt", f"{path}: truncated: decoded {audio_s:.2f} s of audio, the container "
                           f"declares {declared:.2f} s")


def common_span(config: PrepareConfig, result: dict[str, Any], path: str, audio_s: float,
                video_s: float | None) -> float:
    """Seconds of audio to cut clips from; records an audio/video length mismatch (policy: module docstring)."""
    if video_s is None or abs(video_s - audio_s) <= config.max_av_mismatch_s:
        return audio_s
    detail = (f"{path}: audio lasts {audio_s:.2f} s, video {video_s:.2f} s (more than "
              f"{config.max_av_mismatch_s:g} s apart)")
    if config.drop_av_mismatch:
        raise VideoDropped("av-length-mismatch", detail)
    result["reason"] = "av-length-mismatch"
    result["detail"] = f"{detail}; clips cut from the first {min(audio_s, video_s):.2f} s only"
    return min(audio_s, video_s)


def check_binaural(lr_diff: float, min_lr_diff: float, path: str) -> None:
    """The non-binaural filter (SPEC section 3), applied whenever the threshold is above 0."""
    if min_lr_diff > 0 and lr_diff < min_lr_diff:
        raise VideoDropped("non-binaural", f"{path}: mean |L-R| = {lr_diff:.3g} is below "
                           f"{min_lr_diff:g} (left and right carry the same signal)")
