"""``ccs-data fetch``: resumable, verified acquisition of one dataset (issue 3, SPEC 3-4).

Steps, each safe to interrupt and rerun:

1. every list file of the spec is downloaded to ``lists/<path>`` and its sha256 checked before it is written
   (a file already there with the right hash is not requested again);
2. the recipe's dataset-wide acquisition (FAIR-Play: its archives, downloaded with Range resume and extracted);
3. the video table ``videos.jsonl`` is written (the recipe turns its lists into rows); listed ids that fail
   validation get a ``failed`` / ``invalid-id`` record in ``ledger/fetch.jsonl`` and never become paths;
4. per video, the recipe's fetch (YouTube: yt-dlp download, probe, stream checks, then the file is placed;
   FAIR-Play: the extracted clip is checked and probed), recorded ``done`` or ``failed`` with a reason class.

A rerun skips ``done`` videos whose file is still there, retries ``transient`` failures, and retries
``permanent`` / ``corrupt`` ones only with ``retry_failed``. A run holds ``ledger/fetch.lock`` (one fetch of a
dataset at a time) and first removes the temporary files a killed run left (lists, video table, extracted
members); the ledger exists after every run, even one with nothing to record. Interrupted (Ctrl-C), the downloads
in flight stop at once, keep their partial files for the next run and get no record.
"""

from __future__ import annotations

import threading
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipelines.contract import DatasetLayout
from pipelines.http import DownloadError, get_bytes
from pipelines.io import (
    Ledger,
    atomic_write_bytes,
    remove_stale_temp_files,
    sha256_bytes,
    sha256_file,
    stage_lock,
    write_jsonl,
)
from pipelines.lists import VideoTable, shown_id
from pipelines.recipes import recipe_for
from pipelines.recipes.base import FetchNetworkError, FetchOptions, FetchSetupError, Recipe, failed_record
from pipelines.recipes.youtube import YtdlpConfig
from pipelines.spec import DatasetSpec

LIST_TIMEOUT_S = 60.0
MAX_LIST_BYTES = 64 << 20

__all__ = ["FetchSetupError", "FetchSummary", "fetch_dataset", "fetch_lists", "plan_fetch"]


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
            data = get_bytes(lf.url, timeout=LIST_TIMEOUT_S, max_bytes=MAX_LIST_BYTES)
        except DownloadError as exc:
            raise FetchSetupError(str(exc)) from None
        except urllib.error.HTTPError as exc:
            error = FetchNetworkError if exc.code == 429 or exc.code >= 500 else FetchSetupError
            raise error(f"list {lf.path}: {lf.url} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchNetworkError(f"list {lf.path}: cannot download {lf.url} "
                                    f"({getattr(exc, 'reason', None) or exc})") from None
        actual = sha256_bytes(data)
        if actual != lf.sha256:
            raise FetchSetupError(
                f"list {lf.path}: sha256 mismatch for {lf.url}: expected {lf.sha256}, got {actual} "
                f"({len(data)} bytes); nothing was written. The upstream file changed or the spec "
                f"{spec.path or ''} pins a wrong hash."
            )
        atomic_write_bytes(dest, data)
        out.append((lf.path, "downloaded"))
    return out


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
        ledger.append(failed_record(entry.raw, "invalid-id", f"{entry.source}: {entry.reason}", list=entry.source))


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

    ``rate_limit`` is in bytes/s (``pipelines.recipes.youtube.parse_rate`` reads "2M"). Per-video failures are
    recorded in the ledger and do not raise; setup problems raise :class:`FetchSetupError` (or ``ListFormatError``).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if cookies is not None and not Path(cookies).is_file():
        raise FetchSetupError(f"cookies file {cookies} does not exist")
    recipe = recipe_for(spec.name)  # an unknown dataset is refused before anything is written
    layout = DatasetLayout(Path(root).resolve(), spec.name)  # absolute: messages name paths that exist from anywhere
    layout.media_dir.mkdir(parents=True, exist_ok=True)
    layout.ledger_dir.mkdir(parents=True, exist_ok=True)
    with stage_lock(layout.ledger_dir / "fetch.lock", f"ccs-data fetch of {layout.base}"):
        _remove_stale_temp_files(layout)
        return _fetch(spec, recipe, layout, jobs=jobs, limit=limit, ids=ids, retry_failed=retry_failed, cookies=cookies,
                      rate_limit=rate_limit, progress=progress, ytdlp=ytdlp)


def _remove_stale_temp_files(layout: DatasetLayout) -> None:
    """What a killed fetch left half-written: lists, the video table, extracted archive members, yt-dlp's archive
    (never the partial downloads, which the next download resumes)."""
    remove_stale_temp_files(layout.lists_dir, recursive=True)
    remove_stale_temp_files(layout.base, names=[layout.video_table.name])
    remove_stale_temp_files(layout.ledger_dir)
    for sub in layout.media_dir.iterdir():
        if sub.is_dir() and not sub.name.startswith("."):  # extracted members (FAIR-Play); not .partial/
            remove_stale_temp_files(sub, recursive=True)


def _fetch(spec: DatasetSpec, recipe: Recipe, layout: DatasetLayout, *, jobs: int, limit: int | None, ids: Sequence[str] | None,
           retry_failed: bool, cookies: str | Path | None, rate_limit: int | None, progress: bool,
           ytdlp: YtdlpConfig | None) -> FetchSummary:
    cancel = threading.Event()
    options = FetchOptions(cookies=Path(cookies) if cookies is not None else None, rate_limit=rate_limit,
                           progress=progress, ytdlp=ytdlp, cancel=cancel)
    summary = FetchSummary(spec.name)

    fetch_lists(spec, layout)
    summary.archives = recipe.acquire(spec, layout, options)
    table = recipe.video_table(spec, layout)
    write_jsonl(layout.video_table, table.rows)
    summary.listed = len(table.rows)
    summary.invalid_ids = len(table.invalid)

    ledger = _LockedLedger(layout.ledger("fetch"))
    ledger.ledger.touch()
    latest = ledger.latest()
    _record_invalid_ids(ledger, table, latest)
    todo, skips, unknown = plan_fetch(layout, table.ids, latest, retry_failed=retry_failed, ids=ids, limit=limit)
    summary.selected = len(todo) + sum(skips.values())
    summary.skipped_done, summary.skipped_failed, summary.not_attempted = skips["done"], skips["failed"], skips["limit"]
    summary.unknown_ids = unknown

    rows = {r["video_id"]: r for r in table.rows}
    with recipe.video_fetcher(spec, layout, options) as fetch_video:
        outcomes = _run_parallel(todo, lambda vid: fetch_video(rows[vid]), ledger, jobs=jobs, progress=progress,
                                 desc=f"fetch {spec.name}", cancel=cancel)
    summary.attempted = len(todo)
    summary.newly_done = outcomes["done"]
    _count_outcomes(summary, table, ledger.latest())
    return summary


def _count_outcomes(summary: FetchSummary, table: VideoTable, final: dict[str, dict[str, Any]]) -> None:
    """``done`` and ``failed`` of the summary: the latest outcome of every listed id, plus the invalid ids."""
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


def _run_parallel(todo: list[str], work: Callable[[str], dict[str, Any]], ledger: _LockedLedger, *, jobs: int,
                  progress: bool, desc: str, cancel: threading.Event) -> Counter:
    """Run ``work(id)`` over ``todo`` on ``jobs`` threads, appending each record as it completes. Interrupted,
    ``cancel`` is set (the downloads in flight stop at their next block) and no further record is written."""
    outcomes: Counter = Counter()

    def guarded(vid: str) -> dict[str, Any]:
        # one video's unexpected error (disk full, a bug) is recorded and the run goes on
        try:
            return work(vid)
        except Exception as exc:  # noqa: BLE001 - reported in the ledger with its type and message
            return failed_record(vid, "transient", f"unexpected error: {type(exc).__name__}: {exc}")

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
                    cancel.set()
                    for fut in pending:
                        fut.cancel()
                    raise
    except BaseException:
        cancel.set()
        raise
    finally:
        bar.close()
    return outcomes
