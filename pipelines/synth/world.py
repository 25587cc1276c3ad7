"""The synthetic audio-visual world: a seeded mirror of the real upstreams that the real recipes run against.

``generate_world(out, seed, size, port)`` writes::

    out/upstream/MUSIC_dataset/{MUSIC21_solo_videos,MUSIC_duet_videos}.json
    out/upstream/spatialaudiogen/meta/subsets/{YT-Music,YT-Clean}{.lst,.train.1.lst,.test.1.lst}
    out/upstream/spatialaudiogen/scraping/{video_formats,audio_formats}.txt
    out/upstream/PseudoBinaural/new_splits/split{1..5}/{train,val,test}.txt
    out/upstream/FAIR-Play/{videos,audios,splits}.tar.gz
    out/media/<id>.mp4 (MUSIC-like), out/media/<id>.mkv (YT-like 360)
    out/specs/{music-stereo,yt-music,yt-clean,fair-play}.toml
    out/truth.jsonl

The plan (ids, formats, faults, per-item seeds) is drawn first from the seed; every media item then draws its
scene from its own seed, so any subset of items regenerates to the same bytes (``only=``).
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import pipelines.synth.upstream as up
from pipelines.io import atomic_output, atomic_write_bytes, atomic_write_text
from pipelines.synth.encode import truncate_file, wav_bytes
from pipelines.synth.items import encode_item, item_scene, truth_record
from pipelines.synth.plan import (
    FAIRPLAY_ARCHIVE_DIR,
    FAULTS,
    UPSTREAM_DIRS,
    WORLD_DATASETS,
    YT_SUBSET,
    Item,
    WorldPlan,
    plan_world,
)
from pipelines.synth.specs import write_specs

GENERATOR_VERSION = "2"


def generate_world(
    out: str | Path,
    seed: int = 0,
    size: str = "tiny",
    port: int = 8765,
    *,
    only: set[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the world under ``out``; returns a summary (counts, faults, seconds).

    ``only``: video ids to (re)generate media for (lists, truth and specs are always written; the FAIR-Play
    archives only when every clip is included). Same seed and size -> byte-identical files.
    """
    t0 = time.perf_counter()
    out = Path(out)
    plan = plan_world(seed, size)
    write_upstream_lists(out, plan)
    items = [it for it in plan.items if only is None or it.video_id in only]
    (out / "media").mkdir(parents=True, exist_ok=True)
    if only is None:  # a world regenerated in place with another seed or size must not keep the old videos
        _remove_unplanned_media(out / "media", plan)
    truth = _generate_media(out, plan, items, progress)
    _write_truth(out / "truth.jsonl", plan, truth, keep_previous=only is not None)
    write_specs(out, port, skip_missing=only is not None)
    return {
        "out": str(out),
        "seed": seed,
        "size": size,
        "port": port,
        "generator_version": GENERATOR_VERSION,
        "generated": len(items),
        "videos": {d: len(plan.by_dataset(d)) for d in WORLD_DATASETS},
        "faults": {f: sum(f in it.faults for it in plan.items) for f in FAULTS},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _remove_unplanned_media(media_dir: Path, plan: WorldPlan) -> None:
    planned = {Path(it.file).name for it in plan.items if it.dataset != "fair-play"}
    for stale in media_dir.iterdir():
        if stale.is_file() and stale.suffix in (".mp4", ".mkv") and stale.name not in planned:
            stale.unlink()


def _generate_media(out: Path, plan: WorldPlan, items: list[Item], progress: bool) -> dict[tuple[str, str], dict]:
    """Every item's media (FAIR-Play clips streamed into the archives when all of them are generated); their truth."""
    truth: dict[tuple[str, str], dict[str, Any]] = {}
    fairplay = [it for it in items if it.dataset == "fair-play"]
    write_archives = len(fairplay) == len(plan.by_dataset("fair-play"))
    tmp_dir = out / ".synth-tmp"
    tmp_dir.mkdir(exist_ok=True)
    archive_dir = out / FAIRPLAY_ARCHIVE_DIR
    try:
        with ExitStack() as stack:
            tars: tuple[up.TarGzWriter, up.TarGzWriter] | None = None
            if write_archives:  # streamed: the small world's archives never sit in memory whole
                tars = (
                    up.TarGzWriter(stack.enter_context(atomic_output(archive_dir / "videos.tar.gz"))),
                    up.TarGzWriter(stack.enter_context(atomic_output(archive_dir / "audios.tar.gz"))),
                )
            bar = tqdm(items, desc=f"synth {plan.size} world", unit="video", disable=not progress)
            for it in bar:
                bar.set_postfix_str(f"{it.dataset} {it.video_id}", refresh=False)
                truth[(it.dataset, it.video_id)] = _generate_item(out, tmp_dir, it, tars)
            if tars is not None:
                for tar in tars:
                    tar.close()
        if write_archives:
            splits = [
                (f"splits/split{k}/{part}.h5", up.fairplay_split_h5(ids))
                for k, parts in plan.fairplay_10split.items()
                for part, ids in parts.items()
            ]
            atomic_write_bytes(archive_dir / "splits.tar.gz", up.tar_gz(splits))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return truth


def _write_truth(path: Path, plan: WorldPlan, truth: dict[tuple[str, str], dict], keep_previous: bool) -> None:
    """truth.jsonl in plan order; a subset run keeps the records of the items it did not regenerate."""
    if keep_previous and path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            truth.setdefault((rec["dataset"], rec["video_id"]), rec)
    order = {(it.dataset, it.video_id): k for k, it in enumerate(plan.items)}
    records = sorted(truth.values(), key=lambda r: order.get((r["dataset"], r["video_id"]), len(order)))
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def _generate_item(out: Path, tmp_dir: Path, it: Item, tars: tuple[up.TarGzWriter, up.TarGzWriter] | None) -> dict[str, Any]:
    if it.dataset == "fair-play":
        tmp = tmp_dir / f"{it.video_id}.mp4"
        rec, samples = encode_item(it, tmp)
        if tars is not None and samples is not None:
            tars[0].add(it.file, tmp.read_bytes())
            tars[1].add(rec["audio_file"], wav_bytes(samples, it.sample_rate))
        tmp.unlink()
        return rec
    dest = out / it.file
    if "missing" in it.faults:  # listed upstream, but the server has no file: 404
        dest.unlink(missing_ok=True)
        return truth_record(it, item_scene(it)[0])
    rec, _ = encode_item(it, dest)
    if "truncated" in it.faults:  # an interrupted download: cut mid-file
        frac = float(np.random.default_rng([it.seed, 99]).uniform(0.45, 0.65))
        rec["truncated_bytes"] = truncate_file(dest, frac)
    return rec


def write_upstream_lists(out: Path, plan: WorldPlan) -> None:
    """Every list file of the world, in the real formats."""
    music = plan.by_dataset("music-stereo")
    solo: dict[str, list[str]] = {}
    duet: dict[str, list[str]] = {}
    for it in music:
        (duet if " " in (it.category or "") else solo).setdefault(it.category or "", []).append(it.video_id)
    base = out / UPSTREAM_DIRS["music-stereo"]
    atomic_write_bytes(base / "MUSIC21_solo_videos.json", up.music_json(solo, 2.0))
    atomic_write_bytes(base / "MUSIC_duet_videos.json", up.music_json(duet, 1.0))

    sag = out / UPSTREAM_DIRS["yt-music"]
    vrows, arows = [], []
    for dataset in ("yt-music", "yt-clean"):
        items = plan.by_dataset(dataset)
        name = YT_SUBSET[dataset]
        sub = sag / "meta" / "subsets"
        atomic_write_bytes(sub / f"{name}.lst", up.id_lines([it.video_id for it in items]))
        for part in ("train", "test"):
            atomic_write_bytes(sub / f"{name}.{part}.1.lst", up.id_lines([it.video_id for it in items if it.split_part == part]))
        for it in items:
            vrows.append((it.video_id, it.video_itag or 266, "MONO", it.upstream_projection or "ER"))
            # the format table names the stream that was downloaded; a video without audio still has a row
            arows.append((it.video_id, it.audio_itag or 338, "opus" if it.audio_itag == 338 else "aac", it.audio_layout or "WXYZ"))
    for k, vid in enumerate(plan.unlisted_format_ids):
        vrows.append((vid, 313, "STEREO" if k == 0 else "MONO", "EAC"))
        arows.append((vid, 339, "vorbis", "WXYZ"))
    atomic_write_bytes(sag / "scraping" / "video_formats.txt", up.video_formats(sorted(vrows)))
    atomic_write_bytes(sag / "scraping" / "audio_formats.txt", up.audio_formats(sorted(arows)))

    pb = out / UPSTREAM_DIRS["fair-play"] / "new_splits"
    for k, parts in plan.fairplay_5split.items():
        for part, ids in parts.items():
            atomic_write_bytes(pb / f"split{k}" / f"{part}.txt", up.clip_lines(ids))
