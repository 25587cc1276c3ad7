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


def load_sofa(path: str | Path, samplerate: int = SAMPLE_RATE) -> HRIRSet:
    """A SOFA ``SimpleFreeFieldHRIR`` file (spherical source positions in degrees)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise HRIRUnavailable(f"SOFA file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            irs = np.asarray(f["Data.IR"], dtype=np.float64)  # [M, R, N]
            pos = np.asarray(f["SourcePosition"], dtype=np.float64)  # [M, 3]
            rate = float(np.asarray(f["Data.SamplingRate"]).ravel()[0])
    except (OSError, KeyError) as exc:
        raise HRIRUnavailable(f"{path}: not a readable SOFA SimpleFreeFieldHRIR file ({exc})") from None
    if irs.ndim != 3 or irs.shape[1] != 2:
        raise HRIRUnavailable(f"{path}: Data.IR must be [M, 2, N], got {irs.shape}")
    return _resampled(HRIRSet(f"sofa:{path.name}", pos[:, 0] % 360, pos[:, 1], irs, int(round(rate))), samplerate)


def _resampled(h: HRIRSet, samplerate: int) -> HRIRSet:
    if h.samplerate == samplerate:
        return h
    ratio = Fraction(samplerate, h.samplerate)
    irs = resample_poly(h.irs, ratio.numerator, ratio.denominator, axis=-1)
    return HRIRSet(h.name, h.azimuth_deg, h.elevation_deg, irs, samplerate)
