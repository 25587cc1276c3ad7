"""Sliding-window + TDSS inference (SPEC section 9): mono audio + video frames in, binaural L/R out.

The clip is cut into windows of 10,080 samples every ``hop`` samples (1,600 = 0.1 s by default; the last
window is aligned to the end of the clip), each window is paired with the frame at its centre time, its mono is
scaled to RMS 0.1 (no ground truth is used), the model predicts the STFT of L - R, the predicted difference
waveform is scaled back, and overlapping predictions are averaged. ``L = (mono + diff) / 2``,
``R = (mono - diff) / 2``.

Windows are independent, so they go through the model in batches, and every frame a window needs is decoded,
resized and cropped once (consecutive windows often share a frame).

**TDSS**: the frame is resized to the model's ``resize`` size (480x240) and a ``crop`` (448x224) window is
taken at one of [top-left, top-right, bottom-left, bottom-right, centre] chosen by ``frame_index % 5``;
without TDSS the whole frame is resized to the crop size.
"""

from __future__ import annotations

import io
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ccstereo.constants import (
    CROP_HEIGHT,
    CROP_WIDTH,
    FPS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    HOP_LENGTH,
    INFER_HOP_SAMPLES,
    N_FFT,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    TARGET_RMS,
    WIN_LENGTH,
)

# ImageNet statistics (torchvision's), applied after scaling pixels to [0, 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# a window quieter than this is treated as silence: its scale factor is capped instead of exploding
RMS_FLOOR = 1e-8
TDSS_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")


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


def window_starts(n_samples: int, hop: int = INFER_HOP_SAMPLES, window: int = SEGMENT_SAMPLES) -> list[int]:
    """Start samples of the sliding windows: every ``hop`` from 0, plus one aligned to the end if needed."""
    if hop < 1:
        raise ValueError(f"hop must be >= 1 sample, got {hop}")
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def window_frame_index(start: int, n_frames: int, window: int = SEGMENT_SAMPLES) -> int:
    """Index of the frame that shows the window's centre time: ``min(floor(c * fps), n_frames - 1)``."""
    centre_s = (start + window / 2) / SAMPLE_RATE
    return min(int(math.floor(centre_s * FPS)), n_frames - 1)


def tdss_crop_origin(frame_index: int, size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the TDSS crop of frame ``frame_index`` (paper Alg. 1: position ``frame_index % 5``)."""
    h, w = size
    ch, cw = crop
    origins = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]
    return origins[frame_index % len(origins)]


def prepare_frame(frame: np.ndarray, frame_index: int, geometry: FrameGeometry, tdss: bool) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` frame -> ImageNet-normalised float ``[3, crop_h, crop_w]`` (TDSS crop or full resize)."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 [H, W, 3], got {frame.dtype} {list(frame.shape)}")
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255.0)[None]
    target = geometry.resize if tdss else geometry.crop
    if tuple(x.shape[-2:]) != target:
        x = F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=True)
    if tdss:
        top, left = tdss_crop_origin(frame_index, geometry.resize, geometry.crop)
        x = x[..., top : top + geometry.crop[0], left : left + geometry.crop[1]]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std)[0].contiguous()


def _hann() -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, periodic=True)


def spec_of(x: torch.Tensor) -> torch.Tensor:
    """Model-input STFT ``[B, T] -> [B, 2, 257, frames]`` (real, imag), centred, periodic Hann."""
    s = torch.stft(x, N_FFT, HOP_LENGTH, WIN_LENGTH, window=_hann().to(x.device), center=True,
                   return_complex=True)
    return torch.stack([s.real, s.imag], dim=1)


def wave_of(spec: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`spec_of`: ``[B, 2, 257, frames] -> [B, length]``."""
    s = torch.complex(spec[:, 0].float(), spec[:, 1].float())
    return torch.istft(s, N_FFT, HOP_LENGTH, WIN_LENGTH, window=_hann().to(spec.device), center=True,
                       length=length)


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def binauralize(
    mono: np.ndarray | torch.Tensor,
    frames: np.ndarray,
    model: torch.nn.Module,
    model_cfg: Any = None,
    *,
    hop: int = INFER_HOP_SAMPLES,
    tdss: bool = True,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Binaural ``[2, T]`` float32 (L, R) from ``mono = L + R`` ``[T]`` and 10 fps frames uint8 ``[N, H, W, 3]``.

    ``model(mono_spec [B, 2, 257, 64], frame [B, 3, h, w]) -> diff_spec [B, 2, 257, 64]`` (ARCHITECTURE.md);
    ``model_cfg`` supplies the frame sizes (``resize``, ``crop``).
    """
    mono_t = torch.as_tensor(np.asarray(mono, dtype=np.float32) if not isinstance(mono, torch.Tensor) else mono)
    mono_t = mono_t.detach().float().cpu()
    if mono_t.ndim != 1 or mono_t.numel() == 0:
        raise ValueError(f"mono must be a non-empty 1-D waveform, got shape {list(mono_t.shape)}")
    if not torch.isfinite(mono_t).all():
        raise ValueError("mono contains NaN or infinite samples")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must be uint8 [N, H, W, 3] with N >= 1, got {list(frames.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    geometry = frame_geometry(model_cfg)
    dev = torch.device(device) if device is not None else _model_device(model)

    n = mono_t.numel()
    # a clip shorter than one window is zero-padded to a window and cut back afterwards
    padded = F.pad(mono_t, (0, max(0, SEGMENT_SAMPLES - n)))
    starts = window_starts(padded.numel(), hop)
    frame_ids = [window_frame_index(s, len(frames)) for s in starts]
    prepared: dict[int, torch.Tensor] = {}  # each needed frame decoded/cropped once
    for i in sorted(set(frame_ids)):
        prepared[i] = prepare_frame(frames[i], i, geometry, tdss)

    acc = torch.zeros(padded.numel(), dtype=torch.float64)
    count = torch.zeros(padded.numel(), dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for b0 in range(0, len(starts), batch_size):
                batch_starts = starts[b0 : b0 + batch_size]
                segs = torch.stack([padded[s : s + SEGMENT_SAMPLES] for s in batch_starts])
                rms = segs.square().mean(dim=1).sqrt()
                scale = TARGET_RMS / rms.clamp_min(RMS_FLOOR)
                spec = spec_of(segs * scale[:, None]).to(dev)
                imgs = torch.stack([prepared[i] for i in frame_ids[b0 : b0 + batch_size]]).to(dev)
                diff_spec = model(spec, imgs)
                if diff_spec.shape != spec.shape:
                    raise ValueError(f"model returned {list(diff_spec.shape)}, expected {list(spec.shape)}")
                diff = wave_of(diff_spec, SEGMENT_SAMPLES).cpu().double() / scale[:, None].double()
                for s, d in zip(batch_starts, diff):
                    acc[s : s + SEGMENT_SAMPLES] += d
                    count[s : s + SEGMENT_SAMPLES] += 1
    finally:
        model.train(was_training)
    diff = (acc / count)[:n]
    mono64 = mono_t.double()
    return torch.stack([(mono64 + diff) / 2, (mono64 - diff) / 2]).float().numpy()


# ----------------------------------------------------------------------------------------------------- I/O


@dataclass
class DecodedVideo:
    """A video decoded for inference: 16 kHz mono (L + R), the stereo track if it had one, 10 fps frames."""

    mono: np.ndarray  # float32 [T]
    stereo: np.ndarray | None  # float32 [2, T] when the source audio has two channels
    frames: np.ndarray  # uint8 [N, FRAME_HEIGHT, FRAME_WIDTH, 3]
    source_channels: int


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The audio track at 16 kHz as float32 ``[C, T]`` (C = 1 or 2) and the source's channel count."""
    from pipelines.ffmpeg import run_ffmpeg
    from pipelines.probe import probe

    info = probe(path)
    if info.audio is None:
        raise ValueError(f"{path}: no audio stream")
    channels = info.audio.channels
    if channels not in (1, 2):
        raise ValueError(f"{path}: {channels}-channel audio; ccs-infer takes mono or stereo (decode ambisonics "
                         "to binaural with ccs-data prepare first)")
    raw = run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(SAMPLE_RATE),
                      "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"])
    audio = np.frombuffer(raw, dtype="<f4").reshape(-1, channels).T.copy()
    if audio.shape[1] == 0:
        raise ValueError(f"{path}: the audio stream decodes to no samples")
    return audio, channels


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Frames at 10 fps resized to 480x240 RGB, streamed from ffmpeg's stdout (no temporary image files)."""
    from pipelines.ffmpeg import ffmpeg_exe

    frame_bytes = FRAME_WIDTH * FRAME_HEIGHT * 3
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
           "-an", "-vf", f"fps={FPS},scale={FRAME_WIDTH}:{FRAME_HEIGHT}", "-pix_fmt", "rgb24",
           "-f", "rawvideo", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            yield np.frombuffer(buf, dtype=np.uint8).reshape(FRAME_HEIGHT, FRAME_WIDTH, 3)
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise ValueError(f"{path}: ffmpeg could not decode the video: {err.splitlines()[-1:] or '?'}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def decode_video(path: str | Path) -> DecodedVideo:
    """Decode a video file for :func:`binauralize`; stereo is downmixed to ``mono = L + R`` (SPEC section 2)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    audio, channels = decode_audio(path)
    frames = list(iter_frames(path))
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
    import soundfile as sf

    from pipelines.io import atomic_write_bytes

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
) -> InferResult:
    """``ccs-infer``: binauralise ``video`` with the model in ``checkpoint`` and write ``out`` (wav)."""
    from ccstereo.checkpoint import load_model
    from ccstereo.metrics import compute_metrics

    decoded = decode_video(video)
    if compare and decoded.stereo is None:
        raise ValueError(f"{video}: --compare needs a stereo audio track, the file has "
                         f"{decoded.source_channels} channel(s)")
    model, model_cfg = _load(load_model, checkpoint, device)
    audio = binauralize(decoded.mono, decoded.frames, model, model_cfg, hop=hop, tdss=tdss,
                        batch_size=batch_size)
    clipped = write_wav(out, audio)
    metrics = compute_metrics(audio, decoded.stereo) if compare else None
    return InferResult(Path(out), audio.shape[1], len(decoded.frames),
                       len(window_starts(max(audio.shape[1], SEGMENT_SAMPLES), hop)), clipped, metrics)


def _load(load_model: Any, checkpoint: str | Path, device: str | None) -> tuple[torch.nn.Module, Any]:
    """Adapter over ``ccstereo.checkpoint.load_model``: accepts a model, or a (model, config) pair."""
    loaded = load_model(checkpoint, map_location=device or "cpu")
    if isinstance(loaded, tuple):
        model, cfg = loaded[0], loaded[1]
    else:
        model, cfg = loaded, getattr(loaded, "cfg", getattr(loaded, "config", None))
    if device:
        model = model.to(device)
    return model, cfg
