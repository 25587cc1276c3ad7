"""MUSIC-Stereo: the MUSIC21 solo and MUSIC duet YouTube videos with stereo audio (CCStereo Table 3).

Lists: MUSIC's JSON files (``{"videos": {"<instrument or pair>": [ids]}}``); the category is the instrument or
pair. Fetch: the best video plus the best audio with at most two channels. Prepare: the stereo track as it is,
plain frames, and the non-binaural filter (mean |L-R| below the spec's ``min_lr_diff``, 0.001: left and right carry
the same signal). Splits: 80/10/10 by video, seeded.
"""

from __future__ import annotations

from typing import Any

from pipelines.clips import ClipSource, PrepareConfig, VideoTask
from pipelines.media import FrameSpec
from pipelines.recipes.youtube_common import YouTubeRecipe


class MusicStereo(YouTubeRecipe):
    def fingerprint(self, config: PrepareConfig) -> dict[str, Any]:
        # the threshold is on record even at 0: a run with the filter off is not a run with it on
        return {**super().fingerprint(config), "min_lr_diff": config.min_lr_diff}

    def clip_source(self, task: VideoTask, result: dict[str, Any]) -> ClipSource:
        path, _, stereo = self.usable_audio(task, result, wanted_channels=(2,), out_channels=2)
        return ClipSource(stereo=stereo, foa=None, frames_path=path, frame_spec=FrameSpec(), path=path)


MUSIC_STEREO = MusicStereo("music-stereo")
