"""``ccs-data prepare``: fetched media -> clean 10 s clips (SPEC sections 2, 3, 5).

Per video (from the fetch ledger: last record per id with status ``done``): probe, decode the audio to 16 kHz,
apply the dataset's checks (channels, lengths, non-binaural filter), decide the projection (360 sets), decode FOA
to binaural (360 sets), stream the frames at 10 fps as 480x240 RGB and cut non-overlapping 10 s clips from t = 0.

Outputs (``docs/ARCHITECTURE.md``):

* ``prepared/<id>.tar``: the clip members exactly as they go into the shards (``<key>.audio.flac``,
  ``<key>.f000.jpg`` .. ``f099.jpg``, ``<key>.foa.flac``, ``<key>.json``), written atomically;
* ``prepared/<id>.json``: the video's result (decisions, clips), written atomically after the tar. It is the
  commit mark of the video: a rerun skips every video whose result exists with the same settings;
* ``ledger/prepare.jsonl``: one record per video and run (``done`` / ``dropped`` with a reason / ``failed``);
* ``videos-prepared.jsonl`` and ``clips.jsonl``: rebuilt from all results at the end of each run, with the splits.

Drop reasons (per video): ``corrupt``, ``no-audio``, ``no-video``, ``mono``, ``unexpected-channels``,
``too-short`` (less than one 10 s clip of audio and video), ``non-binaural`` (MUSIC: ``lr_diff`` below the
threshold). ``av-length-mismatch``: audio and video durations differ by more than ``max_av_mismatch_s`` (1 s);
policy: the video stays ``done`` with that reason on record and clips are cut only from the span both streams
cover (``PrepareConfig.drop_av_mismatch`` drops it instead; FAIR-Play pairs are always dropped).
Per clip: ``silent-clip`` (RMS below 1e-4), ``video-ended`` (the video stream ends more than 1 s before the clip).
"""

from __future__ import annotations

import json
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from tqdm import tqdm

from pipelines.contract import (
    AUDIO_MEMBER,
    CLIP_SAMPLES,
    CLIP_SECONDS,
    FOA_MEMBER,
    FPS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    FRAMES_PER_CLIP,
    META_MEMBER,
    PIPELINE_VERSION,
    SAMPLE_RATE,
    DatasetLayout,
    frame_member,
    sample_key,
)
from pipelines.ids import validate_id
from pipelines.io import Ledger, atomic_output, atomic_write_text, read_jsonl, write_jsonl
from pipelines.shards import add_member, flac_bytes, jpeg_bytes
from pipelines.spec import DatasetSpec

MIN_LR_DIFF = 0.001  # MUSIC-Stereo non-binaural filter on mean |L - R| (docs/SPEC.md section 3)
SILENCE_RMS = 1e-4  # clips quieter than this are digital silence and dropped
MAX_AV_MISMATCH_S = 1.0
DETECTOR_FRAMES = 6  # frames sampled across a 360 video for the projection detector
FAIRPLAY_PAD_S = 0.1  # FAIR-Play audio may be up to this much short of 10 s; the clip is zero-padded


class PrepareError(RuntimeError):
    """Bad input for the whole run (no fetch ledger, unknown decoder...)."""


class VideoDropped(Exception):
    """A video is not usable; ``reason`` is one of the documented reason classes."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of a prepare run; defaults are the paper's (SPEC sections 3 and 5)."""

    min_lr_diff: float = MIN_LR_DIFF  # MUSIC-Stereo non-binaural filter on mean |L - R|
    decoder: str = "magls"  # FOA -> binaural: magls | vls8
    hrir: str = "kemar"  # kemar | sofa:<path>
    max_av_mismatch_s: float = MAX_AV_MISMATCH_S
    drop_av_mismatch: bool = False  # True: drop such videos; False: cut clips from the span both streams cover
    keep_foa: bool = True  # YT sets: store the 4-channel clip as <key>.foa.flac
    ffmpeg_threads: int | None = None  # per ffmpeg process; None: 1 when jobs > 1, ffmpeg's choice otherwise

    def fingerprint(self, dataset: str) -> dict[str, Any]:
        """The settings that change a video's result (a rerun redoes videos prepared with other settings)."""
        fp: dict[str, Any] = {"pipeline_version": PIPELINE_VERSION, "max_av_mismatch_s": self.max_av_mismatch_s,
                              "drop_av_mismatch": self.drop_av_mismatch}
        if dataset == "music-stereo":
            fp["min_lr_diff"] = self.min_lr_diff
        if dataset in ("yt-music", "yt-clean"):
            fp.update(decoder=self.decoder, hrir=self.hrir, keep_foa=self.keep_foa)
        return fp


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


@dataclass(frozen=True)
class VideoTask:
    """Everything a worker needs to prepare one video (picklable; paths are absolute)."""

    dataset: str
    video_id: str
    base: str  # <root>/<dataset>
    kind: str  # stereo | ambix | fairplay
    media: str | None  # YouTube media file
    video: str | None  # FAIR-Play
    audio: str | None  # FAIR-Play
    source: dict[str, Any]
    upstream_projection: str | None
    stereo_layout: str | None
    override: tuple[str, str] | None  # (projection, reason)
    config: PrepareConfig
    fingerprint: dict[str, Any]


# ------------------------------------------------------------------------------------------------ small maths


def lr_difference(stereo: np.ndarray) -> tuple[float, float]:
    """``(mean |L - R|, sum |L - R|)`` of a [2, T] waveform (SPEC section 3, non-binaural filter)."""
    d = np.abs(stereo[0].astype(np.float64) - stereo[1].astype(np.float64))
    return (float(d.mean()) if d.size else 0.0), float(d.sum())


def rms(x: np.ndarray) -> float:
    """RMS over all channels and samples."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def clip_starts(n_samples: int, clip_samples: int = CLIP_SAMPLES) -> list[int]:
    """Start samples of the non-overlapping clips from t = 0; the remainder (< one clip) is dropped."""
    return [i * clip_samples for i in range(n_samples // clip_samples)]


def split_by_video(video_ids: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign whole videos to train/val/test: sort the ids, then a seeded permutation (order-independent)."""
    ids = sorted(set(video_ids))
    n = len(ids)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = min(n - n_train, int(round(fractions[1] * n)))
    out = {}
    for rank, idx in enumerate(perm):
        out[ids[idx]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return out


# ------------------------------------------------------------------------------------------------ encoding


# ------------------------------------------------------------------------------------------------ per video


@lru_cache(maxsize=4)
def _decoder_filters(decoder: str, hrir: str) -> np.ndarray:
    from pipelines.ambisonics import decoder_filters
    from pipelines.hrir import load_hrirs

    return decoder_filters(decoder, load_hrirs(hrir))


def _probe(path: str):
    from pipelines.probe import ProbeError, probe

    try:
        return probe(path)
    except ProbeError as exc:
        raise VideoDropped("corrupt", str(exc)) from None


def _check_channels(channels: int, kind: str, path: str) -> None:
    wanted = (3, 4) if kind == "ambix" else (2,)
    if channels in wanted:
        return
    if channels == 1:
        raise VideoDropped("mono", f"{path}: the audio stream has 1 channel")
    raise VideoDropped("unexpected-channels", f"{path}: the audio stream has {channels} channels, expected "
                       f"{' or '.join(map(str, wanted))}")


def _decode(path: str, in_channels: int, out_channels: int, threads: int | None) -> np.ndarray:
    from pipelines.media import MediaError, decode_audio

    try:
        audio = decode_audio(path, in_channels=in_channels, out_channels=out_channels, threads=threads)
    except MediaError as exc:
        raise VideoDropped("corrupt", str(exc)) from None
    if audio.shape[1] == 0:
        raise VideoDropped("corrupt", f"{path}: the audio stream decodes to no samples")
    return audio


def _declared_video_seconds(info) -> float | None:
    if info.video is not None and info.video.duration_s:
        return float(info.video.duration_s)
    return float(info.duration_s) if info.duration_s else None


def _declared_audio_seconds(info) -> float | None:
    """The audio stream's own declared length (not the container's, which is the longest stream's)."""
    if info.audio is not None and info.audio.duration_s:
        return float(info.audio.duration_s)
    return None


def _video_seconds(path: str, info) -> float | None:
    """The video stream's length: declared per stream (mp4), else measured from its packets (mkv/webm)."""
    from pipelines.media import MediaError, packet_durations

    if info.video is not None and info.video.duration_s:
        return float(info.video.duration_s)
    try:
        return packet_durations(path)["video"]
    except MediaError as exc:
        raise VideoDropped("corrupt", str(exc)) from None


def _common_span(task: VideoTask, result: dict[str, Any], path: str, audio_s: float, video_s: float | None) -> float:
    """Seconds of audio to cut clips from; records an audio/video length mismatch.

    Policy (documented in the module docstring): a mismatch of more than ``max_av_mismatch_s`` is recorded as the
    video's reason ``av-length-mismatch`` and clips are cut only from the span both streams cover (both start at
    t = 0), so no clip pairs sound with missing pictures; ``drop_av_mismatch`` drops such videos instead.
    """
    if video_s is None or abs(video_s - audio_s) <= task.config.max_av_mismatch_s:
        return audio_s
    detail = (f"{path}: audio lasts {audio_s:.2f} s, video {video_s:.2f} s (more than "
              f"{task.config.max_av_mismatch_s:g} s apart)")
    if task.config.drop_av_mismatch:
        raise VideoDropped("av-length-mismatch", detail)
    result["reason"] = "av-length-mismatch"
    result["detail"] = f"{detail}; clips cut from the first {min(audio_s, video_s):.2f} s only"
    return min(audio_s, video_s)


def _check_truncated(path: str, audio_s: float, info, tolerance_s: float) -> None:
    declared = _declared_audio_seconds(info)
    if declared is not None and declared - audio_s > tolerance_s:
        raise VideoDropped("corrupt", f"{path}: truncated: decoded {audio_s:.2f} s of audio, the container "
                           f"declares {declared:.2f} s")


def _threads(task: VideoTask) -> int | None:
    return task.config.ffmpeg_threads


def prepare_video(task: VideoTask) -> dict[str, Any]:
    """Prepare one video: write ``prepared/<id>.tar`` and ``prepared/<id>.json``; return the result record.

    A dropped video has a result too (so a rerun does not redo it); an unexpected error propagates (the caller
    records it as ``failed`` and a rerun retries it).
    """
    base = Path(task.base)
    prepared = base / "prepared"
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
        _prepare_into(task, result, prepared)
    except VideoDropped as drop:
        result.update(status="dropped", reason=drop.reason, detail=drop.detail, clips=[])
        (prepared / f"{task.video_id}.tar").unlink(missing_ok=True)
    atomic_write_text(prepared / f"{task.video_id}.json", json.dumps(result, sort_keys=True, indent=1) + "\n")
    return result


def _prepare_into(task: VideoTask, result: dict[str, Any], prepared: Path) -> None:
    from pipelines.media import FrameSpec

    threads = _threads(task)
    if task.kind == "fairplay":
        assert task.video is not None and task.audio is not None
        vinfo = _probe(task.video)
        if vinfo.video is None:
            raise VideoDropped("no-video", f"{task.video}: no video stream")
        ainfo = _probe(task.audio)
        if ainfo.audio is None:
            raise VideoDropped("no-audio", f"{task.audio}: no audio stream")
        _check_channels(ainfo.audio.channels, "stereo", task.audio)
        stereo = _decode(task.audio, 2, 2, threads)
        audio_s = stereo.shape[1] / SAMPLE_RATE
        video_s = _video_seconds(task.video, vinfo)
        if video_s is not None and abs(video_s - audio_s) > task.config.max_av_mismatch_s:
            # one clip per id: a FAIR-Play pair whose lengths disagree this much is not a usable pair
            raise VideoDropped("av-length-mismatch", f"{task.audio} lasts {audio_s:.2f} s, {task.video} "
                               f"{video_s:.2f} s")
        short = CLIP_SAMPLES - stereo.shape[1]
        if short > int(FAIRPLAY_PAD_S * SAMPLE_RATE):
            raise VideoDropped("too-short", f"{task.audio}: {audio_s:.2f} s of audio, a clip needs {CLIP_SECONDS:g} s")
        if short > 0:  # FAIR-Play clips are 10 s by construction; a few ms short is container rounding
            stereo = np.pad(stereo, ((0, 0), (0, short)))
        stereo = stereo[:, :CLIP_SAMPLES]  # one clip per FAIR-Play id
        result["lr_diff"], result["lr_diff_sum"] = lr_difference(stereo)
        result["duration_s"] = audio_s
        _cut_clips(task, result, prepared, stereo, None, task.video, FrameSpec(), threads)
        return

    assert task.media is not None
    path = task.media
    info = _probe(path)
    if info.audio is None:
        raise VideoDropped("no-audio", f"{path}: no audio stream")
    if info.video is None:
        raise VideoDropped("no-video", f"{path}: no video stream")
    _check_channels(info.audio.channels, task.kind, path)
    out_channels = 4 if task.kind == "ambix" else 2
    audio = _decode(path, info.audio.channels, out_channels, threads)
    audio_s = audio.shape[1] / SAMPLE_RATE
    result["duration_s"] = audio_s
    _check_truncated(path, audio_s, info, task.config.max_av_mismatch_s)
    usable_s = _common_span(task, result, path, audio_s, _video_seconds(path, info))
    if usable_s < CLIP_SECONDS:
        raise VideoDropped("too-short", f"{path}: {usable_s:.2f} s of audio and video, a clip needs "
                           f"{CLIP_SECONDS:g} s")
    audio = audio[:, :int(round(usable_s * SAMPLE_RATE))]

    foa = None
    if task.kind == "ambix":
        decision = _decide_projection(task, path, info)
        result["projection"] = decision.as_dict()
        foa = audio
        result["decoder"], result["hrir"] = task.config.decoder, task.config.hrir
        stereo = _binaural(foa, task.config.decoder, task.config.hrir)
        frame_spec = FrameSpec(projection=decision.final, top_bottom_stereo=task.stereo_layout == "STEREO")
    else:
        stereo = audio
        frame_spec = FrameSpec()
    result["lr_diff"], result["lr_diff_sum"] = lr_difference(stereo)
    if task.dataset == "music-stereo" and result["lr_diff"] < task.config.min_lr_diff:
        raise VideoDropped("non-binaural", f"{path}: mean |L-R| = {result['lr_diff']:.3g} is below "
                           f"{task.config.min_lr_diff:g} (left and right carry the same signal)")
    _cut_clips(task, result, prepared, stereo, foa, path, frame_spec, threads)


def _binaural(foa: np.ndarray, decoder: str, hrir: str) -> np.ndarray:
    from pipelines.ambisonics import apply_filters

    return apply_filters(foa, _decoder_filters(decoder, hrir)).astype(np.float32)


def _decide_projection(task: VideoTask, path: str, info):
    from pipelines.media import grab_frames
    from pipelines.probe import spherical_projection
    from pipelines.projection import Override, decide_projection, detect_projection, metadata_label

    duration = _declared_video_seconds(info) or CLIP_SECONDS
    # spread over the video, away from the very start and end (fades, black frames)
    times = [duration * (i + 0.5) / DETECTOR_FRAMES for i in range(DETECTOR_FRAMES)]
    frames = grab_frames(path, times, top_bottom_stereo=task.stereo_layout == "STEREO")
    detection = detect_projection(frames)
    override = Override(*task.override) if task.override else None
    return decide_projection(task.video_id, upstream=task.upstream_projection,
                             metadata=metadata_label(spherical_projection(path)), detection=detection,
                             override=override)


def _frame_batches(path: str, spec, threads: int | None) -> Iterator[list[np.ndarray]]:
    """Lists of up to 100 consecutive frames (one clip's worth) from the video's frame stream."""
    from pipelines.media import MediaError, iter_frames

    batch: list[np.ndarray] = []
    try:
        for frame in iter_frames(path, spec, threads=threads):
            batch.append(frame)
            if len(batch) == FRAMES_PER_CLIP:
                yield batch
                batch = []
    except MediaError as exc:
        raise VideoDropped("corrupt", str(exc)) from None
    if batch:
        yield batch


def _cut_clips(task: VideoTask, result: dict[str, Any], prepared: Path, stereo: np.ndarray, foa: np.ndarray | None,
               frames_path: str, frame_spec, threads: int | None) -> None:
    starts = clip_starts(stereo.shape[1])
    projection = result["projection"]["final"] if result["projection"] else None
    max_pad = int(round(task.config.max_av_mismatch_s * FPS))
    batches = _frame_batches(frames_path, frame_spec, threads)
    clips = []
    last_frame: np.ndarray | None = None
    with atomic_output(prepared / f"{task.video_id}.tar") as fh, tarfile.open(fileobj=fh, mode="w",
                                                                             format=tarfile.USTAR_FORMAT) as tar:
        for index, start in enumerate(starts):
            key = sample_key(task.video_id, index)
            frames = next(batches, [])
            if frames:
                last_frame = frames[-1]
            missing = FRAMES_PER_CLIP - len(frames)
            audio = stereo[:, start:start + CLIP_SAMPLES]
            record = {
                "key": key,
                "video_id": task.video_id,
                "clip_index": index,
                "start_s": start / SAMPLE_RATE,
                "rms": rms(audio),
                "lr_diff": lr_difference(audio)[0],
                "projection": projection,
                "decoder": result["decoder"],
                "hrir": result["hrir"],
                "padded_frames": max(missing, 0),
                "dropped": None,
            }
            if missing > max_pad or last_frame is None:
                record["dropped"] = "video-ended"
                record["padded_frames"] = 0
            elif record["rms"] < SILENCE_RMS:
                record["dropped"] = "silent-clip"
            clips.append(record)
            if record["dropped"]:
                continue
            frames = frames + [last_frame] * missing  # the last frame held for at most max_av_mismatch_s
            add_member(tar, f"{key}.{AUDIO_MEMBER}", flac_bytes(audio))
            for k, frame in enumerate(frames):
                add_member(tar, f"{key}.{frame_member(k)}", jpeg_bytes(frame))
            if foa is not None and task.config.keep_foa:
                add_member(tar, f"{key}.{FOA_MEMBER}", flac_bytes(foa[:, start:start + CLIP_SAMPLES]))
            add_member(tar, f"{key}.{META_MEMBER}", json.dumps(_sample_meta(task, record), sort_keys=True).encode())
        # let ffmpeg go (the remainder of the video, < 10 s, is not needed)
        batches.close()
    result["clips"] = clips


def _sample_meta(task: VideoTask, record: dict[str, Any]) -> dict[str, Any]:
    """The ``<key>.json`` member (SPEC section 6)."""
    return {
        "dataset": task.dataset,
        "video_id": task.video_id,
        "clip_index": record["clip_index"],
        "start_s": record["start_s"],
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "n_frames": FRAMES_PER_CLIP,
        "width": FRAME_WIDTH,
        "height": FRAME_HEIGHT,
        "projection": record["projection"],
        "decoder": record["decoder"],
        "hrir": record["hrir"],
        "lr_diff": record["lr_diff"],
        "rms": record["rms"],
        "source": task.source,
        "pipeline_version": PIPELINE_VERSION,
    }


# ------------------------------------------------------------------------------------------------ the run


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


def _kind(spec: DatasetSpec) -> str:
    if spec.source == "archive":
        return "fairplay"
    return "ambix" if spec.audio == "ambix" else "stereo"


def build_tasks(spec: DatasetSpec, layout: DatasetLayout, config: PrepareConfig,
                overrides: dict | None = None) -> tuple[list[VideoTask], list[tuple[str, str]]]:
    """One task per fetched video; ``(video_id, why)`` for records that cannot become a task."""
    table = {row["video_id"]: row for row in read_jsonl(layout.video_table)}
    kind = _kind(spec)
    fingerprint = config.fingerprint(spec.name)
    tasks, bad = [], []
    for video_id, rec in sorted(fetched_videos(layout).items()):
        try:
            validate_id(video_id, spec.id_format)
            files = rec.get("files") or {}
            row = table.get(video_id, {})
            source = {"files": dict(sorted(files.items())), "sha256": rec.get("sha256")}
            if kind == "fairplay":
                video = _safe_media_path(layout.base, files.get("video"), video_id)
                audio = _safe_media_path(layout.base, files.get("audio"), video_id)
                media = None
            else:
                media = _safe_media_path(layout.base, files.get("media"), video_id)
                video = audio = None
            ov = overrides.get(video_id) if overrides and kind == "ambix" else None
            fp = {**fingerprint, "fetch_sha256": rec.get("sha256")}
            if ov is not None:
                fp["override"] = ov.projection
            tasks.append(VideoTask(
                dataset=spec.name, video_id=video_id, base=str(layout.base), kind=kind, media=media, video=video,
                audio=audio, source=source, upstream_projection=row.get("upstream_projection"),
                stereo_layout=row.get("stereo_layout"), override=(ov.projection, ov.reason) if ov else None,
                config=config, fingerprint=fp,
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


def _run_task(task: VideoTask) -> dict[str, Any]:
    return prepare_video(task)


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

    ``min_lr_diff`` None takes the spec's threshold (MUSIC-Stereo: 0.001). ``jobs`` videos run in parallel.
    """
    from pipelines.ambisonics import DECODERS
    from pipelines.projection import load_overrides

    if decoder not in DECODERS:
        raise PrepareError(f"unknown decoder {decoder!r} (known: {', '.join(DECODERS)})")
    if jobs < 1:
        raise PrepareError("jobs must be >= 1")
    if config is None:
        threshold = spec.min_lr_diff if min_lr_diff is None else min_lr_diff
        config = PrepareConfig(min_lr_diff=threshold, decoder=decoder, hrir=hrir, drop_av_mismatch=drop_av_mismatch,
                               ffmpeg_threads=1 if jobs > 1 else None)
    if spec.audio == "ambix":
        from pipelines.hrir import load_hrirs

        load_hrirs(config.hrir)  # fail fast on a bad --hrir, before any video
    layout = DatasetLayout(Path(root), spec.name)
    overrides = load_overrides(overrides_path) if spec.audio == "ambix" else {}
    tasks, bad = build_tasks(spec, layout, config, overrides)
    ledger = Ledger(layout.ledger("prepare"))
    summary = PrepareSummary(dataset=spec.name, videos=len(tasks) + len(bad))
    reasons: Counter[str] = Counter()
    started = time.perf_counter()

    def record(video_id: str, status: str, reason: str | None, detail: str | None, n_clips: int = 0) -> None:
        ledger.append({"video_id": video_id, "status": status, "reason": reason, "detail": detail,
                       "clips": n_clips, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    for video_id, why in bad:
        summary.failed += 1
        reasons["invalid-input"] += 1
        record(video_id, "failed", "invalid-input", why)

    todo = []
    for task in tasks:
        done = _finished(layout, task)
        if done is not None:
            summary.resumed += 1
        else:
            todo.append(task)
    layout.prepared_dir.mkdir(parents=True, exist_ok=True)
    for stale in layout.prepared_dir.glob(".*.tmp"):  # temp files of a killed run (never complete results)
        stale.unlink(missing_ok=True)

    def account(task: VideoTask, result: dict[str, Any] | None, error: BaseException | None) -> None:
        if error is not None:
            summary.failed += 1
            reasons["error"] += 1
            record(task.video_id, "failed", "error", f"{type(error).__name__}: {error}")
            return
        assert result is not None
        kept = [c for c in result["clips"] if c["dropped"] is None]
        summary.clips += len(kept)
        summary.media_seconds += len(kept) * CLIP_SECONDS
        summary.clips_dropped += len(result["clips"]) - len(kept)
        for c in result["clips"]:
            if c["dropped"]:
                reasons[c["dropped"]] += 1
        if result["status"] == "done":
            summary.done += 1
            if result["reason"]:  # kept with a note (av-length-mismatch: common span only)
                reasons[result["reason"]] += 1
        else:
            summary.dropped += 1
            reasons[result["reason"]] += 1
        record(task.video_id, result["status"], result["reason"], result["detail"], len(kept))

    bar = tqdm(total=len(todo), desc=f"prepare {spec.name}", unit="video", disable=not progress)
    if jobs == 1 or len(todo) <= 1:
        for task in todo:
            try:
                account(task, _run_task(task), None)
            except Exception as exc:  # noqa: BLE001 - recorded in the ledger; the run goes on
                account(task, None, exc)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_run_task, task): task for task in todo}
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    account(task, fut.result(), None)
                except Exception as exc:  # noqa: BLE001
                    account(task, None, exc)
                bar.update(1)
    bar.close()
    summary.seconds = time.perf_counter() - started
    summary.clips_per_s = summary.clips / summary.seconds if summary.seconds > 0 else 0.0
    summary.reasons = dict(sorted(reasons.items()))
    write_manifests(spec, layout, [t.video_id for t in tasks])
    return summary


# ------------------------------------------------------------------------------------------------ manifests


def compute_splits(spec: DatasetSpec, table: dict[str, dict[str, Any]], kept: list[str]) -> dict[str, dict[str, list[str]]]:
    """Split memberships per kept video: ``{video_id: {"<protocol>/<split>": [parts]}}``.

    ``random-by-video`` protocols split the kept videos (sorted ids, seeded permutation: the result does not
    depend on processing order); list-based and FAIR-Play HDF5 protocols come from the video table.
    """
    out: dict[str, dict[str, list[str]]] = {vid: {} for vid in kept}
    for proto in spec.protocols:
        if proto.kind == "random-by-video":
            assert proto.fractions is not None
            for i, split in enumerate(proto.splits):
                assignment = split_by_video(kept, proto.fractions, proto.seed + i)
                for vid, part in assignment.items():
                    out[vid][f"{proto.name}/{split}"] = [part]
        else:
            for vid in kept:
                for name, parts in (table.get(vid, {}).get("splits") or {}).items():
                    if name.split("/", 1)[0] == proto.name:
                        out[vid][name] = sorted(parts)
    return {vid: dict(sorted(s.items())) for vid, s in out.items()}


def write_manifests(spec: DatasetSpec, layout: DatasetLayout, video_ids: list[str]) -> None:
    """Rebuild ``videos-prepared.jsonl`` and ``clips.jsonl`` from the stored per-video results."""
    table = {row["video_id"]: row for row in read_jsonl(layout.video_table)}
    results = []
    for vid in sorted(set(video_ids)):
        path = layout.prepared_dir / f"{vid}.json"
        if path.exists():
            results.append(json.loads(path.read_text(encoding="utf-8")))
    kept = [r["video_id"] for r in results
            if r["status"] == "done" and any(c["dropped"] is None for c in r["clips"])]
    splits = compute_splits(spec, table, kept)
    videos, clips = [], []
    for r in results:
        vsplits = splits.get(r["video_id"], {})
        videos.append({
            "video_id": r["video_id"],
            "status": r["status"],
            "reason": r["reason"],
            "detail": r["detail"],
            "duration_s": r["duration_s"],
            "lr_diff": r["lr_diff"],
            "lr_diff_sum": r["lr_diff_sum"],
            "projection": r["projection"],
            "decoder": r["decoder"],
            "hrir": r["hrir"],
            "clips": sum(c["dropped"] is None for c in r["clips"]),
            "clips_dropped": sum(c["dropped"] is not None for c in r["clips"]),
            "splits": vsplits,
            "source": r["source"],
            "settings": r["settings"],
        })
        for c in r["clips"]:
            clips.append({**c, "splits": vsplits if c["dropped"] is None else {}})
    clips.sort(key=lambda c: c["key"])
    write_jsonl(layout.prepared_videos, videos)
    write_jsonl(layout.clips_manifest, clips)


__all__ = [
    "PrepareConfig",
    "PrepareError",
    "PrepareSummary",
    "VideoDropped",
    "clip_starts",
    "compute_splits",
    "lr_difference",
    "prepare_dataset",
    "prepare_video",
    "rms",
    "split_by_video",
    "write_manifests",
]
