"""What every YouTube corpus shares: the per-video fetch and the decoding of the fetched file.

Fetch of one video: yt-dlp downloads it into ``media/.partial/<id>/`` (format per the spec's audio kind), the file
is probed, checked for truncation and for the streams the dataset needs, and only then renamed to
``media/<id>.<ext>`` and recorded ``done``. A refused file leaves nothing behind and is taken out of yt-dlp's
download archive; a transient failure keeps its ``.part`` file for the next run to resume. A ``.part`` that cannot
be continued (the server answers 416: it already holds the whole file, or the file changed) is deleted and the
video downloaded again from the start, at once.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.clips import VideoDropped, VideoTask
from pipelines.contract import CLIP_SECONDS, SAMPLE_RATE, DatasetLayout
from pipelines.ffmpeg import ensure_ffmpeg_on_path
from pipelines.io import sha256_file
from pipelines.lists import subset_name
from pipelines.prepare_checks import (
    check_channels,
    check_truncated,
    common_span,
    decode_or_drop,
    probe_or_drop,
    require_streams,
    video_seconds,
)
from pipelines.probe import MediaInfo, ProbeError, media_format, probe, truncation_problem
from pipelines.recipes.base import FetchOptions, Recipe, VideoFetch, done_record, failed_record
from pipelines.recipes.youtube import (
    DownloadFailed,
    YtdlpConfig,
    download_video,
    forget_in_archive,
    format_selector,
    range_refused,
)

if TYPE_CHECKING:  # annotations only: pipelines.spec imports the registry of the recipes defined with this module
    from pipelines.spec import DatasetSpec, ListFile

AMBIX_MIN_CHANNELS = 4
PARTIAL_DIR = ".partial"


class YouTubeRecipe(Recipe):
    """A corpus of YouTube videos, one media file each (``files = {"media": "media/<id>.<ext>"}``)."""

    def list_category(self, lf: ListFile) -> str | None:
        # spatialaudiogen's one-id-per-line lists are named after their subset (YT-Music, YT-Clean)
        return subset_name(lf.path) if lf.format == "id-lines" else None

    @contextmanager
    def video_fetcher(self, spec: DatasetSpec, layout: DatasetLayout, options: FetchOptions) -> Iterator[VideoFetch]:
        config = _ytdlp_config(options, layout)
        ensure_ffmpeg_on_path()
        yield lambda row: fetch_video(spec, layout, row, config, options.cancel)
        try:  # tidy: the temporary download folder goes when nothing is left in it (kept partial files stay)
            (layout.media_dir / PARTIAL_DIR).rmdir()
        except OSError:
            pass

    def usable_audio(self, task: VideoTask, result: dict[str, Any], wanted_channels: tuple[int, ...],
                     out_channels: int) -> tuple[str, MediaInfo, np.ndarray]:
        """``(path, probe, audio)``: the decoded audio of the span both streams cover (at least one clip)."""
        path = task.files["media"]
        info = probe_or_drop(path)
        require_streams(info, path)
        check_channels(info.audio.channels, wanted_channels, path)
        audio = decode_or_drop(path, info.audio.channels, out_channels, task.config.ffmpeg_threads)
        audio_s = audio.shape[1] / SAMPLE_RATE
        result["duration_s"] = audio_s
        check_truncated(path, audio_s, info, task.config.max_av_mismatch_s)
        usable_s = common_span(task.config, result, path, audio_s, video_seconds(path, info))
        if usable_s < CLIP_SECONDS:
            raise VideoDropped("too-short", f"{path}: {usable_s:.2f} s of audio and video, a clip needs "
                               f"{CLIP_SECONDS:g} s")
        return path, info, audio[:, :int(round(usable_s * SAMPLE_RATE))]


def _ytdlp_config(options: FetchOptions, layout: DatasetLayout) -> YtdlpConfig:
    config = options.ytdlp or YtdlpConfig()
    return replace(
        config,
        cookies=Path(options.cookies) if options.cookies is not None else config.cookies,
        rate_limit=options.rate_limit if options.rate_limit is not None else config.rate_limit,
        download_archive=layout.ledger_dir / "yt-dlp-archive.txt",
    )


def stream_problem(info: MediaInfo, audio_kind: str) -> str | None:
    """Why a probed download cannot count as done for a dataset whose audio is ``audio_kind``, or None.

    Stereo sets keep any channel count (prepare drops mono videos with its own reason); ambiX sets need the
    4-channel track.
    """
    if info.video is None:
        return "no video stream"
    if info.audio is None:
        return "no audio stream"
    if audio_kind == "ambix" and info.audio.channels < AMBIX_MIN_CHANNELS:
        return f"no format with {AMBIX_MIN_CHANNELS} channels (audio has {info.audio.channels})"
    return None


class _Refused(Exception):
    """A finished download that cannot count as done."""

    def __init__(self, reason_class: str, reason: str, **extra: Any):
        super().__init__(reason)
        self.reason_class = reason_class
        self.reason = reason
        self.extra = extra


def fetch_video(spec: DatasetSpec, layout: DatasetLayout, row: dict[str, Any], config: YtdlpConfig,
                cancel: threading.Event | None = None) -> dict[str, Any]:
    """Download, probe and place one video; returns its ledger record (``done`` or ``failed``). ``cancel``: see
    :func:`~pipelines.recipes.youtube.download_video`."""
    video_id = row["video_id"]  # validated when the table was built
    partial = layout.media_dir / PARTIAL_DIR / video_id
    fmt = format_selector(spec.audio, video_itag=row.get("video_itag"), audio_itag=row.get("audio_itag"))
    try:
        path = _download_or_restart(spec.media_url_for(video_id), video_id, partial, fmt, config, cancel)
    except DownloadFailed as exc:
        reason = exc.reason
        if spec.audio == "ambix" and "requested format is not available" in reason.lower():
            reason = f"no format with {AMBIX_MIN_CHANNELS} channels ({reason})"
        if exc.reason_class != "transient":  # keep a transient .part file: the next run resumes it
            shutil.rmtree(partial, ignore_errors=True)
        return failed_record(video_id, exc.reason_class, reason)
    try:
        info = _check_download(path, partial, spec.audio)
    except _Refused as refused:
        # yt-dlp archived the id when its download finished; the file is refused, so the archive forgets it
        shutil.rmtree(partial, ignore_errors=True)
        if config.download_archive is not None:
            forget_in_archive(config.download_archive, video_id)
        return failed_record(video_id, refused.reason_class, refused.reason, **refused.extra)
    return _place(layout, video_id, path, partial, info)


def _download_or_restart(url: str, video_id: str, partial: Path, fmt: str, config: YtdlpConfig,
                         cancel: threading.Event | None) -> Path:
    """:func:`download_video`; once more from nothing when yt-dlp cannot continue the ``.part`` files there."""
    try:
        return download_video(url, video_id, partial, fmt, config, cancel)
    except DownloadFailed as exc:
        if not (range_refused(exc.reason) and partial.exists()):
            raise
    shutil.rmtree(partial, ignore_errors=True)
    return download_video(url, video_id, partial, fmt, config, cancel)


def _check_download(path: Path, partial: Path, audio_kind: str) -> MediaInfo:
    try:
        info = probe(path)
    except ProbeError as exc:
        # the temporary folder means nothing to the reader of the ledger
        shown = str(exc).replace(f"{partial}/", "").replace(f"{partial.resolve()}/", "")
        raise _Refused("corrupt", f"downloaded but unreadable: {shown}") from None
    truncated = truncation_problem(path)
    if truncated is not None:
        raise _Refused("corrupt", f"downloaded but unreadable: {truncated}", format=media_format(info))
    problem = stream_problem(info, audio_kind)
    if problem is not None:
        raise _Refused("permanent", problem, format=media_format(info))
    return info


def _place(layout: DatasetLayout, video_id: str, path: Path, partial: Path, info: MediaInfo) -> dict[str, Any]:
    """Move an accepted download to ``media/<id>.<ext>`` and return its done record."""
    final = layout.media_dir / f"{video_id}{path.suffix}"
    for stale in layout.media_dir.glob(f"{video_id}.*"):  # an earlier copy with another extension
        if stale != final and stale.is_file():
            stale.unlink()
    size = path.stat().st_size
    digest = sha256_file(path)
    os.replace(path, final)
    shutil.rmtree(partial, ignore_errors=True)
    return done_record(video_id, {"media": final.relative_to(layout.base).as_posix()}, size, digest,
                       media_format(info))
