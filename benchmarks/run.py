"""``ccs-bench run``: train (or load) each method per split, evaluate every test clip, write the reports.

Layout of ``OUT/table-<N>/``::

    splits/<dataset>-<protocol>-<split>/<method>.json|.csv   per-split results (JSON: everything; CSV: per clip)
    runs/<dataset>-<protocol>-<split>/<method>/              training runs (checkpoints, logs)
    plots/bars.png, plots/spectrogram-<...>.png               plots
    splits.csv, summary.json, report.md                       aggregate reports

A split whose result JSON exists (``status: done``) with the same evaluation settings is not redone on a rerun;
an interrupted training run resumes from its own ``last.pt`` (``ccs-train`` resumes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks import report
from benchmarks.tables import MethodSpec, Section, TablePreset, get_table
from ccstereo.constants import INFER_HOP_SAMPLES, SEGMENT_SAMPLES
from ccstereo.infer import JpegFrames, binauralize, window_starts
from ccstereo.metrics import METRIC_NAMES, PAD_MODES, compute_metrics_batch
from pipelines.contract import DatasetLayout
from pipelines.io import sha256_file

REPO = Path(__file__).resolve().parents[1]
METRIC_CHUNK = 4  # test clips scored together by the batched metrics (4 is fastest on CPU: cache)


@dataclass(frozen=True)
class BenchConfig:
    """One ``ccs-bench run``. Defaults are the paper's protocol (hop 0.1 s, zero padding, select on val)."""

    table: str
    root: str
    out: str
    splits: tuple[str, ...] | None = None  # None: the table's splits
    methods: tuple[str, ...] | None = None  # None: all the table's methods
    checkpoints: dict[str, str] = field(default_factory=dict)  # method -> path, "{split}" filled in
    preset: str | None = None  # None: the table's default ("paper"; "cpu-small" for the synthetic table)
    max_steps: int | None = None
    train_batch_size: int | None = None  # None: the preset's (paper 128, cpu-small 16)
    hop: int = INFER_HOP_SAMPLES
    pad_mode: str = "constant"
    select_on: str = "val"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 32  # windows per forward pass at inference
    dry_run: bool = False
    progress: bool = True
    spectrogram_examples: bool = True  # one Fig. 10 style plot per (section, method), first split, first clip

    def __post_init__(self) -> None:
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.select_on not in ("val", "test"):
            raise ValueError(f"select_on must be val or test, got {self.select_on!r}")
        if not 1 <= self.hop <= SEGMENT_SAMPLES:
            raise ValueError(f"hop must be between 1 and {SEGMENT_SAMPLES} samples, got {self.hop}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")


@dataclass(frozen=True)
class Job:
    """One (section, split, method) cell of a table."""

    section: Section
    split: str
    method: MethodSpec

    @property
    def split_dir(self) -> str:
        return f"{self.section.dataset}-{self.section.protocol}-{self.split}"


def plan(cfg: BenchConfig) -> tuple[TablePreset, list[Job]]:
    """The jobs of ``cfg`` in run order (per section, split, then method in table order; rows that reuse another
    row's checkpoint come after it)."""
    preset = get_table(cfg.table)
    known_methods = {m.name for s in preset.sections for m in s.methods}
    known_splits = {sp for s in preset.sections for sp in s.splits}
    bad = [m for m in cfg.methods or () if m not in known_methods]
    if bad:
        raise ValueError(f"table {cfg.table} has no method(s) {bad} (known: {sorted(known_methods)})")
    bad = [s for s in cfg.splits or () if s not in known_splits]
    if bad:
        raise ValueError(f"table {cfg.table} has no split(s) {bad} (known: {sorted(known_splits)})")
    jobs = [
        Job(section, split, spec)
        for section in preset.sections
        for split in section.splits
        if cfg.splits is None or split in cfg.splits
        for spec in section.methods
        if cfg.methods is None or spec.name in cfg.methods
    ]
    if not jobs:
        raise ValueError(f"nothing to run for table {cfg.table} with splits={cfg.splits} methods={cfg.methods}")
    return preset, jobs


# ------------------------------------------------------------------------------------------------ metadata


def git_commit(repo: Path = REPO) -> str:
    """``<sha>`` of the code that ran, ``+dirty`` when the tree had uncommitted changes, or ``unknown``."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("ccstereo-toolkit", "torch", "torchvision", "numpy", "scipy", "soundfile", "webdataset"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def data_manifest_hashes(root: Path, section: Section, splits: Sequence[str]) -> dict[str, str]:
    """sha256 of what defines the evaluated data: the clips manifest, the split lists, the dataset spec."""
    layout = DatasetLayout(root, section.dataset)
    files = [layout.clips_manifest, REPO / "manifests" / f"{section.dataset}.toml"]
    for split in splits:
        for part in ("train", "val", "test"):
            files.append(layout.split_list(section.protocol, split, part))
    out = {}
    for f in files:
        if f.is_file():
            try:
                name = f.relative_to(root).as_posix()
            except ValueError:
                name = f.relative_to(REPO).as_posix()
            out[name] = sha256_file(f)
    return out


# ------------------------------------------------------------------------------------------------- models


def _model_config(cfg: BenchConfig, spec: MethodSpec, preset_name: str):
    from ccstereo.config import preset as train_preset

    return train_preset(preset_name, {"arch": spec.arch, **spec.model}).model


def checkpoint_for(cfg: BenchConfig, job: Job, out_dir: Path, preset_name: str,
                   trained: dict[tuple[str, str, str], Path]) -> Path | None:
    """The checkpoint a job evaluates: given on the command line, reused from another row, or trained now."""
    spec = job.method
    if spec.arch == "mono-mono":
        return None
    owner = spec.checkpoint_of or spec.name
    given = cfg.checkpoints.get(owner)
    if given:
        path = Path(given.replace("{split}", job.split))
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint for {owner} split {job.split}: {path} does not exist")
        return path
    key = (job.section.key, job.split, owner)
    if key in trained:
        return trained[key]
    owner_spec = job.section.method(owner)
    run_dir = out_dir / "runs" / job.split_dir / owner_spec.slug
    path = train_method(cfg, job.section, job.split, owner_spec, run_dir, preset_name)
    trained[key] = path
    return path


def train_method(cfg: BenchConfig, section: Section, split: str, spec: MethodSpec, run_dir: Path,
                 preset_name: str) -> Path:
    """Train ``spec`` on one split with ``ccstereo.train`` (resumes an interrupted run); the selected checkpoint."""
    from ccstereo.config import preset as train_preset
    from ccstereo.train import train

    tcfg = train_preset(
        preset_name, {"arch": spec.arch, **spec.model}, root=cfg.root, dataset=section.dataset,
        protocol=section.protocol, split=split, out=str(run_dir), max_steps=cfg.max_steps, seed=cfg.seed,
        select_on=cfg.select_on, device=cfg.device, progress=cfg.progress, batch_size=cfg.train_batch_size,
    )
    meta_path = run_dir / "metadata.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("finished") and (run_dir / "best.pt").is_file():
            return run_dir / "best.pt"  # trained by an earlier run of this table
    result = train(tcfg, resume=(run_dir / "last.pt").is_file())
    return _selected_checkpoint(result, run_dir)


def _selected_checkpoint(result: Any, run_dir: Path) -> Path:
    """Adapter over what ``train`` returns: a path, an object with ``best``/``best_checkpoint``, or nothing
    (then ``best.pt`` in the run folder, falling back to ``last.pt``)."""
    candidates: list[Any] = []
    if isinstance(result, (str, Path)):
        candidates.append(result)
    elif isinstance(result, dict):
        candidates += [result.get(k) for k in ("best", "best_checkpoint", "checkpoint", "last")]
    elif result is not None:
        candidates += [getattr(result, k, None) for k in ("best", "best_checkpoint", "checkpoint", "last")]
    candidates += [run_dir / "best.pt", run_dir / "last.pt"]
    for c in candidates:
        if c is not None and Path(c).is_file():
            return Path(c)
    raise FileNotFoundError(f"training in {run_dir} produced no checkpoint")


def load_checkpoint(path: Path, device: torch.device) -> tuple[torch.nn.Module, Any]:
    from ccstereo.checkpoint import load_model
    from ccstereo.infer import _load

    model, model_cfg = _load(load_model, path, str(device))
    return model.to(device).eval(), model_cfg


# ------------------------------------------------------------------------------------------------ evaluate


def evaluate_split(
    root: Path,
    section: Section,
    split: str,
    spec: MethodSpec,
    model: torch.nn.Module | None,
    model_cfg: Any,
    *,
    hop: int,
    pad_mode: str,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
    example: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
) -> list[dict[str, Any]]:
    """Per-clip metrics of ``spec`` on every test clip of one split (sorted by key).

    ``model=None`` is Mono-Mono (L = R = mono / 2). With ``spec.shuffle_frames`` each clip is paired with the
    frames of the next test clip in key order (the last with the first): same network, wrong picture.
    """
    from pipelines.shards import iter_clips, list_shards, read_split_keys

    keys = read_split_keys(root, section.dataset, section.protocol, split, "test")
    if not keys:
        raise ValueError(f"{section.key} split {split}: the test list is empty")
    if spec.shuffle_frames and len(keys) < 2:
        raise ValueError(f"{section.key} split {split}: shuffling frames across clips needs >= 2 test clips")
    shards = list_shards(root, section.dataset)

    clips = iter_clips(shards, keys)
    pairs = _shuffled_pairs(clips) if spec.shuffle_frames else ((c, c.frames) for c in clips)
    rows: list[dict[str, Any]] = []
    buf_keys: list[str] = []
    buf_pred: list[np.ndarray] = []
    buf_true: list[np.ndarray] = []

    def flush() -> None:
        if not buf_keys:
            return
        m = compute_metrics_batch(np.stack(buf_pred), np.stack(buf_true), pad_mode=pad_mode, chunk=METRIC_CHUNK)
        for i, k in enumerate(buf_keys):
            rows.append({"key": k, **{name: float(m[name][i]) for name in METRIC_NAMES}})
        buf_keys.clear()
        buf_pred.clear()
        buf_true.clear()

    seen = set()
    bar = tqdm(pairs, total=len(keys), desc=f"eval {spec.name} {section.dataset} split {split}", unit="clip",
               disable=not progress, leave=False)
    for clip, frames in bar:
        seen.add(clip.key)
        mono = clip.audio[0] + clip.audio[1]
        if model is None:
            pred = np.stack([mono / 2, mono / 2]).astype(np.float32)
        else:
            pred = binauralize(mono, JpegFrames(frames), model, model_cfg, hop=hop, tdss=spec.tdss,
                               batch_size=batch_size, device=device)
        if example is not None and not rows and not buf_keys:
            example(clip.key, pred, clip.audio)
        buf_keys.append(clip.key)
        buf_pred.append(pred)
        buf_true.append(clip.audio)
        if len(buf_keys) >= METRIC_CHUNK:
            flush()
    flush()
    missing = sorted(set(keys) - seen)
    if missing:
        raise ValueError(f"{section.key} split {split}: {len(missing)} test clip(s) not found in the shards, "
                         f"e.g. {missing[:3]}")
    return sorted(rows, key=lambda r: r["key"])


def _shuffled_pairs(clips):
    """(clip i, frames of clip i + 1), ..., (last clip, frames of the first): a cyclic shift, never a clip's own."""
    first = prev = None
    for clip in clips:
        if prev is None:
            first = clip
        else:
            yield prev, clip.frames
        prev = clip
    if prev is not None and first is not None and prev is not first:
        yield prev, first.frames


# ---------------------------------------------------------------------------------------------------- run


def _eval_settings(cfg: BenchConfig, spec: MethodSpec, checkpoint_sha: str | None) -> dict[str, Any]:
    return {"hop": cfg.hop, "pad_mode": cfg.pad_mode, "tdss": spec.tdss, "shuffle_frames": spec.shuffle_frames,
            "checkpoint_sha256": checkpoint_sha}


def _finished(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("status") == "done" else None


def run_table(cfg: BenchConfig) -> dict[str, Any]:
    """Run (or resume) a table; returns the summary (see :mod:`benchmarks.report`). ``dry_run``: the plan."""
    preset, jobs = plan(cfg)
    preset_name = cfg.preset or preset.default_preset
    out_dir = Path(cfg.out) / f"table-{preset.table}"
    if cfg.dry_run:
        return dry_run(cfg, preset, jobs, preset_name)
    root = Path(cfg.root)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    started = _now()
    trained: dict[tuple[str, str, str], Path] = {}
    results: list[dict[str, Any]] = []
    examples_done: set[tuple[str, str]] = set()
    for job in jobs:
        split_json = out_dir / "splits" / job.split_dir / f"{job.method.slug}.json"
        prior = _finished(split_json)
        # a finished split is kept unless it was evaluated with other settings (hop, padding, checkpoint...)
        if prior is not None and _prior_matches(prior, cfg, job, out_dir):
            results.append(prior)
            _log(cfg, f"skip {job.split_dir} {job.method.name}: finished ({split_json})")
            continue
        ckpt = checkpoint_for(cfg, job, out_dir, preset_name, trained)
        sha = sha256_file(ckpt) if ckpt else None
        model, model_cfg = (None, None) if ckpt is None else load_checkpoint(ckpt, device)
        example = None
        ex_key = (job.section.key, job.method.name)
        if cfg.spectrogram_examples and ex_key not in examples_done:
            examples_done.add(ex_key)
            plot_path = out_dir / "plots" / f"spectrogram-{job.split_dir}-{job.method.slug}.png"

            def example(key, pred, true, _p=plot_path, _m=job.method.name):
                report.plot_spectrograms(pred, true, f"{_m}: {key} (difference L - R)", _p)

        t0 = time.perf_counter()
        clips = evaluate_split(root, job.section, job.split, job.method, model, model_cfg, hop=cfg.hop,
                               pad_mode=cfg.pad_mode, batch_size=cfg.batch_size, device=device,
                               progress=cfg.progress, example=example)
        result = {
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
            "metrics": {k: float(np.mean([c[k] for c in clips])) for k in METRIC_NAMES},
            "clips": clips,
            "checkpoint": str(ckpt) if ckpt else None,
            "model_config": _cfg_dict(model_cfg),
            "preset": preset_name,
            "select_on": cfg.select_on,
            "seed": cfg.seed,
            "max_steps": cfg.max_steps,
            "eval_seconds": round(time.perf_counter() - t0, 3),
            "device": device_description(device),
            "commit": git_commit(),
            **_eval_settings(cfg, job.method, sha),
        }
        report.write_split_files(out_dir / "splits", result)
        results.append(result)
        _log(cfg, f"done {job.split_dir} {job.method.name}: STFT {result['metrics']['STFT']:.4f} "
                  f"({len(clips)} clips)")
    meta = {
        "commit": git_commit(),
        "packages": package_versions(),
        "device": device_description(device),
        "preset": preset_name,
        "hop": cfg.hop,
        "pad_mode": cfg.pad_mode,
        "select_on": cfg.select_on + ("  (selected on the TEST split, as the official code did)"
                                      if cfg.select_on == "test" else ""),
        "seeds": {"bench": cfg.seed, "train": cfg.seed},
        "max_steps": cfg.max_steps,
        "train_batch_size": cfg.train_batch_size,
        "checkpoints": {f"{r['dataset']}/{r['protocol']}/{r['split']}/{r['method']}": r.get("checkpoint_sha256")
                        for r in results},
        "data_manifests": {s.key: data_manifest_hashes(root, s, [j.split for j in jobs if j.section is s])
                           for s in preset.sections if any(j.section is s for j in jobs)},
        "root": str(root),
        "command": " ".join(sys.argv),
        "started": started,
        "finished": _now(),
    }
    return report.write_reports(out_dir, preset, results, meta)


def _prior_matches(prior: dict[str, Any], cfg: BenchConfig, job: Job, out_dir: Path) -> bool:
    """A finished result still stands when its settings and its checkpoint (given, or trained here) are unchanged."""
    owner = job.method.checkpoint_of or job.method.name
    if cfg.checkpoints.get(owner):
        current: Path | None = Path(cfg.checkpoints[owner].replace("{split}", job.split))
        if not current.is_file():
            return False
    elif job.method.arch == "mono-mono":
        current = None
    else:
        current = out_dir / "runs" / job.split_dir / job.section.method(owner).slug / "best.pt"
        if not current.is_file():
            current = None  # trained elsewhere or removed since: keep the result, its hash is in the record
    if current is not None and prior.get("checkpoint_sha256") != sha256_file(current):
        return False
    want = _eval_settings(cfg, job.method, prior.get("checkpoint_sha256"))
    return all(prior.get(k) == v for k, v in want.items())


def _cfg_dict(model_cfg: Any) -> Any:
    if model_cfg is None:
        return None
    if hasattr(model_cfg, "to_dict"):
        return model_cfg.to_dict()
    if dataclasses.is_dataclass(model_cfg):
        return dataclasses.asdict(model_cfg)
    return model_cfg if isinstance(model_cfg, dict) else repr(model_cfg)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log(cfg: BenchConfig, msg: str) -> None:
    if cfg.progress:
        tqdm.write(msg, file=sys.stderr)


# ------------------------------------------------------------------------------------------------ dry run


def measure_step_seconds(model_cfg: Any, batch_size: int, device: torch.device, repeats: int = 2
                         ) -> tuple[float, float]:
    """(seconds per training step at ``batch_size``, seconds per inference window) measured on random input.

    The step is forward + MSE + backward + Adam on the real network; data loading and the SCL/REC extra
    passes are not included, so the estimate is a lower bound.
    """
    from ccstereo.constants import N_FREQ, N_SEGMENT_FRAMES
    from ccstereo.model import build_model

    model = build_model(model_cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return 0.0, 0.0
    opt = torch.optim.Adam(params, lr=1e-4)
    spec = torch.randn(batch_size, 2, N_FREQ, N_SEGMENT_FRAMES, device=device)
    img = torch.randn(batch_size, 3, *model_cfg.crop, device=device)
    times = []
    model.train()
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(spec, img), spec)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        model(spec, img)
        if device.type == "cuda":
            torch.cuda.synchronize()
        window = (time.perf_counter() - t0) / batch_size
    return float(np.median(times)), window


def dry_run(cfg: BenchConfig, preset: TablePreset, jobs: list[Job], preset_name: str) -> dict[str, Any]:
    """What ``run`` would do and an estimate of its compute, from a step time measured here and now."""
    from ccstereo.config import preset as train_preset

    device = resolve_device(cfg.device)
    root = Path(cfg.root)
    measured: dict[str, tuple[float, float]] = {}
    lines, total, unknown = [], 0.0, 0
    out_dir = Path(cfg.out) / f"table-{preset.table}"
    for job in jobs:
        spec = job.method
        tcfg = train_preset(preset_name, {"arch": spec.arch, **spec.model}, max_steps=cfg.max_steps,
                            batch_size=cfg.train_batch_size)
        n_train = _count_keys(root, job.section, job.split, "train")
        n_test = _count_keys(root, job.section, job.split, "test")
        done = _finished(out_dir / "splits" / job.split_dir / f"{spec.slug}.json") is not None
        if spec.arch == "mono-mono":
            action, steps = "no training (diff = 0)", 0
        elif cfg.checkpoints.get(spec.checkpoint_of or spec.name):
            action, steps = f"load {cfg.checkpoints[spec.checkpoint_of or spec.name]}", 0
        elif spec.checkpoint_of:
            action, steps = f"reuse the {spec.checkpoint_of} checkpoint", 0
        else:
            if cfg.max_steps:
                steps = cfg.max_steps
            elif n_train is not None:
                steps = -(-tcfg.epochs * n_train // tcfg.batch_size)
            else:
                steps = None
            action = f"train {steps if steps is not None else '?'} steps (batch {tcfg.batch_size})"
        key = json.dumps(tcfg.model.to_dict(), sort_keys=True) + str(tcfg.batch_size)
        if spec.arch != "mono-mono" and key not in measured:
            measured[key] = measure_step_seconds(tcfg.model, tcfg.batch_size, device, repeats=1)
        step_s, window_s = measured.get(key, (0.0, 0.0))
        windows = len(window_starts(160_000, cfg.hop, SEGMENT_SAMPLES)) * (n_test or 0)
        # unknown without the split lists (data not sharded yet): say so rather than estimate zero
        est = None if steps is None or n_test is None else steps * step_s + windows * window_s
        if not done:
            if est is None:
                unknown += 1
            else:
                total += est
        lines.append({
            "dataset": job.section.dataset, "protocol": job.section.protocol, "split": job.split,
            "method": spec.name, "action": "skip (finished)" if done else action, "train_clips": n_train,
            "test_clips": n_test, "step_seconds": round(step_s, 4),
            "estimated_seconds": None if est is None else round(est, 1),
        })
    return {"table": preset.table, "preset": preset_name, "device": device_description(device),
            "jobs": lines, "estimated_seconds": round(total, 1), "jobs_without_estimate": unknown,
            "note": "estimate = steps x measured training step (network only, no data loading) + test windows x "
                    "measured inference time per window"}


def _count_keys(root: Path, section: Section, split: str, part: str) -> int | None:
    path = DatasetLayout(root, section.dataset).split_list(section.protocol, split, part)
    if not path.is_file():
        return None
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def parse_checkpoint_args(items: Sequence[str]) -> dict[str, str]:
    """``METHOD=PATH`` pairs (PATH may contain ``{split}``) -> dict; errors name the bad item."""
    out = {}
    for item in items:
        m = re.match(r"^([^=]+)=(.+)$", item)
        if not m:
            raise ValueError(f"--checkpoints takes METHOD=PATH, got {item!r}")
        out[m.group(1).strip()] = m.group(2).strip()
    return out
