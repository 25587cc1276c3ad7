"""The recipe registry: one module per corpus; the set of dataset names is derived from it."""

from __future__ import annotations

DATASETS = ("music-stereo", "yt-music", "yt-clean", "fair-play")
