"""A researcher's first day (issue 15): the README's "First run on a GPU machine" walked line by line on the tiny
synthetic world, with the ImageNet weights served on loopback; and every error message and fix names options that
exist on the command it is about."""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections import namedtuple
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from yt_dlp.options import create_parser

from benchmarks.cli import main as bench_main
from benchmarks.plan import parse_checkpoint_args
from ccstereo.blocks import resnet18_weights_path
from ccstereo.cli import infer_command, train_command
from ccstereo.config import TrainConfig
from ccstereo.train.trainer import _check_resume_config
from pipelines import doctor_checks as dc
from pipelines.cli import main as data_main
from pipelines.doctor import Environment, TargetOptions, run_checks
from pipelines.weights import URL_ENV, cache_dir
from tests.helpers.weights import make_resnet18_file, serving

REPO = Path(__file__).resolve().parents[1]
SECTION = "## First run on a GPU machine"
PROGRAMS = {"ccs-data": data_main, "ccs-bench": bench_main}
# the README's run, made small enough for CI: one split, the two rows that matter, one training step, batch 2
SMALL_RUN = ["--splits", "1", "--methods", "Mono-Mono", "--methods", "CCStereo", "--max-steps", "1",
             "--train-batch-size", "2", "--hop", "10080", "--quiet"]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMMAND = re.compile(r"ccs-data [a-z][a-z-]*|ccs-bench [a-z][a-z-]*|ccs-train|ccs-infer|yt-dlp")


def readme_commands() -> list[list[str]]:
    """The commands of the README section, one argv each (``a && b`` is two), comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text[text.index(SECTION):]
    start = body.index("```bash\n") + len("```bash\n")
    out = []
    for line in body[start:body.index("```", start)].splitlines():
        argv = shlex.split(line, comments=True)
        while argv:
            cut = argv.index("&&") if "&&" in argv else len(argv)
            out.append(argv[:cut])
            argv = argv[cut + 1:]
    return out


def replace_value(argv: list[str], option: str, value: str) -> list[str]:
    return [value if i and argv[i - 1] == option else a for i, a in enumerate(argv)]


@contextmanager
def gpu_machine(monkeypatch: pytest.MonkeyPatch):
    """What the doctor sees on the machine the README is for: one CUDA device and a disk with room to spare."""
    props = namedtuple("Props", "name total_memory")
    usage = namedtuple("Usage", "total used free")
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "device_count", lambda: 1)
        m.setattr(torch.cuda, "get_device_properties", lambda i: props("NVIDIA H200", 141 * 2**30))
        m.setattr(dc.shutil, "disk_usage", lambda p: usage(10**13, 0, 10**13))
        yield


@pytest.mark.slow
def test_readme_first_run_on_the_synthetic_world(world_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # nothing cached yet
    served = make_resnet18_file(tmp_path / "upstream")
    root, reports = tmp_path / "data", tmp_path / "reports"
    runner = CliRunner()
    commands = readme_commands()
    assert [a[:2] for a in commands] == [
        ["ccs-data", "doctor"], ["ccs-data", "fetch-weights"], ["ccs-data", "doctor"], ["ccs-data", "fetch"],
        ["ccs-data", "prepare"], ["ccs-data", "shard"], ["ccs-data", "verify"], ["ccs-data", "doctor"],
        ["ccs-bench", "run"], ["ccs-bench", "run"]]
    with serving(served.parent) as base:
        monkeypatch.setenv(URL_ENV, f"{base}/{served.name}")  # the only change to fetch-weights: where from
        outputs = []
        for argv in commands:
            args = replace_value(replace_value(argv[1:], "--root", str(root)), "--out", str(reports))
            if args[0] in ("fetch", "prepare"):  # the synthetic world's spec instead of the real upstream
                args += ["--spec", str(world_server.spec_path(args[1]))]
            if args[0] == "prepare":
                args = replace_value(args, "--jobs", "2")
            if args[0] == "run":
                args += SMALL_RUN
            if args[0] == "doctor":
                with gpu_machine(monkeypatch):
                    res = runner.invoke(PROGRAMS[argv[0]], args)
            else:
                res = runner.invoke(PROGRAMS[argv[0]], args)
            outputs.append(res)
            expect = 1 if argv == commands[0] else 0  # the first doctor finds the weights missing
            assert res.exit_code == expect, f"{shlex.join(argv)}:\n{res.output}"
    first, weights, fetch_ready, bench_ready = outputs[0], outputs[1], outputs[2], outputs[7]
    assert "MISSING  weights" in first.output and "fix: ccs-data fetch-weights" in first.output
    assert str(cache_dir() / served.name) in weights.output
    assert "everything needed is here" in fetch_ready.output and "everything needed is here" in bench_ready.output
    assert "ok       weights" in bench_ready.output and "ok       data" in bench_ready.output
    planned = json.loads(outputs[8].output)
    assert planned["note"].startswith("ESTIMATE") and planned["visual_init"]["runs_start_from"] == ["imagenet"]
    assert planned["visual_init"]["imagenet"] == str(cache_dir() / served.name)
    table = reports / "table-2"
    assert (table / "report.md").is_file() and (table / "report.html").is_file()
    # the run started CCStereo's trunk from the weights fetch-weights put in the cache (one small Adam step away)
    best = torch.load(table / "runs" / "fair-play-5-split-1" / "ccstereo" / "best.pt", weights_only=True)
    assert best["train_config"]["model"]["visual_init"] == "imagenet"
    conv1 = torch.load(served, weights_only=True)["conv1.weight"]
    assert torch.allclose(best["model"]["visual.trunk.0.weight"], conv1, atol=1e-3)
    assert not torch.allclose(torch.nn.init.kaiming_normal_(torch.empty_like(conv1)), conv1, atol=1e-3)


# ------------------------------------------------------------------------------------------------ flags in messages


def flags_of(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def every_command() -> dict[str, click.Command]:
    """Every ccs command by the name a user types (``ccs-data fetch``, ``ccs-train``, ...)."""
    out: dict[str, click.Command] = {"ccs-train": train_command, "ccs-infer": infer_command}
    for prog, group in (("ccs-data", data_main), ("ccs-bench", bench_main)):
        for name, cmd in group.commands.items():
            out[f"{prog} {name}"] = cmd
            for sub, subcmd in getattr(cmd, "commands", {}).items():
                out[f"{prog} {name} {sub}"] = subcmd
    return out


def unknown_flags(message: str, command: click.Command) -> list[str]:
    return [f for f in FLAG.findall(message) if f not in flags_of(command)]


def test_flags_in_raised_messages_exist_on_some_command():
    """Every ``--flag`` named in a ``raise`` of the toolkit is an option of one of its commands (none names a flag
    that was renamed or never existed)."""
    known = set().union(*(flags_of(c) for c in every_command().values()))
    bad = []
    for pkg in ("pipelines", "ccstereo", "benchmarks"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Raise) or node.exc is None:
                    continue
                texts = [n.value for n in ast.walk(node.exc)
                         if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                bad += [f"{path.relative_to(REPO)}:{node.lineno} {f}" for t in texts for f in FLAG.findall(t)
                        if f not in known]
    assert not bad


def test_errors_name_options_of_the_command_that_printed_them(tmp_path, monkeypatch):
    commands = every_command()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as missing:
        resnet18_weights_path("imagenet")  # printed by ccs-train and by ccs-bench run
    a = TrainConfig(root="r", dataset="fair-play", protocol="5-split", split="1", out=str(tmp_path))
    with pytest.raises(ValueError) as resumed:
        _check_resume_config(a, TrainConfig(root="r", dataset="fair-play", protocol="5-split", split="2",
                                            out=str(tmp_path)))  # both commands resume runs
    with pytest.raises(ValueError) as checkpoints:
        parse_checkpoint_args(["CCStereo"])
    printed = {"ccs-train": [missing.value, resumed.value], "ccs-bench run": [missing.value, resumed.value,
                                                                               checkpoints.value]}
    for name, errors in printed.items():
        for exc in errors:
            assert FLAG.findall(str(exc)) and not unknown_flags(str(exc), commands[name]), (name, str(exc))
    # and as the commands print them
    res = CliRunner().invoke(bench_main, ["run", "--table", "2", "--root", str(tmp_path), "--out", str(tmp_path),
                                          "--checkpoints", "CCStereo"])
    assert res.exit_code == 1 and "--checkpoints" in res.output
    assert not unknown_flags(res.output, commands["ccs-bench run"])


def test_doctor_fixes_name_options_that_exist(tmp_path, monkeypatch):
    """Each fix the doctor prints in a machine where almost everything is missing: its flags belong to the command
    the fix names (ccs-data ..., yt-dlp), else to the doctor itself."""
    commands = every_command()
    monkeypatch.setenv("PATH", str(tmp_path))  # no JavaScript runtime
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "file").write_text("x")
    cookies = tmp_path / "cookies.json"
    cookies.write_text("{}")
    report = run_checks(TargetOptions(root=tmp_path / "file" / "data"), None,
                        Environment(ffmpeg=str(tmp_path / "no-ffmpeg"), cookies=cookies))
    fixes = [c.fix for c, _ in report.checks if c.status != "ok"]
    assert len(fixes) >= 7
    ytdlp = create_parser()
    for fix in fixes:
        for flag in FLAG.finditer(fix):
            before = COMMAND.findall(fix[:flag.start()])
            named = before[-1] if before else "ccs-data doctor"  # a flag with no command before it: the doctor's
            if named == "yt-dlp":
                assert ytdlp.has_option(flag.group()), fix
            else:
                assert flag.group() in flags_of(commands[named]), fix
