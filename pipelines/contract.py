"""The data contract: what a prepared clip and a shard hold, how samples are named, where a dataset's files live.

Every stage that writes data (prepare, shard) and every consumer (verify, the trainer, inference, benchmarks)
imports these names; none retypes them (docs/SPEC.md sections 2 and 6). Which corpora exist is not part of the
contract: that is the recipe registry (``pipelines.recipes``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

# Audio (docs/SPEC.md section 2)
SAMPLE_RATE = 16_000
CLIP_SECONDS = 10.0
CLIP_SAMPLES = 160_000  # CLIP_SECONDS * SAMPLE_RATE

# Video
FPS = 10
FRAMES_PER_CLIP = 100  # CLIP_SECONDS * FPS
FRAME_WIDTH = 480
FRAME_HEIGHT = 240
JPEG_QUALITY = 90

# Shards (docs/SPEC.md section 6)
PIPELINE_VERSION = "1"
SHARD_PATTERN = "{dataset}-{index:06d}.tar"
AUDIO_MEMBER = "audio.flac"
FOA_MEMBER = "foa.flac"
META_MEMBER = "json"
SPLIT_PARTS = ("train", "val", "test")

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+_\d{4}$")
# dataset, protocol and split names become folder names: one safe path component each
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def sample_key(video_id: str, clip_index: int) -> str:
    """Key of clip ``clip_index`` of ``video_id``; keys never contain a dot (WebDataset splits there)."""
    if "." in video_id or "/" in video_id:
        raise ValueError(f"video id {video_id!r} cannot form a sample key (contains '.' or '/')")
    if not 0 <= clip_index <= 9999:
        raise ValueError(f"clip index {clip_index} out of range 0..9999")
    return f"{video_id}_{clip_index:04d}"


def parse_sample_key(key: str) -> tuple[str, int]:
    """Inverse of :func:`sample_key`."""
    if not _KEY_RE.match(key):
        raise ValueError(f"malformed sample key {key!r}")
    video_id, index = key.rsplit("_", 1)
    return video_id, int(index)


def frame_member(index: int) -> str:
    """WebDataset member extension of frame ``index`` of a clip (``f000.jpg`` .. ``f099.jpg``)."""
    return f"f{index:03d}.jpg"


def frame_index_at(time_s: float, n_frames: int) -> int:
    """The frame on screen at ``time_s`` seconds into a clip: frame k shows [k/fps, (k+1)/fps), the last one
    holds to the end."""
    return min(int(math.floor(time_s * FPS)), n_frames - 1)


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe single path component (letters, digits, '-', '_'; no dots, no slashes)."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(f"invalid {what} {value!r}: expected up to 64 letters, digits, '-' or '_'")
    return value


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of one dataset's working tree under a data root.

    ``lists/``      upstream list files as downloaded (verified against the spec's sha256)
    ``videos.jsonl`` the video table parsed from the lists (fetch)
    ``archives/``   downloaded archives (FAIR-Play)
    ``media/``      downloaded media, one file per video (FAIR-Play: extracted archive members)
    ``ledger/``     append-only JSONL ledgers: ``fetch.jsonl``, ``prepare.jsonl``
    ``prepared/``   per-video clips cut by prepare (audio FLAC + JPEG frames), input to shard
    ``clips.jsonl`` the clips manifest (prepare)
    ``videos-prepared.jsonl`` per-video decisions of prepare (lr_diff, projection, split)
    ``shards/``     WebDataset shards (shard)
    ``splits/<protocol>/<split>/{train,val,test}.txt`` sample-key lists (shard)
    """

    root: Path
    dataset: str

    def __post_init__(self) -> None:
        check_name(self.dataset, "dataset name")
        object.__setattr__(self, "root", Path(self.root))

    @property
    def base(self) -> Path:
        return self.root / self.dataset

    @property
    def lists_dir(self) -> Path:
        return self.base / "lists"

    @property
    def video_table(self) -> Path:
        return self.base / "videos.jsonl"

    @property
    def archives_dir(self) -> Path:
        return self.base / "archives"

    @property
    def media_dir(self) -> Path:
        return self.base / "media"

    @property
    def ledger_dir(self) -> Path:
        return self.base / "ledger"

    def ledger(self, stage: str) -> Path:
        return self.ledger_dir / f"{stage}.jsonl"

    @property
    def prepared_dir(self) -> Path:
        return self.base / "prepared"

    @property
    def clips_manifest(self) -> Path:
        return self.base / "clips.jsonl"

    @property
    def prepared_videos(self) -> Path:
        return self.base / "videos-prepared.jsonl"

    @property
    def shards_dir(self) -> Path:
        return self.base / "shards"

    def shard_path(self, index: int) -> Path:
        return self.shards_dir / SHARD_PATTERN.format(dataset=self.dataset, index=index)

    def shard_index(self, path: Path) -> int | None:
        """The index N of a file named like this dataset's shards (``<dataset>-NNNNNN.tar``), else None."""
        prefix, suffix = f"{self.dataset}-", ".tar"
        digits = path.name[len(prefix):-len(suffix)] if path.name.startswith(prefix) and path.name.endswith(suffix) else ""
        return int(digits) if digits.isdigit() else None

    def shards(self) -> list[Path]:
        """The dataset's complete shards, sorted (temporary files of a running or killed shard run never match)."""
        if not self.shards_dir.is_dir():
            return []
        return sorted(p for p in self.shards_dir.glob(f"{self.dataset}-*.tar") if self.shard_index(p) is not None)

    @property
    def splits_dir(self) -> Path:
        return self.base / "splits"

    def split_list(self, protocol: str, split: str, part: str) -> Path:
        if part not in SPLIT_PARTS:
            raise ValueError(f"split part must be one of {SPLIT_PARTS}, got {part!r}")
        return self.splits_dir / check_name(protocol, "protocol") / check_name(str(split), "split") / f"{part}.txt"

    def read_split_keys(self, protocol: str, split: str, part: str) -> list[str]:
        """Keys of ``splits/<protocol>/<split>/<part>.txt`` (validated, order kept, duplicates refused)."""
        path = self.split_list(protocol, split, part)
        if not path.is_file():
            raise FileNotFoundError(f"split list {path} does not exist")
        keys: list[str] = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            key = line.strip()
            if not key:
                continue
            try:
                parse_sample_key(key)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: malformed sample key {key!r}") from None
            keys.append(key)
        if len(set(keys)) != len(keys):
            raise ValueError(f"{path}: duplicate keys")
        return keys
