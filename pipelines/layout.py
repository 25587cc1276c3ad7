"""Where each stage keeps its files under ``<root>/<dataset>/`` (one place for every path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ccstereo.constants import DATASETS, SHARD_PATTERN


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of one dataset's working tree.

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
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r} (known: {', '.join(DATASETS)})")
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

    @property
    def splits_dir(self) -> Path:
        return self.base / "splits"

    def split_list(self, protocol: str, split: str, part: str) -> Path:
        return self.splits_dir / protocol / split / f"{part}.txt"
