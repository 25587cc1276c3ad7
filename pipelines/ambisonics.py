"""First-order ambisonics in YouTube's ambiX convention: ACN channel order (W, Y, Z, X), SN3D normalisation.

Azimuth in degrees, 0 = front, positive to the left; elevation positive up.
"""

from __future__ import annotations

import numpy as np

ACN_ORDER = ("W", "Y", "Z", "X")


def plane_wave_gains(azimuth_deg: float | np.ndarray, elevation_deg: float | np.ndarray = 0.0) -> np.ndarray:
    """SN3D first-order gains [4, ...] (W, Y, Z, X) of a plane wave arriving from the given direction."""
    az = np.radians(azimuth_deg)
    el = np.radians(elevation_deg)
    az, el = np.broadcast_arrays(az, el)
    return np.stack([np.ones_like(az), np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])


def encode_plane_wave(signal: np.ndarray, azimuth_deg: float | np.ndarray, elevation_deg: float | np.ndarray = 0.0) -> np.ndarray:
    """Encode a mono ``signal`` [T] as a plane wave into ambiX FOA [4, T].

    ``azimuth_deg`` / ``elevation_deg`` may be scalars or per-sample arrays [T] (a moving source).
    """
    signal = np.asarray(signal, dtype=np.float64)
    gains = plane_wave_gains(azimuth_deg, elevation_deg)  # [4] or [4, T]
    if gains.ndim == 1:
        gains = gains[:, None]
    return gains * signal[None, :]


def sn3d_to_n3d(foa: np.ndarray) -> np.ndarray:
    """SN3D -> N3D for first order: W unchanged, Y, Z, X scaled by sqrt(3)."""
    scale = np.array([1.0, np.sqrt(3.0), np.sqrt(3.0), np.sqrt(3.0)])
    return foa * scale.reshape((4,) + (1,) * (foa.ndim - 1))
