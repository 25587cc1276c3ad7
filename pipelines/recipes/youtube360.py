"""YT-MUSIC and YT-CLEAN: the 360 videos of spatialaudiogen with first-order ambisonic (ambiX) audio.

One module, two registered recipes: the sets differ only in their lists. Lists: one id per line per subset and
split (the category is the subset), plus the format tables (upstream projection EAC/ER, stereoscopic layout,
itags, ambisonic layout WXYZ/WXY). Fetch: the 360 video stream plus the 4-channel audio (a download with fewer
channels is refused). Prepare: the projection is decided (override, container metadata, the upstream label
unless the pixel detector is confident it is wrong), frames are turned into 480x240 equirectangular, and the FOA
is decoded to binaural (magLS or 8 virtual loudspeakers with the chosen HRIRs); the 4-channel clip is kept as
``<key>.foa.flac``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.ambisonics import apply_filters, decoder_filters
from pipelines.clips import ClipSource, PrepareConfig, VideoTask
from pipelines.contract import CLIP_SECONDS
from pipelines.media import FrameSpec, grab_frames
from pipelines.prepare_checks import declared_video_seconds
from pipelines.probe import MediaInfo, spherical_projection
from pipelines.projection import (
    DETECT_HEIGHT,
    DETECT_WIDTH,
    Override,
    ProjectionDecision,
    decide_projection,
    detect_projection,
    load_overrides,
    metadata_label,
)
from pipelines.recipes.youtube_common import YouTubeRecipe

DETECTOR_FRAMES = 12  # frames sampled across a 360 video for the projection detector


class Youtube360(YouTubeRecipe):
    has_360_video = True

    def fingerprint(self, config: PrepareConfig) -> dict[str, Any]:
        return {**super().fingerprint(config), "decoder": config.decoder, "hrir": config.hrir,
                "keep_foa": config.keep_foa}

    def check_settings(self, config: PrepareConfig) -> None:
        # fail fast on a bad --hrir (load_sofa validates the file) or decoder, before any video is touched
        filters = _decoder_filters(config.decoder, config.hrir)
        if not np.isfinite(filters).all():
            raise ValueError(f"{config.hrir}: the {config.decoder} decoder built from these HRIRs is not finite")

    def load_overrides(self, path: str | Path | None) -> dict[str, Override]:
        return load_overrides(path)

    def clip_source(self, task: VideoTask, result: dict[str, Any]) -> ClipSource:
        # ambiX: 4 channels (W, Y, Z, X), or 3 (horizontal only; prepare inserts a silent Z)
        path, info, foa = self.usable_audio(task, result, wanted_channels=(3, 4), out_channels=4)
        top_bottom = task.stereo_layout == "STEREO"
        decision = _decide_projection(task, path, info, top_bottom)
        result["projection"] = decision.as_dict()
        result["decoder"], result["hrir"] = task.config.decoder, task.config.hrir
        stereo = apply_filters(foa, _decoder_filters(task.config.decoder, task.config.hrir)).astype(np.float32)
        frame_spec = FrameSpec(projection=decision.final, top_bottom_stereo=top_bottom)
        return ClipSource(stereo=stereo, foa=foa, frames_path=path, frame_spec=frame_spec, path=path)


@lru_cache(maxsize=4)
def _decoder_filters(decoder: str, hrir: str) -> np.ndarray:
    # lazy: pipelines.hrir imports scipy.signal, which adds about 1 s to every ccs-data call (-X importtime),
    # and only prepare on a 360 set needs HRIRs
    from pipelines.hrir import load_hrirs

    return decoder_filters(decoder, load_hrirs(hrir))


def _decide_projection(task: VideoTask, path: str, info: MediaInfo, top_bottom: bool) -> ProjectionDecision:
    duration = declared_video_seconds(info) or CLIP_SECONDS
    # spread over the video, away from the very start and end (fades, black frames)
    times = [duration * (i + 0.5) / DETECTOR_FRAMES for i in range(DETECTOR_FRAMES)]
    frames = grab_frames(path, times, width=DETECT_WIDTH, height=DETECT_HEIGHT, top_bottom_stereo=top_bottom)
    detection = detect_projection(frames)
    override = Override(*task.override) if task.override else None
    return decide_projection(task.video_id, upstream=task.upstream_projection,
                             metadata=metadata_label(spherical_projection(path)), detection=detection,
                             override=override)


YT_MUSIC = Youtube360("yt-music")
YT_CLEAN = Youtube360("yt-clean")
