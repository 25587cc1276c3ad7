"""First-order ambisonics in YouTube's ambiX convention: ACN channel order (W, Y, Z, X), SN3D normalisation.

Azimuth in degrees, 0 = front, positive to the left; elevation positive up.

spaudiopy, scipy.signal and the HRIR loader are imported inside the functions that decode: ``pipelines.prepare``
imports this module for its constants, and those three add about a second to every ``ccs-data`` call.
"""

from __future__ import annotations

import warnings

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


# ---------------------------------------------------------------------------------------------------------------
# FOA -> binaural decoders (SPEC section 5)
#
# Both decoders are expressed the same way: a filter matrix [2 ears, 4 ambiX channels, taps] so that
# ear(t) = sum_ch (foa[ch] * filters[ear, ch])(t). The matrix depends only on the decoder and the HRIR set, so it
# is computed once per process and reused for every video.

DECODERS = ("magls", "vls8")
VLS8_AZIMUTHS_DEG = tuple(float(a) for a in range(0, 360, 45))  # horizontal ring, 0 = front, + = left


def _spaudiopy_hrirs(hrirs):
    """The project's HRIRSet as spaudiopy's ``sig.HRIRs`` (azimuth in rad, + = left; zenith = colatitude)."""
    from spaudiopy import sig  # lazy: module docstring

    azi = np.radians(np.asarray(hrirs.azimuth_deg, dtype=np.float64))
    zen = np.radians(90.0 - np.asarray(hrirs.elevation_deg, dtype=np.float64))
    return sig.HRIRs(hrirs.irs[:, 0, :], hrirs.irs[:, 1, :], azi, zen, int(hrirs.samplerate))


def magls_filters(hrirs) -> np.ndarray:
    """spaudiopy's magnitude-least-squares binaural decoder (order 1) as an ambiX (SN3D) filter matrix [2, 4, L].

    spaudiopy works on orthonormal real SH (N3D divided by sqrt(4 pi); ACN order): a plane wave from direction d
    has coefficients Y(d), and its decoder maps Y(d) to about HRIR(d). An ambiX plane wave has W = 1, so its N3D
    form divided by sqrt(4 pi) is exactly Y(d): folding SN3D -> N3D and 1/sqrt(4 pi) into the filters makes a
    plane wave decode at the level of the HRIR of its direction.
    """
    with warnings.catch_warnings():
        # spaudiopy 0.2.0 calls scipy's deprecated sph_harm once per direction and warns that sounddevice is
        # missing; both are harmless here (scipy is pinned below 1.17, no audio playback is used)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from spaudiopy import decoder as spdec

        filt_n3d = spdec.magls_bin(_spaudiopy_hrirs(hrirs), 1)  # [2, 4, L], applied to orthonormal SH signals
    return sn3d_to_n3d(np.moveaxis(filt_n3d, 1, 0)).swapaxes(0, 1) / np.sqrt(4.0 * np.pi)


def vls8_decoding_matrix() -> np.ndarray:
    """[8, 4] gains from ambiX (W, Y, Z, X) to 8 virtual loudspeakers on the horizontal ring.

    Basic (sampling) 2-D first-order decoder: g_i = (W + 2 (X cos a_i + Y sin a_i)) / 8. For an ambiX plane wave
    from azimuth s on the horizon, g_i = (1 + 2 cos(a_i - s)) / 8: the gains sum to 1 and peak at the speaker
    nearest the source. Z (height) is ignored, as on any horizontal ring.
    """
    az = np.radians(np.asarray(VLS8_AZIMUTHS_DEG))
    n = len(az)
    return np.stack([np.ones(n), 2.0 * np.sin(az), np.zeros(n), 2.0 * np.cos(az)], axis=1) / n


def vls8_filters(hrirs) -> np.ndarray:
    """8 virtual loudspeakers, each convolved with the measured HRIR nearest to it (PseudoBinaural's method)."""
    gains = vls8_decoding_matrix()  # [8, 4]
    speaker_irs = np.stack([hrirs.nearest(a, 0.0) for a in VLS8_AZIMUTHS_DEG])  # [8, 2, taps]
    return np.einsum("sc,set->ect", gains, speaker_irs)


def decoder_filters(decoder: str, hrirs) -> np.ndarray:
    """The [2, 4, taps] ambiX -> binaural filter matrix of ``decoder`` (``magls`` or ``vls8``)."""
    if decoder == "magls":
        return magls_filters(hrirs)
    if decoder == "vls8":
        return vls8_filters(hrirs)
    raise ValueError(f"unknown FOA decoder {decoder!r} (known: {', '.join(DECODERS)})")


def apply_filters(foa: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Binaural [2, T] from ambiX ``foa`` [4, T] through a [2, 4, taps] filter matrix (output trimmed to T)."""
    from scipy.signal import oaconvolve  # lazy: module docstring

    foa = np.asarray(foa, dtype=np.float64)
    if foa.ndim != 2 or foa.shape[0] != 4:
        raise ValueError(f"FOA signal must be [4, T] (W, Y, Z, X), got shape {foa.shape}")
    t = foa.shape[1]
    out = np.zeros((2, t), dtype=np.float64)
    for ear in range(2):
        for ch in range(4):
            if not np.any(filters[ear, ch]) or not np.any(foa[ch]):
                continue  # a silent Z (WXY layout) or a zero filter adds nothing
            out[ear] += oaconvolve(foa[ch], filters[ear, ch])[:t]
    return out


def decode_foa_to_binaural(foa: np.ndarray, *, decoder: str = "magls", hrirs=None) -> np.ndarray:
    """Decode ambiX FOA [4, T] (ACN W, Y, Z, X; SN3D) to binaural [2, T] (left, right), float64.

    ``hrirs``: an :class:`pipelines.hrir.HRIRSet` at the signal's sample rate (default: KEMAR at 16 kHz).
    """
    if hrirs is None:
        from pipelines.hrir import load_kemar  # lazy: module docstring

        hrirs = load_kemar()
    return apply_filters(foa, decoder_filters(decoder, hrirs))
