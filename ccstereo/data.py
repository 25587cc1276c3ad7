"""Streaming training input from shards (SPEC 2, 8).

Design (why it is shaped like this):

* Each clip read from a tar yields K random samples (segment start, frame crop, jitter factors, and the previous
  frame for SCL) into a shuffle buffer, so one tar read feeds K samples. A sample keeps references to the clip's
  FLAC bytes and the two JPEGs it uses; audio and frames are decoded only when the sample leaves the buffer.
* The stream is a pure function of (seed, epoch, stream id): its random generator and shard order are seeded by
  them and by nothing else. Resuming at batch b of an epoch regenerates the stream and skips b batches without
  decoding anything, so N steps straight == N/2 + resume + N/2 exactly.
* Every rank draws an infinite stream and the trainer takes the same number of batches per epoch on every rank,
  so DDP can never hang on a rank that ran out of data. Streams (rank x worker) get disjoint shards when there are
  at least as many shards as streams, otherwise disjoint interleaved clips, otherwise (fewer clips than streams)
  all clips with their own random draws.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ccstereo.audio import normalise_rms
from ccstereo.constants import SEGMENT_SAMPLES
from ccstereo.frames import JITTER_RANGE, crop, decode_jpeg, eval_frame, resize, segment_frame_index
from pipelines.contract import AUDIO_MEMBER, CLIP_SAMPLES
from pipelines.shards import RawClip, check_raw_clip, iter_raw_clips, shard_keys


@dataclass(frozen=True)
class ShardPlan:
    """The wanted keys of every shard, in stored order (from the shard's index file, or its tar headers when the
    index is missing or stale: no member data is read)."""

    shards: tuple[tuple[Path, tuple[str, ...]], ...]
    missing: tuple[str, ...]  # wanted keys found in no shard

    @classmethod
    def build(cls, shards: Sequence[str | Path], keys: Sequence[str]) -> ShardPlan:
        wanted = set(keys)
        found: set[str] = set()
        plan = []
        for shard in shards:
            mine = tuple(k for k in shard_keys(shard) if k in wanted)
            found.update(mine)
            if mine:
                plan.append((Path(shard), mine))
        if not plan:
            raise ValueError(f"none of the {len(wanted)} split keys is in the {len(shards)} shard(s) given")
        return cls(tuple(plan), tuple(sorted(wanted - found)))

    @property
    def n_clips(self) -> int:
        return sum(len(k) for _, k in self.shards)

    def sources(self, seed: int, epoch: int, pass_index: int, stream: int, n_streams: int) -> list[tuple[Path, tuple[str, ...]]]:
        """The (shard, keys) this stream reads in one pass over its share; disjoint across streams when possible."""
        order = np.random.default_rng([seed, epoch, pass_index, 0x5EED]).permutation(len(self.shards))
        shards = [self.shards[i] for i in order]
        if len(shards) >= n_streams:
            return shards[stream::n_streams]
        if self.n_clips < n_streams:
            return shards
        out, c = [], 0
        for path, keys in shards:
            mine = tuple(k for j, k in enumerate(keys, start=c) if j % n_streams == stream)
            c += len(keys)
            if mine:
                out.append((path, mine))
        return out


@dataclass(frozen=True)
class StreamConfig:
    batch_size: int  # per rank
    samples_per_clip: int
    shuffle_buffer: int
    resize: tuple[int, int]
    crop: tuple[int, int]
    with_prev_frame: bool
    seed: int


@dataclass
class SampleRef:
    """A drawn, not yet decoded sample."""

    key: str
    flac: bytes
    start: int
    frame: bytes
    box: tuple[int, int]
    jitter: tuple[float, float]  # brightness, saturation
    prev_frame: bytes | None = None
    prev_box: tuple[int, int] = (0, 0)
    prev_jitter: tuple[float, float] = (1.0, 1.0)


def draw_sample(rng: np.random.Generator, clip: RawClip, cfg: StreamConfig) -> SampleRef:
    """Random segment start (uniform over the clip), its centre frame and the previous one, crops and jitter."""
    n_frames = clip.frame_count()
    start = int(rng.integers(0, CLIP_SAMPLES - SEGMENT_SAMPLES + 1))
    k = segment_frame_index(start, n_frames)

    def box() -> tuple[int, int]:
        return int(rng.integers(0, cfg.resize[0] - cfg.crop[0] + 1)), int(rng.integers(0, cfg.resize[1] - cfg.crop[1] + 1))

    def jitter() -> tuple[float, float]:
        return float(rng.uniform(*JITTER_RANGE)), float(rng.uniform(*JITTER_RANGE))

    ref = SampleRef(clip.key, clip.get(AUDIO_MEMBER), start, clip.frame(k), box(), jitter())
    if cfg.with_prev_frame:
        ref.prev_frame, ref.prev_box, ref.prev_jitter = clip.frame(max(k - 1, 0)), box(), jitter()
    return ref


def read_segment(flac: bytes, start: int, where: str = "") -> np.ndarray:
    """``SEGMENT_SAMPLES`` of a clip's FLAC from ``start`` -> float32 [2, T] (seeks; decodes only that part)."""
    with sf.SoundFile(io.BytesIO(flac)) as fh:
        fh.seek(start)
        seg = fh.read(SEGMENT_SAMPLES, dtype="float32", always_2d=True)
    if seg.shape != (SEGMENT_SAMPLES, 2):
        raise ValueError(f"{where}: segment at {start} has shape {seg.shape}, expected ({SEGMENT_SAMPLES}, 2)")
    return seg.T


def load_crop(jpeg: bytes, box: tuple[int, int], cfg: StreamConfig) -> torch.Tensor:
    return crop(resize(decode_jpeg(jpeg, cfg.resize), cfg.resize), box[0], box[1], cfg.crop)


def materialise(refs: list[SampleRef], cfg: StreamConfig) -> dict[str, object]:
    """Decode a batch: RMS-normalised stereo segments, uint8 crops and the jitter factors for augment_batch."""
    segments = torch.from_numpy(np.stack([read_segment(r.flac, r.start, r.key) for r in refs]))
    segments, _ = normalise_rms(segments)
    batch: dict[str, object] = {
        "keys": [r.key for r in refs],
        "starts": torch.tensor([r.start for r in refs]),
        "segment": segments,
        "frame": torch.stack([load_crop(r.frame, r.box, cfg) for r in refs]),
        "brightness": torch.tensor([r.jitter[0] for r in refs]),
        "saturation": torch.tensor([r.jitter[1] for r in refs]),
    }
    if cfg.with_prev_frame:
        batch["prev_frame"] = torch.stack([load_crop(r.prev_frame, r.prev_box, cfg) for r in refs])  # type: ignore[arg-type]
        batch["prev_brightness"] = torch.tensor([r.prev_jitter[0] for r in refs])
        batch["prev_saturation"] = torch.tensor([r.prev_jitter[1] for r in refs])
    return batch


def sample_stream(plan: ShardPlan, cfg: StreamConfig, epoch: int, stream: int, n_streams: int) -> Iterator[SampleRef]:
    """Infinite shuffled stream of drawn samples; a pure function of (plan, cfg, epoch, stream, n_streams)."""
    rng = np.random.default_rng([cfg.seed, epoch, stream, n_streams])
    buffer: list[SampleRef] = []
    for pass_index in count():
        sources = plan.sources(cfg.seed, epoch, pass_index, stream, n_streams)
        if not sources:
            raise ValueError("stream has no clips")  # cannot happen: sources() falls back to all clips
        for shard, keys in sources:
            for clip in iter_raw_clips([shard], keys, lazy=True):  # seeks to the audio and the drawn frames only
                check_raw_clip(clip)
                for _ in range(cfg.samples_per_clip):
                    ref = draw_sample(rng, clip, cfg)
                    if len(buffer) < cfg.shuffle_buffer:
                        buffer.append(ref)
                        continue
                    i = int(rng.integers(len(buffer)))
                    buffer[i], ref = ref, buffer[i]
                    yield ref


class TrainStream(IterableDataset):
    """Batches of one rank for one epoch (``set_epoch``), starting at a batch index (exact resume).

    Use with ``DataLoader(stream, batch_size=None, num_workers=W)``. Batch i of the epoch is made by worker slot
    ``i % W``; each slot is its own stream, so the batch sequence depends on (seed, epoch, rank, world, W) only.
    """

    def __init__(self, plan: ShardPlan, cfg: StreamConfig, rank: int = 0, world: int = 1, num_workers: int = 0):
        self.plan, self.cfg, self.rank, self.world = plan, cfg, rank, world
        self.slots = max(1, num_workers)
        self.epoch, self.start_batch, self.batches = 0, 0, 0

    def set_epoch(self, epoch: int, batches: int, start_batch: int = 0) -> None:
        self.epoch, self.batches, self.start_batch = epoch, batches, start_batch

    def __len__(self) -> int:
        return max(0, self.batches - self.start_batch)

    def __iter__(self) -> Iterator[dict[str, object]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        if info is not None:
            torch.set_num_threads(1)
            if info.num_workers != self.slots:
                raise RuntimeError(f"TrainStream built for {self.slots} workers, run with {info.num_workers}")
        slot = (worker + self.start_batch) % self.slots
        stream = self.rank * self.slots + slot
        refs = sample_stream(self.plan, self.cfg, self.epoch, stream, self.world * self.slots)
        for i in range(slot, self.batches, self.slots):
            batch = [next(refs) for _ in range(self.cfg.batch_size)]
            if i >= self.start_batch:
                yield materialise(batch, self.cfg)


def iter_eval_batches(
    shards: Sequence[str | Path], keys: Sequence[str], resize_to: tuple[int, int], crop_to: tuple[int, int],
    segments_per_clip: int, batch_size: int,
) -> Iterator[dict[str, object]]:
    """Fixed validation batches: ``segments_per_clip`` evenly spaced segments per clip (the clip edges left out),
    each with its centre frame resized and centre-cropped; no randomness."""
    starts = np.linspace(0, CLIP_SAMPLES - SEGMENT_SAMPLES, segments_per_clip + 2)[1:-1].round().astype(int)
    pending: list[tuple[str, np.ndarray, torch.Tensor]] = []

    def flush() -> dict[str, object]:
        seg, _ = normalise_rms(torch.from_numpy(np.stack([p[1] for p in pending])))
        out = {"keys": [p[0] for p in pending], "segment": seg, "frame": torch.stack([p[2] for p in pending])}
        pending.clear()
        return out

    for clip in iter_raw_clips(shards, keys, lazy=True):
        check_raw_clip(clip)
        n_frames = clip.frame_count()
        for start in starts:
            seg = read_segment(clip.get(AUDIO_MEMBER), int(start), f"{clip.shard}: clip {clip.key}")
            frame = eval_frame(decode_jpeg(clip.frame(segment_frame_index(int(start), n_frames)), resize_to), resize_to, crop_to)
            pending.append((clip.key, seg, frame))
            if len(pending) == batch_size:
                yield flush()
    if pending:
        yield flush()
