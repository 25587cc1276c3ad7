"""Which checkpoint a job evaluates: one named on the command line, one trained earlier in this run (rows that
reuse another row's network), or one trained now with ``ccstereo.train`` (an interrupted run resumes)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.plan import BenchConfig, Job
from ccstereo.blocks import resnet18_weights_path
from ccstereo.config import TrainConfig, preset as train_preset
from ccstereo.train import train

# (section key, split, owner method name) -> the checkpoint trained for it in this run
Trained = dict[tuple[str, str, str], Path]


def checkpoint_for(cfg: BenchConfig, job: Job, table_dir: Path, preset_name: str, trained: Trained) -> Path | None:
    """The checkpoint ``job`` evaluates (None for Mono-Mono, which has no network); trains it when needed."""
    if job.method.arch == "mono-mono":
        return None
    owner = job.owner
    given = cfg.given_checkpoint(owner.name, job.split)
    if given is not None:
        if not given.is_file():
            raise FileNotFoundError(f"checkpoint for {owner.name} split {job.split}: {given} does not exist")
        return given
    key = (job.section.key, job.split, owner.name)
    if key not in trained:
        trained[key] = train_method(cfg, job, job.run_dir(table_dir), preset_name)
    return trained[key]


def train_config(cfg: BenchConfig, job: Job, run_dir: Path, preset_name: str) -> TrainConfig:
    """The training run of the job's checkpoint owner: the preset, then the method's own recipe (``train``), then
    what the command line sets (recipe, steps, batch, seed, selection list)."""
    spec, section = job.owner, job.section
    given = {"max_steps": cfg.max_steps, "batch_size": cfg.train_batch_size}
    visual = {"visual_init": cfg.visual_init} if cfg.visual_init else {}
    return train_preset(
        preset_name, {"arch": spec.arch, **spec.model, **visual},
        **{**spec.train, **{k: v for k, v in given.items() if v is not None}},
        root=cfg.root, dataset=section.dataset, protocol=section.protocol, split=job.split, out=str(run_dir),
        recipe=cfg.recipe, seed=cfg.seed, select_on=cfg.select_on, device=cfg.device, progress=cfg.progress,
    )


def train_method(cfg: BenchConfig, job: Job, run_dir: Path, preset_name: str) -> Path:
    """Train the job's checkpoint owner on its split into ``run_dir``; the selected checkpoint (``best.pt``, or
    ``last.pt`` when the run never validated)."""
    tcfg = train_config(cfg, job, run_dir, preset_name)
    if trained_earlier(run_dir):
        return run_dir / "best.pt"
    result = train(tcfg, resume=(run_dir / "last.pt").is_file())
    return result.best if result.best is not None else result.last


def trained_earlier(run_dir: Path) -> bool:
    """The training run in ``run_dir`` finished (an earlier run of this table trained it): its best.pt is reused."""
    meta_path = run_dir / "metadata.json"
    if not meta_path.is_file() or not (run_dir / "best.pt").is_file():
        return False
    return bool(json.loads(meta_path.read_text(encoding="utf-8")).get("finished"))


def runs_to_train(cfg: BenchConfig, jobs: list[Job], table_dir: Path) -> list[Job]:
    """The jobs whose network this run trains: not Mono-Mono, not another row's network, not given with
    ``--checkpoints``, not finished by an earlier run."""
    return [j for j in jobs if j.method.arch != "mono-mono" and j.method.checkpoint_of is None
            and cfg.given_checkpoint(j.method.name, j.split) is None and not trained_earlier(j.run_dir(table_dir))]


def require_visual_init(cfg: BenchConfig, jobs: list[Job], table_dir: Path, preset_name: str) -> None:
    """Fail before anything runs when a network still to train starts from weights that are not there (the
    missing-weights error names ``--visual-init`` and ``ccs-data fetch-weights``)."""
    for job in runs_to_train(cfg, jobs, table_dir):
        init = train_config(cfg, job, job.run_dir(table_dir), preset_name).model.visual_init
        if init != "random":
            resnet18_weights_path(init)
