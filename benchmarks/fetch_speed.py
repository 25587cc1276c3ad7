"""Speed of ``ccs-data fetch`` on the synthetic world served on loopback.

    ccs-bench speed fetch [--world DIR] [--repeats 3] [--rate 256K] [--jobs 4]

1. Parallel downloads: MUSIC-like and YT-like sets fetched with ``--jobs 1`` (baseline) and ``--jobs N``, each
   download capped at ``--rate`` (yt-dlp's per-download rate limit stands in for a throttled upstream, which is
   what makes real crawls slow). Wall time, median of repeats; each repeat starts from an empty root.
2. A rerun with nothing left to do (every video done): wall time and number of HTTP requests (must be 0); its
   baseline is the first fetch of the same sets in the same repeat.

The world is generated into a temporary folder unless ``--world`` names one (``ccs-data synth --out DIR``).
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipelines.fetch import fetch_dataset
from pipelines.recipes.youtube import parse_rate
from pipelines.serve import WorldRequestHandler, make_server, stop
from pipelines.spec import load_spec
from pipelines.synth.specs import write_specs
from pipelines.synth.world import generate_world

DATASETS = ("music-stereo", "yt-music", "yt-clean")


def measure_fetch(world: Path | None = None, repeats: int = 3, rate: str = "256K", jobs: int = 4) -> dict[str, Any]:
    """The measurements above, as one JSON-ready dict (medians over ``repeats``)."""
    rate_limit = parse_rate(rate)
    with tempfile.TemporaryDirectory(prefix="ccs-fetch-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        if world is None:
            world = tmp / "world"
            generate_world(world, seed=0, size="tiny", progress=False)
        server, thread, port, seen = _serve(world)
        try:
            specs = write_specs(world, port, specs_dir=tmp / "specs")
            times, n_done = _time_fetches(specs, tmp, repeats, rate_limit, jobs, seen)
        finally:
            stop(server, thread)
    serial, parallel = statistics.median(times["serial"]), statistics.median(times["parallel"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "datasets": list(DATASETS),
        "videos_done": n_done,
        "rate_per_download": rate,
        "repeats": repeats,
        "jobs1_s": round(serial, 2),
        f"jobs{jobs}_s": round(parallel, 2),
        "speedup": round(serial / parallel, 2),
        "first_fetch_unthrottled_s": round(statistics.median(times["first"]), 2),
        "noop_rerun_s": round(statistics.median(times["rerun"]), 3),
        "noop_rerun_requests": max(times["rerun_requests"]),
    }


def _time_fetches(specs: dict[str, Path], tmp: Path, repeats: int, rate: int | None, jobs: int, seen: list[str]
                  ) -> tuple[dict[str, list[float]], int]:
    """Per repeat, each into an empty root: throttled ``jobs=1`` and ``jobs=N``; then an unthrottled first fetch
    and its no-op rerun (seconds, and the HTTP requests the rerun made)."""
    times: dict[str, list[float]] = {"serial": [], "parallel": [], "first": [], "rerun": [], "rerun_requests": []}
    n_done = 0
    for r in range(repeats):
        t, n_done = _fetch_all(specs, tmp / f"j1-{r}", 1, rate)
        times["serial"].append(t)
        times["parallel"].append(_fetch_all(specs, tmp / f"jn-{r}", jobs, rate)[0])
        root = tmp / f"rerun-{r}"
        times["first"].append(_fetch_all(specs, root, jobs, None)[0])
        n = len(seen)
        times["rerun"].append(_fetch_all(specs, root, jobs, None)[0])
        times["rerun_requests"].append(len(seen) - n)
    return times, n_done


def _serve(world: Path) -> tuple[Any, threading.Thread, int, list[str]]:
    """The world's server in a thread, with the list of paths it was asked for (to count requests)."""
    seen: list[str] = []

    class Counting(WorldRequestHandler):
        def do_GET(self):
            seen.append(urlsplit(self.path).path)
            super().do_GET()

    server = make_server(world)
    server.RequestHandlerClass = partial(Counting, directory=world.resolve(), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, int(server.server_address[1]), seen


def _fetch_all(specs: dict[str, Path], root: Path, jobs: int, rate: int | None) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = 0
    for dataset in DATASETS:
        summary = fetch_dataset(load_spec(specs[dataset]), root, jobs=jobs, rate_limit=rate, progress=False)
        done += summary.done
    return time.perf_counter() - t0, done
