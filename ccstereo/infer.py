"""Sliding-window + TDSS inference (SPEC section 9): mono audio + video frames in, binaural L/R out.

The clip is cut into windows of 10,080 samples every ``hop`` samples (1,008 by default, the released code's
int(0.1 x 10,080)); by default (``tail="pad"``, released code) windows continue until one reaches the end and the
part past the end is zero-padded, with ``tail="end"`` (2.5D Visual Sound) the last window is aligned to the end of
the clip instead (:func:`window_starts`). Each window is paired with the frame at its centre time, its mono is
scaled to RMS 0.1 (no ground truth is used), the model predicts the STFT of L - R, the predicted difference
waveform is scaled back, and overlapping predictions are averaged. ``L = (mono + diff) / 2``,
``R = (mono - diff) / 2``.

Windows are independent, so they go through the model in batches, and every frame a window needs is decoded,
resized and cropped once (consecutive windows often share a frame).

**TDSS**: the frame is resized to the model's ``resize`` size (480x240) and a ``crop`` (448x224) window is
taken at one of [top-left, top-right, bottom-left, bottom-right, centre] chosen by ``frame_index % 5``;
without TDSS the whole frame is resized to the crop size.

Library only: :func:`infer_file` is what ``ccs-infer`` (``ccstereo.cli``) runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccstereo import frames as frames_lib
from ccstereo.audio import from_mono_diff, network_spec, network_wave, normalise_rms
from ccstereo.checkpoint import load_model
from ccstereo.constants import CROP_HEIGHT, CROP_WIDTH, INFER_HOP_SAMPLES, SEGMENT_SAMPLES
from ccstereo.metrics import compute_metrics
from ccstereo.streaming import FrameCursor, OverlapAdd, SampleBuffer, WavWriter
from pipelines.clips import MAX_AV_MISMATCH_S
from pipelines.contract import FPS, FRAME_HEIGHT, FRAME_WIDTH, SAMPLE_RATE
from pipelines.media import FrameSpec, MediaError, iter_audio, iter_frames
from pipelines.probe import MediaInfo, ProbeError, probe, truncation_problem

TDSS_POSITIONS = frames_lib.TDSS_POSITIONS


@dataclass(frozen=True)
class FrameGeometry:
    """Frame sizes a model expects, (height, width): resize then crop with TDSS, or resize to crop without."""

    resize: tuple[int, int] = (FRAME_HEIGHT, FRAME_WIDTH)
    crop: tuple[int, int] = (CROP_HEIGHT, CROP_WIDTH)


def frame_geometry(model_cfg: Any) -> FrameGeometry:
    """Read ``resize``/``crop`` from a model config (dataclass or dict); paper sizes where it has none.

    Sizes may be given as (height, width) pairs; a config that gives something else is rejected rather than
    guessed at.
    """
    def get(name: str, default: tuple[int, int]) -> tuple[int, int]:
        if model_cfg is None:
            return default
        value = model_cfg.get(name) if isinstance(model_cfg, dict) else getattr(model_cfg, name, None)
        if value is None:
            return default
        value = tuple(int(v) for v in value)
        if len(value) != 2 or min(value) < 1:
            raise ValueError(f"model config {name}={value!r} is not a (height, width) pair")
        return value  # type: ignore[return-value]

    geo = FrameGeometry(resize=get("resize", FrameGeometry.resize), crop=get("crop", FrameGeometry.crop))
    if geo.crop[0] > geo.resize[0] or geo.crop[1] > geo.resize[1]:
        raise ValueError(f"crop {geo.crop} is larger than resize {geo.resize}")
    return geo


TAILS = ("pad", "end")  # how the sliding windows cover the end of a clip (window_starts)


def window_starts(n_samples: int, hop: int = INFER_HOP_SAMPLES, window: int = SEGMENT_SAMPLES,
                  tail: str = "pad") -> list[int]:
    """Start samples of the sliding windows over a clip of ``n_samples``: every ``hop`` from 0.

    ``tail="pad"`` (released CCStereo code): ``ceil((n - window) / hop) + 1`` windows, so the last one reaches or
    passes the end; the caller zero-pads the clip to ``starts[-1] + window`` (:func:`padded_length`).
    ``tail="end"`` (2.5D Visual Sound): the windows that fit, plus one aligned to the end when they leave a tail.
    A clip no longer than one window gets the single window at 0 (zero-padded to a window).
    """
    if not 1 <= hop <= window:
        # a hop longer than the window would leave samples no window predicts
        raise ValueError(f"hop must be between 1 and the window length {window} samples, got {hop}")
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {', '.join(TAILS)}, got {tail!r}")
    if n_samples <= window:
        return [0]
    if tail == "pad":
        return list(range(0, -(-(n_samples - window) // hop) * hop + 1, hop))
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def padded_length(n_samples: int, starts: list[int], window: int = SEGMENT_SAMPLES) -> int:
    """Length the clip is zero-padded to so that every window of ``starts`` lies inside it."""
    return max(n_samples, starts[-1] + window)


def tdss_crop_origin(frame_index: int, size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the TDSS crop of frame ``frame_index`` (paper Alg. 1: position ``frame_index % 5``)."""
    return frames_lib.tdss_box(frame_index, size, crop)


def prepare_frame(frame: np.ndarray, frame_index: int, geometry: FrameGeometry, tdss: bool) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` frame -> ImageNet-normalised float ``[3, crop_h, crop_w]`` (TDSS crop or full resize).

    Same operations, in the same order, as the training loader (``ccstereo.frames``: uint8 resize and crop,
    then scaling to [0, 1] and normalisation), so that the network sees the pixels it was trained on.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 [H, W, 3], got {frame.dtype} {list(frame.shape)}")
    frame = np.ascontiguousarray(frame) if frame.flags.writeable else frame.copy()  # decoded frames are read-only
    img = torch.from_numpy(frame).permute(2, 0, 1)
    if tdss:
        img = frames_lib.resize(img, geometry.resize)
        top, left = tdss_crop_origin(frame_index, geometry.resize, geometry.crop)
        img = frames_lib.crop(img, top, left, geometry.crop)
    else:
        img = frames_lib.resize(img, geometry.crop)
    return frames_lib.normalise_imagenet(frames_lib.to_unit_float(img)).contiguous()


class JpegFrames(Sequence):
    """A clip's JPEG frames (as stored in shards) seen as a sequence of uint8 ``[H, W, 3]`` arrays, decoded on
    access, so :func:`binauralize` decodes only the frames its windows use."""

    def __init__(self, jpegs: Sequence[bytes]):
        self.jpegs = list(jpegs)

    def __len__(self) -> int:
        return len(self.jpegs)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return frames_lib.decode_jpeg(self.jpegs[index]).permute(1, 2, 0).numpy()


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _checked_mono(mono: np.ndarray | torch.Tensor, allow_empty: bool = False) -> torch.Tensor:
    """``mono`` as a float32 CPU tensor ``[T]``; one clear error for anything else."""
    mono_t = torch.as_tensor(np.asarray(mono, dtype=np.float32) if not isinstance(mono, torch.Tensor) else mono)
    mono_t = mono_t.detach().float().cpu()
    if mono_t.ndim != 1 or (mono_t.numel() == 0 and not allow_empty):
        raise ValueError(f"mono must be a non-empty 1-D waveform, got shape {list(mono_t.shape)}")
    if not torch.isfinite(mono_t).all():
        raise ValueError("mono contains NaN or infinite samples")
    return mono_t


def _check_frames(frames: Sequence[np.ndarray]) -> None:
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise ValueError(f"frames must be uint8 [N, H, W, 3] with N >= 1, got {list(frames.shape)}")
    if len(frames) == 0:
        raise ValueError("frames must be uint8 [N, H, W, 3] with N >= 1, got no frames")


def _window_diffs(model: torch.nn.Module, windows: torch.Tensor, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Predicted L - R float64 ``[B, SEGMENT_SAMPLES]`` for mono ``windows`` ``[B, SEGMENT_SAMPLES]`` paired with
    prepared ``images``: each window's mono goes in at RMS 0.1, its prediction comes back at the window's level."""
    scaled, scale = normalise_rms(windows[:, None, :])
    spec = network_spec(scaled[:, 0]).to(device)
    diff_spec = model(spec, images.to(device))
    if diff_spec.shape != spec.shape:
        raise ValueError(f"model returned {list(diff_spec.shape)}, expected {list(spec.shape)}")
    return network_wave(diff_spec, SEGMENT_SAMPLES).cpu().double() / scale[:, None].double()


_UNCLAMPED = 1 << 62  # frame count given to segment_frame_index when the clamp is the frame source's job


def binauralize_blocks(
    mono_chunks: Iterable[np.ndarray | torch.Tensor],
    frame_at: Callable[[int], tuple[int, np.ndarray]],
    model: torch.nn.Module,
    model_cfg: Any = None,
    *,
    hop: int = INFER_HOP_SAMPLES,
    tdss: bool = True,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    tail: str = "pad",
) -> Iterator[np.ndarray]:
    """The streaming form of :func:`binauralize`: ``mono`` arrives in chunks, frames on demand, and the binaural
    output leaves as float32 ``[2, k]`` blocks in order, each as soon as no later window touches its samples.

    ``frame_at(i)`` returns ``(j, frame)``: the frame a window centred in frame slot ``i`` gets, with ``j`` the
    index it really has (the last frame holds to the end; :class:`ccstereo.streaming.FrameCursor` reads a
    stream so). Memory is a batch of windows and its frames, whatever the length. The windows, their batches
    and the order of the sums are those of :func:`binauralize`, so the output is the same to the bit.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    window_starts(SEGMENT_SAMPLES, hop, tail=tail)  # checks hop and tail before any work
    geometry = frame_geometry(model_cfg)
    dev = torch.device(device) if device is not None else _model_device(model)
    mono, sums = SampleBuffer(), OverlapAdd()
    images: dict[int, torch.Tensor] = {}
    pending: list[int] = []
    formed = 0  # the next start that fits in the samples seen (every tail has the starts that fit)

    def run(batch: list[int]) -> None:
        used = [frame_at(frames_lib.segment_frame_index(s, _UNCLAMPED)) for s in batch]
        for j, frame in used:
            if j not in images:
                images[j] = prepare_frame(frame, j, geometry, tdss)  # each needed frame once
        windows = torch.stack([mono.window(s, SEGMENT_SAMPLES) for s in batch])
        diffs = _window_diffs(model, windows, torch.stack([images[j] for j, _ in used]), dev)
        for s, d in zip(batch, diffs):
            sums.add(s, d)
        for j in [j for j in images if j < used[-1][0]]:  # later windows need this batch's last frame or later
            del images[j]

    def emit(until: int) -> Iterator[np.ndarray]:
        if until > sums.base:
            t0 = sums.base
            diff = sums.take_until(until)
            yield from_mono_diff(mono.window(t0, until - t0).double(), diff).float().numpy()
            mono.release_before(until)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for chunk in mono_chunks:
                mono.extend(_checked_mono(chunk, allow_empty=True))
                while formed + SEGMENT_SAMPLES <= mono.end:
                    pending.append(formed)
                    formed += hop
                    if len(pending) == batch_size:
                        run(pending)
                        pending = []
                        # windows still to come start after the last one formed: samples up to it are final
                        yield from emit(formed - hop + 1)
            n = mono.end
            if n == 0:
                raise ValueError("mono must be a non-empty 1-D waveform, got no samples")
            pending += [s for s in window_starts(n, hop, tail=tail) if s > formed - hop]
            for b0 in range(0, len(pending), batch_size):
                run(pending[b0 : b0 + batch_size])
            yield from emit(n)
    finally:
        model.train(was_training)


def binauralize(
    mono: np.ndarray | torch.Tensor,
    frames: Sequence[np.ndarray],
    model: torch.nn.Module,
    model_cfg: Any = None,
    *,
    hop: int = INFER_HOP_SAMPLES,
    tdss: bool = True,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    tail: str = "pad",
) -> np.ndarray:
    """Binaural ``[2, T]`` float32 (L, R) from ``mono = L + R`` ``[T]`` and 10 fps frames uint8 ``[N, H, W, 3]``.

    ``frames`` may be any sequence of ``[H, W, 3]`` uint8 frames (e.g. :class:`JpegFrames`, which decodes on
    access); only the frames some window needs are read, each once.

    ``model(mono_spec [B, 2, 257, 64], frame [B, 3, h, w]) -> diff_spec [B, 2, 257, 64]`` (ARCHITECTURE.md);
    ``model_cfg`` supplies the frame sizes (``resize``, ``crop``); ``hop`` and ``tail`` place the windows
    (:func:`window_starts`). Windows are independent and go through the model ``batch_size`` at a time.
    """
    mono_t = _checked_mono(mono)
    _check_frames(frames)
    last = len(frames) - 1

    def frame_at(i: int) -> tuple[int, np.ndarray]:
        return min(i, last), frames[min(i, last)]

    blocks = binauralize_blocks([mono_t], frame_at, model, model_cfg, hop=hop, tdss=tdss, batch_size=batch_size,
                                device=device, tail=tail)
    return np.concatenate(list(blocks), axis=1)


# ----------------------------------------------------------------------------------------------------- I/O


@dataclass(frozen=True)
class VideoInput:
    """A video file checked for inference (an audio and a video stream, mono or stereo audio) and decoded on
    demand with prepare's decoders (``pipelines.media``), so a frame at inference is timed and scaled as in
    training. Nothing is decoded until a stream is iterated."""

    path: Path
    channels: int  # 1 or 2
    info: MediaInfo

    def mono_chunks(self, stereo_sink: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """``mono = L + R`` float32 chunks (SPEC section 2); a mono track x stands for L = R = x, so mono = 2x
        keeps the output at the source's level. Stereo chunks are also appended to ``stereo_sink``."""
        total = 0
        for chunk in iter_audio(self.path, in_channels=self.channels, out_channels=self.channels):
            total += chunk.shape[1]
            if stereo_sink is not None:
                stereo_sink.append(chunk)
            yield chunk[0] + chunk[1] if self.channels == 2 else 2 * chunk[0]
        if total == 0:
            raise ValueError(f"{self.path}: the audio stream decodes to no samples")

    def frames(self) -> Iterator[np.ndarray]:
        """10 fps frames at 480x240, frame k on screen at k/10 (SPEC section 3.6)."""
        return iter_frames(self.path, FrameSpec())


def open_video(path: str | Path) -> VideoInput:
    """Check ``path`` for :func:`infer_file`; every unreadable or unusable input is one ``ValueError`` line
    (``FileNotFoundError`` when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        info = probe(path)
    except ProbeError as exc:
        raise ValueError(str(exc)) from None
    if info.audio is None:
        raise ValueError(f"{path}: no audio stream")
    if info.video is None:
        raise ValueError(f"{path}: no video stream (an audio-only file cannot guide binauralisation)")
    channels = info.audio.channels
    if channels not in (1, 2):
        raise ValueError(f"{path}: {channels}-channel audio; ccs-infer takes mono or stereo (decode ambisonics "
                         "to binaural with ccs-data prepare first)")
    return VideoInput(path, channels, info)


def stream_warnings(source: VideoInput, audio_s: float, video_s: float) -> list[str]:
    """Warnings naming the file: cut short (its packets end before the duration its header announces), or audio
    and video lengths more than ``MAX_AV_MISMATCH_S`` apart (as prepare's ``av-length-mismatch``)."""
    out = []
    truncated = truncation_problem(source.path)
    if truncated is not None:
        out.append(f"{source.path}: {truncated}; the output covers what could be decoded")
    if abs(audio_s - video_s) > MAX_AV_MISMATCH_S:
        past = ("the last frame is held for the rest of the audio" if audio_s > video_s
                else "the frames after the audio ends are not used")
        out.append(f"{source.path}: audio lasts {audio_s:.2f} s, video {video_s:.2f} s; {past}")
    return out


@dataclass
class InferResult:
    out_path: Path
    n_samples: int
    n_frames: int
    n_windows: int
    clipped: bool
    metrics: dict[str, float] | None  # against the source's own stereo track (``compare``)
    warnings: list[str] = field(default_factory=list)


def infer_file(
    video: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    *,
    hop: int = INFER_HOP_SAMPLES,
    tdss: bool = True,
    compare: bool = False,
    batch_size: int = 32,
    device: str | None = None,
    tail: str = "pad",
) -> InferResult:
    """``ccs-infer``: binauralise ``video`` with the model in ``checkpoint`` and write ``out`` (16-bit wav).

    Streams: audio and frames are decoded as the windows need them and the output is written block by block
    (the file appears when complete), so memory does not grow with the video's length; ``compare`` keeps the
    audio (not the frames) to score it at the end.
    """
    source = open_video(video)
    if compare and source.channels != 2:
        raise ValueError(f"{source.path}: --compare needs a stereo audio track, the file has "
                         f"{source.channels} channel(s)")
    model = load_model(checkpoint, device or "cpu")
    stereo: list[np.ndarray] | None = [] if compare else None
    output: list[np.ndarray] = []
    cursor = FrameCursor(source.frames(), str(source.path))
    try:
        with WavWriter(out) as wav:
            for block in binauralize_blocks(source.mono_chunks(stereo), cursor, model, model.cfg, hop=hop,
                                            tdss=tdss, batch_size=batch_size, tail=tail):
                wav.write(block)
                if compare:
                    output.append(block)
            n_frames = cursor.count()
    except MediaError as exc:
        raise ValueError(str(exc)) from None
    warnings = stream_warnings(source, wav.samples / SAMPLE_RATE, n_frames / FPS)
    metrics = compute_metrics(np.concatenate(output, axis=1), np.concatenate(stereo, axis=1)) if compare else None
    return InferResult(Path(out), wav.samples, n_frames, len(window_starts(wav.samples, hop, tail=tail)),
                       wav.clipped, metrics, warnings)
