"""Session fixtures shared by every test module: the tiny synthetic world and a loopback server for it.

``tiny_world``   Path of the tiny world (seed 0), generated once per session (about 15 s on one core). Set
                 ``CCS_TEST_CACHE=/some/dir`` to keep it between sessions; the cache key includes a hash of the
                 generator's source, so a changed generator never serves a stale world.
``world_server`` the tiny world served on a free loopback port, with specs rewritten for that port (in a
                 per-session folder: the world folder itself is left untouched). Attributes: ``root``,
                 ``port``, ``base_url``, ``specs_dir``, ``truth`` (list of dicts from truth.jsonl); methods
                 ``spec_path(dataset)``, ``url(relative_path)``, ``truth_of(video_id)``,
                 ``ids(dataset, fault=None, clean=False)``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipelines.io import read_jsonl

WORLD_SEED = 0


def _generator_fingerprint() -> str:
    import pipelines.synth as synth_pkg
    from pipelines.synth.world import GENERATOR_VERSION

    h = hashlib.sha256(GENERATOR_VERSION.encode())
    pkg_dir = Path(synth_pkg.__file__).parent
    for src in sorted(pkg_dir.glob("*.py")) + [pkg_dir.parent / "ambisonics.py", pkg_dir.parent / "hrir.py"]:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:12]


def build_world(parent: Path, size: str = "tiny", seed: int = WORLD_SEED) -> Path:
    """Generate a world under ``parent`` (or reuse a cached one) and return its folder."""
    from pipelines.synth.world import generate_world

    target = parent / f"synth-{size}-seed{seed}-{_generator_fingerprint()}"
    if (target / "truth.jsonl").is_file():
        return target
    tmp = parent / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    generate_world(tmp, seed=seed, size=size, port=8765, progress=False)
    try:
        os.rename(tmp, target)  # atomic: a half-generated world is never taken for a finished one
    except OSError:  # another session finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("CCS_TEST_CACHE")
    parent = Path(cache) if cache else tmp_path_factory.mktemp("world")
    parent.mkdir(parents=True, exist_ok=True)
    return build_world(parent)


@dataclass
class ServedWorld:
    root: Path
    port: int
    specs_dir: Path
    truth: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, relative_path: str) -> str:
        return f"{self.base_url}/{relative_path.lstrip('/')}"

    def spec_path(self, dataset: str) -> Path:
        path = self.specs_dir / f"{dataset}.toml"
        if not path.is_file():
            raise KeyError(f"the world has no spec for {dataset!r}")
        return path

    def truth_of(self, video_id: str) -> dict[str, Any]:
        for rec in self.truth:
            if rec["video_id"] == video_id:
                return rec
        raise KeyError(video_id)

    def ids(self, dataset: str, fault: str | None = None, clean: bool = False) -> list[str]:
        """Ids of ``dataset``: all, those with ``fault``, or (``clean``) those without any fault."""
        out = []
        for rec in self.truth:
            if rec["dataset"] != dataset:
                continue
            if fault is not None and fault not in rec["faults"]:
                continue
            if clean and rec["faults"]:
                continue
            out.append(rec["video_id"])
        return out


@pytest.fixture(scope="session")
def world_server(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory):
    from pipelines.serve import start_server, stop
    from pipelines.synth.specs import write_specs

    server, thread, port = start_server(tiny_world, port=0)
    try:
        specs_dir = tmp_path_factory.mktemp("world-specs")
        write_specs(tiny_world, port, specs_dir=specs_dir)
        yield ServedWorld(root=tiny_world, port=port, specs_dir=specs_dir, truth=read_jsonl(tiny_world / "truth.jsonl"))
    finally:
        stop(server, thread)


@pytest.fixture(scope="session")
def world_chain(world_server: ServedWorld, tmp_path_factory: pytest.TempPathFactory):
    """fetch (loopback) -> prepare -> shard for the four datasets of the tiny synthetic world.

    Returns ``(data_root, {dataset: PrepareSummary})``; shared by the prepare tests and the Table 2 bench test.
    """
    from pipelines.chain import build_dataset
    from pipelines.recipes.youtube import YtdlpConfig
    from pipelines.spec import load_spec

    root = tmp_path_factory.mktemp("world-chain")
    fast = YtdlpConfig(retries=1, fragment_retries=1, extractor_retries=1, socket_timeout_s=10)
    summaries = {}
    for ds in ("music-stereo", "yt-music", "yt-clean", "fair-play"):
        spec = load_spec(world_server.spec_path(ds))
        result = build_dataset(spec, root, prepare_jobs=2 if ds == "fair-play" else 1, ytdlp=fast, verify=False)
        summaries[ds] = result.prepare
    return root, summaries
