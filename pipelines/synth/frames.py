"""Drawing the picture of a scene: each source a large saturated shape whose horizontal position is its azimuth.

Normal video spans azimuth +90 (left edge) .. -90 (right edge). 360 video is drawn equirectangular
(``azimuth = (0.5 - u/W) * 360``, top row = elevation +90); EAC frames are made from it by ffmpeg's ``v360``
filter at encode time (YouTube's 3x2 equi-angular cubemap layout), the inverse of what prepare applies.
EQR backgrounds are periodic in longitude and uniform at the poles, as real equirectangular frames are.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipelines.synth.scene import Scene, Source, azimuth_to_u, azimuth_to_x, elevation_to_v

_SQUARE_SCALE = 0.85  # a square of "radius" r has half-side 0.85 r (similar area to the disc)


def background_normal(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A muted plain colour with a mild smooth texture, [H, W, 3] uint8."""
    base = rng.uniform(70, 170, size=3)
    base = base.mean() + 0.3 * (base - base.mean())  # low saturation: sources stand out
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    tex = np.zeros((height, width))
    for _ in range(3):
        kx, ky = rng.uniform(0.5, 4.0, size=2) * 2 * np.pi
        tex += np.sin(kx * xx / width + ky * yy / height + rng.uniform(0, 2 * np.pi))
    img = base[None, None, :] + rng.uniform(3.0, 8.0) * tex[:, :, None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def background_eqr(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """An equirectangular room: sky-to-floor gradient, texture periodic in longitude, fading to uniform poles."""
    top = rng.uniform(120, 200, size=3)
    bottom = rng.uniform(50, 120, size=3)
    lat = np.pi * (0.5 - (np.arange(height) + 0.5) / height)  # +pi/2 at the top row
    lon = 2 * np.pi * (np.arange(width) + 0.5) / width
    grad = (0.5 + 0.5 * np.sin(lat))[:, None]  # 1 at the top pole, 0 at the bottom
    tex = np.zeros((height, width))
    for _ in range(3):
        k = int(rng.integers(2, 9))  # whole cycles around the circle: the left and right edges meet
        tex += np.sin(k * lon[None, :] + rng.uniform(0, 2 * np.pi) + rng.uniform(-2, 2) * lat[:, None])
    tex *= (np.cos(lat) ** 4)[:, None]
    img = grad[:, :, None] * top + (1 - grad[:, :, None]) * bottom + rng.uniform(4.0, 9.0) * tex[:, :, None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _draw_normal(img: np.ndarray, src: Source, az: float) -> None:
    h, w, _ = img.shape
    cx = float(azimuth_to_x(az, w))
    cy = h * (0.5 + src.y_offset)
    r = src.size * h
    x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
    y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1) + 0.5 - cx
    dy = np.arange(y0, y1) + 0.5 - cy
    if src.shape == "disc":
        mask = dx[None, :] ** 2 + dy[:, None] ** 2 <= r * r
    else:
        mask = (np.abs(dx)[None, :] <= _SQUARE_SCALE * r) & (np.abs(dy)[:, None] <= _SQUARE_SCALE * r)
    img[y0:y1, x0:x1][mask] = src.rgb


def _draw_eqr(img: np.ndarray, src: Source, az: float) -> None:
    h, w, _ = img.shape
    el = src.trajectory.elevation_deg
    cu = float(azimuth_to_u(az, w))
    cv = float(elevation_to_v(el, h))
    rho = src.size  # angular radius in degrees
    rv = rho * h / 180.0
    ru = rho * w / 360.0 / max(np.cos(np.radians(abs(el) + rho)), 0.2)
    y0, y1 = max(0, int(np.floor(cv - rv))), min(h, int(np.ceil(cv + rv)) + 1)
    cols = np.arange(int(np.floor(cu - ru)), int(np.ceil(cu + ru)) + 1)
    du_deg = (cols + 0.5 - cu) * 360.0 / w  # unwrapped offsets; columns wrap around below
    rows = np.arange(y0, y1)
    lat = 90.0 - (rows + 0.5) * 180.0 / h
    dx = du_deg[None, :] * np.cos(np.radians(lat))[:, None]  # great-circle-ish horizontal distance
    dy = (lat - el)[:, None]
    if src.shape == "disc":
        mask = dx**2 + dy**2 <= rho * rho
    else:
        mask = (np.abs(dx) <= _SQUARE_SCALE * rho) & (np.abs(dy) <= _SQUARE_SCALE * rho)
    rr, cc = np.nonzero(mask)
    img[rows[rr], np.mod(cols[cc], w)] = src.rgb


def draw_frame(background: np.ndarray, scene: Scene, t_s: float, spherical: bool) -> np.ndarray:
    """The picture at time ``t_s``: the background with every source's shape at its azimuth then."""
    img = background.copy()
    for src in scene.sources:
        az = float(src.trajectory.azimuth(t_s))
        (_draw_eqr if spherical else _draw_normal)(img, src, az)
    return img


def iter_frames(background: np.ndarray, scene: Scene, fps: float, duration_s: float, spherical: bool) -> Iterator[bytes]:
    """Raw rgb24 frames at ``fps`` (frame i shows time (i + 0.5) / fps) for ``duration_s``."""
    n = int(round(duration_s * fps))
    for i in range(n):
        yield draw_frame(background, scene, (i + 0.5) / fps, spherical).tobytes()
