"""SOFA (AES69) SimpleFreeFieldHRIR files written with h5py in the layout real files have (the MIT KEMAR file
Debian's libmysofa ships: global ``Conventions``/``SOFAConventions`` attributes, ``Data.IR`` [M, R, N],
``Data.SamplingRate`` [1] in hertz, ``SourcePosition`` [M, 3] spherical degrees, ``ReceiverPosition`` [R, 3, 1]
cartesian metres), with knobs to break one thing at a time."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

LEFT_FIRST = np.array([[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]])  # SOFA: +y is the listener's left


def write_sofa(path: str | Path, irs: np.ndarray, azimuth_deg: np.ndarray, elevation_deg: np.ndarray,
               samplerate: float, *, receivers: np.ndarray | None = LEFT_FIRST,
               convention: str = "SimpleFreeFieldHRIR", source_type: str = "spherical") -> Path:
    path = Path(path)
    m = irs.shape[0]
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = np.bytes_(b"SOFA")
        f.attrs["SOFAConventions"] = np.bytes_(convention.encode())
        f.attrs["SOFAConventionsVersion"] = np.bytes_(b"1.0")
        f.attrs["DataType"] = np.bytes_(b"FIR")
        f["Data.IR"] = np.asarray(irs, dtype=np.float64)
        rate = f.create_dataset("Data.SamplingRate", data=np.array([samplerate], dtype=np.float64))
        rate.attrs["Units"] = np.bytes_(b"hertz")
        sph = np.stack([azimuth_deg, elevation_deg, np.full(m, 1.4)], axis=1)
        if source_type == "cartesian":
            az, el = np.radians(sph[:, 0]), np.radians(sph[:, 1])
            sph = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1) * 1.4
        src = f.create_dataset("SourcePosition", data=sph)
        src.attrs["Type"] = np.bytes_(source_type.encode())
        src.attrs["Units"] = np.bytes_(b"degree, degree, metre" if source_type == "spherical" else b"metre")
        if receivers is not None:
            rec = f.create_dataset("ReceiverPosition", data=np.asarray(receivers, dtype=np.float64)[:, :, None])
            rec.attrs["Type"] = np.bytes_(b"cartesian")
            rec.attrs["Units"] = np.bytes_(b"metre")
    return path
