"""``ccs-data fetch``: resumable, verified acquisition of one dataset (issue 3, SPEC 3-4).

Steps, each safe to interrupt and rerun:

1. every list file of the spec is downloaded to ``lists/<path>`` and its sha256 checked before it is written
   (a file already there with the right hash is not requested again);
2. FAIR-Play only: the archives are downloaded with Range resume into ``archives/`` and extracted into ``media/``
   (``ledger/archives.jsonl`` records each archive's bytes and sha256);
3. the video table ``videos.jsonl`` is written; listed ids that fail validation get a ``failed`` /
   ``invalid-id`` record in ``ledger/fetch.jsonl`` and never become paths;
4. per video: YouTube sets download through yt-dlp into ``media/.partial/<id>/``, the file is probed, its streams
   checked, and only then renamed to ``media/<id>.<ext>`` and recorded ``done``; FAIR-Play clips are checked
   present and probed in the extracted tree.

A rerun skips ``done`` videos whose file is still there, retries ``transient`` failures, and retries
``permanent`` / ``corrupt`` ones only with ``retry_failed``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipelines.archives import (
    ArchiveError,
    download_with_resume,
    fairplay_member,
    part_path,
    safe_extract,
)
from pipelines.contract import DatasetLayout
from pipelines.ffmpeg import ensure_ffmpeg_on_path
from pipelines.io import Ledger, atomic_write_bytes, sha256_file, write_jsonl
from pipelines.lists import ListFormatError, VideoTable, build_video_table, read_h5_list, shown_id
from pipelines.probe import MediaInfo, ProbeError, probe
from pipelines.spec import PARTS, DatasetSpec
from pipelines.youtube import DownloadFailed, YtdlpConfig, download_video, forget_in_archive, format_selector

REASON_CLASSES = ("permanent", "transient", "corrupt", "invalid-id")
AMBIX_MIN_CHANNELS = 4
LIST_TIMEOUT_S = 60.0
MAX_LIST_BYTES = 64 << 20
PARTIAL_DIR = ".partial"
FAIRPLAY_EXAMPLES = {"videos": "videos/000001.mp4", "audios": "binaural_audios/000001.wav",
                     "splits": "splits/split1/train.h5"}
# a file whose packets end earlier than its header's duration by more than this is a cut-short download
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_FRACTION = 0.02


class FetchSetupError(RuntimeError):
    """Fetch cannot start or cannot go on for the whole dataset (bad list checksum, unreachable list or archive)."""


@dataclass
class FetchSummary:
    dataset: str
    listed: int = 0  # valid ids in the video table
    invalid_ids: int = 0
    selected: int = 0  # listed ids this run looked at (all, or --ids)
    skipped_done: int = 0  # already done and present: not requested
    skipped_failed: int = 0  # permanent/corrupt failures not retried (no --retry-failed)
    not_attempted: int = 0  # left for a later run by --limit
    attempted: int = 0
    newly_done: int = 0
    done: int = 0  # done after this run (listed ids)
    failed: dict[str, int] = field(default_factory=dict)  # latest outcome per listed id, by reason class
    unknown_ids: list[str] = field(default_factory=list)  # --ids not in the table
    archives: list[dict[str, Any]] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.listed - self.done

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "remaining": self.remaining}

    def lines(self) -> list[str]:
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) or "none"
        out = [
            f"{self.dataset}: {self.listed} listed, {self.done} done, {self.remaining} not done",
            f"this run: {self.attempted} attempted, {self.newly_done} newly done, "
            f"{self.skipped_done} skipped (already done), {self.skipped_failed} failed earlier and not retried "
            f"(use --retry-failed), {self.not_attempted} left by --limit",
            f"failed (latest outcome per video): {failed}",
        ]
        if self.invalid_ids:
            out.append(f"invalid ids in the upstream lists (recorded, never used as paths): {self.invalid_ids}")
        if self.unknown_ids:
            shown = " ".join(shown_id(i) for i in self.unknown_ids[:20])
            more = f" and {len(self.unknown_ids) - 20} more" if len(self.unknown_ids) > 20 else ""
            out.append(f"--ids not in the video table (ignored): {shown}{more}")
        for a in self.archives:
            out.append(f"archive {a['archive']}: {a['status']} ({a.get('bytes', '?')} bytes, sha256 {a.get('sha256')})")
        return out


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _LockedLedger:
    """The fetch ledger shared by worker threads: one append at a time."""

    def __init__(self, path: Path):
        self.ledger = Ledger(path)
        self.lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.ledger.append(record)

    def latest(self, key: str = "video_id") -> dict[str, dict[str, Any]]:
        with self.lock:
            return self.ledger.latest(key)


# ---------------------------------------------------------------------------------------------------------------
# 1. lists


def _http_get(url: str, timeout: float = LIST_TIMEOUT_S, max_bytes: int = MAX_LIST_BYTES) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "ccstereo-toolkit (ccs-data fetch)"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        data = resp.read(max_bytes + 1)
    if len(data) > max_bytes:  # the real lists are tens of kB: something else is being served
        raise FetchSetupError(f"{url}: more than {max_bytes} bytes, not a list file")
    return data


def fetch_lists(spec: DatasetSpec, layout: DatasetLayout) -> list[tuple[str, str]]:
    """Download and verify every list of ``spec`` into ``layout.lists_dir``; ``[(path, "cached"|"downloaded")]``.

    A file already on disk with the pinned sha256 is not requested. A downloaded file whose hash differs from the
    spec is not written; :class:`FetchSetupError` names the file, the URL and both hashes.
    """
    out = []
    for lf in spec.lists:
        dest = layout.lists_dir / lf.path
        if dest.is_file() and sha256_file(dest) == lf.sha256:
            out.append((lf.path, "cached"))
            continue
        try:
            data = _http_get(lf.url)
        except urllib.error.HTTPError as exc:
            raise FetchSetupError(f"list {lf.path}: {lf.url} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchSetupError(f"list {lf.path}: cannot download {lf.url} ({exc})") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != lf.sha256:
            raise FetchSetupError(
                f"list {lf.path}: sha256 mismatch for {lf.url}: expected {lf.sha256}, got {actual} "
                f"({len(data)} bytes); nothing was written. The upstream file changed or the spec "
                f"{spec.path or ''} pins a wrong hash."
            )
        atomic_write_bytes(dest, data)
        out.append((lf.path, "downloaded"))
    return out


# ---------------------------------------------------------------------------------------------------------------
# 2. archives (FAIR-Play)


def fetch_archives(
    spec: DatasetSpec, layout: DatasetLayout, *, rate_limit: int | None = None, progress: bool = False
) -> list[dict]:
    """Download (with resume) and extract every archive of ``spec``; returns one status record per archive.

    An archive recorded as extracted in ``ledger/archives.jsonl`` is neither requested nor extracted again.
    Raises :class:`FetchSetupError` after recording a failed archive (a rerun resumes its ``.part`` file).
    """
    ledger = Ledger(layout.ledger("archives"))
    latest = ledger.latest("archive")
    out = []
    errors = []
    for ar in spec.archives:
        prev = latest.get(ar.name)
        if prev and prev.get("status") == "extracted" and (ar.sha256 is None or prev.get("sha256") == ar.sha256):
            out.append({**prev, "status": "extracted earlier"})
            continue
        dest = layout.archives_dir / ar.name
        try:
            if dest.is_file():  # downloaded completely by an earlier run that stopped before extracting
                digest = sha256_file(dest)
                if ar.sha256 is not None and digest != ar.sha256:
                    dest.unlink()
                    raise ArchiveError(f"{dest}: sha256 {digest} differs from the spec's {ar.sha256}; deleted")
                size = dest.stat().st_size
            else:
                have = part_path(dest).stat().st_size if part_path(dest).exists() else 0
                with tqdm(desc=f"download {ar.name}", unit="B", unit_scale=True, initial=have,
                          disable=not progress, dynamic_ncols=True) as bar:
                    res = download_with_resume(ar.url, dest, expected_sha256=ar.sha256, rate_limit=rate_limit,
                                               on_bytes=bar.update)
                digest, size = res.sha256, res.bytes
            with tqdm(desc=f"extract {ar.name}", unit="file", disable=not progress, dynamic_ncols=True) as bar:
                result = safe_extract(dest, layout.media_dir,
                                      accept=lambda name, contents=ar.contents: fairplay_member(contents, name),
                                      on_member=lambda _name: bar.update(1))
            if not result.extracted:
                shown = ", ".join(n for n, _ in result.skipped[:5]) or "nothing"
                raise ArchiveError(f"{dest}: no member looks like FAIR-Play {ar.contents} "
                                   f"(expected e.g. {FAIRPLAY_EXAMPLES[ar.contents]}; found {shown}); "
                                   "delete the file to download it again")
        except ArchiveError as exc:
            rec = {
                "archive": ar.name,
                "url": ar.url,
                "status": "failed",
                "reason_class": "transient" if exc.transient else "permanent",
                "reason": str(exc),
                "time": utc_now(),
            }
            ledger.append(rec)
            out.append(rec)
            errors.append(str(exc))
            continue
        rec = {
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
        ledger.append(rec)
        out.append(rec)
    if errors:
        raise FetchSetupError("archive download failed (rerun to resume): " + "; ".join(errors))
    return out


def read_h5_protocol_lists(spec: DatasetSpec, layout: DatasetLayout) -> dict[tuple[str, str, str], list[str]]:
    """Raw clip ids of every ``fairplay-h5`` protocol list, read from the extracted splits archive."""
    out: dict[tuple[str, str, str], list[str]] = {}
    for proto in spec.protocols:
        if proto.kind != "fairplay-h5":
            continue
        for split in proto.splits:
            for part in PARTS:
                path = layout.media_dir / proto.pattern.format(split=split, part=part)
                if not path.is_file():
                    raise FetchSetupError(
                        f"protocol {proto.name}: split list {path} is missing from the extracted splits archive"
                    )
                out[(proto.name, split, part)] = read_h5_list(path)
    return out


# ---------------------------------------------------------------------------------------------------------------
# 4. per-video work


def media_format(info: MediaInfo) -> dict[str, Any]:
    """The ``format`` field of a done record (docs/ARCHITECTURE.md)."""
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


def truncation_problem(path: Path) -> str | None:
    """Why a file whose header probes fine is still cut short, or None.

    Demuxes every packet (no decoding: fast) and compares the span the packets cover with the duration the
    container header announces. A download cut mid-file keeps a valid Matroska/WebM header, so probing alone
    would count it as done.
    """
    import av

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


def _failed(video_id: str, reason_class: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "status": "failed",
        "reason_class": reason_class,
        "reason": reason,
        "files": None,
        "bytes": None,
        "sha256": None,
        "format": None,
        "time": utc_now(),
        **extra,
    }


def fetch_youtube_video(spec: DatasetSpec, layout: DatasetLayout, row: dict[str, Any], config: YtdlpConfig) -> dict:
    """Download, probe and place one video; returns its ledger record (``done`` or ``failed``)."""
    video_id = row["video_id"]  # validated when the table was built
    partial = layout.media_dir / PARTIAL_DIR / video_id
    fmt = format_selector(spec.audio, video_itag=row.get("video_itag"), audio_itag=row.get("audio_itag"))
    try:
        path = download_video(spec.media_url_for(video_id), video_id, partial, fmt, config)
    except DownloadFailed as exc:
        reason = exc.reason
        if spec.audio == "ambix" and "requested format is not available" in reason.lower():
            reason = f"no format with {AMBIX_MIN_CHANNELS} channels ({reason})"
        if exc.reason_class != "transient":  # keep a transient .part file: the next run resumes it
            shutil.rmtree(partial, ignore_errors=True)
        return _failed(video_id, exc.reason_class, reason)
    def reject(reason_class: str, reason: str, **extra: Any) -> dict[str, Any]:
        # yt-dlp archived the id when its download finished; the file is refused, so the archive forgets it
        shutil.rmtree(partial, ignore_errors=True)
        if config.download_archive is not None:
            forget_in_archive(config.download_archive, video_id)
        return _failed(video_id, reason_class, reason, **extra)

    try:
        info = probe(path)
    except ProbeError as exc:
        return reject("corrupt", f"downloaded but unreadable: {_without_dir(exc, partial)}")
    truncated = truncation_problem(path)
    if truncated is not None:
        return reject("corrupt", f"downloaded but unreadable: {truncated}", format=media_format(info))
    problem = stream_problem(info, spec.audio)
    if problem is not None:
        return reject("permanent", problem, format=media_format(info))
    final = layout.media_dir / f"{video_id}{path.suffix}"
    for stale in layout.media_dir.glob(f"{video_id}.*"):  # an earlier copy with another extension
        if stale != final and stale.is_file():
            stale.unlink()
    size = path.stat().st_size
    digest = sha256_file(path)
    os.replace(path, final)
    shutil.rmtree(partial, ignore_errors=True)
    return {
        "video_id": video_id,
        "status": "done",
        "reason_class": None,
        "reason": None,
        "files": {"media": final.relative_to(layout.base).as_posix()},
        "bytes": size,
        "sha256": digest,
        "format": media_format(info),
        "time": utc_now(),
    }


def _without_dir(exc: Exception, folder: Path) -> str:
    # the temporary folder means nothing to the reader of the ledger
    return str(exc).replace(f"{folder}/", "")


def fairplay_files(video_id: str) -> dict[str, str]:
    return {"video": f"media/videos/{video_id}.mp4", "audio": f"media/binaural_audios/{video_id}.wav"}


def check_fairplay_clip(layout: DatasetLayout, video_id: str) -> dict[str, Any]:
    """Check that clip ``video_id`` was extracted (video + binaural wav) and that both files probe."""
    files = fairplay_files(video_id)
    missing = [rel for rel in files.values() if not (layout.base / rel).is_file()]
    if missing:
        return _failed(video_id, "permanent", f"clip {video_id} is listed but missing from the archives: "
                       + ", ".join(missing))
    try:
        vinfo = probe(layout.base / files["video"])
        ainfo = probe(layout.base / files["audio"])
    except ProbeError as exc:
        return _failed(video_id, "corrupt", f"extracted but unreadable: {exc}")
    for rel in files.values():
        truncated = truncation_problem(layout.base / rel)
        if truncated is not None:
            return _failed(video_id, "corrupt", f"{rel}: {truncated}")
    if vinfo.video is None:
        return _failed(video_id, "permanent", f"{files['video']}: no video stream")
    if ainfo.audio is None:
        return _failed(video_id, "permanent", f"{files['audio']}: no audio stream")
    fmt = media_format(MediaInfo(vinfo.path, vinfo.container, ainfo.duration_s, vinfo.video, ainfo.audio))
    return {
        "video_id": video_id,
        "status": "done",
        "reason_class": None,
        "reason": None,
        "files": files,
        "bytes": sum((layout.base / rel).stat().st_size for rel in files.values()),
        "sha256": {k: sha256_file(layout.base / rel) for k, rel in files.items()},
        "format": fmt,
        "time": utc_now(),
    }


def _files_present(layout: DatasetLayout, record: dict[str, Any]) -> bool:
    files = record.get("files") or {}
    return bool(files) and all((layout.base / rel).is_file() for rel in files.values())


def plan_fetch(
    layout: DatasetLayout,
    table_ids: Sequence[str],
    latest: dict[str, dict[str, Any]],
    *,
    retry_failed: bool,
    ids: Iterable[str] | None = None,
    limit: int | None = None,
) -> tuple[list[str], Counter, list[str]]:
    """Which listed ids to fetch now: ``(todo, counts of skips by kind, --ids not in the table)``.

    Done and present -> skip; transient or never tried -> fetch; permanent/corrupt -> fetch only when
    ``retry_failed``; ``limit`` caps the number fetched (the rest counts as ``limit``).
    """
    known = set(table_ids)
    unknown: list[str] = []
    if ids is not None:
        wanted = []
        for i in ids:
            (wanted if i in known else unknown).append(i)
        selected = sorted(set(wanted))
    else:
        selected = list(table_ids)
    skips: Counter = Counter()
    todo = []
    for vid in selected:
        rec = latest.get(vid)
        if rec is None:
            todo.append(vid)
        elif rec.get("status") == "done" and _files_present(layout, rec):
            skips["done"] += 1
        elif rec.get("status") == "done" or rec.get("reason_class") == "transient":
            todo.append(vid)
        elif retry_failed:
            todo.append(vid)
        else:
            skips["failed"] += 1
    if limit is not None and len(todo) > limit:
        skips["limit"] = len(todo) - limit
        todo = todo[:limit]
    return todo, skips, unknown


def _record_invalid_ids(ledger: _LockedLedger, table: VideoTable, latest: dict[str, dict[str, Any]]) -> None:
    for entry in table.invalid:
        prev = latest.get(entry.raw)
        if prev is not None and prev.get("reason_class") == "invalid-id":
            continue  # already recorded by an earlier run
        ledger.append(_failed(entry.raw, "invalid-id", f"{entry.source}: {entry.reason}", list=entry.source))


def fetch_dataset(
    spec: DatasetSpec,
    root: str | Path,
    *,
    jobs: int = 1,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
    retry_failed: bool = False,
    cookies: str | Path | None = None,
    rate_limit: int | None = None,
    progress: bool = True,
    ytdlp: YtdlpConfig | None = None,
) -> FetchSummary:
    """Fetch one dataset into ``<root>/<spec.name>/`` (see the module docstring); returns the run's summary.

    ``rate_limit`` is in bytes/s (``pipelines.youtube.parse_rate`` reads "2M"). Per-video failures are recorded
    in the ledger and do not raise; setup problems raise :class:`FetchSetupError` (or ``ListFormatError``).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if cookies is not None and not Path(cookies).is_file():
        raise FetchSetupError(f"cookies file {cookies} does not exist")
    layout = DatasetLayout(Path(root), spec.name)
    layout.media_dir.mkdir(parents=True, exist_ok=True)
    layout.ledger_dir.mkdir(parents=True, exist_ok=True)
    summary = FetchSummary(spec.name)

    fetch_lists(spec, layout)
    h5_lists = None
    if spec.source == "archive":
        summary.archives = fetch_archives(spec, layout, rate_limit=rate_limit, progress=progress)
        h5_lists = read_h5_protocol_lists(spec, layout)
    try:
        table = build_video_table(spec, layout.lists_dir, h5_lists=h5_lists)
    except ListFormatError as exc:
        raise FetchSetupError(str(exc)) from None
    write_jsonl(layout.video_table, table.rows)
    summary.listed = len(table.rows)
    summary.invalid_ids = len(table.invalid)

    ledger = _LockedLedger(layout.ledger("fetch"))
    latest = ledger.latest()
    _record_invalid_ids(ledger, table, latest)
    todo, skips, unknown = plan_fetch(
        layout, table.ids, latest, retry_failed=retry_failed, ids=ids, limit=limit
    )
    summary.selected = len(todo) + sum(skips.values())
    summary.skipped_done, summary.skipped_failed, summary.not_attempted = skips["done"], skips["failed"], skips["limit"]
    summary.unknown_ids = unknown

    rows = {r["video_id"]: r for r in table.rows}
    if spec.source == "youtube":
        config = ytdlp or YtdlpConfig()
        config = YtdlpConfig(
            **{
                **asdict(config),
                "cookies": Path(cookies) if cookies is not None else config.cookies,
                "rate_limit": rate_limit if rate_limit is not None else config.rate_limit,
                "download_archive": layout.ledger_dir / "yt-dlp-archive.txt",
            }
        )
        ensure_ffmpeg_on_path()

        def work(vid: str) -> dict[str, Any]:
            return fetch_youtube_video(spec, layout, rows[vid], config)
    else:

        def work(vid: str) -> dict[str, Any]:
            return check_fairplay_clip(layout, vid)

    outcomes = _run_parallel(todo, work, ledger, jobs=jobs, progress=progress, desc=f"fetch {spec.name}")
    try:  # tidy: the temporary download folder goes when nothing is left in it (kept partial files stay)
        (layout.media_dir / PARTIAL_DIR).rmdir()
    except OSError:
        pass
    summary.attempted = len(todo)
    summary.newly_done = outcomes["done"]

    final = ledger.latest()
    failed: Counter = Counter()
    for vid in table.ids:
        rec = final.get(vid)
        if rec is None:
            continue
        if rec.get("status") == "done":
            summary.done += 1
        else:
            failed[rec.get("reason_class") or "unknown"] += 1
    failed["invalid-id"] += len(table.invalid)
    summary.failed = {k: v for k, v in failed.items() if v}
    return summary


def _run_parallel(todo, work, ledger: _LockedLedger, *, jobs: int, progress: bool, desc: str) -> Counter:
    """Run ``work(id)`` over ``todo`` on ``jobs`` threads, appending each record as it completes."""
    outcomes: Counter = Counter()

    def guarded(vid: str) -> dict[str, Any]:
        # one video's unexpected error (disk full, a bug) is recorded and the run goes on
        try:
            return work(vid)
        except Exception as exc:  # noqa: BLE001 - reported in the ledger with its type and message
            return _failed(vid, "transient", f"unexpected error: {type(exc).__name__}: {exc}")

    bar = tqdm(total=len(todo), desc=desc, unit="video", disable=not progress, dynamic_ncols=True)

    def finish(record: dict[str, Any]) -> None:
        ledger.append(record)
        outcomes[record["status"]] += 1
        finished = outcomes["done"] + outcomes["failed"]
        bar.set_postfix(done=outcomes["done"], failed=outcomes["failed"], remaining=len(todo) - finished, refresh=False)
        bar.update(1)

    try:
        if jobs == 1:
            for vid in todo:
                finish(guarded(vid))
        else:
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fetch") as pool:
                pending: set[Future] = {pool.submit(guarded, vid) for vid in todo}
                try:
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            finish(fut.result())
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    return outcomes
