"""The console entry points of ``ccs-data`` (and, through :func:`launch`, of ``ccs-train``, ``ccs-infer`` and
``ccs-bench``): import the command's module, then run it.

Why a module of its own: a command's modules take seconds to import (torch alone about two), and Ctrl-C then
would end in a Python traceback of the import instead of the one ``interrupted`` line the command prints once it
runs (``pipelines.errors``). This module imports nothing beyond the standard library until the command's module
is loaded, so that the window without the error style is the interpreter's own start-up.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Callable
from typing import NoReturn


def load_command(target: str) -> Callable[[], object]:
    """``"package.module:attribute"`` -> the attribute (a click command)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _interrupted(name: str) -> NoReturn:
    from pipelines.errors import EXIT_INTERRUPTED, INTERRUPTED

    sys.stderr.write(f"{name}: error: {INTERRUPTED}\n")
    sys.exit(EXIT_INTERRUPTED)


def launch(target: str, name: str) -> None:
    """Run the click command ``target`` as the console command ``name``; Ctrl-C while it is being imported is the
    error style's one ``interrupted`` line and exit status 130, as it is while the command runs.

    Once the command has finished, its exit status is decided and SIGINT is ignored: a Ctrl-C during the
    interpreter's shutdown (atexit handlers, joining threads) killed the process with SIGINT (status -2, no line)
    or printed a traceback, although nothing was left to interrupt (a fault-campaign finding)."""
    try:
        command = load_command(target)
    except KeyboardInterrupt:
        _interrupted(name)
    try:
        command()
    except KeyboardInterrupt:  # between the command's own error handling and its exit
        _interrupted(name)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def ccs_data() -> None:
    launch("pipelines.cli:main", "ccs-data")
