"""Scene sampling for the synthetic world (pure: numbers in, numbers out, no I/O).

A scene is 1-3 sound sources. Each source has a sound (a harmonic tone sequence or noise bursts) and a
trajectory (azimuth, elevation over time). The trajectory is sampled independently of the sound, so the mono
mixture carries no information about where a source is: only the picture does.

Azimuth convention (project-wide, ambiX): degrees, 0 = front, positive to the LEFT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.contract import FPS

# Saturated, mutually distinct colours. Tones take the warm half, noise the cool half, so a model can tell
# which shape makes which kind of sound (and two sources in one scene never share a colour).
TONE_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (240, 230, 20),
    "magenta": (230, 30, 200),
}
NOISE_COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (30, 60, 240),
    "cyan": (20, 220, 230),
    "green": (30, 200, 40),
    "purple": (130, 40, 220),
}
PALETTE: dict[str, tuple[int, int, int]] = {**TONE_COLORS, **NOISE_COLORS}
SHAPE_OF_KIND = {"tone": "disc", "noise": "square"}

# Normal (non-360) video spans azimuth +90 (left edge) .. -90 (right edge).
NORMAL_FIELD_OF_VIEW_DEG = 180.0


@dataclass(frozen=True)
class Trajectory:
    """Azimuth ``az0 + velocity * t``, folded back into ``[lo, hi]`` (bounded) or wrapped (360 video)."""

    az0_deg: float
    velocity_deg_s: float
    elevation_deg: float = 0.0
    lo_deg: float = -90.0
    hi_deg: float = 90.0
    wrap: bool = False

    def azimuth(self, t_s: np.ndarray | float) -> np.ndarray:
        raw = self.az0_deg + self.velocity_deg_s * np.asarray(t_s, dtype=np.float64)
        if self.wrap:
            return wrap_azimuth(raw)
        return fold_into(raw, self.lo_deg, self.hi_deg)


@dataclass(frozen=True)
class SoundParams:
    """Everything needed to synthesise one source's signal (see ``pipelines.synth.audio``)."""

    kind: str  # tone | noise
    seed: int  # seeds the note / burst sequence
    f0_hz: float = 220.0  # tone: base pitch
    n_harmonics: int = 5  # tone: timbre
    harmonic_decay: float = 1.0  # tone: amplitude of harmonic h is h ** -decay
    band_hz: tuple[float, float] = (500.0, 4000.0)  # noise: band-pass edges
    mean_event_s: float = 0.5  # mean note / burst length
    activity: float = 0.8  # fraction of time sounding


@dataclass(frozen=True)
class Source:
    kind: str
    color: str
    shape: str
    size: float  # shape radius as a fraction of the frame height (normal video) or degrees (360 video)
    y_offset: float  # normal video: vertical offset as a fraction of the height (carries no meaning)
    trajectory: Trajectory
    sound: SoundParams

    @property
    def rgb(self) -> tuple[int, int, int]:
        return PALETTE[self.color]

    def azimuth_per_frame(self, duration_s: float, fps: int = FPS) -> np.ndarray:
        """Azimuth at the centre of each 1/fps frame over ``duration_s`` (the truth record's sampling)."""
        n = int(np.ceil(round(duration_s * fps, 6)))
        return self.trajectory.azimuth((np.arange(n) + 0.5) / fps)


@dataclass(frozen=True)
class Scene:
    duration_s: float
    sources: tuple[Source, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SceneStyle:
    """How scenes of one dataset are drawn from."""

    n_sources: tuple[int, ...] = (1, 2, 3)  # choices
    n_sources_p: tuple[float, ...] | None = None
    lateral: bool = False  # FAIR-Play-like: |azimuth| in [min_abs_az, max_abs_az] for strong ILD
    min_abs_az_deg: float = 35.0
    max_abs_az_deg: float = 85.0
    az_limit_deg: float = 80.0  # bounded video: keep centres inside the picture
    p_moving: float = 0.3
    max_velocity_deg_s: float = 8.0
    spherical: bool = False  # 360 video: full circle, elevation varies
    max_elevation_deg: float = 20.0
    min_separation_deg: float = 35.0  # between sources' start azimuths (shapes must not overlap)


def fold_into(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    """Reflect ``x`` back into ``[lo, hi]`` (a triangle wave): a moving source bounces at the picture edges."""
    span = hi - lo
    y = np.mod(np.asarray(x, dtype=np.float64) - lo, 2.0 * span)
    return lo + np.where(y > span, 2.0 * span - y, y)


def wrap_azimuth(x: np.ndarray | float) -> np.ndarray:
    """Into (-180, 180]."""
    y = np.mod(np.asarray(x, dtype=np.float64) + 180.0, 360.0) - 180.0
    return np.where(y == -180.0, 180.0, y)


def azimuth_to_x(azimuth_deg: np.ndarray | float, width: int) -> np.ndarray:
    """Normal video: horizontal pixel centre of a source (left edge +90, centre 0, right edge -90)."""
    return width * (0.5 - np.asarray(azimuth_deg, dtype=np.float64) / NORMAL_FIELD_OF_VIEW_DEG)


def x_to_azimuth(x: np.ndarray | float, width: int) -> np.ndarray:
    return NORMAL_FIELD_OF_VIEW_DEG * (0.5 - np.asarray(x, dtype=np.float64) / width)


def azimuth_to_u(azimuth_deg: np.ndarray | float, width: int) -> np.ndarray:
    """Equirectangular column of an azimuth: ``azimuth = (0.5 - u/W) * 360`` (u = W/4 is +90, left)."""
    return np.mod(width * (0.5 - np.asarray(azimuth_deg, dtype=np.float64) / 360.0), width)


def u_to_azimuth(u: np.ndarray | float, width: int) -> np.ndarray:
    return wrap_azimuth((0.5 - np.asarray(u, dtype=np.float64) / width) * 360.0)


def elevation_to_v(elevation_deg: np.ndarray | float, height: int) -> np.ndarray:
    """Equirectangular row of an elevation (top row = +90)."""
    return height * (0.5 - np.asarray(elevation_deg, dtype=np.float64) / 180.0)


def sample_sound(rng: np.random.Generator, kind: str) -> SoundParams:
    seed = int(rng.integers(0, 2**31 - 1))
    if kind == "tone":
        return SoundParams(
            kind="tone",
            seed=seed,
            f0_hz=float(np.exp(rng.uniform(np.log(130.0), np.log(700.0)))),
            n_harmonics=int(rng.integers(3, 9)),
            harmonic_decay=float(rng.uniform(0.6, 2.0)),
            mean_event_s=float(rng.uniform(0.25, 0.8)),
            activity=float(rng.uniform(0.65, 0.95)),
        )
    lo = float(np.exp(rng.uniform(np.log(300.0), np.log(2500.0))))
    return SoundParams(
        kind="noise",
        seed=seed,
        band_hz=(lo, min(lo * float(rng.uniform(2.0, 6.0)), 7000.0)),
        mean_event_s=float(rng.uniform(0.15, 0.6)),
        activity=float(rng.uniform(0.6, 0.9)),
    )


def sample_scene(rng: np.random.Generator, duration_s: float, style: SceneStyle) -> Scene:
    """Draw sources (kind, colour, shape, trajectory, sound) for one video or clip."""
    p = None if style.n_sources_p is None else np.asarray(style.n_sources_p) / np.sum(style.n_sources_p)
    n = int(rng.choice(np.asarray(style.n_sources), p=p))
    starts = _start_azimuths(rng, n, style)
    used_colors: set[str] = set()
    sources = []
    for az0 in starts:
        kind = "tone" if rng.random() < 0.55 else "noise"
        palette = [c for c in (TONE_COLORS if kind == "tone" else NOISE_COLORS) if c not in used_colors]
        color = str(rng.choice(palette))
        used_colors.add(color)
        moving = rng.random() < style.p_moving
        velocity = float(rng.uniform(2.0, style.max_velocity_deg_s) * rng.choice([-1.0, 1.0])) if moving else 0.0
        if style.spherical:
            traj = Trajectory(az0, velocity, float(rng.uniform(-1, 1) * style.max_elevation_deg), wrap=True)
            size = float(rng.uniform(14.0, 22.0))  # angular radius, degrees
        else:
            lo, hi = (-style.az_limit_deg, style.az_limit_deg)
            if style.lateral:  # stay on the starting side, at a strong lateral angle
                lo, hi = (style.min_abs_az_deg, style.max_abs_az_deg) if az0 > 0 else (-style.max_abs_az_deg, -style.min_abs_az_deg)
            traj = Trajectory(az0, velocity, 0.0, lo, hi)
            size = float(rng.uniform(0.16, 0.24))
        sources.append(
            Source(
                kind=kind,
                color=color,
                shape=SHAPE_OF_KIND[kind],
                size=size,
                y_offset=float(rng.uniform(-0.18, 0.18)),
                trajectory=traj,
                sound=sample_sound(rng, kind),
            )
        )
    return Scene(duration_s=float(duration_s), sources=tuple(sources))


def _start_azimuths(rng: np.random.Generator, n: int, style: SceneStyle) -> list[float]:
    """``n`` start azimuths at least ``min_separation_deg`` apart (rejection sampling, then a fallback)."""
    for _ in range(200):
        if style.spherical:
            az = rng.uniform(-180.0, 180.0, size=n)
            d = np.abs(wrap_azimuth(az[:, None] - az[None, :]))
        elif style.lateral:
            az = rng.uniform(style.min_abs_az_deg, style.max_abs_az_deg, size=n) * rng.choice([-1.0, 1.0], size=n)
            d = np.abs(az[:, None] - az[None, :])
        else:
            az = rng.uniform(-style.az_limit_deg, style.az_limit_deg, size=n)
            d = np.abs(az[:, None] - az[None, :])
        if n == 1 or np.min(d[~np.eye(n, dtype=bool)]) >= style.min_separation_deg:
            return [float(a) for a in az]
    # evenly spread fallback (never reached in practice with n <= 3)
    span = 360.0 if style.spherical else 2 * style.az_limit_deg
    return [float(-span / 2 + span * (i + 0.5) / n) for i in range(n)]
