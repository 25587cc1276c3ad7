"""Speed of ``ccs-data fetch`` on the synthetic world served on loopback.

    python -m benchmarks.fetch_speed [--world DIR] [--repeats 3] [--rate 256K] [--jobs 4]

1. Parallel downloads: MUSIC-like and YT-like sets fetched with ``--jobs 1`` (baseline) and ``--jobs N``, each
   download capped at ``--rate`` (yt-dlp's per-download rate limit stands in for a throttled upstream, which is
   what makes real crawls slow). Wall time, median of repeats; each repeat starts from an empty root.
2. A rerun with nothing left to do (every video done): wall time and number of HTTP requests (must be 0); its
   baseline is the first fetch of the same sets in the same repeat.

The world is generated into a temporary folder unless ``--world`` names one (``ccs-data synth --out DIR``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

DATASETS = ("music-stereo", "yt-music", "yt-clean")


def _serve(world: Path):
    from pipelines.serve import WorldRequestHandler, make_server

    seen: list[str] = []

    class Counting(WorldRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(urlsplit(self.path).path)
            super().do_GET()

    server = make_server(world)
    server.RequestHandlerClass = partial(Counting, directory=world.resolve(), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, int(server.server_address[1]), seen


def _fetch_all(specs: dict, root: Path, jobs: int, rate: int | None) -> tuple[float, int]:
    from pipelines.fetch import fetch_dataset
    from pipelines.spec import load_spec

    t0 = time.perf_counter()
    done = 0
    for dataset in DATASETS:
        summary = fetch_dataset(load_spec(specs[dataset]), root, jobs=jobs, rate_limit=rate, progress=False)
        done += summary.done
    return time.perf_counter() - t0, done


def main(argv: list[str] | None = None) -> dict:
    from pipelines.serve import stop
    from pipelines.synth.world import generate_world, write_specs
    from pipelines.youtube import parse_rate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, help="an existing world (default: generate a tiny one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", default="256K", help="per-download rate limit (default 256K)")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args(argv)
    rate = parse_rate(args.rate)

    with tempfile.TemporaryDirectory(prefix="ccs-fetch-bench-") as tmp:
        tmp = Path(tmp)
        world = args.world
        if world is None:
            world = tmp / "world"
            generate_world(world, seed=0, size="tiny", progress=False)
        server, thread, port, seen = _serve(world)
        try:
            specs = write_specs(world, port, specs_dir=tmp / "specs")
            serial, parallel, rerun, first, rerun_requests = [], [], [], [], []
            n_done = 0
            for r in range(args.repeats):
                t, n_done = _fetch_all(specs, tmp / f"j1-{r}", 1, rate)
                serial.append(t)
                t, _ = _fetch_all(specs, tmp / f"jn-{r}", args.jobs, rate)
                parallel.append(t)
                root = tmp / f"rerun-{r}"
                first.append(_fetch_all(specs, root, args.jobs, None)[0])
                n = len(seen)
                rerun.append(_fetch_all(specs, root, args.jobs, None)[0])
                rerun_requests.append(len(seen) - n)
        finally:
            stop(server, thread)

    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "datasets": list(DATASETS),
        "videos_done": n_done,
        "rate_per_download": args.rate,
        "repeats": args.repeats,
        "jobs1_s": round(statistics.median(serial), 2),
        f"jobs{args.jobs}_s": round(statistics.median(parallel), 2),
        "speedup": round(statistics.median(serial) / statistics.median(parallel), 2),
        "first_fetch_unthrottled_s": round(statistics.median(first), 2),
        "noop_rerun_s": round(statistics.median(rerun), 3),
        "noop_rerun_requests": max(rerun_requests),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
