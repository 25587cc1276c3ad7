"""Validation of ids that come from upstream lists before they become file names."""

from __future__ import annotations

import re

YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
CLIP6_RE = re.compile(r"^\d{6}$")


class InvalidId(ValueError):
    """An id from a list is not of the dataset's id format (and must never become a path)."""


def validate_id(video_id: str, id_format: str) -> str:
    """Return ``video_id`` unchanged if it matches ``id_format`` (``youtube`` or ``clip6``), else raise."""
    pattern = {"youtube": YOUTUBE_ID_RE, "clip6": CLIP6_RE}.get(id_format)
    if pattern is None:
        raise ValueError(f"unknown id format {id_format!r}")
    if not isinstance(video_id, str) or not pattern.match(video_id):
        shown = video_id if isinstance(video_id, str) and len(video_id) <= 40 else repr(video_id)[:40] + "..."
        what = "11 characters of [A-Za-z0-9_-]" if id_format == "youtube" else "6 digits"
        raise InvalidId(f"invalid {id_format} id {shown!r}: expected {what}")
    return video_id
