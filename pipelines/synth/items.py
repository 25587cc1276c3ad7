"""One planned item of the synthetic world as media: its scene, audio (faults applied), frames and truth record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.contract import FPS
from pipelines.synth.audio import peak_normalise, render_binaural, render_foa, to_int16
from pipelines.synth.encode import AudioFormat, VideoFormat, encode_media
from pipelines.synth.frames import background_eqr, background_normal, iter_frames
from pipelines.synth.plan import DATASET_CODE, Item
from pipelines.synth.scene import Scene, SceneStyle, sample_scene
from pipelines.synth.textures import panorama

MUSIC_STYLE = SceneStyle(n_sources=(1, 2), n_sources_p=(0.6, 0.4), p_moving=0.3)
DUET_STYLE = SceneStyle(n_sources=(2, 3), n_sources_p=(0.8, 0.2), p_moving=0.3)
YT_STYLE = SceneStyle(n_sources=(1, 2, 3), n_sources_p=(0.4, 0.4, 0.2), p_moving=0.4, spherical=True)
# FAIR-Play-like clips teach the model: mostly one strong, mostly static lateral source. Measured on the small
# world (seed 0, 160 clips): for a single source, mono x the KEMAR (L-R)/(L+R) ratio at the drawn azimuth leaves
# ~1-4 % of Mono-Mono's STFT error, so a model that reads the position from the picture has much to gain.
FAIRPLAY_STYLE = SceneStyle(n_sources=(1, 2, 3), n_sources_p=(0.7, 0.25, 0.05), lateral=True, p_moving=0.15, max_velocity_deg_s=4.0)


# About half the 360 videos are drawn over a natural panorama (photographs, a room, sky and ground, 1/f noise, a
# relief map: pipelines/synth/textures.py) instead of the smooth synthetic room, so the projection detector and the
# models meet real-world image statistics too.
NATURAL_360_SHARE = 0.5
NATURAL_360_KINDS = ("photos", "room-face-edges", "outdoor", "noise", "map")

def item_scene(item: Item) -> tuple[Scene, np.random.Generator]:
    """The scene of an item (drawn from its own seed) and the generator for its remaining choices."""
    rng = np.random.default_rng([item.seed, DATASET_CODE[item.dataset]])
    style = {
        "music-stereo": DUET_STYLE if item.category and " " in item.category else MUSIC_STYLE,
        "yt-music": YT_STYLE,
        "yt-clean": YT_STYLE,
        "fair-play": FAIRPLAY_STYLE,
    }[item.dataset]
    duration = max(item.duration_s, item.audio_duration_s or 0.0)
    return sample_scene(rng, duration, style), rng


def render_item_audio(item: Item, scene: Scene, rng: np.random.Generator) -> np.ndarray | None:
    """[C, T] float audio of an item as it goes to the encoder (faults applied), or None (no audio stream)."""
    if item.audio_duration_s is None:
        return None
    gains = rng.uniform(0.6, 1.0, size=len(scene.sources))
    audio_scene = replace(scene, duration_s=item.audio_duration_s)
    if item.dataset in ("yt-music", "yt-clean"):
        x = render_foa(audio_scene, item.sample_rate, gains, horizontal_only=item.audio_layout == "WXY")
        x = peak_normalise(x, float(rng.uniform(0.4, 0.6)))
    else:
        x = peak_normalise(render_binaural(audio_scene, item.sample_rate, gains), float(rng.uniform(0.35, 0.7)))
    if "mono-as-stereo" in item.faults:
        mono = x.mean(axis=0)
        x = np.stack([mono, mono])
    if "one-channel" in item.faults:
        x = x[:1] if item.dataset != "music-stereo" else x.mean(axis=0, keepdims=True)
    return x


def video_format(item: Item) -> tuple[VideoFormat, bool]:
    """Encoder input (the size frames are drawn at) and whether the frames are 360 (drawn equirectangular).

    EAC frames are drawn EQR at 4f x 2f and converted by ffmpeg's v360 to YouTube's 3x2 layout (3f x 2f).
    """
    spherical = item.projection is not None
    if item.projection == "EAC":
        face = item.width // 3
        vf = f"v360=input=e:output=eac:w={item.width}:h={item.height}"
        return VideoFormat(4 * face, 2 * face, item.fps, vf), spherical
    return VideoFormat(item.width, item.height, item.fps), spherical


def encode_item(item: Item, out_file: Path) -> tuple[dict[str, Any], np.ndarray | None]:
    """Render and encode one item's media to ``out_file``; returns its truth record and the int16 samples."""
    scene, rng = item_scene(item)
    audio = render_item_audio(item, scene, rng)
    fmt, spherical = video_format(item)
    background = "plain"
    if spherical and rng.random() < NATURAL_360_SHARE:
        background = str(rng.choice(NATURAL_360_KINDS))
        bg = panorama(background, rng, fmt.width, fmt.height)
    else:
        bg = (background_eqr if spherical else background_normal)(rng, fmt.width, fmt.height)
    frames = iter_frames(bg, scene, item.fps, item.duration_s, spherical)
    container = "mp4" if item.file.endswith(".mp4") else "matroska"
    afmt = samples = None
    if audio is not None:
        samples = to_int16(audio)
        afmt = AudioFormat(item.audio_codec or "aac", item.sample_rate, "256k" if audio.shape[0] == 4 else "128k")
    encode_media(out_file, container, frames, fmt, samples, afmt)
    return {**truth_record(item, scene), "background": background}, samples


def truth_record(item: Item, scene: Scene) -> dict[str, Any]:
    rec = {
        "dataset": item.dataset,
        "video_id": item.video_id,
        "category": item.category,
        "faults": list(item.faults),
        "file": item.file,
        "exists": "missing" not in item.faults,
        "projection": item.projection,
        "upstream_projection": item.upstream_projection,
        "duration_s": item.duration_s,
        "audio_duration_s": item.audio_duration_s,
        "audio_channels": item.audio_channels,
        "audio_codec": item.audio_codec,
        "audio_layout": item.audio_layout,
        "sample_rate": item.sample_rate if item.audio_duration_s is not None else None,
        "width": item.width,
        "height": item.height,
        "fps": item.fps,
        "split_part": item.split_part,
        "sources": [
            {
                "kind": s.kind,
                "color": s.color,
                "rgb": list(s.rgb),
                "shape": s.shape,
                "size": round(s.size, 4),
                "elevation_deg": round(s.trajectory.elevation_deg, 3),
                "velocity_deg_s": round(s.trajectory.velocity_deg_s, 3),
                "azimuth_deg": [round(float(a), 3) for a in s.azimuth_per_frame(scene.duration_s, FPS)],
            }
            for s in scene.sources
        ],
    }
    if item.dataset == "fair-play":
        rec["audio_file"] = f"binaural_audios/{item.video_id}.wav"
    n_clip_s = min(item.duration_s, item.audio_duration_s or 0.0)
    broken = {"truncated", "missing", "no-audio"} & set(item.faults)
    rec["clips_expected"] = 0 if broken else int(n_clip_s // 10.0 + 1e-9)
    return rec
