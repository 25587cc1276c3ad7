"""Training input from shards (SPEC 2, 8): two samplers with one batch format.

* ``epoch`` (:class:`EpochStream`, the default; the released code's map-style dataset): every training clip once
  per epoch in a shuffled order, one random segment per clip. Each sample is read with seeks (the FLAC and the two
  JPEGs it uses), located once from the shard indexes.
* ``stream`` (:class:`TrainStream`, the fast option): each clip read from a tar yields K random samples into a
  shuffle buffer, so one tar read feeds K samples; a sample keeps references to the clip's FLAC bytes and the
  two JPEGs it uses, decoded only when it leaves the buffer. An epoch then visits only part of the clips, and
  samples of one clip often share a batch (BENCHMARKS.md).

Both are pure functions of (seed, epoch, rank, world, workers): nothing of a sample's draw depends on what was
decoded before, so resuming at batch b of an epoch skips b batches without decoding anything, and N steps straight
== N/2 + resume + N/2 exactly. Every rank takes the same number of batches per epoch, so DDP cannot hang on a rank
that ran out of data. A segment starts uniformly in [0, 9.27 s) (released), its frame is the one nearest its centre
(``frames.segment_frame_index``), and it is scaled to RMS 0.1 jointly over L and R. A member that does not decode
is a :class:`SampleError` naming the shard and the key (also across DataLoader workers: :func:`worker_error`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ccstereo.audio import normalise_rms
from ccstereo.constants import MAX_SEGMENT_START, SEGMENT_SAMPLES
from ccstereo.frames import JITTER_RANGE, crop, decode_jpeg, resize, segment_frame_index
from pipelines.contract import AUDIO_MEMBER
from pipelines.errors import InputError
from pipelines.shards import RawClip, check_raw_clip, iter_raw_clips, shard_keys
from pipelines.workers import die_with_parent


class SampleError(InputError, ValueError):
    """A training sample cannot be read; the message names the shard, the key and the member."""


def worker_error(exc: BaseException) -> BaseException:
    """``exc`` as raised in a DataLoader worker, re-raised by torch with the worker's traceback as its message:
    the exception's own last line alone (a :class:`SampleError` naming shard and key), or ``exc`` unchanged."""
    text = str(exc)
    if "Original Traceback" not in text:
        return exc
    last = text.strip().splitlines()[-1]
    name, _, message = last.partition(": ")
    return SampleError(message if name.rsplit(".", 1)[-1] in (type(exc).__name__, "SampleError") else last)


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
    where: str = ""  # "<shard>: clip <key>", for errors


def draw_sample(rng: np.random.Generator, clip: RawClip, cfg: StreamConfig) -> SampleRef:
    """Random segment start (uniform in [0, MAX_SEGMENT_START)), its centre frame and the previous one, crops and
    jitter."""
    n_frames = clip.frame_count()
    start = int(rng.integers(0, MAX_SEGMENT_START))
    k = segment_frame_index(start, n_frames)

    def box() -> tuple[int, int]:
        return int(rng.integers(0, cfg.resize[0] - cfg.crop[0] + 1)), int(rng.integers(0, cfg.resize[1] - cfg.crop[1] + 1))

    def jitter() -> tuple[float, float]:
        return float(rng.uniform(*JITTER_RANGE)), float(rng.uniform(*JITTER_RANGE))

    ref = SampleRef(clip.key, clip.get(AUDIO_MEMBER), start, clip.frame(k), box(), jitter(),
                    where=f"{clip.shard}: clip {clip.key}")
    if cfg.with_prev_frame:
        ref.prev_frame, ref.prev_box, ref.prev_jitter = clip.frame(max(k - 1, 0)), box(), jitter()
    return ref


def read_segment(flac: bytes, start: int, where: str = "") -> np.ndarray:
    """``SEGMENT_SAMPLES`` of a clip's FLAC from ``start`` -> float32 [2, T] (seeks; decodes only that part)."""
    try:
        with sf.SoundFile(io.BytesIO(flac)) as fh:
            fh.seek(start)
            seg = fh.read(SEGMENT_SAMPLES, dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError) as exc:  # libsndfile's errors are RuntimeErrors
        raise SampleError(f"{where}: {AUDIO_MEMBER} does not decode ({exc})") from None
    if seg.shape != (SEGMENT_SAMPLES, 2):
        raise SampleError(f"{where}: {AUDIO_MEMBER} segment at {start} has shape {seg.shape}, expected "
                          f"({SEGMENT_SAMPLES}, 2)")
    return seg.T


def load_crop(jpeg: bytes, box: tuple[int, int], cfg: StreamConfig, where: str = "") -> torch.Tensor:
    try:
        img = decode_jpeg(jpeg, cfg.resize)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for data that is no JPEG
        raise SampleError(f"{where}: a frame does not decode ({exc})") from None
    return crop(resize(img, cfg.resize), box[0], box[1], cfg.crop)


def materialise(refs: list[SampleRef], cfg: StreamConfig) -> dict[str, object]:
    """Decode a batch: RMS-normalised stereo segments, uint8 crops and the jitter factors for augment_batch."""
    segments = torch.from_numpy(np.stack([read_segment(r.flac, r.start, r.where) for r in refs]))
    segments, _ = normalise_rms(segments)
    batch: dict[str, object] = {
        "keys": [r.key for r in refs],
        "starts": torch.tensor([r.start for r in refs]),
        "segment": segments,
        "frame": torch.stack([load_crop(r.frame, r.box, cfg, r.where) for r in refs]),
        "brightness": torch.tensor([r.jitter[0] for r in refs]),
        "saturation": torch.tensor([r.jitter[1] for r in refs]),
    }
    if cfg.with_prev_frame:
        batch["prev_frame"] = torch.stack([load_crop(r.prev_frame, r.prev_box, cfg, r.where) for r in refs])  # type: ignore[arg-type]
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


class _Batches(IterableDataset):
    """Batches of one rank for one epoch (``set_epoch``), starting at a batch index (exact resume).

    Use with ``DataLoader(stream, batch_size=None, num_workers=W)``. Batch i of the epoch is made by worker slot
    ``i % W``; what a batch holds depends on (seed, epoch, rank, world, W) only.
    """

    def __init__(self, plan: ShardPlan, cfg: StreamConfig, rank: int = 0, world: int = 1, num_workers: int = 0):
        self.plan, self.cfg, self.rank, self.world = plan, cfg, rank, world
        self.slots = max(1, num_workers)
        self.epoch, self.start_batch, self.batches = 0, 0, 0

    def set_epoch(self, epoch: int, batches: int, start_batch: int = 0) -> None:
        self.epoch, self.batches, self.start_batch = epoch, batches, start_batch

    def __len__(self) -> int:
        return max(0, self.batches - self.start_batch)

    def _slot(self) -> int:
        """This worker's slot (0 in-process); refuses a DataLoader with another worker count."""
        info = get_worker_info()
        if info is None:
            return self.start_batch % self.slots
        # a worker of a killed trainer would read on for up to 5 s (torch's watchdog interval); the kernel ends it
        die_with_parent(os.getppid())
        torch.set_num_threads(1)
        if info.num_workers != self.slots:
            raise RuntimeError(f"{type(self).__name__} built for {self.slots} workers, run with {info.num_workers}")
        return (info.id + self.start_batch) % self.slots


class TrainStream(_Batches):
    """Sampler ``stream``: K samples per clip read, through a shuffle buffer (:func:`sample_stream`); each worker
    slot is its own stream."""

    def __iter__(self) -> Iterator[dict[str, object]]:
        slot = self._slot()
        stream = self.rank * self.slots + slot
        refs = sample_stream(self.plan, self.cfg, self.epoch, stream, self.world * self.slots)
        for i in range(slot, self.batches, self.slots):
            batch = [next(refs) for _ in range(self.cfg.batch_size)]
            if i >= self.start_batch:
                yield materialise(batch, self.cfg)


def locate_clips(plan: ShardPlan) -> dict[str, tuple[Path, dict[str, tuple[int, int]]]]:
    """Where every clip of ``plan`` is: key -> (shard, member extension -> (offset, size)); reads no member data."""
    located: dict[str, tuple[Path, dict[str, tuple[int, int]]]] = {}
    for shard, keys in plan.shards:
        for clip in iter_raw_clips([shard], keys, lazy=True):
            located[clip.key] = (shard, dict(clip.spans))
    return located


class EpochStream(_Batches):
    """Sampler ``epoch`` (released): each training clip once per epoch, in an order shuffled by (seed, epoch), one
    random segment per clip. Global batch i is positions ``[i B, (i + 1) B)`` of the epoch's order, rank r takes
    its share of it; the draw at position p is seeded by (seed, epoch, p). With fewer clips than a batch the order
    wraps around."""

    def __init__(self, plan: ShardPlan, cfg: StreamConfig, rank: int = 0, world: int = 1, num_workers: int = 0):
        super().__init__(plan, cfg, rank, world, num_workers)
        self.keys = [k for _, keys in plan.shards for k in keys]
        self.located = locate_clips(plan)

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's clip order (indices into ``keys``)."""
        return np.random.default_rng([self.cfg.seed, epoch, 0xE70C]).permutation(len(self.keys))

    def draw(self, epoch: int, position: int, key: str) -> SampleRef:
        shard, spans = self.located[key]
        with open(shard, "rb") as fh:
            clip = RawClip(key, shard, spans=dict(spans), _fh=fh)
            check_raw_clip(clip)
            return draw_sample(np.random.default_rng([self.cfg.seed, epoch, position]), clip, self.cfg)  # reads the bytes

    def __iter__(self) -> Iterator[dict[str, object]]:
        slot = self._slot()
        order = self.order(self.epoch)
        b = self.cfg.batch_size
        for i in range(slot, self.batches, self.slots):
            if i < self.start_batch:
                continue
            first = (i * self.world + self.rank) * b
            positions = range(first, first + b)
            yield materialise([self.draw(self.epoch, p, self.keys[order[p % len(order)]]) for p in positions], self.cfg)
