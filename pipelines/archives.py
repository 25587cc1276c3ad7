"""Safe extraction of tar archives (FAIR-Play's are the ones the project downloads).

Extraction accepts only regular-file members that the caller's ``accept`` maps to a path; absolute names and ``..``
are treated as a hostile archive (error), links and other special members are skipped, and every file is written
to a temporary name and renamed, so a crash never leaves a truncated member under its final name.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipelines.io import atomic_output

CHUNK = 1 << 20


class ArchiveError(RuntimeError):
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
) -> ExtractResult:
    """Extract regular files of ``archive`` into ``target``: ``accept(name)`` gives each normalised member name's
    path under ``target`` (usually the name itself), or None to skip it.

    Links, devices, directories and unexpected names are skipped (and listed in the result); an absolute name or
    one with ``..`` raises :class:`ArchiveError` before anything of that member is written.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    result = ExtractResult()
    try:
        tf = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
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
                _extract_file(tf, member, out)
                result.extracted.append(dest_name)
                if on_member is not None:
                    on_member(dest_name)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise ArchiveError(f"{archive}: archive is damaged ({exc})") from None
    return result


def _extract_file(tf: tarfile.TarFile, member: tarfile.TarInfo, out: Path) -> None:
    src = tf.extractfile(member)
    if src is None:  # pragma: no cover - isfile() members always have data
        raise ArchiveError(f"member {member.name!r} has no data")
    with atomic_output(out) as fh:
        shutil.copyfileobj(src, fh, CHUNK)
