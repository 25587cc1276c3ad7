"""Stand-ins for torchvision's published ResNet-18 weights: a real ResNet-18 state dict (seeded random weights)
saved under torchvision's naming, ``resnet18-<first 8 hex of its sha256>.pth``, and served on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torchvision

from pipelines.serve import start_server, stop


def make_resnet18_file(folder: Path, seed: int = 0) -> Path:
    """A ResNet-18 state dict named as torchvision names its weights (the name promises the file's hash)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tmp = folder / "resnet18.tmp"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = folder / f"resnet18-{digest[:8]}.pth"
    tmp.replace(path)
    return path


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder`` on a free loopback port (Range support); yields its base URL."""
    server, thread, port = start_server(folder, port=0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server, thread)
