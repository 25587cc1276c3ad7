"""What each table of the paper measures: dataset, split protocol, splits, metric columns, methods.

The paper's own numbers live in ``paper_numbers.json`` (typed from the paper, every row of Tables 1-6);
:func:`paper_rows` reads them. Table presets here say what ``ccs-bench run --table N`` trains and evaluates;
the methods it can run are Mono-Mono, Mono2Binaural, CCStereo and the Table 5 ablation ladder (the other
rows of the paper are shown for reference only). A method may carry its own training recipe (``train``: Mono2Binaural
with 2.5D Visual Sound's optimiser and schedule where it is compared with the paper's Mono2Binaural row), its own
evaluation hop and tail, and a ``note`` that every report prints beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ccstereo.constants import M2B_HOP_SAMPLES
from ccstereo.metrics import METRIC_NAMES

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.json")
TABLE_IDS = ("1", "2", "3", "4", "5", "6", "synthetic", "synthetic-ablation")


@dataclass(frozen=True)
class MethodSpec:
    """One row this toolkit can produce.

    ``arch`` is the network (``ccstereo.config.ARCHS``); ``model`` holds ModelConfig overrides (the Table 5
    switches); ``tdss`` is the inference option; ``checkpoint_of`` names another row of the same section whose
    trained checkpoint this row reuses (TDSS is inference-only, the shuffled-frames row is the same network);
    ``shuffle_frames`` pairs each test clip with another clip's frames. ``train`` holds TrainConfig overrides
    (another paper's recipe), ``hop`` / ``tail`` the evaluation's (None: the run's), ``note`` what reports say of
    the row.
    """

    name: str
    arch: str
    model: dict[str, Any] = field(default_factory=dict)
    tdss: bool = True
    checkpoint_of: str | None = None
    shuffle_frames: bool = False
    train: dict[str, Any] = field(default_factory=dict)
    hop: int | None = None
    tail: str | None = None
    note: str = ""

    @property
    def trains(self) -> bool:
        return self.arch != "mono-mono" and self.checkpoint_of is None

    @property
    def slug(self) -> str:
        return slugify(self.name)


@dataclass(frozen=True)
class Section:
    """One dataset + protocol block of a table, with the splits it runs and the methods it compares."""

    dataset: str
    protocol: str
    splits: tuple[str, ...]
    methods: tuple[MethodSpec, ...]

    def method(self, name: str) -> MethodSpec:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(f"no method {name!r} in {self.dataset}/{self.protocol} (have: "
                       f"{', '.join(m.name for m in self.methods)})")

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.protocol}"


@dataclass(frozen=True)
class TablePreset:
    """A table: its sections, the training preset it defaults to, and the seeds every trained row is run with
    (several seeds: each seed is a run of its own and the report gives mean and spread over them)."""

    table: str
    title: str
    columns: tuple[str, ...]
    sections: tuple[Section, ...]
    default_preset: str = "paper"
    seeds: tuple[int, ...] = (0,)


def slugify(name: str) -> str:
    """File-name-safe form of a method name ("CCStereo, frames shuffled" -> "ccstereo-frames-shuffled")."""
    out = "".join(c.lower() if c.isalnum() else "-" for c in name.replace("+", "plus-"))
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


MONO_MONO = MethodSpec("Mono-Mono", "mono-mono", tdss=False)
_M2B_MODEL = {"loss": "mse", "avad": False, "scl_weight": 0.0}  # 2.5D Visual Sound: MSE only, full-frame resize
# 2.5D Visual Sound's own recipe (the one behind the paper's Mono2Binaural rows): Adam, batch 256, lr 1e-4 for the
# ResNet-18 and 1e-3 for the audio network, x0.94 every 10 epochs; evaluated every 0.05 s, last window at the end
M2B_TRAIN = {"batch_size": 256, "lr_visual": 1e-4, "lr_other": 1e-3, "lr_schedule": "step", "lr_step_epochs": 10,
             "lr_step_factor": 0.94, "val_tdss": False}
MONO2BINAURAL = MethodSpec(
    "Mono2Binaural", "mono2binaural", _M2B_MODEL, tdss=False, train=M2B_TRAIN, hop=M2B_HOP_SAMPLES, tail="end",
    note="2.5D Visual Sound's recipe: Adam, batch 256, lr 1e-4 visual / 1e-3 audio, x0.94 every 10 epochs, MSE; "
         "hop 800, last window end-aligned")
MONO2BINAURAL_CCS = MethodSpec(
    "Mono2Binaural", "mono2binaural", _M2B_MODEL, tdss=False, train={"val_tdss": False},
    note="the 2.5D architecture trained with this run's CCStereo recipe and preset (not 2.5D's own)")
CCSTEREO = MethodSpec("CCStereo", "ccstereo")
SHUFFLED = MethodSpec("CCStereo, frames shuffled across clips", "ccstereo", checkpoint_of="CCStereo",
                      shuffle_frames=True, note="the CCStereo checkpoint, each test clip paired with another's frames")
STANDARD = (MONO_MONO, MONO2BINAURAL, CCSTEREO)

# Table 5: each rung adds one component to the one above (Baseline: no AVAD (BN at up1), MSE only, no SCL, no TDSS)
_BASE = {"avad": False, "loss": "mse", "scl_weight": 0.0}
LADDER = (
    MethodSpec("Baseline", "ccstereo", dict(_BASE), tdss=False, train={"val_tdss": False}),
    MethodSpec("+TDSS", "ccstereo", dict(_BASE), tdss=True, checkpoint_of="Baseline"),
    MethodSpec("+AVAD", "ccstereo", {**_BASE, "avad": True}),
    MethodSpec("+REC", "ccstereo", {**_BASE, "avad": True, "loss": "rec"}),
    MethodSpec("+SCL", "ccstereo", {"avad": True, "loss": "rec", "scl_weight": 0.1}),
)

_ALL = METRIC_NAMES
_FIVE = ("STFT", "ENV", "Mag", "Phs", "SNR")
_FP10 = tuple(str(i) for i in range(1, 11))
_FP5 = tuple(str(i) for i in range(1, 6))

TABLES: dict[str, TablePreset] = {
    "1": TablePreset("1", "FAIR-Play (10 splits)", ("STFT", "ENV", "WAV", "SNR"),
                     (Section("fair-play", "10-split", _FP10, STANDARD),)),
    "2": TablePreset("2", "FAIR-Play (5 splits)", _FIVE, (Section("fair-play", "5-split", _FP5, STANDARD),)),
    "3": TablePreset("3", "MUSIC-Stereo", _FIVE, (Section("music-stereo", "80-10-10", ("1",), STANDARD),)),
    "4": TablePreset("4", "YT-MUSIC", _FIVE, (Section("yt-music", "official", ("1",), STANDARD),)),
    "5": TablePreset("5", "Ablation of the model components", _FIVE, (
        Section("fair-play", "5-split", ("2",), LADDER),
        Section("music-stereo", "80-10-10", ("1",), LADDER),
    )),
    "6": TablePreset("6", "YT-CLEAN", ("STFT", "ENV"), (Section("yt-clean", "official", ("1",), STANDARD),)),
    "synthetic": TablePreset(
        "synthetic", "Synthetic world (FAIR-Play-like set): does the model use the picture?", _ALL,
        (Section("fair-play", "5-split", ("1",), (MONO_MONO, MONO2BINAURAL_CCS, CCSTEREO, SHUFFLED)),),
        default_preset="cpu-small"),
    "synthetic-ablation": TablePreset(
        "synthetic-ablation", "Table 5's ladder on the synthetic world (FAIR-Play-like set), 3 seeds per rung", _FIVE,
        (Section("fair-play", "5-split", ("1",), (MONO_MONO, *LADDER)),), default_preset="cpu-small",
        seeds=(0, 1, 2)),
}


def get_table(table: str) -> TablePreset:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLE_IDS)})")
    return TABLES[table]


@lru_cache(maxsize=1)
def _paper() -> dict[str, Any]:
    return json.loads(PAPER_NUMBERS.read_text(encoding="utf-8"))


def paper_rows(table: str) -> list[dict[str, Any]]:
    """Every row of the paper's Table ``table`` (``[]`` for the synthetic tables, which the paper has not)."""
    tables = _paper()["tables"]
    return [dict(r) for r in tables[table]["rows"]] if table in tables else []


def paper_row(table: str, method: str, dataset: str) -> dict[str, Any] | None:
    """The paper's row for ``method`` on ``dataset`` in ``table``, or None when the paper has no such row."""
    for r in paper_rows(table):
        if r["method"] == method and r["dataset"] == dataset:
            return r
    return None
