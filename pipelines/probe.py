"""Probing media files with PyAV (there is no ffprobe on these machines) and ffmpeg's stream report: what a file
holds, the ``format`` field fetch records for it, and whether a download was cut short."""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from pipelines.ffmpeg import ffmpeg_exe

# a file whose packets end earlier than its header's duration by more than this is a cut-short download
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_FRACTION = 0.02


class ProbeError(RuntimeError):
    """The file cannot be opened as media; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float | None


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    channels: int
    sample_rate: int
    layout: str
    duration_s: float | None


@dataclass(frozen=True)
class MediaInfo:
    path: str
    container: str
    duration_s: float | None
    video: VideoInfo | None
    audio: AudioInfo | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe(path: str | Path) -> MediaInfo:
    """Container, duration and the first video and audio stream of ``path``.

    Raises :class:`ProbeError` if the container cannot be read (missing, truncated header, not media).
    """
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            duration = container.duration / 1e6 if container.duration else None
            video = audio = None
            for stream in container.streams:
                if stream.type == "video" and video is None:
                    cc = stream.codec_context
                    rate = stream.average_rate or stream.guessed_rate
                    video = VideoInfo(
                        codec=cc.name,
                        width=int(cc.width),
                        height=int(cc.height),
                        fps=float(rate) if rate else 0.0,
                        duration_s=_stream_duration(stream),
                    )
                elif stream.type == "audio" and audio is None:
                    cc = stream.codec_context
                    audio = AudioInfo(
                        codec=cc.name,
                        channels=len(cc.layout.channels),
                        sample_rate=int(cc.sample_rate),
                        layout=cc.layout.name,
                        duration_s=_stream_duration(stream),
                    )
            fmt = container.format.name
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ProbeError(f"{path}: cannot be read as media ({exc})") from None
    return MediaInfo(str(path), fmt, duration, video, audio)


def media_format(info: MediaInfo) -> dict[str, Any]:
    """The ``format`` field of a done fetch record (docs/ARCHITECTURE.md)."""
    v, a = info.video, info.audio
    return {
        "container": info.container,
        "duration_s": info.duration_s,
        "vcodec": v.codec if v else None,
        "width": v.width if v else None,
        "height": v.height if v else None,
        "fps": v.fps if v else None,
        "acodec": a.codec if a else None,
        "channels": a.channels if a else None,
        "sample_rate": a.sample_rate if a else None,
    }


def truncation_problem(path: str | Path) -> str | None:
    """Why a file whose header probes fine is still cut short, or None.

    Demuxes every packet (no decoding: fast) and compares the span the packets cover with the duration the
    container header announces. A download cut mid-file keeps a valid Matroska/WebM header, so probing alone
    would count it as done.
    """
    try:
        with av.open(str(path)) as container:
            announced = container.duration / 1e6 if container.duration else None
            first, last = None, None
            for packet in container.demux():
                if packet.pts is None or packet.stream.type not in ("audio", "video"):
                    continue
                start = float(packet.pts * packet.time_base)
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                first = start if first is None else min(first, start)
                last = end if last is None else max(last, end)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return f"demuxing failed ({exc})"
    if first is None:
        return "no audio or video packets"
    if announced is None:
        return None
    covered = last - first
    if covered < announced - max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * announced):
        return f"truncated: packets cover {covered:.2f} s of the {announced:.2f} s the container announces"
    return None


def _stream_duration(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


_SPHERICAL_RE = re.compile(r"spherical(?: mapping)?:\s*([a-z_ ]+?)(?:\s*\(|,|$)", re.IGNORECASE | re.MULTILINE)


def spherical_projection(path: str | Path) -> str | None:
    """The container's spherical-video projection (``equirectangular``, ``cubemap``, ``eac``...), or None.

    ffmpeg reports the spherical side data (Google's spatial-media metadata) in its stream listing, which PyAV
    does not expose; ``ffmpeg -i`` with no output prints that listing and exits non-zero by design.
    """
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    match = _SPHERICAL_RE.search(proc.stderr.decode("utf-8", "replace"))
    return match.group(1).strip().lower() if match else None
