"""The one error style of every command (``ccs-data``, ``ccs-train``, ``ccs-infer``, ``ccs-bench``).

A failing command prints one line, ``<command>: error: <what>: <why>``, naming the input and the reason, and exits
with the status of the error's class:

====  ============  ==================================================================================
 0    ok
 1    input         a file, folder, spec, dataset, checkpoint or value the command cannot use
                    (``ccs-data verify``: problems found in the shards)
 2    usage         click's own: an unknown option, a missing argument, a value of the wrong type
 3    network       an upstream server unreachable or failing (rerun later: fetch resumes)
 4    internal      a bug; ``--debug`` shows the traceback (please report it)
130   interrupted   Ctrl-C / SIGINT; what is on disk is consistent: rerun the same command to resume
====  ============  ==================================================================================

The library raises the classes below (or a standard exception); :func:`classify` decides the class of any
exception in one place, and :class:`StyledCommand` / :class:`StyledGroup` apply it to every command and add
``--debug`` (the Python traceback instead of the one line; also ``CCS_DEBUG=1``).
"""

from __future__ import annotations

import errno
import os
import socket
import urllib.error
from typing import Any, NoReturn

import click

EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

INTERRUPTED = "interrupted; what is on disk is consistent: rerun the same command to resume"


class CCSError(Exception):
    """Base of the toolkit's errors; ``exit_code`` is the status of its class."""

    exit_code = EXIT_INTERNAL


class InputError(CCSError):
    """A file, folder, spec or value the command cannot use; the message names it and says why."""

    exit_code = EXIT_INPUT


class UsageError(CCSError):
    """Options that cannot go together (what click cannot check by itself)."""

    exit_code = EXIT_USAGE


class NetworkError(CCSError):
    """An upstream server is unreachable or failing; trying again later may help."""

    exit_code = EXIT_NETWORK


class InternalError(CCSError):
    """Something the toolkit should never do happened (a bug)."""

    exit_code = EXIT_INTERNAL


def one_line(text: str) -> str:
    """``text`` on one line (a message from a library may span several)."""
    return " ".join(str(text).split()) or "(no message)"


def os_error_message(exc: OSError) -> str:
    """An OSError as ``<path>: <reason>`` (the path the system call was about, when it says)."""
    if exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on the device{where}; free some space and rerun to resume"
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


_NETWORK_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, socket.gaierror)


def classify(exc: BaseException) -> tuple[int, str]:
    """``(exit status, one-line message)`` for any exception a command lets out (see the module docstring)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, INTERRUPTED
    if isinstance(exc, CCSError):
        return exc.exit_code, one_line(str(exc))
    if isinstance(exc, click.ClickException):  # raised by a command body for a bad input
        return EXIT_INPUT, one_line(exc.format_message())
    if isinstance(exc, _NETWORK_ERRORS):
        return EXIT_NETWORK, one_line(str(getattr(exc, "reason", None) or exc))
    if isinstance(exc, OSError):
        return EXIT_INPUT, one_line(os_error_message(exc))
    if isinstance(exc, (ValueError, UnicodeError)):  # the library's way to refuse a value
        return EXIT_INPUT, one_line(str(exc))
    if isinstance(exc, MemoryError):
        return EXIT_INPUT, "out of memory (try a smaller batch size or fewer jobs)"
    return EXIT_INTERNAL, one_line(f"internal error: {type(exc).__name__}: {exc} (a bug: rerun with --debug for "
                                   "the traceback and report it)")


def _debug_wanted(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("ccs.debug")) or os.environ.get("CCS_DEBUG", "") not in ("", "0")


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["ccs.debug"] = True


def debug_option() -> click.Option:
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                        help="On an error, show the Python traceback instead of one line (also CCS_DEBUG=1).")


def command_path(ctx: click.Context) -> str:
    """``ccs-data fetch``: the command's own name at the top (not ``argv[0]``, which is ``-c`` or ``__main__.py``
    when it runs as ``python -c ...`` or ``python -m ccstereo.train`` under torchrun)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    names.append(ctx.command.name or ctx.info_name or "")
    return " ".join(reversed(names))


def fail(ctx: click.Context, exc: BaseException) -> NoReturn:
    """Print ``exc`` as the command's one error line and exit with its class's status."""
    code, message = classify(exc)
    # a progress bar on a terminal leaves the cursor at the end of its line: start the error on a line of its own
    lead = "\n" if isinstance(exc, KeyboardInterrupt) and _stderr_is_terminal() else ""
    click.echo(f"{lead}{command_path(ctx)}: error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _stderr_is_terminal() -> bool:
    stream = click.get_text_stream("stderr")
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def _styled_make_context(command: click.Command, make_context: Any, info_name: str | None, args: Any,
                         parent: click.Context | None, extra: Any) -> click.Context:
    """Parse the command line; Ctrl-C meanwhile (click would print ``Aborted!`` and exit 1) is the one
    ``interrupted`` line and 130, as everywhere else."""
    try:
        return make_context(info_name, args, parent=parent, **extra)
    except KeyboardInterrupt:
        name = f"{command_path(parent)} {info_name}" if parent is not None else command.name or info_name
        click.echo(f"{name}: error: {INTERRUPTED}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def _styled_invoke(ctx: click.Context, invoke: Any) -> Any:
    try:
        return invoke(ctx)
    except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError):
        raise  # click's own: it prints and exits (usage: 2)
    except (Exception, KeyboardInterrupt) as exc:
        if _debug_wanted(ctx):
            raise
        fail(ctx, exc)


class _ErrorStyle:
    """Mixed into a click command or group: the error style on parsing and on running, and ``--debug``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.params.append(debug_option())  # type: ignore[attr-defined]

    def make_context(self, info_name: str | None, args: Any, parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return _styled_make_context(self, super().make_context, info_name, args, parent, extra)  # type: ignore[misc]

    def invoke(self, ctx: click.Context) -> Any:
        return _styled_invoke(ctx, super().invoke)  # type: ignore[misc]


class StyledCommand(_ErrorStyle, click.Command):
    """A click command with the error style: one line and the class's exit status; ``--debug`` for a traceback."""


class StyledGroup(_ErrorStyle, click.Group):
    """A click group whose every subcommand (and subgroup) has the error style of :class:`StyledCommand`."""

    command_class = StyledCommand


StyledGroup.group_class = StyledGroup
