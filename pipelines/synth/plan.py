"""The plan of the synthetic world: ids, formats, faults, splits and per-item seeds, drawn from one seed (no media).

Every media item later draws its scene from its own seed (``pipelines.synth.items``), so any subset of items
regenerates to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
DATASET_CODE = {"music-stereo": 0, "yt-music": 1, "yt-clean": 2, "fair-play": 3}
WORLD_DATASETS = tuple(DATASET_CODE)

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
FAIRPLAY_SIZE = (320, 180)
FAIRPLAY_FPS = 10
FAIRPLAY_RATE = 16000
FAIRPLAY_SECONDS = 10.0

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
    """Ids, formats, faults, splits and per-item seeds of the world (cheap: no media).

    Every draw comes from one generator in a fixed order (MUSIC, YT-MUSIC, YT-CLEAN, FAIR-Play, splits, extra
    format-table ids): the order is part of the world's bytes.
    """
    if size not in WORLD_SIZES:
        raise ValueError(f"unknown world size {size!r} (known: {', '.join(SIZES)})")
    cfg = WORLD_SIZES[size]
    rng = np.random.default_rng([seed, 7919])
    taken: set[str] = set()
    plan = WorldPlan(seed=seed, size=size)
    plan.items += _plan_music(rng, taken, cfg)
    for dataset, rows in (("yt-music", cfg.yt_music), ("yt-clean", cfg.yt_clean)):
        plan.items += _plan_youtube360(rng, taken, cfg, dataset, rows)
    clip_ids = [f"{k:06d}" for k in range(1, cfg.fairplay_clips + 1)]
    plan.items += _plan_fairplay(rng, clip_ids)
    plan.fairplay_10split = {str(k): _partition(rng, clip_ids) for k in range(1, 11)}
    plan.fairplay_5split = {str(k): _partition(rng, clip_ids) for k in range(1, 6)}
    plan.unlisted_format_ids = random_youtube_ids(rng, 3, taken)
    return plan


def _item_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**62))


def _plan_music(rng: np.random.Generator, taken: set[str], cfg: WorldSize) -> list[Item]:
    """MUSIC-like: stereo AAC in mp4, varied resolution / fps / sample rate, 12-35 s."""
    music = [(cat, f) for cat, faults in cfg.music_solo for f in faults]
    music += [(cat, f) for cat, faults in cfg.music_duet for f in faults]
    ids = random_youtube_ids(rng, len(music), taken)
    items = []
    for i, ((cat, fault), vid) in enumerate(zip(music, ids)):
        faults = (fault,) if fault else ()
        w, h = MUSIC_SIZES[int(rng.integers(len(MUSIC_SIZES)))]
        fps = int(rng.choice(MUSIC_FPS))
        dur = _frames_duration(rng, *cfg.music_seconds, fps)
        items.append(Item("music-stereo", vid, i, _item_seed(rng), faults, cat, dur, dur, w, h, fps,
                          int(rng.choice(MUSIC_RATES)), 1 if "one-channel" in faults else 2, "aac"))
    return items


def _plan_youtube360(rng: np.random.Generator, taken: set[str], cfg: WorldSize, dataset: str,
                     rows: tuple[tuple[str, str, str, tuple[str, ...]], ...]) -> list[Item]:
    """YT-like: 360 video (EQR or EAC) + 4-channel ambiX (opus itag 338 or AAC itag 327) in mkv."""
    ids = random_youtube_ids(rng, len(rows), taken)
    parts = _yt_parts(rng, len(rows))
    items = []
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
        items.append(Item(dataset, vid, i, _item_seed(rng), tuple(faults), YT_SUBSET[dataset], dur, audio_dur, w, h,
                          fps, 48000, channels, None if audio_dur is None else codec, proj, label, layout,
                          int(rng.choice([266, 313, 137, 264])), 338 if codec == "opus" else 327, parts[i]))
    return items


def _plan_fairplay(rng: np.random.Generator, clip_ids: list[str]) -> list[Item]:
    """FAIR-Play-like: 10 s clips 000001.., mp4 (video + stereo AAC) and a separate 16-bit binaural wav."""
    return [Item("fair-play", cid, i, _item_seed(rng), (), None, FAIRPLAY_SECONDS, FAIRPLAY_SECONDS, *FAIRPLAY_SIZE,
                 FAIRPLAY_FPS, FAIRPLAY_RATE, 2, "aac") for i, cid in enumerate(clip_ids)]


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
