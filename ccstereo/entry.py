"""The console entry points of ``ccs-train`` and ``ccs-infer`` (``pipelines.entry``: Ctrl-C while torch is being
imported is the one ``interrupted`` line too)."""

from __future__ import annotations

from pipelines.entry import launch


def ccs_train() -> None:
    launch("ccstereo.cli:train_command", "ccs-train")


def ccs_infer() -> None:
    launch("ccstereo.cli:infer_command", "ccs-infer")
