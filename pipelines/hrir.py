"""Head-related impulse responses: MIT KEMAR (shipped in the ``slab`` wheel) or any SOFA file.

Azimuth convention everywhere in the project: degrees, 0 = front, positive to the listener's left (ambiX),
elevation positive up. Channel 0 is the left ear.

KEMAR: Gardner & Martin (1994), "HRTF measurements of a KEMAR dummy-head microphone", MIT Media Lab.
"""

from __future__ import annotations

import bz2
import importlib.util
import pickle
import sys
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from pipelines.contract import SAMPLE_RATE


@dataclass(frozen=True)
class HRIRSet:
    """HRIRs on a sphere: ``irs[i]`` is the [2, taps] (left, right) response for direction i."""

    name: str
    azimuth_deg: np.ndarray  # [n]
    elevation_deg: np.ndarray  # [n]
    irs: np.ndarray  # [n, 2, taps] float64
    samplerate: int

    def nearest(self, azimuth_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
        """The [2, taps] HRIR of the measured direction nearest (great-circle) to the given one."""
        return self.irs[self.nearest_index(azimuth_deg, elevation_deg)]

    def nearest_index(self, azimuth_deg: float, elevation_deg: float = 0.0) -> int:
        return int(np.argmax(self.unit_vectors() @ _unit_vector(azimuth_deg, elevation_deg)))

    def unit_vectors(self) -> np.ndarray:
        return _unit_vector(self.azimuth_deg, self.elevation_deg).T


def _unit_vector(azimuth_deg, elevation_deg) -> np.ndarray:
    az = np.radians(azimuth_deg)
    el = np.radians(elevation_deg)
    return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


class HRIRUnavailable(RuntimeError):
    """The requested HRIR set cannot be loaded (package missing, bad SOFA file)."""


def load_hrirs(name: str = "kemar", samplerate: int = SAMPLE_RATE) -> HRIRSet:
    """``kemar`` or ``sofa:<path>``, resampled to ``samplerate``."""
    if name == "kemar":
        return load_kemar(samplerate)
    if name.startswith("sofa:"):
        return load_sofa(name[len("sofa:"):], samplerate)
    raise HRIRUnavailable(f"unknown HRIR set {name!r}: use 'kemar' or 'sofa:<path>'")


@lru_cache(maxsize=4)
def load_kemar(samplerate: int = SAMPLE_RATE) -> HRIRSet:
    """MIT KEMAR (normal pinna) from the ``slab`` wheel, without needing PortAudio.

    ``import slab`` imports ``sounddevice``, which raises OSError (not ImportError) when the PortAudio library
    is missing; slab only guards ImportError. Marking ``sounddevice`` as unimportable turns that into the
    ImportError slab expects, so the HRTF classes (needed to unpickle the data file) load on any machine.
    """
    if importlib.util.find_spec("slab") is None:
        raise HRIRUnavailable("the 'slab' package (MIT KEMAR HRIRs) is not installed: pip install slab")
    if "sounddevice" not in sys.modules:
        try:
            import sounddevice  # noqa: F401
        except (ImportError, OSError):
            sys.modules["sounddevice"] = None  # type: ignore[assignment]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import slab.hrtf  # noqa: F401  (classes referenced by the pickle)

    data_file = Path(importlib.util.find_spec("slab").origin).parent / "data" / "mit_kemar_normal_pinna.bz2"
    with bz2.BZ2File(data_file, "r") as fh:
        hrtf = pickle.load(fh)  # a data file of an installed package, not user input
    positions = np.asarray(hrtf.sources, dtype=np.float64)  # [n, 3] azimuth, elevation, distance
    irs = np.stack([np.asarray(f.data, dtype=np.float64).T for f in hrtf.data])  # [n, 2, taps]
    return _resampled(HRIRSet("kemar", positions[:, 0] % 360, positions[:, 1], irs, int(hrtf.samplerate)), samplerate)


SOFA_CONVENTIONS = ("SimpleFreeFieldHRIR",)  # AES69 conventions whose Data.IR is [M, R=2, N] with R = the ears


def load_sofa(path: str | Path, samplerate: int = SAMPLE_RATE) -> HRIRSet:
    """A SOFA ``SimpleFreeFieldHRIR`` file, validated: the convention, a positive sampling rate, finite IRs and
    positions, and the ear order read from ``ReceiverPosition`` (the left ear is the receiver at +y, SOFA's
    left), so a right-first file still gives channel 0 = left. Source positions may be spherical (degrees) or
    cartesian. Every problem is one :class:`HRIRUnavailable` line naming the file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise HRIRUnavailable(f"SOFA file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            convention = _text(f.attrs.get("SOFAConventions"))
            if _text(f.attrs.get("Conventions")) != "SOFA" or convention not in SOFA_CONVENTIONS:
                raise HRIRUnavailable(f"{path}: SOFA convention {convention or 'missing'!s}, expected one of "
                                      f"{', '.join(SOFA_CONVENTIONS)}")
            irs = np.asarray(f["Data.IR"], dtype=np.float64)  # [M, R, N]
            rate = np.asarray(f["Data.SamplingRate"], dtype=np.float64).ravel()
            sources = _positions(f["SourcePosition"], path, "SourcePosition")
            receivers = _positions(f["ReceiverPosition"], path, "ReceiverPosition")
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise HRIRUnavailable(f"{path}: not a readable SOFA SimpleFreeFieldHRIR file ({exc})") from None
    irs = _checked_irs(irs, sources, rate, path)
    left, right = _ear_order(receivers, path)
    hrirs = HRIRSet(f"sofa:{path.name}", sources[:, 0] % 360, sources[:, 1], irs[:, [left, right]],
                    int(round(rate[0])))
    return _resampled(hrirs, samplerate)


def _text(value) -> str:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", "replace").strip()
    return "" if value is None else str(value).strip()


def _positions(dataset, path: Path, name: str) -> np.ndarray:
    """A SOFA position variable as [n, 3] spherical (azimuth deg, elevation deg, distance m), from either
    ``Type``; the trailing singleton dimension of receiver positions ([R, C, I]) is dropped."""
    pos = np.asarray(dataset, dtype=np.float64)
    if pos.ndim == 3:
        pos = pos[:, :, 0]
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise HRIRUnavailable(f"{path}: {name} must be [n, 3], got {list(np.asarray(dataset).shape)}")
    if not np.isfinite(pos).all():
        raise HRIRUnavailable(f"{path}: {name} holds NaN or infinite values")
    kind = _text(dataset.attrs.get("Type", "cartesian")).lower()
    if kind == "spherical":
        return pos
    if kind != "cartesian":
        raise HRIRUnavailable(f"{path}: {name}:Type is {kind!r}, expected 'spherical' or 'cartesian'")
    x, y, z = pos.T
    dist = np.sqrt(x * x + y * y + z * z)
    el = np.degrees(np.arcsin(np.divide(z, dist, out=np.zeros_like(z), where=dist > 0)))
    return np.stack([np.degrees(np.arctan2(y, x)), el, dist], axis=1)


def _checked_irs(irs: np.ndarray, sources: np.ndarray, rate: np.ndarray, path: Path) -> np.ndarray:
    if irs.ndim != 3 or irs.shape[1] != 2 or irs.shape[0] == 0 or irs.shape[2] == 0:
        raise HRIRUnavailable(f"{path}: Data.IR must be [M, 2, N] with M, N > 0, got {list(irs.shape)}")
    if sources.shape[0] != irs.shape[0]:
        raise HRIRUnavailable(f"{path}: {sources.shape[0]} source positions for {irs.shape[0]} measurements")
    if rate.size == 0 or not np.isfinite(rate).all() or (rate <= 0).any() or np.ptp(rate) > 0:
        raise HRIRUnavailable(f"{path}: Data.SamplingRate must be one positive value, got {rate.tolist()[:4]}")
    bad = np.flatnonzero(~np.isfinite(irs).all(axis=(1, 2)))
    if bad.size:
        raise HRIRUnavailable(f"{path}: Data.IR has NaN or infinite samples in {bad.size} measurement(s), "
                              f"first at index {int(bad[0])}")
    silent = np.flatnonzero(~np.any(irs != 0, axis=2).all(axis=1))
    if silent.size:
        raise HRIRUnavailable(f"{path}: Data.IR is all zeros for an ear in {silent.size} measurement(s), "
                              f"first at index {int(silent[0])}")
    return irs


def _ear_order(receivers: np.ndarray, path: Path) -> tuple[int, int]:
    """(index of the left ear, index of the right ear) among the two receivers: the left one is at larger y."""
    if receivers.shape[0] != 2:
        raise HRIRUnavailable(f"{path}: ReceiverPosition must name 2 ears, got {receivers.shape[0]}")
    az = np.radians(receivers[:, 0])
    y = np.cos(np.radians(receivers[:, 1])) * np.sin(az) * receivers[:, 2]  # spherical back to y
    if abs(y[0] - y[1]) < 1e-6:
        raise HRIRUnavailable(f"{path}: ReceiverPosition does not tell the ears apart (same y for both)")
    return (0, 1) if y[0] > y[1] else (1, 0)


def _resampled(h: HRIRSet, samplerate: int) -> HRIRSet:
    if h.samplerate == samplerate:
        return h
    ratio = Fraction(samplerate, h.samplerate)
    irs = resample_poly(h.irs, ratio.numerator, ratio.denominator, axis=-1)
    return HRIRSet(h.name, h.azimuth_deg, h.elevation_deg, irs, samplerate)
