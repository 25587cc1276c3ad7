"""Safe extraction of tar archives (FAIR-Play's are the ones the project downloads).

Extraction accepts only regular-file members that the caller's ``accept`` maps to a path; absolute names and ``..``
are treated as a hostile archive (error), links and other special members are skipped, and every file is written
to a temporary name and renamed, so a crash never leaves a truncated member under its final name. A member larger
than ``max_member_bytes``, members adding up to more than ``max_total_bytes`` or a member that would not fit on the
device are refused before their first byte is written (a small compressed archive can expand to any size). A
damaged archive (bad compressed data, a truncated tar) is one :class:`ArchiveError` naming the file.
"""

from __future__ import annotations

import lzma
import re
import shutil
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipelines.errors import InputError
from pipelines.io import atomic_output

CHUNK = 1 << 20
MAX_MEMBER_BYTES = 1 << 30  # defaults; a recipe sets the caps of what its archives hold
MAX_TOTAL_BYTES = 256 << 30
FREE_SPACE_MARGIN = 64 << 20  # left free on the device after a member is written

# what a damaged compressed stream or tar raises while it is read
_DAMAGE = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError)


class ArchiveError(InputError):
    """An extraction failed; the message names the file and the reason."""


@dataclass
class ExtractResult:
    extracted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (member name, why)


def normalise_member_name(name: str) -> str:
    """A tar member name relative to the extraction folder; raises :class:`ArchiveError` for a hostile one."""
    if name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"archive member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"archive member {name!r} points outside the extraction folder ('..')")
    return "/".join(parts)


def safe_extract(
    archive: str | Path,
    target: str | Path,
    *,
    accept: Callable[[str], str | None],
    on_member: Callable[[str], None] | None = None,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> ExtractResult:
    """Extract regular files of ``archive`` into ``target``: ``accept(name)`` gives each normalised member name's
    path under ``target`` (usually the name itself), or None to skip it.

    Links, devices, directories and unexpected names are skipped (and listed in the result); an absolute name or
    one with ``..``, and a member over the size caps (module docstring), raise :class:`ArchiveError` before
    anything of that member is written.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    result = ExtractResult()
    total = 0
    try:
        tf = tarfile.open(archive, mode="r:*")
    except _DAMAGE as exc:
        raise ArchiveError(f"{archive}: not a readable tar archive ({exc})") from None
    with tf:
        try:
            for member in tf:
                name = normalise_member_name(member.name)
                if member.isdir():
                    continue
                if member.issym() or member.islnk():
                    result.skipped.append((member.name, "link"))
                    continue
                if not member.isfile():
                    result.skipped.append((member.name, "not a regular file"))
                    continue
                dest_name = accept(name)
                if dest_name is None:
                    result.skipped.append((member.name, "unexpected member"))
                    continue
                out = target / normalise_member_name(dest_name)
                if not out.resolve().is_relative_to(root):  # defence in depth (e.g. a symlinked folder)
                    raise ArchiveError(f"{archive}: member {member.name!r} would be written outside {target}")
                total += member.size
                _check_size(archive, member, total, max_member_bytes, max_total_bytes, target)
                _extract_file(tf, member, out)
                result.extracted.append(dest_name)
                if on_member is not None:
                    on_member(dest_name)
        except _WriteFailed as exc:
            raise exc.error from None  # the target's problem (disk full, a file where a folder goes), as it is
        except _Damaged as exc:
            raise ArchiveError(f"{archive}: archive is damaged ({exc})") from None
        except _DAMAGE as exc:
            raise ArchiveError(f"{archive}: archive is damaged ({type(exc).__name__}: {exc})") from None
    return result


class _WriteFailed(Exception):
    """Writing a member failed (the error is the target folder's, not the archive's)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _check_size(archive: Path, member: tarfile.TarInfo, total: int, max_member: int, max_total: int,
                target: Path) -> None:
    """Refuse a member over the caps, or one that would not fit on the device, before writing it."""
    if member.size > max_member:
        raise ArchiveError(f"{archive}: member {member.name!r} declares {member.size} bytes, more than the "
                           f"{max_member} a member of this archive may have")
    if total > max_total:
        raise ArchiveError(f"{archive}: members add up to more than the {max_total} bytes this archive may hold "
                           f"(at {member.name!r})")
    free = shutil.disk_usage(target).free
    if member.size + FREE_SPACE_MARGIN > free:
        raise ArchiveError(f"{archive}: member {member.name!r} ({member.size} bytes) would not fit in the "
                           f"{free} bytes free under {target}")


def _extract_file(tf: tarfile.TarFile, member: tarfile.TarInfo, out: Path) -> None:
    src = tf.extractfile(member)
    if src is None:  # pragma: no cover - isfile() members always have data
        raise ArchiveError(f"member {member.name!r} has no data")
    try:
        with atomic_output(out) as fh:
            while block := _read(src):
                fh.write(block)
    except OSError as exc:  # creating, writing or renaming the member's file: reads raise _Damaged
        raise _WriteFailed(exc) from None


class _Damaged(Exception):
    """Reading a member's data failed: the archive is damaged."""

    def __init__(self, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")


def _read(src) -> bytes:
    try:
        return src.read(CHUNK)
    except _DAMAGE as exc:
        raise _Damaged(exc) from None
