"""The one error style (``pipelines.errors``): the class of every kind of exception, the line a command prints, the
exit status, ``--debug``, and that every command of the four CLIs has the style."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import urllib.error

import click
import pytest
from click.testing import CliRunner

from benchmarks.cli import main as bench_main
from ccstereo.cli import infer_command, train_command
from pipelines.cli import main as data_main
from pipelines.errors import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_USAGE,
    InputError,
    NetworkError,
    StyledCommand,
    StyledGroup,
    UsageError,
    classify,
)
from pipelines.http import DownloadError
from pipelines.recipes.base import FetchNetworkError, FetchSetupError
from pipelines.spec import SpecError


@pytest.mark.parametrize("exc, code, message", [
    (InputError("a.toml: bad"), EXIT_INPUT, "a.toml: bad"),
    (SpecError("a.toml: field 'x'\n  is bad"), EXIT_INPUT, "a.toml: field 'x' is bad"),  # always one line
    (UsageError("--a and --b"), EXIT_USAGE, "--a and --b"),
    (NetworkError("down"), EXIT_NETWORK, "down"),
    (FetchNetworkError("list x: cannot download"), EXIT_NETWORK, "list x: cannot download"),
    (FetchSetupError("sha256 mismatch"), EXIT_INPUT, "sha256 mismatch"),
    (DownloadError("u: HTTP 503", transient=True), EXIT_NETWORK, "u: HTTP 503"),
    (DownloadError("u: empty file", transient=False), EXIT_INPUT, "u: empty file"),
    (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), EXIT_NETWORK, "Connection refused"),
    (socket.timeout("timed out"), EXIT_NETWORK, "timed out"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/d/x"), EXIT_INPUT, "/d/x: Not a directory"),
    (OSError(errno.ENOSPC, "No space left on device", "/d/s.tar"), EXIT_INPUT,
     "no space left on the device writing /d/s.tar"),
    (ValueError("x.pt: the weights do not match"), EXIT_INPUT, "x.pt: the weights do not match"),
    (click.ClickException("x: missing"), EXIT_INPUT, "x: missing"),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted; what is on disk is consistent: rerun the same command"),
    (KeyError("oops"), EXIT_INTERNAL, "internal error: KeyError: 'oops' (a bug: rerun with --debug"),
])
def test_every_exception_has_one_class_and_one_line(exc, code, message):
    got_code, got_message = classify(exc)
    assert got_code == code and message in got_message and "\n" not in got_message


def _cli(error: BaseException) -> click.Group:
    @click.group(name="tool", cls=StyledGroup)
    def group() -> None:
        pass

    @group.command("go")
    def go() -> None:
        raise error

    return group


@pytest.mark.parametrize("error, code", [(InputError("in.txt: unreadable"), 1), (NetworkError("down"), 3),
                                         (KeyError("bug"), 4), (KeyboardInterrupt(), 130),
                                         (OSError(errno.ENOSPC, "No space left on device"), 1)])
def test_a_command_prints_one_line_and_exits_with_the_class_status(error, code):
    res = CliRunner().invoke(_cli(error), ["go"])
    assert res.exit_code == code and "Traceback" not in res.output
    assert res.output.count("\n") == 1 and res.output.startswith("tool go: error: ")


def test_ctrl_c_on_a_terminal_starts_its_line_below_the_progress_bar(monkeypatch):
    from pipelines import errors

    monkeypatch.setattr(errors, "_stderr_is_terminal", lambda: True)
    res = CliRunner().invoke(_cli(KeyboardInterrupt()), ["go"])
    assert res.exit_code == 130 and res.output.startswith("\ntool go: error: interrupted")
    res = CliRunner().invoke(_cli(InputError("in.txt: unreadable")), ["go"])  # other errors: no bar to step over
    assert res.output.startswith("tool go: error: in.txt")


def test_debug_shows_the_traceback_instead(monkeypatch):
    res = CliRunner().invoke(_cli(KeyError("bug")), ["--debug", "go"])
    assert isinstance(res.exception, KeyError)  # propagated: Python prints its traceback
    res = CliRunner().invoke(_cli(KeyError("bug")), ["go", "--debug"])
    assert isinstance(res.exception, KeyError)
    monkeypatch.setenv("CCS_DEBUG", "1")
    assert isinstance(CliRunner().invoke(_cli(KeyError("bug")), ["go"]).exception, KeyError)


def test_usage_errors_stay_clicks():
    res = CliRunner().invoke(_cli(KeyError("bug")), ["go", "--nope"])
    assert res.exit_code == EXIT_USAGE and "No such option" in res.output


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


@pytest.mark.parametrize("cli", [data_main, bench_main])
def test_every_command_of_every_cli_has_the_style(cli):
    assert isinstance(cli, StyledGroup)
    for name, command in _commands(cli):
        assert isinstance(command, (StyledCommand, StyledGroup)), name
        assert "--debug" in [opt for p in command.params for opt in getattr(p, "opts", [])], name
    for command in (train_command, infer_command):
        assert isinstance(command, StyledCommand)


def test_the_installed_commands_print_one_line_in_a_real_process(tmp_path):
    """Outside CliRunner: a real interpreter, the console entry point, stderr and the exit status."""
    (tmp_path / "spec.toml").write_text('name = "music-stereo"\nnope = 1\n')
    proc = subprocess.run([sys.executable, "-c", "from pipelines.cli import main; main()", "fetch", "music-stereo",
                           "--root", str(tmp_path / "data"), "--spec", str(tmp_path / "spec.toml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_INPUT and proc.stdout == ""
    assert proc.stderr.startswith("ccs-data fetch: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "field 'nope' is not a key of the spec schema" in proc.stderr
