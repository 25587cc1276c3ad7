"""Worker processes that never outlive the process that started them and leave Ctrl-C to it.

A process pool's workers are separate processes: when their parent is killed (SIGKILL, OOM), they would go on
preparing videos and writing results that no ledger records, possibly beside a rerun. :func:`init_worker` (the
pool's initializer) asks Linux to kill the worker when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) and
moves it out of the terminal's process group (with the processes it starts, such as ffmpeg) and makes it ignore
SIGINT: Ctrl-C reaches the parent alone, which decides (it stops the pool with :func:`stop_pool` and prints one
line), so no worker prints a traceback of its own or stores a video whose decoding Ctrl-C cut short.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent exits (Linux; elsewhere nothing). ``parent_pid`` closes
    the race of a parent that died before the request was made."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not allowed here (a sandbox): the pool still works, only without this guarantee
    if os.getppid() != parent_pid:
        os._exit(1)


def init_worker(parent_pid: int) -> None:
    """A pool initializer: die with the parent, leave SIGINT to it.

    The worker also starts a session of its own: Ctrl-C signals the terminal's foreground process group, and the
    ffmpeg a worker runs would be in it (ffmpeg sets its own SIGINT handler, so an ignored SIGINT does not stay
    ignored in it). It stopped mid-decode, and the worker, which goes on, stored the video with the clips that
    failed to decode dropped, before the parent's stop reached it (a fault-campaign finding)."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.setsid()


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """A process pool of ``jobs`` workers set up by :func:`init_worker`."""
    return ProcessPoolExecutor(max_workers=jobs, initializer=init_worker, initargs=(os.getpid(),))


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: queued tasks are cancelled and running workers killed (their unfinished files are
    temporary ones, which the next run removes)."""
    pool.shutdown(wait=False, cancel_futures=True)
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the stdlib offers no kill before 3.14
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=10)
