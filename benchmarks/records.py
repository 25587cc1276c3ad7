"""The records a table run writes: one per (split, method) result, and the run's metadata (where the numbers
came from: code, packages, device, seeds, settings, checkpoint and data hashes)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.plan import BenchConfig, Job
from benchmarks.tables import MethodSpec, Section, TablePreset
from ccstereo.config import ModelConfig, recipe_hop
from ccstereo.metrics import SCORING_VERSION
from ccstereo.provenance import device_description, git_commit, package_versions
from ccstereo.train.records import selection_note
from pipelines.contract import DatasetLayout
from pipelines.io import sha256_file
from pipelines.spec import MANIFEST_DIR, SpecError, load_spec


def eval_settings(cfg: BenchConfig, spec: MethodSpec, checkpoint_sha: str | None) -> dict[str, Any]:
    """What makes a finished result stale when it changes (see ``benchmarks.run``)."""
    return {"hop": cfg.eval_hop(spec), "tail": spec.tail or "pad", "pad_mode": cfg.pad_mode, "tdss": spec.tdss,
            "shuffle_frames": spec.shuffle_frames,
            "checkpoint_sha256": checkpoint_sha, "scoring": SCORING_VERSION,
            "truth_sha256": sha256_file(cfg.truth) if cfg.truth else None}


def finished_result(path: Path) -> dict[str, Any] | None:
    """The result record at ``path`` when it is complete (``status: done``), else None (absent, partial, bad)."""
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("status") == "done" else None


def result_record(cfg: BenchConfig, preset: TablePreset, job: Job, preset_name: str, *, clips: list[dict[str, Any]],
                  metrics: dict[str, float], checkpoint: Path | None, model_cfg: ModelConfig | None,
                  eval_seconds: float, device: torch.device,
                  checkpoint_provenance: dict[str, Any] | None = None,
                  checkpoint_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of one evaluated (split, method): settings, per-split means, every clip, provenance
    (``checkpoint_provenance``: where an imported checkpoint's weights come from, its ``meta["provenance"]``).

    ``recipe`` is the one the checkpoint was trained with (its meta; this run's for Mono-Mono), ``selected_on`` and
    ``selection_note`` say which list picked it, ``note`` is the method's note followed by those facts."""
    sha = sha256_file(checkpoint) if checkpoint else None
    meta = checkpoint_meta or {}
    recipe = meta.get("recipe", cfg.recipe if checkpoint is None else "unknown (checkpoint predates recipes)")
    selection = meta.get("selection_note") if checkpoint is not None else None
    return {
        "status": "done",
        "table": preset.table,
        "dataset": job.section.dataset,
        "protocol": job.section.protocol,
        "split": job.split,
        "method": job.method.name,
        "method_slug": job.method.slug,
        "arch": job.method.arch,
        "model_overrides": job.method.model,
        "n_clips": len(clips),
        "metrics": metrics,
        "clips": clips,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "model_config": None if model_cfg is None else model_cfg.to_dict(),
        "checkpoint_provenance": checkpoint_provenance,
        "preset": preset_name,
        "recipe": recipe,
        "select_on": cfg.select_on,
        "selected_on": meta.get("selected_on"),
        "selection_note": selection,
        "note": "; ".join(n for n in (job.method.note, f"recipe {recipe}", selection) if n),
        "seed": cfg.seed,
        "max_steps": cfg.max_steps,
        "eval_seconds": round(eval_seconds, 3),
        "device": device_description(device),
        "commit": git_commit(),
        **eval_settings(cfg, job.method, sha),
    }


def run_metadata(cfg: BenchConfig, preset: TablePreset, jobs: Sequence[Job], results: Sequence[dict[str, Any]], *,
                 preset_name: str, device: torch.device, started: str) -> dict[str, Any]:
    """The ``meta`` block of ``summary.json`` and ``report.md`` (its key order is the report's row order)."""
    root = Path(cfg.root)
    provenance = {f"{r['dataset']}/{r['protocol']}/{r['split']}/{r['method']}": r["checkpoint_provenance"]
                  for r in results if r.get("checkpoint_provenance")}
    return {
        "commit": git_commit(),
        "packages": package_versions(),
        "device": device_description(device),
        "preset": preset_name,
        "recipe": f"{cfg.recipe} ({RECIPE_NOTES[cfg.recipe]}; docs/FIDELITY.md)",
        "hop": (cfg.hop if cfg.hop is not None else
                f"{recipe_hop(cfg.recipe)} (the recipe's) unless a method has its own; tail zero-padded"),
        "pad_mode": cfg.pad_mode,
        "select_on": cfg.select_on + ("  (selected on the TEST split, as the official code did)"
                                      if cfg.select_on == "test" else ""),
        "selection": selection_by_split(root, preset, jobs, cfg.select_on),
        "data_notes": {s.key: note for s in preset.sections if (note := protocol_note(s))},
        "seeds": {"bench": cfg.seed, "train": cfg.seed},
        "max_steps": cfg.max_steps,
        "train_batch_size": cfg.train_batch_size,
        "checkpoints": {f"{r['dataset']}/{r['protocol']}/{r['split']}/{r['method']}": r.get("checkpoint_sha256")
                        for r in results},
        **({"checkpoint_provenance": provenance} if provenance else {}),
        "data_manifests": {s.key: data_manifest_hashes(root, s, [j.split for j in jobs if j.section is s])
                           for s in preset.sections if any(j.section is s for j in jobs)},
        "root": str(root),
        "command": " ".join(sys.argv),
        "started": started,
        "finished": utc_now(),
    }


RECIPE_NOTES = {
    "official": "the released code's APM, PHS and SCL forms, full-clip selection, hop 1008 with the tail zero-padded",
    "paper-text": "the paper's eq. 2, 3 and 7, full-clip selection, hop 1600 with the tail zero-padded",
}


def selection_by_split(root: Path, preset: TablePreset, jobs: Sequence[Job], select_on: str) -> dict[str, str]:
    """Per ``dataset/protocol/split`` of the run: which list selects the checkpoints, in words (a val list that is
    the test list, as on the paper's YouTube-360 sets with ``--val-from test``, is a selection on test)."""
    out = {}
    for job in jobs:
        name = f"{job.section.key}/{job.split}"
        if name in out or job.method.arch == "mono-mono":
            continue
        layout = DatasetLayout(root, job.section.dataset)
        lists = {part: (layout.read_split_keys(job.section.protocol, job.split, part)
                        if layout.split_list(job.section.protocol, job.split, part).is_file() else [])
                 for part in (select_on, "test")}
        out[name] = selection_note(select_on, lists[select_on], lists["test"])
    return out


def protocol_note(section: Section) -> str | None:
    """What a report must say of a section's split protocol: a split made here (not the paper's lists) or a
    validation list made here (dataset spec in ``manifests/``)."""
    try:
        proto = load_spec(dataset=section.dataset).protocol(section.protocol)
    except (SpecError, KeyError, ValueError):
        return None
    if proto.kind == "random-by-video":
        assert proto.fractions is not None
        share = "/".join(f"{round(100 * f)}" for f in proto.fractions)
        return (f"the toolkit's own seeded by-video {share} split (seed {proto.seed}); the paper's split lists are "
                "not published, so its test clips are not these")
    if proto.val_from == "train":
        return (f"no upstream val list: val is a seeded by-video {round(100 * proto.val_fraction)}% of the train "
                "list (ccs-data prepare --val-from test makes it the test list, as the paper did)")
    if proto.val_from == "test":
        return "no upstream val list: val is the test list, as in the paper (selection on test)"
    return None


def data_manifest_hashes(root: Path, section: Section, splits: Sequence[str]) -> dict[str, str]:
    """sha256 of what defines the evaluated data: the clips manifest, the split lists, the dataset spec (each
    named relative to the data root, or to the repository for the spec in ``manifests/``)."""
    layout = DatasetLayout(root, section.dataset)
    files = [layout.clips_manifest, MANIFEST_DIR / f"{section.dataset}.toml"]
    for split in splits:
        for part in ("train", "val", "test"):
            files.append(layout.split_list(section.protocol, split, part))
    return {_display_name(f, root): sha256_file(f) for f in files if f.is_file()}


def _display_name(path: Path, root: Path) -> str:
    base = root if path.is_relative_to(root) else MANIFEST_DIR.parent
    return path.relative_to(base).as_posix()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
