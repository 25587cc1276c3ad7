"""Frame decoding, resize/crop, colour jitter and ImageNet normalisation (SPEC 8, 9).

The loader only decodes, resizes and crops (uint8); brightness/saturation jitter and normalisation are applied to
whole batches by :func:`augment_batch` (on the training device), with factors drawn per sample by the loader.
Inference reuses :func:`resize`, :func:`crop`, :func:`tdss_box` and :func:`normalise_imagenet`.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image

from ccstereo.constants import SEGMENT_SAMPLES
from pipelines.contract import FPS, SAMPLE_RATE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JITTER_RANGE = (0.7, 1.3)  # brightness and saturation factors, each uniform in this range (SPEC 8)
TDSS_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")


def segment_frame_index(start: int, n_frames: int, window: int = SEGMENT_SAMPLES) -> int:
    """The frame paired with the segment (or inference window) that starts at sample ``start``: the frame nearest
    its centre time c, as the released code picks it (its frames are numbered from 1 and it takes
    ``round((c + 1 / fps) x fps)``, Python's half-to-even rounding), clamped to the clip's frames."""
    centre_s = (start + window / 2) / SAMPLE_RATE
    return max(0, min(round((centre_s + 1 / FPS) * FPS) - 1, n_frames - 1))


def decode_jpeg(data: bytes, at_least: tuple[int, int] | None = None) -> torch.Tensor:
    """JPEG bytes -> uint8 ``[3, H, W]`` RGB.

    With ``at_least`` = (H, W) the decoder may scale down by 1/2, 1/4 or 1/8 in the DCT domain (PIL's draft mode)
    as long as the result stays at least that large: much cheaper than a full decode when the frame is resized
    down afterwards anyway.
    """
    with Image.open(io.BytesIO(data)) as im:
        if at_least is not None:
            im.draft("RGB", (at_least[1], at_least[0]))
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased) resize of ``[..., 3, H, W]`` to ``size`` = (H, W); a no-op when already that size."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return TF.resize(img, list(size), antialias=True)


def crop(img: torch.Tensor, top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    """The ``size`` = (H, W) box of ``[..., 3, H, W]`` at (top, left); errors when it leaves the image."""
    h, w = size
    if top < 0 or left < 0 or top + h > img.shape[-2] or left + w > img.shape[-1]:
        raise ValueError(f"crop box {(top, left, h, w)} outside a {tuple(img.shape[-2:])} image")
    return img[..., top : top + h, left : left + w]


def centre_box(resized: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the centred ``size`` box in a ``resized`` image."""
    return (resized[0] - size[0]) // 2, (resized[1] - size[1]) // 2


def tdss_box(frame_index: int, resized: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of the TDSS crop for the 0-based ``frame_index``: corner or centre chosen by ``i % 5`` of the
    frame's number i counted from 1, as in the released code and the paper's example (the 5th frame gets the
    top-left crop, the 6th the top-right; SPEC 9)."""
    position = TDSS_POSITIONS[(frame_index + 1) % len(TDSS_POSITIONS)]
    bottom, right = resized[0] - size[0], resized[1] - size[1]
    return {
        "top-left": (0, 0),
        "top-right": (0, right),
        "bottom-left": (bottom, 0),
        "bottom-right": (bottom, right),
        "centre": centre_box(resized, size),
    }[position]


def to_unit_float(img: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1]; float input is returned as float32 unchanged."""
    return img.float() / 255.0 if img.dtype == torch.uint8 else img.float()


def colour_jitter(img: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """Brightness then saturation jitter of float ``[B, 3, H, W]`` in [0, 1], one factor per image.

    Brightness scales the pixels; saturation blends with the image's luma (ITU-R 601 weights), as PIL's
    ``ImageEnhance`` and torchvision do. Results are clipped to [0, 1].
    """
    b = brightness.to(img)[:, None, None, None]
    s = saturation.to(img)[:, None, None, None]
    x = (img * b).clamp(0.0, 1.0)
    luma = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return (luma + s * (x - luma)).clamp(0.0, 1.0)


def normalise_imagenet(img: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of float ``[..., 3, H, W]`` in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=img.dtype, device=img.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=img.dtype, device=img.device)[:, None, None]
    return (img - mean) / std


def augment_batch(frames_u8: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """Training frames: uint8 crops ``[B, 3, H, W]`` + per-sample factors -> jittered, normalised float."""
    return normalise_imagenet(colour_jitter(to_unit_float(frames_u8), brightness, saturation))


def eval_frame(img: torch.Tensor, resize_to: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Validation frame: resize, centre crop, normalise (no randomness) -> float ``[3, H, W]``."""
    img = resize(img, resize_to)
    top, left = centre_box(resize_to, size)
    return normalise_imagenet(to_unit_float(crop(img, top, left, size)))
