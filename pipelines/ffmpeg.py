"""The ffmpeg binary shipped by the ``imageio-ffmpeg`` wheel, made reachable as plain ``ffmpeg`` on PATH.

yt-dlp looks for an executable literally named ``ffmpeg`` on PATH in some checks (it ignores
``ffmpeg_location`` there), so :func:`ensure_ffmpeg_on_path` links the wheel's binary into a private bin
folder and prepends that folder to PATH for this process and its children.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Absolute path of the ffmpeg binary (imageio-ffmpeg's, or ``$CCS_FFMPEG`` if set)."""
    override = os.environ.get("CCS_FFMPEG")
    if override:
        return override
    try:  # local: without the wheel, an ffmpeg on PATH still works (the import must not fail the module)
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - a dependency of the project
        found = shutil.which("ffmpeg")
        if found:
            return found
        raise RuntimeError("no ffmpeg: install imageio-ffmpeg (pip install imageio-ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=1)
def ensure_ffmpeg_on_path() -> str:
    """Make ``ffmpeg`` on PATH resolve to :func:`ffmpeg_exe`; returns the bin folder used."""
    exe = Path(ffmpeg_exe())
    if exe.name == "ffmpeg":
        bin_dir = exe.parent
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ccstereo" / "bin"
        cache.mkdir(parents=True, exist_ok=True)
        link = cache / "ffmpeg"
        if not (link.is_symlink() and os.readlink(link) == str(exe)):
            tmp = cache / f".ffmpeg.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(exe)
            os.replace(tmp, link)
        bin_dir = cache
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != str(bin_dir):
        os.environ["PATH"] = str(bin_dir) + (os.pathsep + path if path else "")
    return str(bin_dir)


def run_ffmpeg(args: list[str], *, input_bytes: bytes | None = None, timeout: float | None = None) -> bytes:
    """Run ffmpeg with an argument list (never a shell string); return stdout, raise with stderr's tail."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    proc = subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise FFmpegError(f"ffmpeg exited with {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout


class FFmpegError(RuntimeError):
    """ffmpeg failed; the message carries the tail of its stderr."""
