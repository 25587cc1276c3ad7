"""``ccs-data doctor``: one screen of what a real run needs from this machine, each missing piece with its fix.

Every check is a small function (:mod:`pipelines.doctor_checks`) returning a :class:`Check`: its status (``ok``,
``warn``: works but may fail, ``missing``), what it found, and how to fix it. A *target* says which checks one command
needs (``--for fetch DATASET``, ``--for prepare DATASET``, ``--for bench TABLE``); only those decide the exit status,
the others are shown as not needed. Without a target every check counts.

``fetch`` and ``prepare`` are defined here. Other layers add targets through the ``ccstereo.doctor`` entry-point group
(a callable ``(argument, TargetOptions) -> Target``): ``bench`` is ``benchmarks.doctor.bench_target``, since tables
and presets live above this package and it may not import them.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from pipelines import doctor_checks as checks
from pipelines.contract import DatasetLayout
from pipelines.doctor_checks import GB, Check
from pipelines.errors import InputError
from pipelines.recipes import DATASETS, recipe_for
from pipelines.spec import load_spec

ENTRY_POINT_GROUP = "ccstereo.doctor"
CHECK_NAMES = ("ffmpeg", "v360", "opus", "yt-dlp", "js-runtime", "cookies", "torch", "cuda", "weights",
               "writable", "disk")

# Rough disk footprint of each dataset, (fetch, prepare + shard) in GB, for the free-space check; the doctor prints
# them as estimates. prepare + shard: the paper's clip counts (SPEC 3; YT-CLEAN's at YT-MUSIC's mean video length)
# x 7 MB a clip (about 3.5 MB in a shard, SPEC 6, and as much again in prepared/<id>.tar), plus 2.5 MB a clip for
# the 4-channel track the YouTube-360 sets keep. fetch: FAIR-Play's archives (about 106 GB of videos and 3 GB of
# audio) stay beside their extracted members; YouTube media over the listed videos at the kept videos' mean length,
# at about 1.5 GB an hour for MUSIC's best video and 6 GB an hour for 4K 360 video with ambiX audio.
FOOTPRINT_GB: dict[str, tuple[float, float]] = {
    "music-stereo": (1313 * 194 / 3600 * 1.5, 20_351 * 7.0e-3),  # 1,313 listed videos, 194 s each
    "yt-music": (397 * 292 / 3600 * 6.0, 11_590 * 9.5e-3),  # 397 videos, 292 s each
    "yt-clean": (496 * 292 / 3600 * 6.0, 496 * 29 * 9.5e-3),  # 496 videos, 29 clips each as YT-MUSIC
    "fair-play": (2 * 109.0, 1_871 * 7.0e-3),
}
FOOTPRINT_BASIS = "rough estimate from the paper's clip counts (pipelines/doctor.py: FOOTPRINT_GB)"


@dataclass(frozen=True)
class TargetOptions:
    """What the command line says about the run a target checks for."""

    root: Path
    out: Path | None = None  # where results go (bench: ccs-bench run --out); None: the root
    preset: str | None = None  # bench: the training preset (None: the table's)


@dataclass(frozen=True)
class Target:
    """What one command needs: the checks that must pass, its own extra checks, and free space at a folder."""

    command: str  # the command, as the user would type it
    needs: tuple[str, ...]  # names from CHECK_NAMES
    extra: tuple[Check, ...] = ()  # the target's own checks (all needed)
    disk_bytes: int = 0  # free space it needs in ``folder``, net of what it has written there before
    disk_basis: str = ""  # how disk_bytes was estimated
    folder: Path | None = None  # the folder it writes to (None: the root)
    folder_option: str = "--root"  # the option of the command that names that folder


@dataclass(frozen=True)
class Report:
    target: Target | None
    checks: tuple[tuple[Check, bool], ...]  # (check, needed by the target)

    @property
    def missing(self) -> list[Check]:
        return [c for c, needed in self.checks if needed and c.status == "missing"]

    @property
    def ready(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class Environment:
    """What the checks look at, resolved once (tests point it elsewhere)."""

    ffmpeg: str | None = None  # None: pipelines.ffmpeg.ffmpeg_exe()
    today: dt.date = field(default_factory=dt.date.today)
    cookies: Path | None = None


# ------------------------------------------------------------------------------------------------ targets


def bytes_under(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (0 when it does not exist)."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed while walking
                pass
    return total


def _dataset(arg: str) -> str:
    if arg not in DATASETS:
        raise InputError(f"unknown dataset {arg!r} (known: {', '.join(DATASETS)})")
    return arg


def fetch_target(arg: str, options: TargetOptions) -> Target:
    """``ccs-data fetch DATASET``: ffmpeg (probing), yt-dlp with a JavaScript runtime and cookies for YouTube,
    the fetch share of the dataset's footprint, a writable root."""
    dataset = _dataset(arg)
    spec = load_spec(None, dataset=dataset)
    layout = DatasetLayout(options.root, dataset)
    have = bytes_under(layout.archives_dir) + bytes_under(layout.media_dir)
    need = max(0, int(FOOTPRINT_GB[dataset][0] * GB) - have)
    needs = ("ffmpeg", "writable", "disk")
    needs += ("yt-dlp", "js-runtime", "cookies") if spec.source == "youtube" else ()
    return Target(f"ccs-data fetch {dataset} --root {options.root}", needs, disk_bytes=need,
                  disk_basis=f"{dataset} fetch: {FOOTPRINT_GB[dataset][0]:.0f} GB, {have / GB:.1f} GB of it on disk "
                             f"already; prepare + shard will need {FOOTPRINT_GB[dataset][1]:.0f} GB more; "
                             f"{FOOTPRINT_BASIS}")


def prepare_target(arg: str, options: TargetOptions) -> Target:
    """``ccs-data prepare DATASET`` (and shard): ffmpeg with v360 for 360 video and an opus decoder for ambiX
    audio, the prepare + shard share of the footprint, a writable root."""
    dataset = _dataset(arg)
    spec = load_spec(None, dataset=dataset)
    layout = DatasetLayout(options.root, dataset)
    have = bytes_under(layout.prepared_dir) + bytes_under(layout.shards_dir)
    need = max(0, int(FOOTPRINT_GB[dataset][1] * GB) - have)
    needs = ("ffmpeg", "writable", "disk")
    needs += ("v360",) if recipe_for(dataset).has_360_video else ()
    needs += ("opus",) if spec.audio == "ambix" else ()
    return Target(f"ccs-data prepare {dataset} --root {options.root}", needs, disk_bytes=need,
                  disk_basis=f"{dataset} prepare + shard: {FOOTPRINT_GB[dataset][1]:.0f} GB, {have / GB:.1f} GB "
                             f"of it on disk already; {FOOTPRINT_BASIS}")


BUILTIN_TARGETS: dict[str, Callable[[str, TargetOptions], Target]] = {"fetch": fetch_target,
                                                                      "prepare": prepare_target}


def target_kinds() -> dict[str, Callable[[str, TargetOptions], Target]]:
    """The built-in targets and those registered in the ``ccstereo.doctor`` entry-point group."""
    kinds = dict(BUILTIN_TARGETS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        kinds.setdefault(ep.name, ep.load())
    return kinds


def resolve_target(kind: str, arg: str, options: TargetOptions) -> Target:
    kinds = target_kinds()
    if kind not in kinds:
        raise InputError(f"--for {kind}: unknown command (known: {', '.join(sorted(kinds))})")
    return kinds[kind](arg, options)


# ------------------------------------------------------------------------------------------------ running


def run_checks(options: TargetOptions, target: Target | None, env: Environment) -> Report:
    """Every check, each marked needed (by ``target``; all of them without one)."""
    exe = env.ffmpeg
    if exe is None:
        from pipelines.ffmpeg import ffmpeg_exe

        try:
            exe = ffmpeg_exe()
        except RuntimeError:
            exe = "ffmpeg"  # reported as missing by the checks
    folder = options.root if target is None or target.folder is None else target.folder
    option = "--root" if target is None else target.folder_option
    found = {
        "ffmpeg": checks.check_ffmpeg(exe),
        "v360": checks.check_v360(exe),
        "opus": checks.check_opus(exe),
        "yt-dlp": checks.check_ytdlp(env.today),
        "js-runtime": checks.check_js_runtime(),
        "cookies": checks.check_cookies(env.cookies),
        "torch": checks.check_torch(),
        "cuda": checks.check_cuda(),
        "weights": checks.check_weights(),
        "writable": checks.check_writable(folder, option),
        "disk": checks.check_disk(folder, 0 if target is None else target.disk_bytes,
                                  "" if target is None else target.disk_basis, option),
    }
    rows = [(found[name], target is None or name in target.needs) for name in CHECK_NAMES]
    rows += [(c, True) for c in (() if target is None else target.extra)]
    return Report(target, tuple(rows))


def render(report: Report) -> list[str]:
    """The report as lines: one per check (needed ones first), a fix under each needed one that is not ok, a
    verdict."""
    what = report.target.command if report.target else "a real run (every check counts)"
    lines = [f"ccs-data doctor: what `{what}` needs"]
    ordered = [r for r in report.checks if r[1]] + [r for r in report.checks if not r[1]]
    for check, needed in ordered:
        mark = {"ok": "ok", "warn": "WARN", "missing": "MISSING"}[check.status] if needed else "-"
        note = "" if needed else "(not needed) "
        lines.append(f"  {mark:<8} {check.name:<11} {note}{check.detail}")
        if needed and check.status != "ok" and check.fix:
            lines.append(f"  {'':<8} {'':<11} fix: {check.fix}")
    missing = report.missing
    if missing:
        lines.append(f"{len(missing)} needed piece(s) missing: {', '.join(c.name for c in missing)}; fix them and "
                     "run the doctor again")
    else:
        lines.append("everything needed is here")
    return lines
