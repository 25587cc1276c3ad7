"""``ccs-data prepare``: fetched media -> clean 10 s clips (SPEC sections 2, 3, 5).

Per video (from the fetch ledger: last record per id with status ``done``) the dataset's recipe probes, checks
and decodes it into a binaural signal (deciding the projection and decoding FOA for 360 sets); then the
non-binaural filter applies when the run's ``min_lr_diff`` is above 0, and non-overlapping 10 s clips are cut from
t = 0 with their frames at 10 fps as 480x240 RGB (``pipelines.clips``).

Outputs (``docs/ARCHITECTURE.md``):

* ``prepared/<id>.tar``: the clip members exactly as they go into the shards (``<key>.audio.flac``,
  ``<key>.f000.jpg`` .. ``f099.jpg``, ``<key>.foa.flac``, ``<key>.json``), written atomically;
* ``prepared/<id>.json``: the video's result (decisions, clips), written atomically after the tar. It is the
  commit mark of the video: a rerun skips every video whose result exists with the same settings;
* ``ledger/prepare.jsonl``: one record per video and run (``done`` / ``dropped`` with a reason / ``failed``). The
  result file is the commit mark and the ledger follows it: a run first appends the record of every stored result
  the ledger does not show (a kill between the two), so no kill can leave a prepared video unrecorded;
* ``videos-prepared.jsonl`` and ``clips.jsonl``: rebuilt from all results at the end of each run, with the splits
  (``pipelines.prepared``).

Drop reasons per video are those of ``pipelines.prepare_checks`` (which also states the audio/video length
policy); per clip, those of ``pipelines.clips``. A run holds ``ledger/prepare.lock`` and removes the temporary files
of a killed run at start; its worker processes die with it (``pipelines.workers``), and Ctrl-C stops them at once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from pipelines.ambisonics import DECODERS
from pipelines.clips import (
    MIN_LR_DIFF,
    ClipSource,
    PrepareConfig,
    VideoDropped,
    VideoTask,
    cut_clips,
    lr_difference,
)
from pipelines.contract import CLIP_SECONDS, DatasetLayout
from pipelines.ids import validate_id
from pipelines.io import Ledger, atomic_write_text, read_jsonl, remove_stale_temp_files, stage_lock, utc_now
from pipelines.prepare_checks import check_binaural
from pipelines.prepared import write_manifests
from pipelines.recipes import recipe_for
from pipelines.spec import DatasetSpec
from pipelines.workers import stop_pool, worker_pool

__all__ = [
    "MIN_LR_DIFF",  # the default threshold, defined with PrepareConfig in pipelines.clips
    "PrepareConfig",
    "PrepareError",
    "PrepareSummary",
    "VideoDropped",
    "prepare_dataset",
    "prepare_video",
]


class PrepareError(RuntimeError):
    """Bad input for the whole run (no fetch ledger, unknown decoder...)."""


@dataclass
class PrepareSummary:
    dataset: str
    videos: int = 0
    done: int = 0
    dropped: int = 0
    failed: int = 0
    resumed: int = 0
    clips: int = 0
    clips_dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    clips_per_s: float = 0.0
    media_seconds: float = 0.0  # length of the clips cut in this run (not resumed ones)

    @property
    def realtime_factor(self) -> float:
        return self.media_seconds / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "realtime_factor": self.realtime_factor}


# ------------------------------------------------------------------------------------------------ one video


def prepare_video(task: VideoTask) -> dict[str, Any]:
    """Prepare one video: write ``prepared/<id>.tar`` and ``prepared/<id>.json``; return the result record.

    A dropped video has a result too (so a rerun does not redo it); an unexpected error propagates (the caller
    records it as ``failed`` and a rerun retries it).
    """
    prepared = DatasetLayout(Path(task.root), task.dataset).prepared_dir
    result: dict[str, Any] = {
        "video_id": task.video_id,
        "dataset": task.dataset,
        "settings": task.fingerprint,
        "source": task.source,
        "status": "done",
        "reason": None,
        "detail": None,
        "lr_diff": None,
        "lr_diff_sum": None,
        "projection": None,
        "decoder": None,
        "hrir": None,
        "duration_s": None,
        "clips": [],
    }
    try:
        source: ClipSource = recipe_for(task.dataset).clip_source(task, result)
        result["lr_diff"], result["lr_diff_sum"] = lr_difference(source.stereo)
        check_binaural(result["lr_diff"], task.config.min_lr_diff, source.path)
        cut_clips(task, result, prepared, source)
    except VideoDropped as drop:
        result.update(status="dropped", reason=drop.reason, detail=drop.detail, clips=[])
        (prepared / f"{task.video_id}.tar").unlink(missing_ok=True)
    atomic_write_text(prepared / f"{task.video_id}.json", json.dumps(result, sort_keys=True, indent=1) + "\n")
    return result


def _run_task(task: VideoTask) -> dict[str, Any]:
    # the worker's entry point (module level: picklable for the process pool)
    return prepare_video(task)


# ------------------------------------------------------------------------------------------------ the tasks


def _safe_media_path(base: Path, rel: Any, video_id: str) -> str:
    """A ``files`` entry of the fetch ledger as an absolute path inside ``base`` (no absolute paths, no '..')."""
    if not isinstance(rel, str) or not rel:
        raise PrepareError(f"{video_id}: fetch ledger record has no media path")
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("..", "") for part in p.parts) or "\\" in rel:
        raise PrepareError(f"{video_id}: media path {rel!r} in the fetch ledger leaves the dataset folder")
    return str(base / p)


def fetched_videos(layout: DatasetLayout) -> dict[str, dict[str, Any]]:
    """The last fetch-ledger record of every video whose last status is ``done``."""
    path = layout.ledger("fetch")
    if not path.exists():
        raise PrepareError(f"{path}: no fetch ledger; run `ccs-data fetch {layout.dataset}` first")
    return {vid: rec for vid, rec in Ledger(path).latest().items() if rec.get("status") == "done"}


def build_tasks(spec: DatasetSpec, layout: DatasetLayout, config: PrepareConfig,
                overrides: dict | None = None) -> tuple[list[VideoTask], list[tuple[str, str]]]:
    """One task per fetched video; ``(video_id, why)`` for records that cannot become a task."""
    recipe = recipe_for(spec.name)
    table = {row["video_id"]: row for row in read_jsonl(layout.video_table)}
    fingerprint = recipe.fingerprint(config)
    tasks, bad = [], []
    for video_id, rec in sorted(fetched_videos(layout).items()):
        try:
            validate_id(video_id, spec.id_format)
            files = rec.get("files") or {}
            row = table.get(video_id, {})
            paths = {role: _safe_media_path(layout.base, files.get(role), video_id) for role in recipe.media_roles}
            ov = overrides.get(video_id) if overrides else None
            fp = {**fingerprint, "fetch_sha256": rec.get("sha256")}
            if ov is not None:
                fp["override"] = ov.projection
            tasks.append(VideoTask(
                dataset=spec.name, video_id=video_id, root=str(layout.root), files=paths,
                source={"files": dict(sorted(files.items())), "sha256": rec.get("sha256")},
                upstream_projection=row.get("upstream_projection"), stereo_layout=row.get("stereo_layout"),
                override=(ov.projection, ov.reason) if ov else None, config=config, fingerprint=fp,
            ))
        except (PrepareError, ValueError) as exc:
            bad.append((video_id, str(exc)))
    return tasks, bad


def _finished(layout: DatasetLayout, task: VideoTask) -> dict[str, Any] | None:
    """The stored result of ``task`` if it was prepared with the same settings and its files are complete."""
    path = layout.prepared_dir / f"{task.video_id}.json"
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if result.get("settings") != task.fingerprint:
        return None
    if any(c["dropped"] is None for c in result.get("clips", [])) and not (
            layout.prepared_dir / f"{task.video_id}.tar").exists():
        return None
    return result


# ------------------------------------------------------------------------------------------------ the run


def prepare_dataset(
    spec: DatasetSpec,
    root: str | Path,
    *,
    jobs: int = 1,
    min_lr_diff: float | None = None,
    decoder: str = "magls",
    hrir: str = "kemar",
    progress: bool = False,
    overrides_path: str | Path | None = None,
    drop_av_mismatch: bool = False,
    config: PrepareConfig | None = None,
) -> PrepareSummary:
    """Prepare every fetched video of ``spec``'s dataset under ``root``; resumable, one ledger record per video.

    ``min_lr_diff`` None takes the spec's threshold (MUSIC-Stereo: 0.001; the YouTube-360 and FAIR-Play
    manifests carry none, so their videos are not filtered unless a threshold is given). ``jobs`` videos run in
    parallel.
    """
    recipe = recipe_for(spec.name)
    if decoder not in DECODERS:
        raise PrepareError(f"unknown decoder {decoder!r} (known: {', '.join(DECODERS)})")
    if jobs < 1:
        raise PrepareError("jobs must be >= 1")
    if config is None:
        threshold = spec.min_lr_diff if min_lr_diff is None else min_lr_diff
        config = PrepareConfig(min_lr_diff=threshold, decoder=decoder, hrir=hrir, drop_av_mismatch=drop_av_mismatch,
                               ffmpeg_threads=1 if jobs > 1 else None)
    recipe.check_settings(config)
    layout = DatasetLayout(Path(root).resolve(), spec.name)  # absolute: messages name paths that exist from anywhere
    tasks, bad = build_tasks(spec, layout, config, recipe.load_overrides(overrides_path))
    with stage_lock(layout.ledger_dir / "prepare.lock", f"ccs-data prepare of {layout.base}"):
        layout.prepared_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(layout.prepared_dir)  # a killed run's half-written clips and results
        remove_stale_temp_files(layout.base, names=[layout.clips_manifest.name, layout.prepared_videos.name])
        run = _Run(spec.name, Ledger(layout.ledger("prepare")), videos=len(tasks) + len(bad))
        for video_id, why in bad:
            run.invalid(video_id, why)
        todo = _unfinished(layout, tasks, run)
        _run_tasks(todo, run.account, jobs=jobs, progress=progress, desc=f"prepare {spec.name}")
        write_manifests(spec, layout, [t.video_id for t in tasks])
    return run.finish()


def _unfinished(layout: DatasetLayout, tasks: list[VideoTask], run: _Run) -> list[VideoTask]:
    """The tasks whose result is not stored yet; the others count as resumed, and the ledger gets the record of
    any of them it does not show yet (a kill between a result and its record)."""
    todo = []
    recorded = run.ledger.latest()
    for task in tasks:
        result = _finished(layout, task)
        if result is None:
            todo.append(task)
            continue
        run.summary.resumed += 1
        if not _records_result(recorded.get(task.video_id), result):
            run.record_result(task.video_id, result)
    return todo


def _records_result(record: dict[str, Any] | None, result: dict[str, Any]) -> bool:
    """The ledger record says what the stored result says."""
    return record is not None and (record.get("status"), record.get("reason"), record.get("clips")) == (
        result["status"], result["reason"], _kept_clips(result))


def _kept_clips(result: dict[str, Any]) -> int:
    return sum(c["dropped"] is None for c in result["clips"])


class _Run:
    """The summary and the ledger of one prepare run, fed one outcome at a time."""

    def __init__(self, dataset: str, ledger: Ledger, videos: int):
        self.summary = PrepareSummary(dataset=dataset, videos=videos)
        self.ledger = ledger
        ledger.touch()  # the ledger exists after every run, even one with nothing to record
        self.reasons: Counter[str] = Counter()
        self.started = time.perf_counter()

    def record(self, video_id: str, status: str, reason: str | None, detail: str | None, n_clips: int = 0) -> None:
        self.ledger.append({"video_id": video_id, "status": status, "reason": reason, "detail": detail,
                            "clips": n_clips, "time": utc_now()})

    def record_result(self, video_id: str, result: dict[str, Any]) -> None:
        self.record(video_id, result["status"], result["reason"], result["detail"], _kept_clips(result))

    def invalid(self, video_id: str, why: str) -> None:
        self.summary.failed += 1
        self.reasons["invalid-input"] += 1
        self.record(video_id, "failed", "invalid-input", why)

    def account(self, task: VideoTask, result: dict[str, Any] | None, error: BaseException | None) -> None:
        s = self.summary
        if error is not None:
            s.failed += 1
            self.reasons["error"] += 1
            self.record(task.video_id, "failed", "error", f"{type(error).__name__}: {error}")
            return
        assert result is not None
        kept = [c for c in result["clips"] if c["dropped"] is None]
        s.clips += len(kept)
        s.media_seconds += len(kept) * CLIP_SECONDS
        s.clips_dropped += len(result["clips"]) - len(kept)
        for c in result["clips"]:
            if c["dropped"]:
                self.reasons[c["dropped"]] += 1
        if result["status"] == "done":
            s.done += 1
            if result["reason"]:  # kept with a note (av-length-mismatch: common span only)
                self.reasons[result["reason"]] += 1
        else:
            s.dropped += 1
            self.reasons[result["reason"]] += 1
        self.record_result(task.video_id, result)

    def finish(self) -> PrepareSummary:
        s = self.summary
        s.seconds = time.perf_counter() - self.started
        s.clips_per_s = s.clips / s.seconds if s.seconds > 0 else 0.0
        s.reasons = dict(sorted(self.reasons.items()))
        return s


Account = Callable[[VideoTask, "dict[str, Any] | None", "BaseException | None"], None]


def _run_tasks(todo: list[VideoTask], account: Account, *, jobs: int, progress: bool, desc: str) -> None:
    """Prepare ``todo`` in this process (one job) or in ``jobs`` worker processes; every outcome is accounted.
    Interrupted or failing, the workers are killed at once (``pipelines.workers``)."""
    bar = tqdm(total=len(todo), desc=desc, unit="video", disable=not progress)
    if jobs == 1 or len(todo) <= 1:
        for task in todo:
            try:
                account(task, _run_task(task), None)
            except Exception as exc:  # noqa: BLE001 - recorded in the ledger; the run goes on
                account(task, None, exc)
            bar.update(1)
    else:
        with worker_pool(jobs) as pool:
            try:
                futures = {pool.submit(_run_task, task): task for task in todo}
                for fut in as_completed(futures):
                    task = futures[fut]
                    try:
                        account(task, fut.result(), None)
                    except Exception as exc:  # noqa: BLE001
                        account(task, None, exc)
                    bar.update(1)
            except BaseException:
                stop_pool(pool)
                raise
    bar.close()
