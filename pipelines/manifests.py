"""Where the repository's manifests live: one dataset spec per corpus (``manifests/<dataset>.toml``) and the
projection overrides (``manifests/projection-overrides.toml``).

A module of its own because both the spec loader and the projection decision read from it, and the spec loader
sits above the recipes that use the projection decision.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "manifests"
