"""Frame pixels <-> directions on the sphere for the two 360 layouts: equirectangular (``ER``) and YouTube's 3x2
equi-angular cubemap (``EAC``), in numpy, so the projection detector can ask "which pixels would be neighbours on
the sphere if this frame were ER / EAC" without calling ffmpeg.

Directions are unit vectors (x front, y left, z up: azimuth from x towards y, as ambiX). Pixel coordinates are
(column, row) floats with pixel centres at integers.

ER: the centre column is the front, azimuth grows to the left, the top row is elevation +90 (SPEC section 3.6).

EAC, as ffmpeg's ``v360`` writes and reads it (the layout table below was read off its output and is checked
against it in ``tests/pipelines/test_projection.py``): two strips of three square faces. Top strip, left to right:
left, front, right, upright (a continuous 270-degree band around the horizon). Bottom strip: down, back, up,
each turned so that the strip is a continuous band through the back. Inside a face the angle, not the tangent,
grows linearly with the pixel position (``tan(a * pi / 4)`` for a in [-1, 1]). ffmpeg also keeps a 2-pixel
margin (``FFMPEG_EAC_PAD``) at the left and right borders and at the top and bottom of each strip, at the size it
encodes; the detector works at another size and ignores it (under two of its pixels).
"""

from __future__ import annotations

import numpy as np

_F, _B = np.array([1.0, 0, 0]), np.array([-1.0, 0, 0])
_L, _R = np.array([0, 1.0, 0]), np.array([0, -1.0, 0])
_U, _D = np.array([0, 0, 1.0]), np.array([0, 0, -1.0])

# (strip row, column) -> (face centre, direction of growing column, direction of growing row)
EAC_TILES: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    (0, 0): (_L, _F, _D),
    (0, 1): (_F, _R, _D),
    (0, 2): (_R, _B, _D),
    (1, 0): (_D, _B, _L),
    (1, 1): (_B, _U, _L),
    (1, 2): (_U, _F, _L),
}
FFMPEG_EAC_PAD = 2.0  # pixels: ffmpeg's v360 keeps this margin at the outer borders and around each strip
_CENTRES = np.stack([t[0] for t in EAC_TILES.values()])
_TILE_KEYS = list(EAC_TILES)


def normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle angle in radians between direction arrays ``[..., 3]``."""
    return np.arccos(np.clip((normalise(a) * normalise(b)).sum(-1), -1.0, 1.0))


# ------------------------------------------------------------------------------------------------ equirectangular


def er_direction(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    az = (0.5 - (np.asarray(x, float) + 0.5) / width) * 2 * np.pi
    el = (0.5 - (np.asarray(y, float) + 0.5) / height) * np.pi
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def er_pixel(d: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    d = normalise(d)
    az = np.arctan2(d[..., 1], d[..., 0])
    el = np.arcsin(np.clip(d[..., 2], -1.0, 1.0))
    x = ((0.5 - az / (2 * np.pi)) * width - 0.5) % width
    y = (0.5 - el / np.pi) * height - 0.5
    return x, y


# ------------------------------------------------------------------------------------------------ cubemap


def _eac_pads(width: int, height: int, pad: float) -> tuple[float, float]:
    return pad / width, pad / height


def eac_direction(x: np.ndarray, y: np.ndarray, width: int, height: int,
                  tile: tuple[int, int] | None = None, pad: float = 0.0) -> np.ndarray:
    """Directions of EAC pixel positions. With ``tile`` the positions are read in that tile's own (extended)
    coordinates even when they lie outside it, which is how a point just across a face edge is found.

    ``pad``: pixels of padding at the frame's left and right borders and at the top and bottom of each strip
    (ffmpeg's ``v360`` writes 2 at the size it encodes; see :data:`FFMPEG_EAC_PAD`)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    u_pad, v_pad = _eac_pads(width, height, pad)
    u = ((x + 0.5) / width - u_pad) * 3 / (1 - 2 * u_pad)  # 0..3 across the three faces
    v = (y + 0.5) / height * 2  # 0..2 down the two strips (pads inside each strip, below)
    if tile is None:
        col = np.clip(np.floor(u), 0, 2).astype(int)
        row = np.clip(np.floor(v), 0, 1).astype(int)
        out = np.empty(x.shape + (3,))
        for key in _TILE_KEYS:
            m = (row == key[0]) & (col == key[1])
            if m.any():
                out[m] = eac_direction(x[m], y[m], width, height, key, pad)
        return out
    c, r, dn = EAC_TILES[tile]
    a = 2 * (u - tile[1]) - 1
    b = 2 * ((v - tile[0]) / 2 - v_pad) / (0.5 - 2 * v_pad) - 1
    return normalise(c + np.tan(a * np.pi / 4)[..., None] * r + np.tan(b * np.pi / 4)[..., None] * dn)


def eac_pixel(d: np.ndarray, width: int, height: int, pad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    d = normalise(d)
    u_pad, v_pad = _eac_pads(width, height, pad)
    face = np.argmax(d @ _CENTRES.T, axis=-1)
    x, y = np.empty(d.shape[:-1]), np.empty(d.shape[:-1])
    for k, key in enumerate(_TILE_KEYS):
        m = face == k
        if not m.any():
            continue
        c, r, dn = EAC_TILES[key]
        depth = d[m] @ c
        a = np.arctan((d[m] @ r) / depth) * 4 / np.pi
        b = np.arctan((d[m] @ dn) / depth) * 4 / np.pi
        u = ((a + 1) / 2 + key[1]) * (1 - 2 * u_pad) / 3 + u_pad
        v = (b + 1) / 2 * (0.5 - 2 * v_pad) + v_pad + 0.5 * key[0]
        x[m], y[m] = u * width - 0.5, v * height - 0.5
    return x, y


# ------------------------------------------------------------------------------------------------ sampling


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img`` ``[H, W, C]`` (float) at float positions, clamped to the image (no wrap)."""
    h, w = img.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(int), w - 2) if w > 1 else np.zeros_like(x, int)
    y0 = np.minimum(np.floor(y).astype(int), h - 2) if h > 1 else np.zeros_like(y, int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def eac_to_er(eac: np.ndarray, width: int, height: int, pad: float = FFMPEG_EAC_PAD) -> np.ndarray:
    """Resample an EAC frame to equirectangular (what prepare's ``v360=input=eac:output=e`` does)."""
    yy, xx = np.mgrid[0:height, 0:width]
    ex, ey = eac_pixel(er_direction(xx, yy, width, height), eac.shape[1], eac.shape[0], pad)
    return bilinear(eac.astype(np.float64), ex, ey)


def er_to_eac(er: np.ndarray, width: int, height: int, pad: float = FFMPEG_EAC_PAD) -> np.ndarray:
    """Resample an equirectangular frame to EAC (the inverse, as ``v360=input=e:output=eac``)."""
    yy, xx = np.mgrid[0:height, 0:width]
    ex, ey = er_pixel(eac_direction(xx, yy, width, height, pad=pad), er.shape[1], er.shape[0])
    wrapped = np.concatenate([er, er[:, :1]], axis=1).astype(np.float64)  # column W is column 0 again
    return bilinear(wrapped, ex, ey)
