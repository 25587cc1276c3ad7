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

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from ccstereo import frames as frames_lib
from ccstereo.audio import from_mono_diff, istft_ri, normalise_rms, stft_ri
from ccstereo.checkpoint import load_model
from ccstereo.constants import CROP_HEIGHT, CROP_WIDTH, INFER_HOP_SAMPLES, SEGMENT_SAMPLES
from ccstereo.metrics import compute_metrics
from pipelines.contract import FRAME_HEIGHT, FRAME_WIDTH, SAMPLE_RATE
from pipelines.io import atomic_write_bytes
from pipelines.media import FrameSpec, MediaError, decode_audio, iter_frames
from pipelines.probe import probe

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
    img = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
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


def _checked_mono(mono: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``mono`` as a float32 CPU tensor ``[T]``; one clear error for anything else."""
    mono_t = torch.as_tensor(np.asarray(mono, dtype=np.float32) if not isinstance(mono, torch.Tensor) else mono)
    mono_t = mono_t.detach().float().cpu()
    if mono_t.ndim != 1 or mono_t.numel() == 0:
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
    spec = stft_ri(scaled[:, 0]).to(device)
    diff_spec = model(spec, images.to(device))
    if diff_spec.shape != spec.shape:
        raise ValueError(f"model returned {list(diff_spec.shape)}, expected {list(spec.shape)}")
    return istft_ri(diff_spec.float(), SEGMENT_SAMPLES).cpu().double() / scale[:, None].double()


def _averaged_diff(model: torch.nn.Module, padded: torch.Tensor, starts: list[int], frame_ids: list[int],
                   images: dict[int, torch.Tensor], batch_size: int, device: torch.device) -> torch.Tensor:
    """Float64 ``[len(padded)]``: every window's predicted difference, overlapping windows averaged."""
    acc = torch.zeros(padded.numel(), dtype=torch.float64)
    count = torch.zeros(padded.numel(), dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for b0 in range(0, len(starts), batch_size):
                batch_starts = starts[b0 : b0 + batch_size]
                windows = torch.stack([padded[s : s + SEGMENT_SAMPLES] for s in batch_starts])
                batch_images = torch.stack([images[i] for i in frame_ids[b0 : b0 + batch_size]])
                for s, d in zip(batch_starts, _window_diffs(model, windows, batch_images, device)):
                    acc[s : s + SEGMENT_SAMPLES] += d
                    count[s : s + SEGMENT_SAMPLES] += 1
    finally:
        model.train(was_training)
    return acc / count


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
    (:func:`window_starts`).
    """
    mono_t = _checked_mono(mono)
    _check_frames(frames)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    geometry = frame_geometry(model_cfg)
    dev = torch.device(device) if device is not None else _model_device(model)

    n = mono_t.numel()
    starts = window_starts(n, hop, tail=tail)
    # zeros past the end (a short clip, or tail="pad") are predicted like any sample and cut off afterwards
    padded = F.pad(mono_t, (0, padded_length(n, starts) - n))
    frame_ids = [frames_lib.segment_frame_index(s, len(frames)) for s in starts]
    images = {i: prepare_frame(frames[i], i, geometry, tdss) for i in sorted(set(frame_ids))}  # each needed frame once
    diff = _averaged_diff(model, padded, starts, frame_ids, images, batch_size, dev)[:n]
    return from_mono_diff(mono_t.double(), diff).float().numpy()


# ----------------------------------------------------------------------------------------------------- I/O


@dataclass
class DecodedVideo:
    """A video decoded for inference: 16 kHz mono (L + R), the stereo track if it had one, 10 fps frames."""

    mono: np.ndarray  # float32 [T]
    stereo: np.ndarray | None  # float32 [2, T] when the source audio has two channels
    frames: np.ndarray  # uint8 [N, FRAME_HEIGHT, FRAME_WIDTH, 3]
    source_channels: int


def decode_video(path: str | Path) -> DecodedVideo:
    """Decode a video file for :func:`binauralize`; stereo is downmixed to ``mono = L + R`` (SPEC section 2).

    The decoders are those of ``ccs-data prepare``, so a frame at inference is timed and scaled as in training.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    info = probe(path)
    if info.audio is None:
        raise ValueError(f"{path}: no audio stream")
    channels = info.audio.channels
    if channels not in (1, 2):
        raise ValueError(f"{path}: {channels}-channel audio; ccs-infer takes mono or stereo (decode ambisonics "
                         "to binaural with ccs-data prepare first)")
    try:
        audio = decode_audio(path, in_channels=channels, out_channels=channels)
        if audio.shape[1] == 0:
            raise ValueError(f"{path}: the audio stream decodes to no samples")
        frames = list(iter_frames(path, FrameSpec()))
    except MediaError as exc:
        raise ValueError(str(exc)) from None
    if not frames:
        raise ValueError(f"{path}: no video frames (an audio-only file cannot guide binauralisation)")
    if channels == 2:
        mono, stereo = audio[0] + audio[1], audio
    else:
        # a mono source stands for L = R = x, so mono = L + R = 2x keeps the output at the source's level
        mono, stereo = 2 * audio[0], None
    return DecodedVideo(mono=mono.astype(np.float32), stereo=stereo, frames=np.stack(frames),
                        source_channels=channels)


def write_wav(path: str | Path, audio: np.ndarray) -> bool:
    """Write ``[2, T]`` as 16-bit 16 kHz wav atomically; returns True when samples had to be clipped to [-1, 1]."""
    clipped = bool(np.abs(audio).max() > 1.0)
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0).T, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, buf.getvalue())
    return clipped


@dataclass
class InferResult:
    out_path: Path
    n_samples: int
    n_frames: int
    n_windows: int
    clipped: bool
    metrics: dict[str, float] | None  # against the source's own stereo track (``compare``)


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
    """``ccs-infer``: binauralise ``video`` with the model in ``checkpoint`` and write ``out`` (wav)."""
    decoded = decode_video(video)
    if compare and decoded.stereo is None:
        raise ValueError(f"{video}: --compare needs a stereo audio track, the file has "
                         f"{decoded.source_channels} channel(s)")
    model = load_model(checkpoint, device or "cpu")
    audio = binauralize(decoded.mono, decoded.frames, model, model.cfg, hop=hop, tdss=tdss,
                        batch_size=batch_size, tail=tail)
    clipped = write_wav(out, audio)
    metrics = compute_metrics(audio, decoded.stereo) if compare else None
    return InferResult(Path(out), audio.shape[1], len(decoded.frames),
                       len(window_starts(audio.shape[1], hop, tail=tail)), clipped, metrics)
