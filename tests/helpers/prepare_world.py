"""A small fetched dataset tree built directly (no fetch, no network) for the prepare/shard/verify tests.

It writes what ``docs/ARCHITECTURE.md`` says fetch leaves behind: ``media/``, ``videos.jsonl`` and
``ledger/fetch.jsonl``, with media made by ffmpeg from numpy signals and frames: binaural and mono-as-stereo
MUSIC-like mp4s, every fault class, 360 videos (equirectangular and EAC, 4-ch opus/AAC, WXY with silent Z, one
mislabelled upstream) and FAIR-Play-like clip pairs with their split lists.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from pipelines.ambisonics import encode_plane_wave
from pipelines.ffmpeg import run_ffmpeg
from pipelines.io import Ledger, write_jsonl

SR = 48_000


def eqr_scene(w: int = 640, h: int = 320, seed: int = 0) -> np.ndarray:
    """An equirectangular scene: sky and ground gradients, azimuth-periodic texture, coloured discs."""
    rng = np.random.default_rng(seed)
    az = (0.5 - (np.arange(w) + 0.5) / w) * 2 * np.pi  # image centre = front, azimuth grows to the left
    el = (0.5 - (np.arange(h) + 0.5) / h) * np.pi
    AZ, EL = np.meshgrid(az, el)
    img = np.zeros((h, w, 3))
    sky = EL > 0
    img[..., 0] = np.where(sky, 90 + 80 * np.sin(EL), 110 - 30 * np.sin(-EL))
    img[..., 1] = np.where(sky, 140 + 60 * np.sin(EL), 90 + 20 * np.cos(3 * AZ) * np.cos(EL))
    img[..., 2] = np.where(sky, 200 + 40 * np.sin(EL), 60 + 15 * np.sin(2 * AZ) * np.cos(EL))
    img += (25 * np.cos(EL) ** 2 * np.sin(7 * AZ + 3 * EL))[..., None]
    for _ in range(4):
        a, e = rng.uniform(-np.pi, np.pi), rng.uniform(-0.4, 0.4)
        d = np.arccos(np.clip(np.sin(EL) * np.sin(e) + np.cos(EL) * np.cos(e) * np.cos(AZ - a), -1, 1))
        img[d < 0.25] = rng.uniform(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def convert_image(img: np.ndarray, vf: str, w: int, h: int) -> np.ndarray:
    raw = run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{img.shape[1]}x{img.shape[0]}", "-i", "pipe:0",
                      "-vf", f"{vf},format=rgb24", "-f", "rawvideo", "pipe:1"], input_bytes=img.tobytes())
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


def eqr_to_eac(img: np.ndarray, w: int = 768, h: int = 512) -> np.ndarray:
    return convert_image(img, f"v360=input=e:output=eac:w={w}:h={h}", w, h)


def binaural_noise(seconds: float, seed: int, ild_db: float = 6.0) -> np.ndarray:
    """[T, 2] noise with a level difference and a small delay between the ears (clearly binaural)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    s = rng.standard_normal(n + 20) * 0.1
    left = s[20:] * 10 ** (ild_db / 40)
    right = s[:-20] * 10 ** (-ild_db / 40)
    return np.stack([left, right], axis=1)


def encode(out: Path, *, audio: np.ndarray | None, seconds: float, size: str = "160x96", rate: int = 30,
           image: np.ndarray | None = None, acodec: str = "aac", extra: list[str] | None = None,
           video_seconds: float | None = None) -> Path:
    """Encode a test video (lavfi pattern or a still image) with ``audio`` [T, C] at 48 kHz."""
    out.parent.mkdir(parents=True, exist_ok=True)
    vs = seconds if video_seconds is None else video_seconds
    with tempfile.TemporaryDirectory() as tmp:
        args = ["-y"]
        if image is not None:
            png = Path(tmp) / "scene.png"
            from PIL import Image

            Image.fromarray(image).save(png)
            args += ["-loop", "1", "-framerate", str(rate), "-t", f"{vs}", "-i", str(png)]
        else:
            args += ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={vs}"]
        if audio is not None:
            wav = Path(tmp) / "a.wav"
            sf.write(wav, audio, SR, subtype="FLOAT")
            args += ["-i", str(wav)]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(rate)]
        if audio is not None:
            args += ["-c:a", acodec, *(extra or []), "-b:a", "256k"]
        run_ffmpeg([*args, str(out)])
    return out


def _fetch_record(video_id: str, files: dict) -> dict:
    return {"video_id": video_id, "status": "done", "reason_class": None, "reason": "", "files": files,
            "bytes": 0, "sha256": "0" * 64, "format": {}, "time": "2026-01-01T00:00:00+00:00"}


# expected outcome per MUSIC-like video: (status, reason, kept clips)
MUSIC_EXPECTED = {
    "binaural001": ("done", None, 2),
    "binaural002": ("done", None, 1),
    "monostereo1": ("dropped", "non-binaural", 0),
    "onechannel1": ("dropped", "mono", 0),
    "sixchannels": ("dropped", "unexpected-channels", 0),
    "tooshort001": ("dropped", "too-short", 0),
    "noaudio0001": ("dropped", "no-audio", 0),
    "truncated01": ("dropped", "corrupt", 0),
    "avmismatch1": ("done", "av-length-mismatch", 1),  # audio 14 s, video 11 s: one clip from the common span
    "avmismatch2": ("done", "av-length-mismatch", 1),  # mkv, video 14 s, audio 11 s (no per-stream durations)
    "silentclip1": ("done", None, 1),  # its second clip is digital silence
}


def build_music(root: Path) -> Path:
    base = root / "music-stereo"
    media = base / "media"
    ledger = Ledger(base / "ledger" / "fetch.jsonl")
    rows = []

    def add(video_id: str, path: Path) -> None:
        ledger.append(_fetch_record(video_id, {"media": f"media/{path.name}"}))
        rows.append({"video_id": video_id, "dataset": "music-stereo", "category": "violin", "lists": [],
                     "splits": {}, "upstream_projection": None, "stereo_layout": None, "video_itag": None,
                     "audio_itag": None, "audio_codec": None, "audio_layout": None})

    add("binaural001", encode(media / "binaural001.mp4", audio=binaural_noise(21, 1), seconds=21))
    add("binaural002", encode(media / "binaural002.mp4", audio=binaural_noise(12, 2), seconds=12, size="640x360"))
    mono = binaural_noise(12, 3)[:, :1]
    add("monostereo1", encode(media / "monostereo1.mp4", audio=np.concatenate([mono, mono], 1), seconds=12))
    add("onechannel1", encode(media / "onechannel1.mp4", audio=mono, seconds=12))
    six = np.concatenate([binaural_noise(12, 4)] * 3, axis=1)
    add("sixchannels", encode(media / "sixchannels.mp4", audio=six, seconds=12))
    add("tooshort001", encode(media / "tooshort001.mp4", audio=binaural_noise(6, 5), seconds=6))
    add("noaudio0001", encode(media / "noaudio0001.mp4", audio=None, seconds=12))
    trunc = encode(media / "truncated01.mp4", audio=binaural_noise(12, 6), seconds=12)
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    add("truncated01", trunc)
    add("avmismatch1", encode(media / "avmismatch1.mp4", audio=binaural_noise(14, 7), seconds=14, video_seconds=11))
    add("avmismatch2", encode(media / "avmismatch2.mkv", audio=binaural_noise(11, 9), seconds=11, video_seconds=14))
    sil = binaural_noise(20, 8)
    sil[10 * SR:] = 0.0
    add("silentclip1", encode(media / "silentclip1.mp4", audio=sil, seconds=20))
    write_jsonl(base / "videos.jsonl", sorted(rows, key=lambda r: r["video_id"]))
    return base


# 360 videos: (id, true projection, upstream label, audio layout, codec, azimuth of the source)
YT_VIDEOS = [
    ("eqrOpus0001", "ER", "ER", "WXYZ", "libopus", 90.0),
    ("eacAac00001", "EAC", "EAC", "WXYZ", "aac", -90.0),
    ("mislabelled", "ER", "EAC", "WXY", "aac", 90.0),  # upstream says EAC, the pixels are equirectangular
]


def build_yt(root: Path, dataset: str = "yt-music") -> Path:
    base = root / dataset
    media = base / "media"
    ledger = Ledger(base / "ledger" / "fetch.jsonl")
    rows = []
    rng = np.random.default_rng(11)
    for i, (vid, proj, upstream, layout, codec, az) in enumerate(YT_VIDEOS):
        scene = eqr_scene(seed=i)
        image = scene if proj == "ER" else eqr_to_eac(scene)
        foa = encode_plane_wave(rng.standard_normal(11 * SR) * 0.1, az).T
        if layout == "WXY":
            foa[:, 2] = 0.0
        extra = ["-mapping_family", "2"] if codec == "libopus" else []
        path = encode(media / f"{vid}.mkv", audio=foa, seconds=11, image=image, acodec=codec, extra=extra, rate=10)
        ledger.append(_fetch_record(vid, {"media": f"media/{path.name}"}))
        rows.append({"video_id": vid, "dataset": dataset, "category": "YT-Music", "lists": [],
                     "splits": {"official/1": ["train"] if i != 1 else ["test"]},  # upstream parts (no val list)
                     "upstream_projection": upstream, "stereo_layout": "MONO", "video_itag": None,
                     "audio_itag": None, "audio_codec": codec, "audio_layout": layout})
    write_jsonl(base / "videos.jsonl", rows)
    return base


FAIRPLAY_IDS = ["000001", "000002", "000003"]


def build_fairplay(root: Path) -> Path:
    base = root / "fair-play"
    ledger = Ledger(base / "ledger" / "fetch.jsonl")
    rows = []
    for i, vid in enumerate(FAIRPLAY_IDS):
        video = encode(base / "media" / "videos" / f"{vid}.mp4", audio=None, seconds=10)
        wav = base / "media" / "binaural_audios" / f"{vid}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, binaural_noise(10, 20 + i), SR, subtype="PCM_16")
        ledger.append(_fetch_record(vid, {"video": f"media/videos/{video.name}",
                                          "audio": f"media/binaural_audios/{wav.name}"}))
        splits = {f"10-split/{s}": ["train" if (i + s) % 3 else "test"] for s in range(1, 11)}
        splits.update({f"5-split/{s}": [("train", "val", "test")[(i + s) % 3]] for s in range(1, 6)})
        rows.append({"video_id": vid, "dataset": "fair-play", "category": None, "lists": [], "splits": splits,
                     "upstream_projection": None, "stereo_layout": None, "video_itag": None, "audio_itag": None,
                     "audio_codec": None, "audio_layout": None})
    write_jsonl(base / "videos.jsonl", rows)
    return base


def read_json(path: Path):
    return json.loads(path.read_text())
