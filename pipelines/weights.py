"""The ImageNet ResNet-18 weights the ``paper`` preset starts its visual trunk from (``--visual-init imagenet``):
where torchvision keeps them, whether a copy there is intact, and ``ccs-data fetch-weights``, the one command that
downloads them.

torchvision names a published weight file ``<name>-<hash prefix>.pth``, the prefix being the start of the file's
sha256; torch.hub refuses a download whose digest does not start with it. This module keeps that convention: the
expected prefix is read from the file name of the URL, so the default URL (the one the installed torchvision
publishes for ``ResNet18_Weights.IMAGENET1K_V1``) is checked against its published hash, and a test can serve other
weights on loopback under their own name. The file goes to ``<torch hub dir>/checkpoints/``, where torchvision
itself would put it (``$TORCH_HOME`` moves it), so ``--visual-init imagenet`` finds it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from pipelines.errors import InputError, NetworkError
from pipelines.http import DownloadError, download_with_resume, part_path
from pipelines.io import sha256_file

URL_ENV = "CCS_RESNET18_URL"  # overrides the default URL (tests serve weights on loopback)
WEIGHTS_NAME = re.compile(r"^resnet18-([0-9a-f]{8,64})\.pth$")  # torchvision's name: resnet18-<sha256 prefix>.pth
STAGING_SUFFIX = ".download"  # the download's own name until its hash is checked (a bad file never has the real name)


class WeightsError(InputError):
    """The weights at a URL cannot be used (a name that promises no hash, a download that does not match it, a URL
    that answers 404); the message names the URL or file and the reason."""


class WeightsUnreachable(NetworkError):
    """The weights' server could not be reached or failed; the partial file is kept and the next run resumes."""


@dataclass(frozen=True)
class FetchedWeights:
    path: Path
    bytes: int
    sha256: str
    action: str  # "downloaded" | "already present"
    resumed_from: int  # bytes already on disk when the download started (0: fresh, or none needed)


def official_url() -> str:
    """The URL torchvision publishes for its ImageNet ResNet-18 weights (``ResNet18_Weights.IMAGENET1K_V1``)."""
    # lazy: torchvision costs about a second to import and most ccs-data commands never need it
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.url


def default_url() -> str:
    """``$CCS_RESNET18_URL`` when set, else :func:`official_url`."""
    return os.environ.get(URL_ENV) or official_url()


def cache_dir() -> Path:
    """``<torch hub dir>/checkpoints``: where torchvision keeps downloaded weights (and looks for them)."""
    import torch.hub  # lazy, as above

    return Path(torch.hub.get_dir()) / "checkpoints"


def find_cached(directory: Path | None = None) -> Path | None:
    """The ResNet-18 weight file in torchvision's cache (``resnet18-<prefix>.pth``), if there is one."""
    folder = cache_dir() if directory is None else directory
    if not folder.is_dir():
        return None
    hits = sorted(p for p in folder.iterdir() if WEIGHTS_NAME.match(p.name) and p.is_file())
    return hits[0] if hits else None


def hash_prefix(name: str) -> str:
    """The sha256 prefix a weight file's name promises (``resnet18-f37072fd.pth`` -> ``f37072fd``)."""
    m = WEIGHTS_NAME.match(name)
    if not m:
        raise WeightsError(f"{name!r} is not named like torchvision's weights (resnet18-<sha256 prefix>.pth)")
    return m.group(1)


def file_name_of(url: str) -> str:
    """The weight file's name from ``url`` (its last path component); http(s) URLs only."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise WeightsError(f"{url}: not an http(s) URL")
    name = unquote(parsed.path.rsplit("/", 1)[-1])
    hash_prefix(name)  # validates the name before it becomes a path
    return name


def prefix_mismatch(digest: str, name: str) -> str | None:
    """Why a file of sha256 ``digest`` is not the file ``name`` promises, or None when its digest starts with the
    name's hash prefix (torch.hub's check)."""
    prefix = hash_prefix(name)
    if digest.startswith(prefix):
        return None
    return f"sha256 {digest} does not start with {prefix}, the hash {name} promises"


def hash_problem(path: Path) -> str | None:
    """Why the weight file at ``path`` is not the file its name promises, or None when it is."""
    problem = prefix_mismatch(sha256_file(path), path.name)
    return None if problem is None else f"{path}: {problem}"


def fetch_weights(url: str | None = None, *, directory: Path | None = None, attempts: int = 5,
                  timeout: float = 60.0, on_bytes: Callable[[int], None] | None = None,
                  retry_wait_s: float = 1.0) -> FetchedWeights:
    """Download the ResNet-18 weights at ``url`` (default :func:`default_url`) into torchvision's cache.

    An intact file already there is kept (nothing is downloaded). The download goes through
    ``<name>.download.part`` (resumed with Range on the next call after an interruption), is checked against the
    hash prefix of its name, and only then gets the real name. A file whose hash does not match is deleted and
    :class:`WeightsError` says so; :class:`WeightsUnreachable` when the server cannot be reached.
    """
    url = url or default_url()
    name = file_name_of(url)
    dest = (cache_dir() if directory is None else directory) / name
    if dest.is_file():
        digest = sha256_file(dest)
        if prefix_mismatch(digest, name) is None:
            return FetchedWeights(dest, dest.stat().st_size, digest, "already present", 0)
    staging = dest.with_name(name + STAGING_SUFFIX)
    resumed_from = part_path(staging).stat().st_size if part_path(staging).is_file() else 0
    if not staging.is_file():  # a finished download that was never checked is checked now, not fetched again
        try:
            download_with_resume(url, staging, attempts=attempts, timeout=timeout, on_bytes=on_bytes,
                                 retry_wait_s=retry_wait_s)
        except DownloadError as exc:
            raise (WeightsUnreachable if exc.transient else WeightsError)(str(exc)) from None
    digest = sha256_file(staging)
    problem = prefix_mismatch(digest, name)
    if problem is not None:
        staging.unlink()
        raise WeightsError(f"{url}: {problem}; the download was deleted")
    os.replace(staging, dest)
    return FetchedWeights(dest, dest.stat().st_size, digest, "downloaded", resumed_from)
