"""Natural-looking equirectangular panoramas for 360 frames: photographs stitched around the sphere and procedural
scenes with natural-image statistics (1/f noise, sky and floor, rooms with strong vertical edges, low texture,
dark scenes, a relief map).

Every panorama is continuous on the sphere, as a real 360 capture is: the left and right edges meet, the top and
bottom rows are single colours (the poles), photographs are cross-faded into each other and into sky and floor.
The photographs are the sample images shipped inside the scikit-image wheel (read as files with Pillow; nothing
is downloaded) and the relief is matplotlib's bundled ``topobathy.npz``.

All functions are pure in their generator: the same ``rng`` state gives the same pixels.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import zoom

# skimage.data images that ship in the wheel (others are downloaded on first use and are never used here)
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
          "ihc.png", "brick.png", "grass.png", "gravel.png", "camera.png")


class TextureUnavailable(RuntimeError):
    """The package holding the sample photographs is missing."""


def photo_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise TextureUnavailable("the 'scikit-image' package (sample photographs) is not installed: "
                                 "pip install scikit-image")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@lru_cache(maxsize=len(PHOTOS))
def photo(name: str) -> np.ndarray:
    """One shipped photograph as float64 RGB [H, W, 3] in 0..255 (grey ones repeated over the channels)."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r} (known: {', '.join(PHOTOS)})")
    with Image.open(photo_dir() / name) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float64)
    arr.setflags(write=False)
    return arr


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Longitude (0..2 pi, growing to the right) and latitude (+pi/2 at the top) of every pixel centre."""
    lon = 2 * np.pi * (np.arange(width) + 0.5) / width
    lat = np.pi * (0.5 - (np.arange(height) + 0.5) / height)
    return np.meshgrid(lon, lat)


def _directions(width: int, height: int) -> np.ndarray:
    lon, lat = _grid(width, height)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def pink_field(rng: np.random.Generator, width: int, height: int, n_waves: int = 160,
               slope: float = 1.0) -> np.ndarray:
    """A 1/f^slope random field on the sphere ([H, W], zero mean, unit std): plane waves along random directions,
    so it is continuous across the wrap and at the poles by construction."""
    if width > 512:  # the field has no detail finer than ~3.6 degrees: compute it coarse, then upsample
        coarse = pink_field(rng, 512, max(2, round(512 * height / width)), n_waves, slope)
        img = Image.fromarray(coarse.astype(np.float32)).resize((width, height), Image.BILINEAR)
        return np.asarray(img, dtype=np.float64)
    d = _directions(width, height).reshape(-1, 3).astype(np.float32)
    axes = rng.standard_normal((n_waves, 3))
    axes = (axes / np.linalg.norm(axes, axis=1, keepdims=True)).astype(np.float32)
    freq = np.exp(rng.uniform(np.log(0.5), np.log(100.0), n_waves))  # radians^-1: periods from 2 turns to 3.6 deg
    phase = rng.uniform(0, 2 * np.pi, n_waves)
    amp = freq ** -slope
    field = np.zeros(d.shape[0], dtype=np.float32)
    for k in range(n_waves):
        field += np.float32(amp[k]) * np.cos(np.float32(freq[k]) * (d @ axes[k]) + np.float32(phase[k]))
    field = field.reshape(height, width).astype(np.float64)
    return (field - field.mean()) / (field.std() + 1e-12)


def _vertical_blend(height: int, lat_edge_deg: float, softness_deg: float) -> np.ndarray:
    """[H, 1] weight: 1 above latitude ``lat_edge_deg``, 0 below, a smooth ramp ``softness_deg`` wide."""
    lat = np.degrees(np.pi * (0.5 - (np.arange(height) + 0.5) / height))
    return np.clip((lat - lat_edge_deg) / softness_deg + 0.5, 0, 1)[:, None]


def _sky_and_floor(rng: np.random.Generator, width: int, height: int, sky: np.ndarray, floor: np.ndarray,
                   texture: float) -> np.ndarray:
    """A sky gradient over a textured floor, meeting at the horizon."""
    lon, lat = _grid(width, height)
    up = np.clip(np.sin(lat), 0, 1)[..., None]
    zenith = sky * 0.55 + 255 * 0.45
    img = np.where(lat[..., None] >= 0, sky * (1 - up) + zenith * up, floor)
    img = img + texture * pink_field(rng, width, height)[..., None] * np.cos(lat)[..., None] ** 2
    return img


def photo_band(rng: np.random.Generator, width: int, height: int, names: tuple[str, ...] | None = None) -> np.ndarray:
    """Photographs side by side around the horizon (each about 360/n degrees wide), cross-faded into each other
    (the last into the first across the wrap) and into a sky and a floor taken from their own colours."""
    if names is None:
        names = tuple(rng.choice(PHOTOS[:7], size=int(rng.integers(3, 6)), replace=False))
    n = len(names)
    band_h = int(height * rng.uniform(0.42, 0.6))
    top = (height - band_h) // 2 + int(rng.integers(-height // 20, height // 20 + 1))
    seg = width // n
    overlap = max(4, seg // 6)
    band = np.zeros((band_h, width, 3))
    weight = np.zeros((1, width, 1))
    for k, name in enumerate(names):
        piece = np.asarray(Image.fromarray(photo(name).astype(np.uint8)).resize((seg + 2 * overlap, band_h),
                                                                             Image.BILINEAR), dtype=np.float64)
        ramp = np.minimum(1.0, np.minimum(np.arange(seg + 2 * overlap) + 0.5,
                                          seg + 2 * overlap - np.arange(seg + 2 * overlap) - 0.5) / (2 * overlap))
        cols = (k * seg - overlap + np.arange(seg + 2 * overlap)) % width
        np.add.at(band, (slice(None), cols), piece * ramp[None, :, None])
        np.add.at(weight, (slice(None), cols), ramp[None, :, None])
    band /= np.maximum(weight, 1e-9)
    sky = band[: max(1, band_h // 10)].mean(axis=(0, 1))
    floor = band[-max(1, band_h // 10):].mean(axis=(0, 1))
    img = _sky_and_floor(rng, width, height, sky, floor, rng.uniform(3, 10))
    rows = np.arange(height)[:, None, None]
    fade = max(2, band_h // 8)
    inside = np.clip(np.minimum(rows - top, top + band_h - 1 - rows) / fade, 0, 1)
    placed = np.zeros_like(img)
    placed[top:top + band_h] = band
    return img * (1 - inside) + placed * inside


def room(rng: np.random.Generator, width: int, height: int, edges_on_face_borders: bool = False) -> np.ndarray:
    """A room: walls of different colours meeting in sharp vertical edges (on the EAC face borders at 45, 135,
    225 and 315 degrees when asked), windows and lamps, a pale ceiling and a darker floor, faint wall texture."""
    lon, lat = _grid(width, height)
    n_walls = 4 if edges_on_face_borders else int(rng.integers(3, 7))
    start = np.pi / 4 if edges_on_face_borders else rng.uniform(0, 2 * np.pi)
    corners = np.sort((start + np.arange(n_walls) * 2 * np.pi / n_walls
                       + (0 if edges_on_face_borders else rng.uniform(-0.2, 0.2, n_walls))) % (2 * np.pi))
    wall_of = np.searchsorted(corners, lon) % n_walls
    colours = rng.uniform(60, 210, (n_walls, 3))
    img = colours[wall_of]
    img = img * (0.75 + 0.25 * np.cos(lat)[..., None])  # light falls off towards floor and ceiling
    for _ in range(int(rng.integers(1, 4))):  # windows: bright rectangles
        c, half_w = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3)
        dl = np.angle(np.exp(1j * (lon - c)))
        m = (np.abs(dl) < half_w) & (lat > rng.uniform(-0.1, 0.1)) & (lat < rng.uniform(0.3, 0.6))
        img[m] = rng.uniform(200, 250, 3)
    ceiling = _vertical_blend(height, np.degrees(rng.uniform(0.5, 0.8)), 3)[..., None]
    floor = 1 - _vertical_blend(height, -np.degrees(rng.uniform(0.4, 0.7)), 3)[..., None]
    img = img * (1 - ceiling) + rng.uniform(200, 240) * ceiling
    img = img * (1 - floor) + rng.uniform(40, 110, 3) * floor
    for _ in range(int(rng.integers(1, 4))):  # lamps: soft bright blobs
        c_lon, c_lat = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.2)
        dist = np.arccos(np.clip(np.sin(lat) * np.sin(c_lat) + np.cos(lat) * np.cos(c_lat) * np.cos(lon - c_lon),
                                 -1, 1))
        img += 120 * np.exp(-((dist / 0.08) ** 2))[..., None]
    return img + rng.uniform(1, 4) * pink_field(rng, width, height)[..., None]


def outdoor(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sky over ground with a sharp horizon at the middle row and 1/f texture on the ground."""
    sky = np.array([rng.uniform(90, 160), rng.uniform(140, 200), rng.uniform(200, 250)])
    ground = rng.uniform(50, 140, 3)
    return _sky_and_floor(rng, width, height, sky, ground, rng.uniform(15, 35))


def natural_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Coloured 1/f noise on the sphere (a texture without objects)."""
    base = rng.uniform(60, 190, 3)
    return base + rng.uniform(15, 45) * np.stack([pink_field(rng, width, height) for _ in range(3)], axis=-1)


def low_texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """An almost featureless scene: a soft gradient and one or two grey levels of texture."""
    base = rng.uniform(80, 200, 3)
    lon, lat = _grid(width, height)
    img = base + rng.uniform(3, 10) * np.sin(lat)[..., None]
    return img + rng.uniform(0.5, 2.0) * pink_field(rng, width, height)[..., None]


def relief_map(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """matplotlib's bundled relief (topography and bathymetry) in map colours, mirrored to wrap, polar caps."""
    import matplotlib as mpl

    sample = Path(mpl.get_data_path()) / "sample_data" / "topobathy.npz"
    with np.load(sample) as data:
        topo = data["topo"].astype(np.float64)
    topo = np.concatenate([topo, topo[:, ::-1]], axis=1)  # periodic in longitude
    topo = np.roll(topo, int(rng.integers(topo.shape[1])), axis=1)
    norm = (topo - topo.min()) / (np.ptp(topo) + 1e-9)
    # periodic upsampling: the map's left and right edges stay neighbours
    norm = zoom(norm, (height / norm.shape[0], width / norm.shape[1]), order=1, mode="grid-wrap", grid_mode=True)
    img = mpl.colormaps["terrain"](np.clip(norm, 0, 1))[..., :3] * 255
    cap = (_vertical_blend(height, 70, 6) + 1 - _vertical_blend(height, -70, 6))[..., None]
    return img * (1 - cap) + 235 * cap


def darkened(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark version of ``scene`` (8-20 % of its light) with sensor noise."""
    return scene * rng.uniform(0.08, 0.2) + rng.normal(0, 1.0, scene.shape)


KINDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "photos": photo_band,
    "room": room,
    "room-face-edges": lambda rng, w, h: room(rng, w, h, edges_on_face_borders=True),
    "outdoor": outdoor,
    "noise": natural_noise,
    "low-texture": low_texture,
    "map": relief_map,
    "dark-room": lambda rng, w, h: darkened(room(rng, w, h), rng),
    "dark-photos": lambda rng, w, h: darkened(photo_band(rng, w, h), rng),
}


def panorama(kind: str, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A ``kind`` panorama (:data:`KINDS`) as uint8 equirectangular [height, width, 3]."""
    if kind not in KINDS:
        raise ValueError(f"unknown panorama kind {kind!r} (known: {', '.join(KINDS)})")
    return np.clip(np.round(KINDS[kind](rng, width, height)), 0, 255).astype(np.uint8)


def yawed(pano: np.ndarray, yaw_deg: float) -> np.ndarray:
    """The panorama turned by ``yaw_deg`` about the vertical (a whole number of columns)."""
    return np.roll(pano, int(round(yaw_deg / 360 * pano.shape[1])), axis=1)
