"""FAIR-Play: 1,871 ten-second clips recorded with a binaural dummy head, published as archives.

Acquisition: the videos, binaural audios and splits archives are downloaded with Range resume (``If-Range``: a
changed upstream file starts over) into ``archives/`` and extracted into ``media/``. ``ledger/archives.jsonl``
records each archive's bytes and sha256 when its download completes (``downloaded``) and again when it is extracted;
an archive found on disk is used only if its sha256 is the recorded one (or the spec's pin). An archive that fails
its checksum or its extraction is moved to ``archives/rejected/`` with a ``rejected`` record naming the reason, and
downloaded again (at once if it was an older copy, else on the next run). To pin an archive, copy the sha256 of its
``extracted`` record into the spec's ``[[archives]]`` entry (``sha256 = "..."``). Extraction caps each member's and
the archive's total size (``SIZE_CAPS``). Lists: the
PseudoBinaural 5-split text lists from the spec plus the original 10-split HDF5 lists from the splits archive
(dataset ``audio`` = wav paths; the clip id is the basename without extension). A clip is a pair
``media/videos/NNNNNN.mp4`` + ``media/binaural_audios/NNNNNN.wav``; prepare cuts exactly one clip from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from tqdm import tqdm

from pipelines.archives import ArchiveError, ExtractResult, safe_extract
from pipelines.clips import ClipSource, VideoDropped, VideoTask
from pipelines.contract import CLIP_SAMPLES, CLIP_SECONDS, SAMPLE_RATE, SPLIT_PARTS, DatasetLayout
from pipelines.http import DownloadError, download_with_resume, part_path, validators_path
from pipelines.io import Ledger, sha256_file, utc_now
from pipelines.lists import ListFormatError, SplitList, VideoTable, strip_extension
from pipelines.media import FrameSpec
from pipelines.prepare_checks import check_channels, decode_or_drop, probe_or_drop, video_seconds
from pipelines.probe import MediaInfo, ProbeError, media_format, probe, truncation_problem
from pipelines.recipes.base import (
    FetchNetworkError,
    FetchOptions,
    FetchSetupError,
    Recipe,
    VideoFetch,
    done_record,
    failed_record,
)

if TYPE_CHECKING:  # annotations only: pipelines.spec imports the registry of the recipes defined with this module
    from pipelines.spec import Archive, DatasetSpec

# What each archive may contain (member names relative to the extraction folder ``media/``).
MEMBERS = {
    "videos": re.compile(r"^videos/\d{6}\.mp4$"),
    "audios": re.compile(r"^binaural_audios/\d{6}\.wav$"),
    "splits": re.compile(r"^splits/split\d{1,2}/(train|val|test)\.h5$"),
}
MEMBER_EXAMPLES = {"videos": "videos/000001.mp4", "audios": "binaural_audios/000001.wav",
                   "splits": "splits/split1/train.h5"}
PAD_S = 0.1  # a clip's audio may be up to this much short of 10 s (container rounding); it is zero-padded
# (largest member, all members) an archive may expand to: the real clips are a few MB each, 1,871 of them
SIZE_CAPS = {"videos": (1 << 30, 128 << 30), "audios": (256 << 20, 32 << 30), "splits": (64 << 20, 1 << 30)}
REJECTED_DIR = "rejected"


class FairPlay(Recipe):
    media_roles = ("video", "audio")

    def acquire(self, spec: DatasetSpec, layout: DatasetLayout, options: FetchOptions) -> list[dict[str, Any]]:
        return fetch_archives(spec, layout, rate_limit=options.rate_limit, progress=options.progress)

    def video_table(self, spec: DatasetSpec, layout: DatasetLayout) -> VideoTable:
        return self.table_from_lists(spec, layout, read_h5_protocol_lists(spec, layout))

    @contextmanager
    def video_fetcher(self, spec: DatasetSpec, layout: DatasetLayout, options: FetchOptions) -> Iterator[VideoFetch]:
        yield lambda row: check_clip(layout, row["video_id"])

    def clip_source(self, task: VideoTask, result: dict[str, Any]) -> ClipSource:
        video, audio = task.files["video"], task.files["audio"]
        vinfo = probe_or_drop(video)
        if vinfo.video is None:
            raise VideoDropped("no-video", f"{video}: no video stream")
        ainfo = probe_or_drop(audio)
        if ainfo.audio is None:
            raise VideoDropped("no-audio", f"{audio}: no audio stream")
        check_channels(ainfo.audio.channels, (2,), audio)
        stereo = decode_or_drop(audio, 2, 2, task.config.ffmpeg_threads)
        audio_s = stereo.shape[1] / SAMPLE_RATE
        video_s = video_seconds(video, vinfo)
        if video_s is not None and abs(video_s - audio_s) > task.config.max_av_mismatch_s:
            # one clip per id: a pair whose lengths disagree this much is not a usable pair
            raise VideoDropped("av-length-mismatch", f"{audio} lasts {audio_s:.2f} s, {video} {video_s:.2f} s")
        short = CLIP_SAMPLES - stereo.shape[1]
        if short > int(PAD_S * SAMPLE_RATE):
            raise VideoDropped("too-short", f"{audio}: {audio_s:.2f} s of audio, a clip needs {CLIP_SECONDS:g} s")
        if short > 0:
            stereo = np.pad(stereo, ((0, 0), (0, short)))
        result["duration_s"] = audio_s
        return ClipSource(stereo=stereo[:, :CLIP_SAMPLES], foa=None, frames_path=video, frame_spec=FrameSpec(),
                          path=audio)


# ------------------------------------------------------------------------------------------------ archives


def archive_member(contents: str, name: str) -> str | None:
    """Where an archive member goes under ``media/`` (None: not an expected member).

    Members are expected as ``videos/NNNNNN.mp4`` etc.; one extra leading folder (an archive packed from above,
    e.g. ``FAIR-Play/videos/000001.mp4``) is dropped rather than turning every clip into a missing one.
    """
    pattern = MEMBERS[contents]
    if pattern.match(name):
        return name
    head, _, rest = name.partition("/")
    return rest if head and pattern.match(rest) else None


def fetch_archives(spec: DatasetSpec, layout: DatasetLayout, *, rate_limit: int | None = None,
                   progress: bool = False) -> list[dict[str, Any]]:
    """Download (with resume) and extract every archive of ``spec``; returns one status record per archive.

    An archive recorded as extracted in ``ledger/archives.jsonl`` is neither requested nor extracted again.
    Raises :class:`FetchSetupError` after recording a failed archive (a rerun resumes its ``.part`` file, or
    downloads a rejected archive again).
    """
    ledger = Ledger(layout.ledger("archives"))
    latest = ledger.latest("archive")
    out = []
    errors: list[DownloadError | ArchiveError] = []
    for ar in spec.archives:
        prev = latest.get(ar.name)
        if prev and prev.get("status") == "extracted" and (ar.sha256 is None or prev.get("sha256") == ar.sha256):
            out.append({**prev, "status": "extracted earlier"})
            continue
        try:
            rec = _fetch_archive(ar, layout, ledger, prev, rate_limit, progress)
        except (DownloadError, ArchiveError) as exc:
            transient = isinstance(exc, DownloadError) and exc.transient
            rec = {"archive": ar.name, "url": ar.url, "status": "failed",
                   "reason_class": "transient" if transient else "permanent", "reason": str(exc), "time": utc_now()}
            errors.append(exc)
        ledger.append(rec)
        out.append(rec)
    if errors:
        message = "archive download failed (rerun to resume): " + "; ".join(map(str, errors))
        if all(isinstance(e, DownloadError) and e.transient for e in errors):
            raise FetchNetworkError(message)
        raise FetchSetupError(message)
    return out


def _fetch_archive(ar: Archive, layout: DatasetLayout, ledger: Ledger, prev: dict[str, Any] | None,
                   rate_limit: int | None, progress: bool) -> dict[str, Any]:
    """Download and extract one archive; its ``extracted`` record. A copy already on disk that fails its checksum
    or its extraction is rejected and downloaded once more; a fresh download that fails is rejected and raised."""
    dest = layout.archives_dir / ar.name
    while True:
        on_disk = dest.is_file()
        try:
            if on_disk:
                digest, size = _check_on_disk(ar, dest, prev)
            else:
                digest, size = _download_archive(ar, dest, ledger, rate_limit, progress)
            return _extracted_record(ar, size, digest, _extract(ar, dest, layout, progress))
        except ArchiveError as exc:
            if dest.is_file():
                ledger.append(_reject(ar, dest, layout, str(exc)))
            if not on_disk:
                raise ArchiveError(f"{exc}; moved to {layout.archives_dir / REJECTED_DIR}, the next run downloads "
                                   "it again") from None
            prev = None  # the copy on disk is gone: download it now


def _check_on_disk(ar: Archive, dest: Path, prev: dict[str, Any] | None) -> tuple[str, int]:
    """``(sha256, bytes)`` of a complete archive left by an earlier run, if it is the one that run recorded (or
    the spec pins); :class:`ArchiveError` otherwise."""
    digest = sha256_file(dest)
    expected = ar.sha256 or (prev or {}).get("sha256")
    if expected is None:
        raise ArchiveError(f"{dest}: no sha256 recorded for this copy (the record of its download is missing)")
    if digest != expected:
        source = "the spec's" if ar.sha256 else "the one recorded when it was downloaded"
        raise ArchiveError(f"{dest}: sha256 {digest} differs from {source} ({expected})")
    return digest, dest.stat().st_size


def _extract(ar: Archive, dest: Path, layout: DatasetLayout, progress: bool) -> ExtractResult:
    max_member, max_total = SIZE_CAPS[ar.contents]
    with tqdm(desc=f"extract {ar.name}", unit="file", disable=not progress, dynamic_ncols=True) as bar:
        result = safe_extract(dest, layout.media_dir, accept=lambda name: archive_member(ar.contents, name),
                              on_member=lambda _name: bar.update(1), max_member_bytes=max_member,
                              max_total_bytes=max_total)
    if not result.extracted:
        shown = ", ".join(n for n, _ in result.skipped[:5]) or "nothing"
        raise ArchiveError(f"{dest}: no member looks like FAIR-Play {ar.contents} "
                           f"(expected e.g. {MEMBER_EXAMPLES[ar.contents]}; found {shown})")
    return result


def _reject(ar: Archive, dest: Path, layout: DatasetLayout, reason: str) -> dict[str, Any]:
    """Move a bad archive out of the way (kept for a look, replaced by the next rejected copy); its record."""
    rejected = layout.archives_dir / REJECTED_DIR / ar.name
    rejected.parent.mkdir(parents=True, exist_ok=True)
    os.replace(dest, rejected)
    return {"archive": ar.name, "url": ar.url, "status": "rejected", "reason": reason,
            "moved_to": rejected.relative_to(layout.base).as_posix(), "time": utc_now()}


def _download_archive(ar: Archive, dest: Path, ledger: Ledger, rate_limit: int | None,
                      progress: bool) -> tuple[str, int]:
    """``(sha256, bytes)`` of the archive downloaded (or resumed) to ``dest``; its ``downloaded`` record is in the
    ledger before the file has its name."""
    have = part_path(dest).stat().st_size if part_path(dest).exists() and validators_path(dest).exists() else 0
    with tqdm(desc=f"download {ar.name}", unit="B", unit_scale=True, initial=have, disable=not progress,
              dynamic_ncols=True) as bar:
        res = download_with_resume(ar.url, dest, expected_sha256=ar.sha256, rate_limit=rate_limit,
                                   on_bytes=bar.update,
                                   before_rename=lambda r: ledger.append(_downloaded_record(ar, r.bytes, r.sha256)))
    return res.sha256, res.bytes


def _downloaded_record(ar: Archive, size: int, digest: str) -> dict[str, Any]:
    return {"archive": ar.name, "url": ar.url, "status": "downloaded", "bytes": size, "sha256": digest,
            "sha256_pinned": ar.sha256 is not None, "time": utc_now()}


def _extracted_record(ar: Archive, size: int, digest: str, result: ExtractResult) -> dict[str, Any]:
    return {
        "archive": ar.name,
        "url": ar.url,
        "status": "extracted",
        "bytes": size,
        "sha256": digest,
        "sha256_pinned": ar.sha256 is not None,
        "contents": ar.contents,
        "members": len(result.extracted),
        "skipped_members": [f"{n} ({why})" for n, why in result.skipped[:50]],
        "time": utc_now(),
    }


# ------------------------------------------------------------------------------------------------ lists


def read_h5_list(path: str | Path) -> list[str]:
    """Clip ids of a 10-split HDF5 list (dataset ``audio``: wav paths; id = basename sans extension)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as fh:
            if "audio" not in fh:
                raise ListFormatError(f"{path}: no dataset 'audio' (keys: {', '.join(fh.keys())})")
            values = fh["audio"][()]
    except OSError as exc:
        raise ListFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    out = []
    for v in values.reshape(-1):
        s = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        out.append(strip_extension(PurePosixPath(s.strip()).name))
    return out


def read_h5_protocol_lists(spec: DatasetSpec, layout: DatasetLayout) -> list[SplitList]:
    """Raw clip ids of every ``fairplay-h5`` protocol list, read from the extracted splits archive."""
    out = []
    for proto in spec.protocols:
        if proto.kind != "fairplay-h5":
            continue
        for split in proto.splits:
            for part in SPLIT_PARTS:
                path = layout.media_dir / proto.pattern.format(split=split, part=part)
                if not path.is_file():
                    raise FetchSetupError(
                        f"protocol {proto.name}: split list {path} is missing from the extracted splits archive"
                    )
                out.append(SplitList(proto.name, split, part, f"{proto.name}/{split}/{part}.h5", read_h5_list(path)))
    return out


# ------------------------------------------------------------------------------------------------ clips


def clip_files(video_id: str) -> dict[str, str]:
    return {"video": f"media/videos/{video_id}.mp4", "audio": f"media/binaural_audios/{video_id}.wav"}


def check_clip(layout: DatasetLayout, video_id: str) -> dict[str, Any]:
    """Check that clip ``video_id`` was extracted (video + binaural wav) and that both files probe."""
    files = clip_files(video_id)
    missing = [rel for rel in files.values() if not (layout.base / rel).is_file()]
    if missing:
        return failed_record(video_id, "permanent", f"clip {video_id} is listed but missing from the archives: "
                             + ", ".join(missing))
    try:
        vinfo = probe(layout.base / files["video"])
        ainfo = probe(layout.base / files["audio"])
    except ProbeError as exc:
        return failed_record(video_id, "corrupt", f"extracted but unreadable: {exc}")
    for rel in files.values():
        truncated = truncation_problem(layout.base / rel)
        if truncated is not None:
            return failed_record(video_id, "corrupt", f"{rel}: {truncated}")
    if vinfo.video is None:
        return failed_record(video_id, "permanent", f"{files['video']}: no video stream")
    if ainfo.audio is None:
        return failed_record(video_id, "permanent", f"{files['audio']}: no audio stream")
    fmt = media_format(MediaInfo(vinfo.path, vinfo.container, ainfo.duration_s, vinfo.video, ainfo.audio))
    return done_record(video_id, files, sum((layout.base / rel).stat().st_size for rel in files.values()),
                       {k: sha256_file(layout.base / rel) for k, rel in files.items()}, fmt)


FAIR_PLAY = FairPlay("fair-play")
