"""The synthetic audio-visual world: a seeded mirror of the real upstreams that the real recipes run against.

``generate_world(out, seed, size, port)`` writes::

    out/upstream/MUSIC_dataset/{MUSIC21_solo_videos,MUSIC_duet_videos}.json
    out/upstream/spatialaudiogen/meta/subsets/{YT-Music,YT-Clean}{.lst,.train.1.lst,.test.1.lst}
    out/upstream/spatialaudiogen/scraping/{video_formats,audio_formats}.txt
    out/upstream/PseudoBinaural/new_splits/split{1..5}/{train,val,test}.txt
    out/upstream/FAIR-Play/{videos,audios,splits}.tar.gz
    out/media/<id>.mp4 (MUSIC-like), out/media/<id>.mkv (YT-like 360)
    out/specs/{music-stereo,yt-music,yt-clean,fair-play}.toml
    out/truth.jsonl

The plan (ids, formats, faults, per-item seeds) is drawn first from the seed; every media item then draws its
scene from its own seed, so any subset of items regenerates to the same bytes (``only=``).
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import pipelines.synth.upstream as up
from pipelines.contract import FPS
from pipelines.io import atomic_output, atomic_write_bytes, atomic_write_text, sha256_file
from pipelines.spec import DatasetSpec, load_spec
from pipelines.synth.audio import peak_normalise, render_binaural, render_foa, to_int16
from pipelines.synth.encode import AudioFormat, VideoFormat, encode_media, truncate_file, wav_bytes
from pipelines.synth.frames import background_eqr, background_normal, iter_frames
from pipelines.synth.scene import Scene, SceneStyle, sample_scene
from pipelines.synth.textures import panorama

GENERATOR_VERSION = "2"
SIZES = ("tiny", "small")
FAULTS = (
    "mono-as-stereo",
    "one-channel",
    "truncated",
    "no-audio",
    "missing",
    "too-short",
    "av-length-mismatch",
    "wxy",
    "mislabelled-projection",
)
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# the datasets the world mirrors; item scenes are seeded with these codes, so they are never renumbered
_DATASET_CODE = {"music-stereo": 0, "yt-music": 1, "yt-clean": 2, "fair-play": 3}
WORLD_DATASETS = tuple(_DATASET_CODE)

# Where each dataset's spec list paths live in the world (mirrors the upstream repositories' folders).
UPSTREAM_DIRS = {
    "music-stereo": "upstream/MUSIC_dataset",
    "yt-music": "upstream/spatialaudiogen",
    "yt-clean": "upstream/spatialaudiogen",
    "fair-play": "upstream/PseudoBinaural",
}
FAIRPLAY_ARCHIVE_DIR = "upstream/FAIR-Play"
MEDIA_EXT = {"music-stereo": "mp4", "yt-music": "mkv", "yt-clean": "mkv"}
YT_SUBSET = {"yt-music": "YT-Music", "yt-clean": "YT-Clean"}

MUSIC_SIZES = [(320, 180), (256, 144), (288, 216), (352, 198)]
MUSIC_FPS = [24, 25, 30]
MUSIC_RATES = [44100, 48000]
EQR_SIZES = [(320, 160), (384, 192)]
EAC_FACES = [96, 128]  # EAC frame = 3 faces x 2 faces
YT_FPS = [24, 25, 30]
# About half the 360 videos are drawn over a natural panorama (photographs, a room, sky and ground, 1/f noise, a
# relief map: pipelines/synth/textures.py) instead of the smooth synthetic room, so the projection detector and the
# models meet real-world image statistics too.
NATURAL_360_SHARE = 0.5
NATURAL_360_KINDS = ("photos", "room-face-edges", "outdoor", "noise", "map")
FAIRPLAY_SIZE = (320, 180)
FAIRPLAY_FPS = 10
FAIRPLAY_RATE = 16000
FAIRPLAY_SECONDS = 10.0

MUSIC_STYLE = SceneStyle(n_sources=(1, 2), n_sources_p=(0.6, 0.4), p_moving=0.3)
DUET_STYLE = SceneStyle(n_sources=(2, 3), n_sources_p=(0.8, 0.2), p_moving=0.3)
YT_STYLE = SceneStyle(n_sources=(1, 2, 3), n_sources_p=(0.4, 0.4, 0.2), p_moving=0.4, spherical=True)
# FAIR-Play-like clips teach the model: mostly one strong, mostly static lateral source. Measured on the small
# world (seed 0, 160 clips): for a single source, mono x the KEMAR (L-R)/(L+R) ratio at the drawn azimuth leaves
# ~1-4 % of Mono-Mono's STFT error, so a model that reads the position from the picture has much to gain.
FAIRPLAY_STYLE = SceneStyle(n_sources=(1, 2, 3), n_sources_p=(0.7, 0.25, 0.05), lateral=True, p_moving=0.15, max_velocity_deg_s=4.0)


@dataclass(frozen=True)
class WorldSize:
    music_solo: tuple[tuple[str, tuple[str, ...]], ...]  # (instrument, faults of each of its videos)
    music_duet: tuple[tuple[str, tuple[str, ...]], ...]
    music_seconds: tuple[float, float]
    yt_music: tuple[tuple[str, str, str, tuple[str, ...]], ...]  # (projection, codec, layout, faults)
    yt_clean: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    yt_seconds: tuple[float, float]
    fairplay_clips: int


TINY = WorldSize(
    music_solo=(
        ("accordion", ("", "mono-as-stereo")),
        ("violin", ("", "one-channel")),
        ("trumpet", ("truncated", "")),
    ),
    music_duet=(("flute violin", ("", "missing")),),
    music_seconds=(12.0, 13.5),
    yt_music=(
        ("ER", "opus", "WXYZ", ()),
        ("EAC", "opus", "WXYZ", ()),
        ("EAC", "aac", "WXY", ("wxy",)),
        ("ER", "aac", "WXYZ", ("mislabelled-projection",)),
        ("EAC", "opus", "WXYZ", ("no-audio",)),
        ("ER", "opus", "WXYZ", ("too-short",)),
    ),
    yt_clean=(
        ("EAC", "opus", "WXYZ", ()),
        ("ER", "aac", "WXYZ", ()),
        ("EAC", "opus", "WXYZ", ("mislabelled-projection",)),
        ("ER", "opus", "WXYZ", ("av-length-mismatch",)),
        ("EAC", "opus", "WXYZ", ("missing",)),
        ("ER", "aac", "WXYZ", ("truncated",)),
    ),
    yt_seconds=(12.0, 13.0),
    fairplay_clips=20,
)

SMALL = WorldSize(
    music_solo=(
        ("accordion", ("", "", "mono-as-stereo")),
        ("violin", ("", "one-channel", "")),
        ("trumpet", ("", "truncated", "")),
        ("cello", ("", "", "mono-as-stereo")),
        ("xylophone", ("", "", "")),
    ),
    music_duet=(("flute violin", ("", "missing")), ("acoustic_guitar violin", ("", ""))),
    music_seconds=(12.0, 35.0),
    yt_music=(
        ("ER", "opus", "WXYZ", ()),
        ("EAC", "opus", "WXYZ", ()),
        ("EAC", "opus", "WXYZ", ()),
        ("EAC", "aac", "WXYZ", ()),
        ("EAC", "aac", "WXY", ("wxy",)),
        ("ER", "aac", "WXYZ", ("mislabelled-projection",)),
        ("EAC", "opus", "WXYZ", ("no-audio",)),
        ("ER", "opus", "WXYZ", ("too-short",)),
        ("EAC", "opus", "WXYZ", ("missing",)),
        ("ER", "opus", "WXYZ", ()),
    ),
    yt_clean=(
        ("EAC", "opus", "WXYZ", ()),
        ("ER", "aac", "WXYZ", ()),
        ("EAC", "opus", "WXYZ", ()),
        ("EAC", "opus", "WXYZ", ("mislabelled-projection",)),
        ("ER", "opus", "WXYZ", ("av-length-mismatch",)),
        ("EAC", "opus", "WXYZ", ("missing",)),
        ("ER", "aac", "WXYZ", ("truncated",)),
        ("EAC", "aac", "WXYZ", ("one-channel",)),
        ("ER", "opus", "WXYZ", ()),
        ("EAC", "opus", "WXY", ("wxy",)),
    ),
    yt_seconds=(12.0, 25.0),
    fairplay_clips=300,
)
WORLD_SIZES = {"tiny": TINY, "small": SMALL}


@dataclass(frozen=True)
class Item:
    """One planned video (or FAIR-Play clip): everything about it except its scene, which comes from ``seed``."""

    dataset: str
    video_id: str
    index: int
    seed: int
    faults: tuple[str, ...]
    category: str | None
    duration_s: float  # video stream
    audio_duration_s: float | None  # None: no audio stream
    width: int
    height: int
    fps: int
    sample_rate: int
    audio_channels: int
    audio_codec: str | None
    projection: str | None = None  # true projection (YT): EAC | ER
    upstream_projection: str | None = None  # label written in video_formats.txt
    audio_layout: str | None = None  # WXYZ | WXY (YT)
    video_itag: int | None = None
    audio_itag: int | None = None
    split_part: str | None = None  # YT official split 1: train | test

    @property
    def file(self) -> str:
        if self.dataset == "fair-play":
            return f"videos/{self.video_id}.mp4"
        return f"media/{self.video_id}.{MEDIA_EXT[self.dataset]}"


@dataclass
class WorldPlan:
    seed: int
    size: str
    items: list[Item] = field(default_factory=list)
    fairplay_10split: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    fairplay_5split: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # ids with rows in the format tables but in no YT-Music / YT-Clean list (upstream's tables cover every subset)
    unlisted_format_ids: list[str] = field(default_factory=list)

    def by_dataset(self, dataset: str) -> list[Item]:
        return [it for it in self.items if it.dataset == dataset]


def random_youtube_ids(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """``n`` new 11-character ids of ``[A-Za-z0-9_-]``; the first has a leading '-', the next two contain
    '-' and '_' (real ids do: tools must not read them as options)."""
    out: list[str] = []
    while len(out) < n:
        chars = list(rng.choice(list(_ID_ALPHABET[:62]), size=11))
        k = len(out)
        if k == 0:
            chars[0] = "-"
        elif k == 1:
            chars[int(rng.integers(1, 10))] = "_"
        elif k == 2:
            chars[int(rng.integers(1, 10))] = "-"
        vid = "".join(chars)
        if vid not in taken:
            taken.add(vid)
            out.append(vid)
    return out


def _frames_duration(rng: np.random.Generator, lo: float, hi: float, fps: int) -> float:
    """A duration in [lo, hi] that is a whole number of frames."""
    return round(float(rng.uniform(lo, hi)) * fps) / fps


def plan_world(seed: int, size: str) -> WorldPlan:
    """Ids, formats, faults, splits and per-item seeds of the world (cheap: no media)."""
    if size not in WORLD_SIZES:
        raise ValueError(f"unknown world size {size!r} (known: {', '.join(SIZES)})")
    cfg = WORLD_SIZES[size]
    rng = np.random.default_rng([seed, 7919])
    taken: set[str] = set()
    plan = WorldPlan(seed=seed, size=size)

    def item_seed() -> int:
        return int(rng.integers(0, 2**62))

    # MUSIC-like: stereo AAC in mp4, varied resolution / fps / sample rate, 12-35 s.
    music = [(cat, f, "solo") for cat, faults in cfg.music_solo for f in faults]
    music += [(cat, f, "duet") for cat, faults in cfg.music_duet for f in faults]
    ids = random_youtube_ids(rng, len(music), taken)
    for i, ((cat, fault, _kind), vid) in enumerate(zip(music, ids)):
        faults = (fault,) if fault else ()
        w, h = MUSIC_SIZES[int(rng.integers(len(MUSIC_SIZES)))]
        fps = int(rng.choice(MUSIC_FPS))
        dur = _frames_duration(rng, *cfg.music_seconds, fps)
        plan.items.append(
            Item("music-stereo", vid, i, item_seed(), faults, cat, dur, dur, w, h, fps, int(rng.choice(MUSIC_RATES)),
                 1 if "one-channel" in faults else 2, "aac")
        )

    # YT-like: 360 video (EQR or EAC) + 4-channel ambiX (opus itag 338 or AAC itag 327) in mkv.
    for dataset, rows in (("yt-music", cfg.yt_music), ("yt-clean", cfg.yt_clean)):
        ids = random_youtube_ids(rng, len(rows), taken)
        parts = _yt_parts(rng, len(rows))
        for i, ((proj, codec, layout, faults), vid) in enumerate(zip(rows, ids)):
            fps = int(rng.choice(YT_FPS))
            if "too-short" in faults:
                dur = _frames_duration(rng, 6.0, 8.0, fps)
            else:
                dur = _frames_duration(rng, *cfg.yt_seconds, fps)
            audio_dur: float | None = dur
            if "av-length-mismatch" in faults:
                audio_dur = dur + float(rng.uniform(1.8, 3.0))
            if "no-audio" in faults:
                audio_dur = None
            if proj == "ER":
                w, h = EQR_SIZES[int(rng.integers(len(EQR_SIZES)))]
            else:
                f = EAC_FACES[int(rng.integers(len(EAC_FACES)))]
                w, h = 3 * f, 2 * f
            label = proj
            if "mislabelled-projection" in faults:
                label = "EAC" if proj == "ER" else "ER"
            channels = 0 if audio_dur is None else (1 if "one-channel" in faults else 4)
            plan.items.append(
                Item(dataset, vid, i, item_seed(), tuple(faults), YT_SUBSET[dataset], dur, audio_dur, w, h, fps, 48000,
                     channels, None if audio_dur is None else codec, proj, label, layout,
                     int(rng.choice([266, 313, 137, 264])), 338 if codec == "opus" else 327, parts[i])
            )

    # FAIR-Play-like: 10 s clips 000001.., mp4 (video + stereo AAC) and a separate 16-bit binaural wav.
    n = cfg.fairplay_clips
    clip_ids = [f"{k:06d}" for k in range(1, n + 1)]
    for i, cid in enumerate(clip_ids):
        plan.items.append(
            Item("fair-play", cid, i, item_seed(), (), None, FAIRPLAY_SECONDS, FAIRPLAY_SECONDS, *FAIRPLAY_SIZE,
                 FAIRPLAY_FPS, FAIRPLAY_RATE, 2, "aac")
        )
    plan.fairplay_10split = {str(k): _partition(rng, clip_ids) for k in range(1, 11)}
    plan.fairplay_5split = {str(k): _partition(rng, clip_ids) for k in range(1, 6)}
    plan.unlisted_format_ids = random_youtube_ids(rng, 3, taken)
    return plan


def _yt_parts(rng: np.random.Generator, n: int) -> list[str]:
    """Official split 1 of a YT subset: about 3/4 train, 1/4 test (as upstream), both non-empty."""
    n_test = max(1, round(n / 4))
    order = rng.permutation(n)
    parts = ["train"] * n
    for k in order[:n_test]:
        parts[int(k)] = "test"
    return parts


def _partition(rng: np.random.Generator, clip_ids: list[str]) -> dict[str, list[str]]:
    """One split: a random 80/10/10 partition (test sets of different splits overlap, as upstream)."""
    perm = [clip_ids[int(k)] for k in rng.permutation(len(clip_ids))]
    n_val = n_test = max(1, round(len(perm) / 10))
    n_train = len(perm) - n_val - n_test
    return {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}


# ---------------------------------------------------------------------------------------------------------
# media


def item_scene(item: Item) -> tuple[Scene, np.random.Generator]:
    """The scene of an item (drawn from its own seed) and the generator for its remaining choices."""
    rng = np.random.default_rng([item.seed, _DATASET_CODE[item.dataset]])
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


def _video_format(item: Item) -> tuple[VideoFormat, bool]:
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
    fmt, spherical = _video_format(item)
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


# ---------------------------------------------------------------------------------------------------------
# orchestration


def generate_world(
    out: str | Path,
    seed: int = 0,
    size: str = "tiny",
    port: int = 8765,
    *,
    only: set[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the world under ``out``; returns a summary (counts, faults, seconds).

    ``only``: video ids to (re)generate media for (lists, truth and specs are always written; the FAIR-Play
    archives only when every clip is included). Same seed and size -> byte-identical files.
    """
    t0 = time.perf_counter()
    out = Path(out)
    plan = plan_world(seed, size)
    write_upstream_lists(out, plan)
    items = [it for it in plan.items if only is None or it.video_id in only]
    media_dir = out / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    if only is None:  # a world regenerated in place with another seed or size must not keep the old videos
        planned = {Path(it.file).name for it in plan.items if it.dataset != "fair-play"}
        for stale in media_dir.iterdir():
            if stale.is_file() and stale.suffix in (".mp4", ".mkv") and stale.name not in planned:
                stale.unlink()
    truth: dict[tuple[str, str], dict[str, Any]] = {}
    fairplay = [it for it in items if it.dataset == "fair-play"]
    write_archives = len(fairplay) == len(plan.by_dataset("fair-play"))
    tmp_dir = out / ".synth-tmp"
    tmp_dir.mkdir(exist_ok=True)
    archive_dir = out / FAIRPLAY_ARCHIVE_DIR
    try:
        with ExitStack() as stack:
            tars: tuple[up.TarGzWriter, up.TarGzWriter] | None = None
            if write_archives:  # streamed: the small world's archives never sit in memory whole
                tars = (
                    up.TarGzWriter(stack.enter_context(atomic_output(archive_dir / "videos.tar.gz"))),
                    up.TarGzWriter(stack.enter_context(atomic_output(archive_dir / "audios.tar.gz"))),
                )
            bar = tqdm(items, desc=f"synth {size} world", unit="video", disable=not progress)
            for it in bar:
                bar.set_postfix_str(f"{it.dataset} {it.video_id}", refresh=False)
                truth[(it.dataset, it.video_id)] = _generate_item(out, tmp_dir, it, tars)
            if tars is not None:
                for tar in tars:
                    tar.close()
        if write_archives:
            splits = [
                (f"splits/split{k}/{part}.h5", up.fairplay_split_h5(ids))
                for k, parts in plan.fairplay_10split.items()
                for part, ids in parts.items()
            ]
            atomic_write_bytes(archive_dir / "splits.tar.gz", up.tar_gz(splits))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    # truth: keep records of items not regenerated this run (subset runs) from the previous truth file
    truth_path = out / "truth.jsonl"
    if only is not None and truth_path.exists():
        for line in truth_path.read_text().splitlines():
            rec = json.loads(line)
            truth.setdefault((rec["dataset"], rec["video_id"]), rec)
    order = {(it.dataset, it.video_id): k for k, it in enumerate(plan.items)}
    records = sorted(truth.values(), key=lambda r: order.get((r["dataset"], r["video_id"]), len(order)))
    atomic_write_text(truth_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    write_specs(out, port, skip_missing=only is not None)
    return {
        "out": str(out),
        "seed": seed,
        "size": size,
        "port": port,
        "generator_version": GENERATOR_VERSION,
        "generated": len(items),
        "videos": {d: len(plan.by_dataset(d)) for d in WORLD_DATASETS},
        "faults": {f: sum(f in it.faults for it in plan.items) for f in FAULTS},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _generate_item(out: Path, tmp_dir: Path, it: Item, tars: tuple[up.TarGzWriter, up.TarGzWriter] | None) -> dict[str, Any]:
    if it.dataset == "fair-play":
        tmp = tmp_dir / f"{it.video_id}.mp4"
        rec, samples = encode_item(it, tmp)
        if tars is not None and samples is not None:
            tars[0].add(it.file, tmp.read_bytes())
            tars[1].add(rec["audio_file"], wav_bytes(samples, it.sample_rate))
        tmp.unlink()
        return rec
    dest = out / it.file
    if "missing" in it.faults:  # listed upstream, but the server has no file: 404
        dest.unlink(missing_ok=True)
        return truth_record(it, item_scene(it)[0])
    rec, _ = encode_item(it, dest)
    if "truncated" in it.faults:  # an interrupted download: cut mid-file
        frac = float(np.random.default_rng([it.seed, 99]).uniform(0.45, 0.65))
        rec["truncated_bytes"] = truncate_file(dest, frac)
    return rec


def write_upstream_lists(out: Path, plan: WorldPlan) -> None:
    """Every list file of the world, in the real formats."""
    music = plan.by_dataset("music-stereo")
    solo: dict[str, list[str]] = {}
    duet: dict[str, list[str]] = {}
    for it in music:
        (duet if " " in (it.category or "") else solo).setdefault(it.category or "", []).append(it.video_id)
    base = out / UPSTREAM_DIRS["music-stereo"]
    atomic_write_bytes(base / "MUSIC21_solo_videos.json", up.music_json(solo, 2.0))
    atomic_write_bytes(base / "MUSIC_duet_videos.json", up.music_json(duet, 1.0))

    sag = out / UPSTREAM_DIRS["yt-music"]
    vrows, arows = [], []
    for dataset in ("yt-music", "yt-clean"):
        items = plan.by_dataset(dataset)
        name = YT_SUBSET[dataset]
        sub = sag / "meta" / "subsets"
        atomic_write_bytes(sub / f"{name}.lst", up.id_lines([it.video_id for it in items]))
        for part in ("train", "test"):
            atomic_write_bytes(sub / f"{name}.{part}.1.lst", up.id_lines([it.video_id for it in items if it.split_part == part]))
        for it in items:
            vrows.append((it.video_id, it.video_itag or 266, "MONO", it.upstream_projection or "ER"))
            # the format table names the stream that was downloaded; a video without audio still has a row
            arows.append((it.video_id, it.audio_itag or 338, "opus" if it.audio_itag == 338 else "aac", it.audio_layout or "WXYZ"))
    for k, vid in enumerate(plan.unlisted_format_ids):
        vrows.append((vid, 313, "STEREO" if k == 0 else "MONO", "EAC"))
        arows.append((vid, 339, "vorbis", "WXYZ"))
    atomic_write_bytes(sag / "scraping" / "video_formats.txt", up.video_formats(sorted(vrows)))
    atomic_write_bytes(sag / "scraping" / "audio_formats.txt", up.audio_formats(sorted(arows)))

    pb = out / UPSTREAM_DIRS["fair-play"] / "new_splits"
    for k, parts in plan.fairplay_5split.items():
        for part, ids in parts.items():
            atomic_write_bytes(pb / f"split{k}" / f"{part}.txt", up.clip_lines(ids))


# ---------------------------------------------------------------------------------------------------------
# specs


def spec_for_world(out: Path, dataset: str, port: int) -> DatasetSpec:
    """The real manifest of ``dataset`` with every URL pointed at the world served on ``port``."""
    real = load_spec(dataset=dataset)
    base = f"http://127.0.0.1:{port}"
    lists = []
    for lf in real.lists:
        rel = f"{UPSTREAM_DIRS[dataset]}/{lf.path}"
        path = out / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the world has no file for list {lf.path!r} of manifests/{dataset}.toml")
        lists.append(replace(lf, url=f"{base}/{rel}", sha256=sha256_file(path)))
    archives = []
    for ar in real.archives:
        rel = f"{FAIRPLAY_ARCHIVE_DIR}/{ar.name}"
        path = out / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the world has no archive {ar.name!r} of manifests/{dataset}.toml")
        archives.append(replace(ar, url=f"{base}/{rel}", sha256=sha256_file(path)))
    media_url = None
    if real.media_url is not None:
        media_url = f"{base}/media/{{id}}.{MEDIA_EXT[dataset]}"
    return replace(
        real,
        lists=tuple(lists),
        archives=tuple(archives),
        media_url=media_url,
        description=f"Synthetic world (ccs-data synth) mirroring: {real.description}",
        path=None,
    )


def write_specs(
    out: str | Path, port: int, specs_dir: str | Path | None = None, *, skip_missing: bool = False
) -> dict[str, Path]:
    """(Re)write the four world specs for ``port`` (default folder ``out/specs``); fast (hashes files only).

    ``skip_missing``: leave out a dataset whose upstream files are absent (a partial world) instead of raising.
    """
    out = Path(out)
    specs_dir = Path(specs_dir) if specs_dir is not None else out / "specs"
    paths = {}
    for dataset in WORLD_DATASETS:
        try:
            spec = spec_for_world(out, dataset, port)
        except FileNotFoundError:
            if skip_missing:
                continue
            raise
        path = specs_dir / f"{dataset}.toml"
        atomic_write_text(path, spec_to_toml(spec))
        paths[dataset] = path
    return paths


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def spec_to_toml(spec: DatasetSpec) -> str:
    """A spec in the schema of ``pipelines/spec.py`` (keys with value None are left out)."""
    lines = ["# Written by `ccs-data synth` / write_specs: the real manifest pointed at the loopback world."]
    top = {
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "media_url": spec.media_url,
        "audio": spec.audio,
        "id_format": spec.id_format,
        "min_lr_diff": spec.min_lr_diff,
    }
    lines += [f"{k} = {_toml_value(v)}" for k, v in top.items() if v is not None]
    for ar in spec.archives:
        lines += ["", "[[archives]]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(ar).items() if v is not None]
    for lf in spec.lists:
        lines += ["", "[[lists]]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(lf).items() if v is not None]
    for pr in spec.protocols:
        lines += ["", "[[protocols]]"] + [f"{k} = {_toml_value(v)}" for k, v in asdict(pr).items() if v is not None]
    return "\n".join(lines) + "\n"
