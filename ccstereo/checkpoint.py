"""Checkpoints: plain dicts of tensors and primitives (``torch.load(..., weights_only=True)``) that carry the model
config, so :func:`load_model` rebuilds the network with no other input; plus every RNG state for exact resume."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ccstereo.config import ModelConfig
from ccstereo.model import build_model
from pipelines.io import atomic_write_bytes

FORMAT = "ccstereo-checkpoint/1"


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy's global and Python's ``random`` states, as loadable primitives."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (a killed run never leaves a torn checkpoint). It must hold ``model_config``
    (a dict) and ``model`` (a state dict)."""
    if "model_config" not in payload or "model" not in payload:
        raise ValueError("a checkpoint needs model_config and model")
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a loadable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a ccstereo checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt)})")
    return ckpt


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Rebuild the network of a checkpoint in eval mode -> (model, config, meta).

    The visual trunk is built with random init before the stored weights replace it, so loading never needs the
    ImageNet weights file.
    """
    ckpt = load_checkpoint(path, map_location)
    cfg = ModelConfig.from_dict(ckpt["model_config"])
    model = build_model(dataclasses.replace(cfg, visual_init="random"))
    model.load_state_dict(ckpt["model"])
    model.to(map_location).eval()
    return model, cfg, dict(ckpt.get("meta", {}))
