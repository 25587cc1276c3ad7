"""Bounded buffers for streaming inference (``ccstereo.infer.binauralize_blocks``): a long video's audio, frames and
output pass through in order and only what the current batch of windows needs is held, so memory does not grow
with the video's length.

* :class:`SampleBuffer` holds the mono samples from the oldest window still to run onwards;
* :class:`OverlapAdd` holds the running sum and count of predicted differences over the samples some window
  still to run may cover, and hands out the samples no later window touches;
* :class:`FrameCursor` reads frames forward from a stream and keeps the latest;
* :class:`WavWriter` appends 16-bit blocks to a wav file written atomically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import torch

from pipelines.contract import SAMPLE_RATE
from pipelines.io import atomic_output


class SampleBuffer:
    """Samples ``[base, end)`` of a 1-D float32 signal that arrives in chunks."""

    def __init__(self) -> None:
        self.base = 0
        self.data = torch.zeros(0, dtype=torch.float32)

    @property
    def end(self) -> int:
        return self.base + self.data.numel()

    def extend(self, chunk: torch.Tensor) -> None:
        self.data = torch.cat([self.data, chunk])

    def window(self, start: int, length: int) -> torch.Tensor:
        """Samples ``[start, start + length)``, zeros past the end (the padded tail of SPEC section 9)."""
        if start < self.base:
            raise ValueError(f"sample {start} was already released (buffer starts at {self.base})")
        part = self.data[start - self.base : start - self.base + length]
        return torch.nn.functional.pad(part, (0, length - part.numel()))

    def release_before(self, sample: int) -> None:
        cut = min(sample, self.end) - self.base
        if cut > 0:
            self.data = self.data[cut:].clone()
            self.base += cut


class OverlapAdd:
    """Float64 sums and counts of window predictions from ``base`` on; samples below a point no later window
    reaches are taken out averaged (:meth:`take_until`)."""

    def __init__(self) -> None:
        self.base = 0
        self.acc = torch.zeros(0, dtype=torch.float64)
        self.count = torch.zeros(0, dtype=torch.float64)

    def add(self, start: int, values: torch.Tensor) -> None:
        lo, hi = start - self.base, start - self.base + values.numel()
        if lo < 0:
            raise ValueError(f"window at {start} overlaps samples already taken (up to {self.base})")
        if hi > self.acc.numel():
            grow = hi - self.acc.numel()
            self.acc = torch.cat([self.acc, torch.zeros(grow, dtype=torch.float64)])
            self.count = torch.cat([self.count, torch.zeros(grow, dtype=torch.float64)])
        self.acc[lo:hi] += values
        self.count[lo:hi] += 1

    def take_until(self, sample: int) -> torch.Tensor:
        """The averaged predictions of samples ``[base, sample)`` (every one must have been covered)."""
        k = max(0, sample - self.base)
        if k > self.acc.numel() or (k and bool((self.count[:k] == 0).any())):
            raise ValueError(f"samples below {sample} are not all covered by a window")
        out = self.acc[:k] / self.count[:k]
        self.acc, self.count = self.acc[k:].clone(), self.count[k:].clone()
        self.base += k
        return out


class FrameCursor:
    """Frames of an iterator by non-decreasing index: ``cursor(i)`` is ``(j, frame j)`` with ``j = min(i, last)``
    (the last frame holds to the end, SPEC section 2); only the latest frame is kept."""

    def __init__(self, frames: Iterator[np.ndarray], what: str = "the video"):
        self._frames = iter(frames)
        self._what = what
        self.index = -1
        self.frame: np.ndarray | None = None
        self.ended = False

    def __call__(self, index: int) -> tuple[int, np.ndarray]:
        if index < self.index:
            raise ValueError(f"frame {index} asked after frame {self.index}: a cursor only moves forward")
        while self.index < index and not self.ended:
            nxt = next(self._frames, None)
            if nxt is None:
                self.ended = True
                break
            self.index, self.frame = self.index + 1, nxt
        if self.frame is None:
            raise ValueError(f"{self._what}: no video frames (an audio-only file cannot guide binauralisation)")
        return self.index, self.frame

    def count(self) -> int:
        """Read the stream to its end (dropping the frames) and return how many frames it had."""
        while not self.ended:
            nxt = next(self._frames, None)
            if nxt is None:
                self.ended = True
            else:
                self.index, self.frame = self.index + 1, nxt
        return self.index + 1


class WavWriter:
    """A 16-bit 16 kHz stereo wav written block by block; it appears at ``path`` only when closed without an
    error. ``clipped`` tells whether any sample had to be clipped to [-1, 1]."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.clipped = False
        self.samples = 0

    def __enter__(self) -> WavWriter:
        self._atomic = atomic_output(self.path)
        fh = self._atomic.__enter__()
        self._sf = sf.SoundFile(fh, mode="w", samplerate=SAMPLE_RATE, channels=2, subtype="PCM_16", format="WAV")
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``[2, k]`` float samples."""
        if block.size and float(np.abs(block).max()) > 1.0:
            self.clipped = True
        self._sf.write(np.clip(block, -1.0, 1.0).T)
        self.samples += block.shape[1]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._sf.close()  # writes the header's final sizes
        self._atomic.__exit__(exc_type, exc, tb)
