"""``ccs-bench faults``: the fault campaign (issue 10). Does every stage survive being killed at any moment?

    ccs-bench faults --work DIR [--trials 120] [--seed 0] [--stages fetch,prepare,shard,train,server,upstream]

On the tiny synthetic world served on loopback by a ``ccs-data serve`` process, each trial runs one command as a
user would, interrupts it at a seeded random moment (a fraction of the uninterrupted run's time), runs the same
command again until it succeeds, and compares the result with an uninterrupted run:

* ``fetch`` / ``prepare`` / ``shard``: SIGKILL to the command alone, or SIGINT to its process group (Ctrl-C);
  ``--jobs`` 1 or 2, fetch with or without ``--rate-limit``; the FAIR-Play-like set with unpinned archives, as the
  real manifest has them;
* ``train``: ``ccs-train`` on a small fake dataset, 0 or 2 loader workers, killed and continued with ``--resume``
  (or started again when it died before its first checkpoint);
* ``server``: the server process is killed while fetch downloads, and started again before the rerun;
* ``upstream``: fetch is killed mid-download and the served archives are replaced by other bytes of the same
  content before the rerun (an upstream file changed between runs).

Figures: trials; identical (the dataset folder byte for byte as after the uninterrupted run; train: the same
weights and optimiser state); videos lost (done in the uninterrupted run, not done after the rerun); ledger
records missing (an item the uninterrupted run's ledgers record and the rerun's do not); temp files left
(temporary files, partial downloads, rejected archives after the rerun); tracebacks seen (in the stderr of
either run); SIGINT runs that did not end with the one ``interrupted`` line and status 130 (a signal that came
after the command had done its work, status 0 and no line, is counted apart: ``sigint_after_the_work``); workers
that outlived a killed parent. The goal is 0 for all but the first two and ``sigint_after_the_work``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.fault_runs import (
    CCS_DATA,
    CCS_TRAIN,
    Run,
    ServerProcess,
    interrupt_outcome,
    ledger_state,
    leftovers,
    run_interrupted,
    run_to_end,
    tree_digest,
)
from pipelines.io import atomic_write_text, sha256_file
from pipelines.spec import load_spec
from pipelines.synth.fakeshards import make_fake_dataset
from pipelines.synth.specs import spec_to_toml, write_specs
from pipelines.synth.world import generate_world

STAGES = ("fetch", "prepare", "shard", "train", "server", "upstream")
DATASETS = {"fetch": ("music-stereo", "yt-music", "fair-play"), "prepare": ("music-stereo", "yt-music", "fair-play"),
            "shard": ("music-stereo", "yt-music", "fair-play"), "server": ("music-stereo", "fair-play"),
            "upstream": ("fair-play",), "train": ("fake",)}
# per download: the tiny world's videos (about 250 kB) and archives (a few MB) take a second or two each, so that a
# fault lands mid-download
RATES = {"fair-play": "2M"}
RATE = "256K"
TRAIN_ARGS = ["--dataset", "fair-play", "--protocol", "5-split", "--split", "1", "--preset", "cpu-small",
              "--resize", "36x72", "--crop", "32x64", "--batch-size", "2", "--samples-per-clip", "1",
              "--threads", "1", "--max-steps", "12", "--val-every-epochs", "1", "--val-hop", "10080",
              "--no-progress"]
LEDGERS = {"fetch": ("fetch", "archives"), "server": ("fetch", "archives"), "upstream": ("fetch", "archives"),
           "prepare": ("prepare",), "shard": ()}


@dataclass(frozen=True)
class Trial:
    index: int
    stage: str
    dataset: str
    jobs: int
    rate_limit: bool
    signal: str  # KILL | INT
    at: float  # when the fault strikes, as a fraction of the uninterrupted run's time


@dataclass
class Outcome:
    trial: Trial
    identical: bool = False
    videos_lost: int = 0
    ledger_missing: int = 0
    temp_left: list[str] = field(default_factory=list)
    tracebacks: int = 0
    interrupt_ok: bool | None = None  # SIGINT trials whose signal arrived while the command ran
    interrupt: str | None = None  # how: fault_runs.interrupt_outcome (line, finished, bad)
    first_status: int | None = None  # the interrupted run's exit status (negative: killed by that signal)
    first_stderr: str = ""  # its last error lines, when the trial is not clean
    survivors: int = 0
    reruns: int = 0
    seconds: float = 0.0
    note: str = ""


def plan_trials(n: int, seed: int, stages: tuple[str, ...] = STAGES) -> list[Trial]:
    """``n`` trials, the stages in turn, every other choice drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        stage = stages[i % len(stages)]
        network = stage in ("fetch", "server", "upstream")
        out.append(Trial(
            index=i, stage=stage, dataset=str(rng.choice(DATASETS[stage])),
            jobs=1 if stage == "shard" else int(rng.choice([1, 2])),  # shard has no --jobs
            rate_limit=stage in ("server", "upstream") or (network and bool(rng.random() < 0.5)),
            signal="INT" if stage in ("fetch", "prepare", "shard", "train") and rng.random() < 0.4 else "KILL",
            at=float(rng.uniform(0.05, 0.9))))
    return out


class Campaign:
    """The world, its server, the uninterrupted references, and the one data folder every run writes to (so that
    the paths recorded in messages are the same in every run)."""

    def __init__(self, work: Path, world: Path):
        self.work = work
        self.served = work / "served"
        if not self.served.is_dir():
            shutil.copytree(world, self.served, ignore=shutil.ignore_patterns("specs", "truth.jsonl"))
        self.archive_versions = _archive_versions(self.served, work / "upstream-v2")
        self._serve_archives(1)  # a campaign stopped during an upstream trial left the other version served
        self.server = ServerProcess(self.served, work / "server.log")
        port = self.server.start()
        try:
            self.specs = _unpinned_specs(self.served, port, work / "specs")
        except BaseException:
            self.server.kill()
            raise
        self.data = work / "trial" / "data"
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.refs: dict[tuple[str, str], dict[str, Any]] = {}
        self.durations: dict[tuple[Any, ...], float] = {}

    # ------------------------------------------------------------------------------------------- commands
    def command(self, stage: str, dataset: str, jobs: int, rate: bool) -> list[str]:
        if stage == "train":
            out = self.work / "trial" / "run"
            resume = ["--resume"] if (out / "last.pt").is_file() else []
            return [*CCS_TRAIN, "--root", str(self.train_data()), "--out", str(out), *TRAIN_ARGS,
                    "--num-workers", str(0 if jobs == 1 else jobs), *resume]
        cmd = [*CCS_DATA, "fetch" if stage in ("server", "upstream") else stage, dataset, "--root", str(self.data)]
        if stage != "shard":
            cmd += ["--spec", str(self.specs[dataset]), "--jobs", str(jobs)]
        cmd.append("--no-progress")
        return cmd + (["--rate-limit", RATES.get(dataset, RATE)] if rate else [])

    def train_data(self) -> Path:
        root = self.work / "train-data"
        if not (root / "fair-play").is_dir():
            make_fake_dataset(root, n_clips=8, protocols={"5-split": 1}, frame_size=(36, 72), clips_per_shard=4)
        return root

    # ------------------------------------------------------------------------------------------- states
    def restore(self, stage: str, dataset: str) -> None:
        """The data folder as the stage finds it: nothing (fetch), or the references' state before the stage."""
        before = {"prepare": "fetch", "shard": "prepare"}.get(stage)
        copy = self.reference(before, dataset)["copy"] if before is not None else None
        shutil.rmtree(self.work / "trial", ignore_errors=True)
        self.data.mkdir(parents=True)
        if copy is not None:
            shutil.copytree(copy, self.data / dataset)

    def reference(self, stage: str, dataset: str) -> dict[str, Any]:
        """The uninterrupted run of ``stage`` (its digests, ledgers and a copy of the folder after it)."""
        key = (stage, dataset)
        if key not in self.refs:
            self.restore(stage, dataset)
            run = run_to_end(self.command(stage, dataset, 1, False), self.logs / f"ref-{stage}-{dataset}.log")
            if run.returncode != 0:
                raise RuntimeError(f"the uninterrupted {stage} of {dataset} failed: {run.stderr[-800:]}")
            self.refs[key] = self.snapshot(stage, dataset)
            self.durations[(stage, dataset, 1, False)] = run.seconds
            if stage != "train":
                copy = self.work / "ref" / dataset / stage
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(self.data / dataset, copy)
                self.refs[key]["copy"] = copy
        return self.refs[key]

    def snapshot(self, stage: str, dataset: str) -> dict[str, Any]:
        if stage == "train":
            return {"digest": run_state_digest(self.work / "trial" / "run")}
        base = self.data / dataset
        return {"digest": tree_digest(base), "ledgers": {n: ledger_state(base, n, "archive" if n == "archives" else
                                                                          "video_id") for n in LEDGERS[stage]}}

    def duration(self, t: Trial) -> float:
        """Seconds of an uninterrupted run with the trial's options (measured once per set of options)."""
        stage = "fetch" if t.stage in ("server", "upstream") else t.stage
        self.reference(stage, t.dataset)
        key = (stage, t.dataset, t.jobs, t.rate_limit)
        if key not in self.durations:
            self.restore(stage, t.dataset)
            run = run_to_end(self.command(stage, t.dataset, t.jobs, t.rate_limit), self.logs / "timing.log")
            self.durations[key] = run.seconds
        return self.durations[key]

    # ------------------------------------------------------------------------------------------- a trial
    def run_trial(self, t: Trial) -> Outcome:
        started = time.monotonic()
        stage = "fetch" if t.stage in ("server", "upstream") else t.stage
        delay = t.at * self.duration(t)
        self.restore(stage, t.dataset)
        out = Outcome(t)
        cmd = self.command(t.stage, t.dataset, t.jobs, t.rate_limit)
        first = self._first_run(t, cmd, delay)
        if t.signal == "INT" and first.signalled:
            out.interrupt = interrupt_outcome(first)
            out.interrupt_ok = out.interrupt != "bad"
        out.first_status = first.returncode
        runs = [first]
        while len(runs) == 1 or len(runs) < 4 and runs[-1].returncode != 0:  # rerun, as a user would, until done
            runs.append(run_to_end(self.command(t.stage, t.dataset, t.jobs, t.rate_limit),
                                   self.logs / f"trial-{t.index}-rerun{len(runs)}.log"))
        out.reruns = len(runs) - 1
        out.tracebacks = sum(r.tracebacks for r in runs)
        out.survivors = sum(r.survivors for r in runs)
        if runs[-1].returncode != 0:
            out.note = f"the rerun failed ({runs[-1].returncode}): {runs[-1].stderr.strip()[-300:]}"
        self._compare(t, stage, out)
        if not _clean(out):
            out.first_stderr = "\n".join(first.stderr.strip().splitlines()[-3:])
        if t.stage == "upstream":
            self._serve_archives(1)
        out.seconds = time.monotonic() - started
        return out

    def _first_run(self, t: Trial, cmd: list[str], delay: float) -> Run:
        log = self.logs / f"trial-{t.index}.log"
        if t.stage == "server":  # the server dies mid-download; the command runs to its end, then it is back
            timer = threading.Timer(delay, self.server.kill)
            timer.start()
            run = run_to_end(cmd, log)
            timer.cancel()
            timer.join()
            if self.server.proc is None:
                self.server.start()
            return run
        sig = signal.SIGINT if t.signal == "INT" else signal.SIGKILL
        run = run_interrupted(cmd, log, delay=delay, sig=sig)
        if t.stage == "upstream":
            self._serve_archives(2)
        return run

    def _compare(self, t: Trial, stage: str, out: Outcome) -> None:
        ref = self.reference(stage, t.dataset)
        got = self.snapshot(stage, t.dataset)
        base = self.work / "trial" / ("run" if stage == "train" else f"data/{t.dataset}")
        out.identical = got["digest"] == ref["digest"]
        out.temp_left = leftovers(base)
        if not out.identical:
            diff = sorted(k for k in set(ref["digest"]) | set(got["digest"]) if ref["digest"].get(k) !=
                          got["digest"].get(k))
            out.note = f"{len(diff)} file(s) differ, e.g. {diff[:3]}"
        if stage == "train":
            return
        if stage == "fetch" and t.dataset == "fair-play":  # each archive one whole upstream version, never a splice
            served = self.archive_versions.values() if t.stage == "upstream" else [self.archive_versions[1]]
            whole = {sha256_file(p) for v in served for p in v.values()}
            kept = sorted((base / "archives").glob("*.tar.gz"))
            out.identical = out.identical and len(kept) == len(self.archive_versions[1]) and all(
                sha256_file(p) in whole for p in kept)
        for name, records in ref["ledgers"].items():
            mine = got["ledgers"].get(name, {})
            out.ledger_missing += sum(1 for k in records if k not in mine)
            out.videos_lost += sum(1 for k, r in records.items()
                                   if r.get("status") in ("done", "extracted") and mine.get(k, {}).get("status") !=
                                   r["status"])

    def _serve_archives(self, version: int) -> None:
        for name, path in self.archive_versions[version].items():
            shutil.copyfile(path, self.served / name)


def _unpinned_specs(served: Path, port: int, specs_dir: Path) -> dict[str, Path]:
    """The world's specs for ``port``, FAIR-Play's archives unpinned as in the real manifest."""
    specs = write_specs(served, port, specs_dir=specs_dir)
    fp = load_spec(specs["fair-play"])
    unpinned = replace(fp, archives=tuple(replace(a, sha256=None) for a in fp.archives))
    atomic_write_text(specs["fair-play"], spec_to_toml(unpinned))
    return specs


def _archive_versions(served: Path, v2_dir: Path) -> dict[int, dict[str, Path]]:
    """Two byte versions of every served archive with the same members: the world's, and the same tar gzipped
    at another level and time stamp (what a re-upload upstream looks like)."""
    v1_dir = v2_dir.with_name("upstream-v1")
    v1, v2 = {}, {}
    for path in sorted(served.rglob("*.tar.gz")):
        rel = path.relative_to(served).as_posix()
        (v1_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (v2_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (v1_dir / rel).is_file():
            shutil.copyfile(path, v1_dir / rel)
            (v2_dir / rel).write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=1))
        v1[rel], v2[rel] = v1_dir / rel, v2_dir / rel
    return {1: v1, 2: v2}


def run_state_digest(run: Path) -> dict[str, str]:
    """The state a resumed run must reproduce, per file: weights, optimiser and scheduler of last.pt, best.pt's
    weights, and the logged values (without their wall times)."""
    out = {}
    for name, keys in (("last.pt", ("model", "optimizer", "scheduler", "step", "best_metric", "best_step")),
                       ("best.pt", ("model", "step"))):
        if (run / name).is_file():
            ckpt = torch.load(run / name, map_location="cpu", weights_only=True)
            out[name] = hashlib.sha256(repr(_plain({k: ckpt.get(k) for k in keys})).encode()).hexdigest()
    if (run / "log.jsonl").is_file():
        lines = [json.dumps({k: v for k, v in json.loads(line).items() if k != "seconds"}, sort_keys=True)
                 for line in (run / "log.jsonl").read_text().splitlines()]
        out["log.jsonl"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return out


def _plain(value: Any) -> Any:
    """Tensors as their bytes' sha256, containers recursively: a repr that is equal iff the states are."""
    if isinstance(value, torch.Tensor):
        return hashlib.sha256(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


FIGURES = ("trials", "identical", "videos_lost", "ledger_records_missing", "temp_files_left", "tracebacks_seen",
           "sigint_trials", "sigint_not_one_line", "sigint_after_the_work", "workers_outliving_parent")


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    interrupted = [o for o in outcomes if o.interrupt_ok is not None]
    by_stage: dict[str, Counter] = {}
    by_option: Counter = Counter()
    for o in outcomes:
        c = by_stage.setdefault(o.trial.stage, Counter())
        c["trials"] += 1
        c["identical"] += o.identical
        by_option[f"{o.trial.stage} jobs {o.trial.jobs}{' --rate-limit' if o.trial.rate_limit else ''} "
                  f"SIG{o.trial.signal}"] += 1
    return {
        "trials": len(outcomes),
        "identical": sum(o.identical for o in outcomes),
        "videos_lost": sum(o.videos_lost for o in outcomes),
        "ledger_records_missing": sum(o.ledger_missing for o in outcomes),
        "temp_files_left": sum(len(o.temp_left) for o in outcomes),
        "tracebacks_seen": sum(o.tracebacks for o in outcomes),
        "sigint_trials": len(interrupted),
        "sigint_not_one_line": sum(not o.interrupt_ok for o in interrupted),
        "sigint_after_the_work": sum(o.interrupt == "finished" for o in interrupted),
        "workers_outliving_parent": sum(o.survivors for o in outcomes),
        "by_stage": {k: dict(v) for k, v in sorted(by_stage.items())},
        "by_option": dict(sorted(by_option.items())),
        "problems": [{**asdict(o.trial), **{k: v for k, v in asdict(o).items() if k != "trial"}}
                     for o in outcomes if not _clean(o)],
    }


def _clean(o: Outcome) -> bool:
    return (o.identical and not (o.videos_lost or o.ledger_missing or o.temp_left or o.tracebacks or o.survivors)
            and o.interrupt_ok is not False)


def run_campaign(work: str | Path, *, trials: int = 120, seed: int = 0, world: str | Path | None = None,
                 stages: tuple[str, ...] = STAGES, log=None) -> dict[str, Any]:
    """Run the campaign in ``work`` (reused: the served world and the fake training data are kept); the summary
    (also written to ``work/faults.json``, every trial to ``work/trials.jsonl``)."""
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if world is None:
        world = work / "world"
        if not (world / "truth.jsonl").is_file():
            generate_world(world, seed=0, size="tiny", progress=False)
    started = time.monotonic()
    campaign = Campaign(work, Path(world))
    outcomes = []
    try:
        for t in plan_trials(trials, seed, stages):
            o = campaign.run_trial(t)
            outcomes.append(o)
            if log is not None:
                flags = "ok" if _clean(o) else f"PROBLEM {o.note or ''}".strip()
                log(f"trial {t.index:3d} {t.stage:8s} {t.dataset:12s} jobs {t.jobs} rate {int(t.rate_limit)} "
                    f"SIG{t.signal:4s} at {t.at:.2f}: {o.seconds:5.1f} s, {flags}")
    finally:
        campaign.server.kill()
    summary = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "seed": seed,
               "machine": f"{platform.machine()}, python {platform.python_version()}",
               "minutes": round((time.monotonic() - started) / 60, 1),
               "uninterrupted_s": {"/".join(map(str, k)): round(v, 1) for k, v in sorted(campaign.durations.items(),
                                                                                         key=str)},
               **summarise(outcomes)}
    atomic_write_text(work / "faults.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(work / "trials.jsonl", "".join(json.dumps(asdict(o), sort_keys=True) + "\n" for o in outcomes))
    return summary
