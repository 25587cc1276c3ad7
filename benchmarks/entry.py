"""The console entry point of ``ccs-bench`` (``pipelines.entry``: Ctrl-C while the benchmarks are being imported
is the one ``interrupted`` line too)."""

from __future__ import annotations

from pipelines.entry import launch


def ccs_bench() -> None:
    launch("benchmarks.cli:main", "ccs-bench")
