"""What one ``ccs-bench run`` does: its settings (:class:`BenchConfig`) and its (section, split, method) jobs.

Layout of ``OUT/table-<N>/`` (the table folder)::

    splits/<dataset>-<protocol>-<split>/<method>.json|.csv   per-split results (JSON: everything; CSV: per clip)
    runs/<dataset>-<protocol>-<split>/<method>/              training runs (checkpoints, logs)
    plots/bars.png, plots/spectrogram-<...>.png               plots
    splits.csv, summary.json, report.md                       aggregate reports
    report.html, listen/                                      listening report and its media (opens from file://)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.tables import MethodSpec, Section, TablePreset, get_table
from ccstereo.config import check_recipe, recipe_hop
from ccstereo.constants import SEGMENT_SAMPLES
from ccstereo.metrics import PAD_MODES


@dataclass(frozen=True)
class BenchConfig:
    """One ``ccs-bench run``. Defaults: the official recipe (the released code's losses, selection and hop 1,008
    with the tail zero-padded), zero-padded metrics, selection on val."""

    table: str
    root: str
    out: str
    splits: tuple[str, ...] | None = None  # None: the table's splits
    methods: tuple[str, ...] | None = None  # None: all the table's methods
    checkpoints: dict[str, str] = field(default_factory=dict)  # method -> path, "{split}" filled in
    preset: str | None = None  # None: the table's default ("paper"; "cpu-small" for the synthetic table)
    max_steps: int | None = None
    train_batch_size: int | None = None  # None: the preset's (paper 128, cpu-small 16)
    visual_init: str | None = None  # None: the preset's (paper: imagenet, cpu-small: random); else random or a path
    recipe: str = "official"  # ccstereo.config.RECIPES: training losses and evaluation hop
    hop: int | None = None  # None: each method's own hop, else the recipe's (recipe_hop); a value applies to all
    pad_mode: str = "constant"
    select_on: str = "val"
    seed: int = 0
    seeds: tuple[int, ...] | None = None  # None: the table's seeds (TablePreset.seeds); else these
    device: str = "auto"
    batch_size: int = 32  # windows per forward pass at inference
    dry_run: bool = False
    progress: bool = True
    spectrogram_examples: bool = True  # one Fig. 10 style plot per (section, method), first split, first clip
    truth: str | None = None  # the synthetic world's truth.jsonl: adds the localisation error (LOC)
    listening_report: bool = True  # report.html with chosen clips to listen to (benchmarks.html_report)

    def __post_init__(self) -> None:
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.select_on not in ("val", "test"):
            raise ValueError(f"select_on must be val or test, got {self.select_on!r}")
        check_recipe(self.recipe)
        if self.hop is not None and not 1 <= self.hop <= SEGMENT_SAMPLES:
            raise ValueError(f"hop must be between 1 and {SEGMENT_SAMPLES} samples, got {self.hop}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.truth is not None and not Path(self.truth).is_file():
            raise ValueError(f"truth file {self.truth} does not exist (the synthetic world's truth.jsonl)")

    def table_dir(self, table: str) -> Path:
        """``OUT/table-<N>/``, where everything of table ``table`` goes."""
        return Path(self.out) / f"table-{table}"

    def eval_hop(self, spec: MethodSpec) -> int:
        """The hop ``spec`` is evaluated with: ``--hop`` when given, else the method's own, else the recipe's."""
        return self.hop if self.hop is not None else spec.hop if spec.hop is not None else recipe_hop(self.recipe)

    def given_checkpoint(self, method: str, split: str) -> Path | None:
        """The checkpoint ``--checkpoints`` names for ``method`` on ``split``, or None (then it is trained)."""
        given = self.checkpoints.get(method)
        return Path(given.replace("{split}", split)) if given else None


@dataclass(frozen=True)
class Job:
    """One (section, split, method) cell of a table."""

    section: Section
    split: str
    method: MethodSpec

    @property
    def split_dir(self) -> str:
        return f"{self.section.dataset}-{self.section.protocol}-{self.split}"

    @property
    def owner(self) -> MethodSpec:
        """The row whose checkpoint this job evaluates: itself, or the row it reuses (``checkpoint_of``)."""
        return self.section.method(self.method.checkpoint_of) if self.method.checkpoint_of else self.method

    def result_json(self, table_dir: Path) -> Path:
        """Where this job's result record goes (see :mod:`benchmarks.records`)."""
        return table_dir / "splits" / self.split_dir / f"{self.method.slug}.json"

    def run_dir(self, table_dir: Path) -> Path:
        """The training run of this job's checkpoint owner on this split."""
        return table_dir / "runs" / self.split_dir / self.owner.slug


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


def parse_checkpoint_args(items: Sequence[str]) -> dict[str, str]:
    """``METHOD=PATH`` pairs (PATH may contain ``{split}``) -> dict; errors name the bad item."""
    out = {}
    for item in items:
        m = re.match(r"^([^=]+)=(.+)$", item)
        if not m:
            raise ValueError(f"--checkpoints takes METHOD=PATH, got {item!r}")
        out[m.group(1).strip()] = m.group(2).strip()
    return out
