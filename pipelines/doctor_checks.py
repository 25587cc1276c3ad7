"""The checks of ``ccs-data doctor`` (:mod:`pipelines.doctor`): each a small function that looks at one thing a run
needs and returns a :class:`Check` saying what it found and, when it is missing, how to get it.

They never download or install anything and never change the machine (the write check removes the file it made).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

GB = 10**9
STATUSES = ("ok", "warn", "missing")
YTDLP_MAX_AGE_DAYS = 90  # yt-dlp promises a release at least every 90 days and warns about older ones itself
# The runtimes yt-dlp uses for YouTube's JavaScript challenges when its caller names none (its ``js_runtimes``
# parameter defaults to deno alone); pipelines.recipes.youtube.ytdlp_options keeps that default.
YTDLP_JS_RUNTIMES = ("deno",)
DENO_INSTALL = "https://docs.deno.com/runtime/getting_started/installation/"
TORCHVISION_MINOR_OFFSET = 15  # torchvision 0.(m + 15) is the release built for torch 2.m (0.29 <-> 2.14)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | missing
    detail: str  # what was found
    fix: str = ""  # how to get what is missing (empty when ok)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, got {self.status!r}")


# ------------------------------------------------------------------------------------------------ ffmpeg

FFMPEG_FIX = ("install the project's dependencies (pip install imageio-ffmpeg ships an ffmpeg binary), or point "
              "$CCS_FFMPEG at an ffmpeg 4.3 or later")


def _ffmpeg_output(exe: str, *args: str) -> str | None:
    """stdout of ``exe -hide_banner ARGS`` (an argument list, never a shell string), or None when it cannot run."""
    try:
        proc = subprocess.run([exe, "-hide_banner", *args], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def ffmpeg_names(listing: str) -> set[str]:
    """The names in ffmpeg's ``-filters`` / ``-decoders`` / ``-encoders`` table (the rows after the ``------`` rule:
    flags, name, description)."""
    names, in_table = set(), False
    for line in listing.splitlines():
        if not in_table:
            in_table = bool(line.strip()) and set(line.strip()) == {"-"}
            continue
        parts = line.split()
        if len(parts) >= 2:
            names.add(parts[1])
    return names


def check_ffmpeg(exe: str) -> Check:
    out = _ffmpeg_output(exe, "-version")
    if out is None:
        return Check("ffmpeg", "missing", f"{exe} does not run", FFMPEG_FIX)
    first = out.splitlines()[0] if out else "ffmpeg"
    return Check("ffmpeg", "ok", f"{' '.join(first.split()[:3])} ({exe})")


def check_v360(exe: str) -> Check:
    """The ``v360`` filter: prepare converts EAC 360 frames to equirectangular with it."""
    listing = _ffmpeg_output(exe, "-filters")
    if listing is None:
        return Check("v360", "missing", f"cannot list the filters of {exe}", FFMPEG_FIX)
    if "v360" not in ffmpeg_names(listing):
        return Check("v360", "missing", f"{exe} has no v360 filter (360 video cannot be converted)", FFMPEG_FIX)
    return Check("v360", "ok", "filter present (EAC -> equirectangular)")


def check_opus(exe: str) -> Check:
    """An opus decoder (the 4-channel ambiX track, itag 338, is opus); libopus also encodes (``ccs-data synth``)."""
    decoders, encoders = _ffmpeg_output(exe, "-decoders"), _ffmpeg_output(exe, "-encoders")
    if decoders is None or encoders is None:
        return Check("opus", "missing", f"cannot list the codecs of {exe}", FFMPEG_FIX)
    dec = sorted({"opus", "libopus"} & ffmpeg_names(decoders))
    if not dec:
        return Check("opus", "missing", f"{exe} cannot decode opus (the ambiX audio of the 360 sets)",
                     "use an ffmpeg built with libopus (imageio-ffmpeg's has it) via $CCS_FFMPEG")
    enc = "libopus encoder present" if "libopus" in ffmpeg_names(encoders) else "no libopus encoder (synth needs it)"
    return Check("opus", "ok", f"decoders {', '.join(dec)}; {enc}")


# ------------------------------------------------------------------------------------------------ yt-dlp


def ytdlp_release_date(version: str) -> dt.date | None:
    """The date in a yt-dlp version (``2026.10.26`` or ``2026.10.26.123456`` -> 2026-10-26), None if there is none."""
    m = re.match(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})", version)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def ytdlp_age_check(version: str, today: dt.date) -> Check:
    released = ytdlp_release_date(version)
    if released is None:
        return Check("yt-dlp", "warn", f"yt-dlp {version}: cannot tell its age", "pip install -U yt-dlp")
    age = (today - released).days
    if age > YTDLP_MAX_AGE_DAYS:
        return Check("yt-dlp", "warn", f"yt-dlp {version} is {age} days old; YouTube changes often and old "
                                       "releases stop working", "pip install -U yt-dlp")
    return Check("yt-dlp", "ok", f"yt-dlp {version} ({age} days old)")


def check_ytdlp(today: dt.date) -> Check:
    try:
        from yt_dlp.version import __version__
    except ImportError:
        return Check("yt-dlp", "missing", "yt-dlp is not installed", "pip install -U yt-dlp")
    return ytdlp_age_check(__version__, today)


def check_js_runtime() -> Check:
    """A JavaScript runtime yt-dlp will use for YouTube (found the way yt-dlp finds it, with its minimum versions)."""
    try:
        from yt_dlp.utils import _jsruntime
    except ImportError:
        return Check("js-runtime", "missing", "this yt-dlp cannot run JavaScript (it predates 2025.11)",
                     "pip install -U yt-dlp, then install deno")
    classes = {"deno": _jsruntime.DenoJsRuntime, "node": _jsruntime.NodeJsRuntime, "bun": _jsruntime.BunJsRuntime,
               "quickjs": _jsruntime.QuickJsRuntime}
    found = {name: cls().info for name, cls in classes.items()}
    enabled = [found[n] for n in YTDLP_JS_RUNTIMES if found.get(n) is not None]
    usable = [info for info in enabled if info.supported]
    others = [f"{info.name} {info.version}" for n, info in found.items()
              if info is not None and n not in YTDLP_JS_RUNTIMES]
    also = f"; found {', '.join(others)}, which yt-dlp does not use unless asked" if others else ""
    if usable:
        info = usable[0]
        return Check("js-runtime", "ok", f"{info.name} {info.version} ({info.path}){also}")
    if enabled:
        info = enabled[0]
        return Check("js-runtime", "missing", f"{info.name} {info.version} is older than yt-dlp supports{also}",
                     f"upgrade deno ({DENO_INSTALL})")
    return Check("js-runtime", "missing", f"no {' or '.join(YTDLP_JS_RUNTIMES)} on PATH: YouTube's challenges "
                                          f"cannot be solved and formats go missing{also}",
                 f"install deno 2.3 or later and put it on PATH ({DENO_INSTALL})")


def cookie_rows(text: str) -> list[list[str]]:
    """The cookie rows of a Netscape cookies file (7 tab-separated fields; comments and blank lines skipped)."""
    rows = []
    for line in text.splitlines():
        line = line.removeprefix("#HttpOnly_")
        if not line.strip() or line.startswith("#"):
            continue
        rows.append(line.split("\t"))
    return rows


def check_cookies(path: Path | None, now: float | None = None) -> Check:
    """The ``--cookies`` file: readable, Netscape format, and whether its youtube.com cookies are still valid."""
    if path is None:
        return Check("cookies", "ok", "none given (only age-gated or sign-in videos need them: ccs-data fetch "
                                      "--cookies FILE)")
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return Check("cookies", "missing", f"{path}: cannot be read ({exc.strerror or exc})",
                     f"make it readable by this user (chmod u+r {path}) or export the cookies again")
    rows = cookie_rows(text)
    bad = [r for r in rows if len(r) != 7]
    if text.lstrip().startswith(("{", "[")) or not rows or bad:
        return Check("cookies", "missing", f"{path}: not a Netscape cookies file ({len(bad)} malformed of "
                                           f"{len(rows)} rows)",
                     "export the cookies in Netscape format (a 'cookies.txt' browser extension, or yt-dlp "
                     "--cookies-from-browser BROWSER --cookies FILE)")
    now = dt.datetime.now().timestamp() if now is None else now
    youtube = [r for r in rows if r[0].lstrip(".").endswith("youtube.com")]
    live = [r for r in youtube if r[4] in ("", "0") or (r[4].isdigit() and int(r[4]) > now)]
    detail = f"{path}: {len(rows)} cookies, {len(youtube)} for youtube.com ({len(youtube) - len(live)} expired)"
    if not live:
        return Check("cookies", "warn", detail, "export fresh cookies from a browser signed in to YouTube")
    return Check("cookies", "ok", detail)


# ------------------------------------------------------------------------------------------------ torch, GPU, weights


def torch_pair_check(torch_version: str, torchvision_version: str, cuda: str | None) -> Check:
    """torch and torchvision must be releases made for each other (torchvision 0.(m + 15) for torch 2.m)."""
    t = re.match(r"^(\d+)\.(\d+)", torch_version)
    v = re.match(r"^(\d+)\.(\d+)", torchvision_version)
    build = f"CUDA {cuda}" if cuda else "CPU-only build"
    detail = f"torch {torch_version}, torchvision {torchvision_version} ({build})"
    if not t or not v:
        return Check("torch", "warn", f"{detail}: cannot read the versions", "")
    want = (0, int(t.group(2)) + TORCHVISION_MINOR_OFFSET) if t.group(1) == "2" else None
    if want is not None and (int(v.group(1)), int(v.group(2))) != want:
        return Check("torch", "missing", f"{detail}: torchvision {want[0]}.{want[1]} is the release for this torch",
                     f"pip install 'torchvision=={want[0]}.{want[1]}.*'")
    return Check("torch", "ok", detail)


def check_torch() -> Check:
    try:
        import torch
        import torchvision
    except ImportError as exc:
        return Check("torch", "missing", f"cannot import {exc.name or 'torch'}",
                     "pip install torch torchvision (the versions in the README)")
    return torch_pair_check(torch.__version__, torchvision.__version__, torch.version.cuda)


def check_cuda() -> Check:
    """CUDA devices torch can use, with their memory."""
    try:
        import torch
    except ImportError:
        return Check("cuda", "missing", "torch is not installed", "pip install torch (the version in the README)")
    if not torch.cuda.is_available():
        build = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA device is visible"
        return Check("cuda", "missing", build, "a machine with an NVIDIA GPU and a CUDA build of torch (the "
                                               "default torch wheels on Linux), or train with --preset cpu-small")
    devices = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        devices.append(f"cuda:{i} {props.name} {props.total_memory / 2**30:.0f} GiB")
    return Check("cuda", "ok", "; ".join(devices))


def check_weights() -> Check:
    """torchvision's ImageNet ResNet-18 in its cache, intact (the sha256 prefix in its name)."""
    from pipelines.weights import cache_dir, find_cached, hash_problem

    path = find_cached()
    if path is None:
        return Check("weights", "missing", f"no ImageNet ResNet-18 in torchvision's cache ({cache_dir()})",
                     "ccs-data fetch-weights (downloads them there, hash-checked)")
    problem = hash_problem(path)
    if problem is not None:
        return Check("weights", "missing", f"damaged: {problem}",
                     f"delete {path} and run ccs-data fetch-weights")
    return Check("weights", "ok", f"{path} (hash matches its name)")


# ------------------------------------------------------------------------------------------------ folders


def existing_ancestor(path: Path) -> Path:
    """``path`` or the nearest folder above it that exists (where it would be created)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: Path, option: str = "--root") -> Check:
    """The folder (or the folder it would be created in) takes a new file; ``option`` is the flag that names it."""
    base = existing_ancestor(folder)
    if not base.is_dir():
        return Check("writable", "missing", f"{folder}: {base} is a file, not a folder", f"choose another {option}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ccs-doctor-", dir=base)
    except OSError as exc:
        return Check("writable", "missing", f"{folder}: cannot write in {base} ({exc.strerror or exc})",
                     f"make {base} writable by this user or choose another {option}")
    os.close(fd)
    os.unlink(tmp)
    where = "writable" if base == Path(os.path.abspath(folder)) else f"will be created in {base} (writable)"
    return Check("writable", "ok", f"{folder}: {where}")


def check_disk(folder: Path, need_bytes: int, basis: str = "", option: str = "--root") -> Check:
    """Free space where ``folder`` lives against ``need_bytes`` (an estimate; ``basis`` says how it was made)."""
    base = existing_ancestor(folder)
    free = shutil.disk_usage(base).free
    have = f"{free / GB:.1f} GB free at {base}"
    if not need_bytes:
        return Check("disk", "ok", f"{have}{'; ' + basis if basis else ''}")
    detail = f"{have}, about {need_bytes / GB:.1f} GB needed ({basis})" if basis else \
        f"{have}, about {need_bytes / GB:.1f} GB needed"
    if free < need_bytes:
        return Check("disk", "missing", detail, f"free some space or choose a {option} on a larger disk")
    return Check("disk", "ok", detail)
