"""What a recipe is: everything the generic stages need to know about one corpus, in one object.

The stages (``pipelines.fetch``, ``pipelines.prepare``) take a dataset's recipe from the registry
(``pipelines.recipes``) and never compare dataset names. A recipe provides

* fetch: a dataset-wide acquisition step (:meth:`Recipe.acquire`: FAIR-Play's archives; nothing for YouTube), how
  its lists become the video table (:meth:`Recipe.video_table`), and how one video is fetched into a ledger record
  (:meth:`Recipe.video_fetcher`, built with :func:`done_record` / :func:`failed_record`);
* prepare: the settings that change a video's result (:meth:`Recipe.fingerprint`), the fetched files a video is
  prepared from (:attr:`Recipe.media_roles`), and how one video becomes the binaural signal and frames its clips
  are cut from (:meth:`Recipe.clip_source`).

``docs/ADDING_A_CORPUS.md`` walks through writing one.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.clips import ClipSource, PrepareConfig, VideoTask
from pipelines.contract import PIPELINE_VERSION, DatasetLayout
from pipelines.errors import InputError, NetworkError
from pipelines.io import utc_now
from pipelines.lists import ListFormatError, SplitList, VideoTable, build_video_table
from pipelines.recipes.youtube import YtdlpConfig

if TYPE_CHECKING:  # annotations only: pipelines.spec imports the registry of the recipes defined with this module
    from pipelines.spec import DatasetSpec, ListFile

VideoFetch = Callable[[dict[str, Any]], dict[str, Any]]  # a video-table row -> its fetch-ledger record


class FetchSetupError(InputError):
    """Fetch cannot start or cannot go on for the whole dataset (bad list checksum, damaged archive...)."""


class FetchNetworkError(FetchSetupError, NetworkError):
    """Fetch cannot go on because a list or archive server cannot be reached (rerun later: it resumes)."""

    exit_code = NetworkError.exit_code


@dataclass(frozen=True)
class FetchOptions:
    """The options of a fetch run that a recipe's acquisition and per-video fetch may use."""

    cookies: Path | None = None
    rate_limit: int | None = None  # bytes/s
    progress: bool = False
    ytdlp: YtdlpConfig | None = None
    cancel: threading.Event | None = None  # set when the run is interrupted: downloads in flight stop


def failed_record(video_id: str, reason_class: str, reason: str, **extra: Any) -> dict[str, Any]:
    """A ``failed`` fetch-ledger record (docs/ARCHITECTURE.md); ``extra`` adds fields (e.g. ``format``)."""
    return {
        "video_id": video_id,
        "status": "failed",
        "reason_class": reason_class,
        "reason": reason,
        "files": None,
        "bytes": None,
        "sha256": None,
        "format": None,
        "time": utc_now(),
        **extra,
    }


def done_record(video_id: str, files: dict[str, str], size: int, sha256: Any, fmt: dict[str, Any]) -> dict[str, Any]:
    """A ``done`` fetch-ledger record: ``files`` relative to the dataset folder, ``sha256`` keyed like ``files``
    when there are several."""
    return {
        "video_id": video_id,
        "status": "done",
        "reason_class": None,
        "reason": None,
        "files": files,
        "bytes": size,
        "sha256": sha256,
        "format": fmt,
        "time": utc_now(),
    }


class Recipe(ABC):
    """One corpus. Subclasses implement :meth:`video_fetcher` and :meth:`clip_source`; the rest has defaults."""

    has_360_video: bool = False  # its videos are 360 (``ccs-data projections`` offers it)
    media_roles: tuple[str, ...] = ("media",)  # keys of a done record's ``files`` that prepare reads

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # ------------------------------------------------------------------------------------------------ fetch

    def acquire(self, spec: DatasetSpec, layout: DatasetLayout, options: FetchOptions) -> list[dict[str, Any]]:
        """The dataset-wide step before the video table (after the lists): one status record per item. None here."""
        return []

    def video_table(self, spec: DatasetSpec, layout: DatasetLayout) -> VideoTable:
        """The video table from the verified lists (and whatever :meth:`acquire` fetched)."""
        return self.table_from_lists(spec, layout)

    def list_category(self, lf: ListFile) -> str | None:
        """The category of ids from list ``lf`` when the list itself names none."""
        return None

    def table_from_lists(self, spec: DatasetSpec, layout: DatasetLayout,
                         split_lists: Iterable[SplitList] = ()) -> VideoTable:
        try:
            return build_video_table(spec, layout.lists_dir, split_lists=split_lists, list_category=self.list_category)
        except ListFormatError as exc:
            raise FetchSetupError(str(exc)) from None

    @abstractmethod
    def video_fetcher(self, spec: DatasetSpec, layout: DatasetLayout,
                      options: FetchOptions) -> AbstractContextManager[VideoFetch]:
        """A context that yields the per-video fetch (called from several threads at once) and tidies up after."""

    # ------------------------------------------------------------------------------------------------ prepare

    def fingerprint(self, config: PrepareConfig) -> dict[str, Any]:
        """The settings that change a video's result (a rerun redoes videos prepared with other settings)."""
        fp: dict[str, Any] = {"pipeline_version": PIPELINE_VERSION, "max_av_mismatch_s": config.max_av_mismatch_s,
                              "drop_av_mismatch": config.drop_av_mismatch}
        if config.min_lr_diff > 0:
            fp["min_lr_diff"] = config.min_lr_diff
        return fp

    def check_settings(self, config: PrepareConfig) -> None:
        """Fail before any video when a setting cannot work (e.g. a missing HRIR file)."""

    def load_overrides(self, path: str | Path | None) -> dict[str, Any]:
        """Per-video decisions taken by hand (``video_id -> override``); none here."""
        return {}

    @abstractmethod
    def clip_source(self, task: VideoTask, result: dict[str, Any]) -> ClipSource:
        """Probe, check and decode one video (raising ``VideoDropped``), recording decisions in ``result``."""
