"""yt-dlp used as a library (shared by the YouTube recipes): format choice per SPEC 4, explicit retries, download
archive, error classes.

Format choice
  * ``stereo`` (MUSIC): the best video plus the best audio with at most 2 channels; ``[audio_channels<=?2]``
    keeps a 4-channel track from ever being picked (``?`` admits formats whose channel count is unknown, e.g.
    a direct file link; the downloaded file is probed afterwards anyway).
  * ``ambix`` (YT-MUSIC, YT-CLEAN): the 360 video stream (the upstream itag first when the format table names
    one) plus the 4-channel ambisonic audio (itag 338 opus first, then any ``audio_channels>=4``).

Every failure becomes a :class:`DownloadFailed` with a reason class (``permanent`` or ``transient``) decided
from yt-dlp's message by :func:`classify_error`.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.ffmpeg import ensure_ffmpeg_on_path
from pipelines.io import atomic_write_text

AMBIX_AUDIO_ITAG = 338  # 4-channel opus (SPEC 4)


class DownloadFailed(RuntimeError):
    """A video could not be downloaded; ``reason_class`` is ``permanent`` or ``transient``."""

    def __init__(self, reason_class: str, reason: str):
        super().__init__(reason)
        self.reason_class = reason_class
        self.reason = reason


@dataclass(frozen=True)
class YtdlpConfig:
    """yt-dlp options the project sets explicitly (the library's default is 0 retries)."""

    retries: int = 10
    fragment_retries: int = 10
    extractor_retries: int = 3
    socket_timeout_s: float = 30.0
    cookies: Path | None = None
    rate_limit: int | None = None  # bytes per second
    download_archive: Path | None = None
    merge_output_format: str = "mkv"  # holds any codec pair YouTube serves (vp9/av1/h264 + opus/aac)


def format_selector(audio: str, *, video_itag: int | None = None, audio_itag: int | None = None) -> str:
    """yt-dlp format string for a dataset's audio kind (``stereo`` or ``ambix``), alternatives in order."""
    if audio == "stereo":
        return "bv+ba[audio_channels<=?2]/b[audio_channels<=?2]"
    if audio == "ambix":
        # format_id values are quoted: unquoted digits make yt-dlp compare numbers and never match the string id
        choices = []
        a_itag = audio_itag if audio_itag is not None else AMBIX_AUDIO_ITAG
        if video_itag is not None:
            choices.append(f"bv[format_id='{video_itag}']+ba[format_id='{a_itag}'][audio_channels>=?4]")
        choices.append(f"bv+ba[format_id='{a_itag}'][audio_channels>=?4]")
        if a_itag != AMBIX_AUDIO_ITAG:
            choices.append(f"bv+ba[format_id='{AMBIX_AUDIO_ITAG}'][audio_channels>=?4]")
        choices.append("bv+ba[audio_channels>=4]")
        choices.append("b[audio_channels>=?4]")
        return "/".join(choices)
    raise ValueError(f"unknown audio kind {audio!r} (stereo | ambix)")


_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:/s)?\s*$", re.IGNORECASE)


def parse_rate(text: str | None) -> int | None:
    """``"2M"`` -> 2*1024*1024 bytes/s (K, M, G binary multiples, as yt-dlp's ``--limit-rate``)."""
    if text is None:
        return None
    m = _RATE_RE.match(text)
    if not m:
        raise ValueError(f"rate limit {text!r}: expected a number with an optional K, M or G suffix, e.g. 2M")
    value = float(m.group(1)) * 1024 ** " KMG".index((m.group(2) or " ").upper())
    if value < 1:
        raise ValueError(f"rate limit {text!r} must be at least 1 byte/s")
    return int(value)


# Checked in this order; the first match decides. Anything unrecognised is transient (retried next run).
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason_class)
    for pattern, reason_class in (
        # age-gated: no retry helps without a signed-in session (rerun with --cookies --retry-failed)
        (r"confirm your age|age[- ]restricted", "permanent"),
        # YouTube's bot check: passes with time (or cookies)
        (r"sign in to confirm", "transient"),
        (r"HTTP Error (400|404|410|451)\b", "permanent"),
        # the server sent a zero-byte file: asking again gets the same (retried with --retry-failed)
        (r"did not get any data blocks|downloaded file is empty", "permanent"),
        # 403 on media URLs is usually an expired or throttled signed URL, not a removed video
        (r"HTTP Error (401|403|408|429|5\d\d)\b", "transient"),
        (r"temporar|timed out|timeout|too many requests|connection (reset|refused|aborted)|incompleteread|"
         r"remote end closed|eof occurred|network is unreachable|name resolution", "transient"),
        (r"private video|video unavailable|is not available|has been removed|no longer available|"
         r"account .* terminated|copyright|requested format is not available|no video formats found|"
         r"unsupported url|members[- ]only|this live event|available in your country|blocked it in your country",
         "permanent"),
    )
)
# Warnings that mean yt-dlp could not see all formats (so "no such format" may be our side, not the video's)
_INCOMPLETE_FORMATS = re.compile(r"javascript|js runtime|challenge|po token|some formats may be missing", re.IGNORECASE)


_RANGE_REFUSED = re.compile(r"HTTP Error 416\b|range not satisfiable|unable to resume", re.IGNORECASE)


def range_refused(message: str) -> bool:
    """yt-dlp could not continue a ``.part`` file (416: the part is complete, or longer than the resource now)."""
    return bool(_RANGE_REFUSED.search(message))


def classify_error(message: str) -> str:
    """``permanent`` (private, removed, unavailable, geo-blocked, age-gated, 404, no such format) or
    ``transient`` (429, 403, 5xx, bot check, timeouts, anything unrecognised)."""
    for pattern, reason_class in _RULES:
        if pattern.search(message):
            return reason_class
    return "transient"


def clean_message(message: str) -> str:
    """yt-dlp's message without the ``ERROR:`` prefix and terminal colour codes, on one line."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)
    message = re.sub(r"^\s*ERROR:\s*", "", message)
    return " ".join(message.split())[:500]


class _Collector:
    """yt-dlp logger that keeps errors instead of printing them (the ledger and summary report them)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.warnings.append(clean_message(msg))

    def error(self, msg: str) -> None:
        self.errors.append(clean_message(msg))


_ARCHIVE_LOCK = threading.Lock()


def forget_in_archive(archive: Path, video_id: str) -> None:
    """Drop ``video_id``'s lines from yt-dlp's download archive, so yt-dlp downloads it again.

    The fetch ledger decides what is done; the archive mirrors it, and an id is taken out of it whenever fetch
    asks for it again (a corrupt or deleted file, ``--retry-failed``).
    """
    with _ARCHIVE_LOCK:
        if not archive.exists():
            return
        lines = archive.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [ln for ln in lines if ln.split()[-1:] != [video_id]]
        if len(kept) != len(lines):
            atomic_write_text(archive, "".join(kept))


def ytdlp_options(config: YtdlpConfig, fmt: str, outtmpl: str) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "format": fmt,
        "outtmpl": outtmpl,
        "retries": config.retries,
        "fragment_retries": config.fragment_retries,
        "extractor_retries": config.extractor_retries,
        "socket_timeout": config.socket_timeout_s,
        "merge_output_format": config.merge_output_format,
        "continuedl": True,  # resume a .part file left by an interrupted run
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "color": {"stdout": "never", "stderr": "never"},
        "overwrites": True,  # the temp folder is ours; stale finished files there are from an earlier failure
    }
    if config.cookies is not None:
        opts["cookiefile"] = str(config.cookies)
    if config.rate_limit is not None:
        opts["ratelimit"] = config.rate_limit
    if config.download_archive is not None:
        opts["download_archive"] = str(config.download_archive)
    return opts


def _stop_when(cancel: threading.Event, error: type[Exception]):
    """A yt-dlp progress hook (called for every block written) that stops the download once ``cancel`` is set."""

    def hook(_status: dict[str, Any]) -> None:
        if cancel.is_set():
            raise error("interrupted")

    return hook


def download_video(url: str, video_id: str, dest_dir: str | Path, fmt: str, config: YtdlpConfig,
                   cancel: threading.Event | None = None) -> Path:
    """Download ``url`` into ``dest_dir/<video_id>.<ext>`` with yt-dlp and return the file.

    ``video_id`` must already be validated (it becomes a file name). Raises :class:`DownloadFailed` (transient
    ``interrupted`` when ``cancel`` is set during the download: the ``.part`` file stays for the next run).
    """
    # lazy: importing yt_dlp adds about 0.2 s to every ccs-data call (0.83 -> 1.05 s for --help, measured)
    import yt_dlp

    ensure_ffmpeg_on_path()  # yt-dlp looks up plain "ffmpeg" on PATH for merging
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    logger = _Collector()
    # the folder goes into yt-dlp's output template, where '%' is a field marker: escape it
    outtmpl = str(dest_dir).replace("%", "%%") + os.sep + f"{video_id}.%(ext)s"
    opts = ytdlp_options(config, fmt, outtmpl)
    opts["logger"] = logger
    if cancel is not None:
        opts["progress_hooks"] = [_stop_when(cancel, yt_dlp.utils.DownloadCancelled)]
    private_cookies = None
    if config.cookies is not None:
        # yt-dlp writes its cookie jar back to ``cookiefile`` on close: give each download a private copy so
        # parallel downloads never write the user's file (or each other's)
        private_cookies = dest_dir / ".cookies.txt"
        shutil.copyfile(config.cookies, private_cookies)
        opts["cookiefile"] = str(private_cookies)
    if config.download_archive is not None:
        forget_in_archive(config.download_archive, video_id)
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=True)
    except yt_dlp.utils.DownloadCancelled:
        raise DownloadFailed("transient", "interrupted") from None
    except yt_dlp.utils.DownloadError as exc:
        message = clean_message(str(exc)) or (logger.errors[-1] if logger.errors else "download failed")
        reason_class = classify_error(message)
        hints = [w for w in logger.warnings if _INCOMPLETE_FORMATS.search(w)]
        if reason_class == "permanent" and "requested format is not available" in message.lower() and hints:
            # yt-dlp could not list every format (e.g. no JavaScript runtime for YouTube's challenges)
            reason_class, message = "transient", f"{message} (yt-dlp warned: {hints[0]})"
        raise DownloadFailed(reason_class, message) from None
    except (OSError, ValueError) as exc:  # network layer errors that escape yt-dlp's own handling
        raise DownloadFailed("transient", f"{type(exc).__name__}: {exc}") from None
    finally:
        if private_cookies is not None:
            private_cookies.unlink(missing_ok=True)
    if not info:
        raise DownloadFailed("transient", logger.errors[-1] if logger.errors else "yt-dlp returned no result")
    paths = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise DownloadFailed("transient", f"yt-dlp reported success but wrote no file for {video_id}")
    return paths[0]
