"""Signal and storage conventions shared by every stage (SPEC sections 2, 6, 9).

Every module imports these names; none retypes the numbers.
"""

from __future__ import annotations

import re

# Audio
SAMPLE_RATE = 16_000
CLIP_SECONDS = 10.0
CLIP_SAMPLES = 160_000  # CLIP_SECONDS * SAMPLE_RATE
SEGMENT_SAMPLES = 10_080  # 0.63 s training / inference window
TARGET_RMS = 0.1  # loudness of a segment (training) or of a window's mono (inference)
SILENCE_RMS = 1e-4  # clips quieter than this are digital silence and dropped

# Video
FPS = 10
FRAMES_PER_CLIP = 100  # CLIP_SECONDS * FPS
FRAME_WIDTH = 480
FRAME_HEIGHT = 240
CROP_WIDTH = 448
CROP_HEIGHT = 224
JPEG_QUALITY = 90

# STFT (periodic Hann window, centered)
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_FREQ = N_FFT // 2 + 1  # 257
N_SEGMENT_FRAMES = SEGMENT_SAMPLES // HOP_LENGTH + 1  # 64 STFT frames per segment

# Inference
INFER_HOP_SAMPLES = 1_600  # 0.1 s (paper text); the official code uses 1,008, 2.5D uses 800

# Data cleaning
MIN_LR_DIFF = 0.001  # MUSIC-Stereo non-binaural filter on mean |L - R|

# Shards
PIPELINE_VERSION = "1"
SHARD_PATTERN = "{dataset}-{index:06d}.tar"
DATASETS = ("music-stereo", "yt-music", "yt-clean", "fair-play")

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+_\d{4}$")


def sample_key(video_id: str, clip_index: int) -> str:
    """Key of clip ``clip_index`` of ``video_id``; keys never contain a dot (WebDataset splits there)."""
    if "." in video_id or "/" in video_id:
        raise ValueError(f"video id {video_id!r} cannot form a sample key (contains '.' or '/')")
    if not 0 <= clip_index <= 9999:
        raise ValueError(f"clip index {clip_index} out of range 0..9999")
    return f"{video_id}_{clip_index:04d}"


def parse_sample_key(key: str) -> tuple[str, int]:
    """Inverse of :func:`sample_key`."""
    if not _KEY_RE.match(key):
        raise ValueError(f"malformed sample key {key!r}")
    video_id, index = key.rsplit("_", 1)
    return video_id, int(index)


def frame_member(index: int) -> str:
    """WebDataset member extension of frame ``index`` of a clip (``f000.jpg`` .. ``f099.jpg``)."""
    return f"f{index:03d}.jpg"


AUDIO_MEMBER = "audio.flac"
FOA_MEMBER = "foa.flac"
META_MEMBER = "json"
