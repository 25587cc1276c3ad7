"""The whole data chain for one dataset: fetch -> prepare -> shard -> verify, as one library call.

The demo, the test fixtures and the README's loop all run exactly this; each stage resumes, so calling it again
redoes nothing that is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipelines.fetch import FetchSummary, fetch_dataset
from pipelines.prepare import PrepareSummary, prepare_dataset
from pipelines.recipes.youtube import YtdlpConfig
from pipelines.shard import ShardSummary, shard_dataset
from pipelines.spec import DatasetSpec
from pipelines.verify import Problem, verify_dataset


@dataclass
class ChainResult:
    fetch: FetchSummary
    prepare: PrepareSummary
    shard: ShardSummary
    problems: list[Problem] = field(default_factory=list)  # empty when verify found nothing (or did not run)


def build_dataset(spec: DatasetSpec, root: str | Path, *, prepare_jobs: int = 1, progress: bool = False,
                  ytdlp: YtdlpConfig | None = None, verify: bool = True) -> ChainResult:
    """Fetch, prepare, shard and (by default) verify ``spec``'s dataset under ``root``.

    verify reads JPEG headers only here (fast); ``ccs-data verify`` decodes every frame.
    """
    fetched = fetch_dataset(spec, root, progress=progress, ytdlp=ytdlp)
    prepared = prepare_dataset(spec, root, jobs=prepare_jobs, progress=progress)
    sharded = shard_dataset(root, spec.name, progress=progress)
    problems = verify_dataset(root, spec.name, decode_frames=False) if verify else []
    return ChainResult(fetched, prepared, sharded, problems)
