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


# Model config fields added after checkpoints were first written, with the value every network built before them
# had (so an old checkpoint still rebuilds the network it was trained as, not today's default).
LEGACY_MODEL_CONFIG = {"aspp_negative_slope": 0.2, "mask_align_corners": False,
                       "fusion_position_std": 0.5, "avad_position_std": 0.5}  # positions: issue 12


def with_legacy_fields(model_config: dict[str, Any]) -> dict[str, Any]:
    """``model_config`` with the fields it predates (``LEGACY_MODEL_CONFIG``) filled in."""
    return {**LEGACY_MODEL_CONFIG, **model_config}


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's dict; its model configs carry every ``ModelConfig`` field (``with_legacy_fields``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a loadable checkpoint ({_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a ccstereo checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt)})")
    if not isinstance(ckpt.get("model_config"), dict) or not isinstance(ckpt.get("model"), dict):
        raise ValueError(f"{path}: checkpoint without a model config or model weights")
    ckpt["model_config"] = with_legacy_fields(ckpt["model_config"])
    if isinstance(ckpt.get("train_config"), dict) and isinstance(ckpt["train_config"].get("model"), dict):
        ckpt["train_config"] = {**ckpt["train_config"], "model": with_legacy_fields(ckpt["train_config"]["model"])}
    return ckpt


def state_dict_mismatch(expected: dict[str, torch.Tensor], given: dict[str, Any]) -> str | None:
    """What keeps ``given`` from loading strictly into a module whose state dict is ``expected`` (None: nothing)."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [f"{k} {list(given[k].shape)} instead of {list(v.shape)}" for k, v in expected.items()
                if k in given and (not isinstance(given[k], torch.Tensor) or given[k].shape != v.shape)]
    parts = [f"{len(names)} {what} (first: {names[0]})"
             for what, names in (("missing", missing), ("unexpected", unexpected), ("with another shape", reshaped))
             if names]
    return "; ".join(parts) or None


def load_weights(model: nn.Module, state: dict[str, Any], source: str | Path) -> None:
    """``model.load_state_dict(state)`` (strict), or one ValueError naming ``source`` and what does not match."""
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem is not None:
        raise ValueError(f"{source}: the weights do not match the model config ({problem})")
    model.load_state_dict(state)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The network of a checkpoint, on ``device`` and in eval mode: ``model(mono_spec, frame) -> diff_spec``.

    ``model.cfg`` is the stored ``ModelConfig`` and ``model.meta`` the checkpoint's metadata (provenance). The
    visual trunk is built with random init before the stored weights replace it, so loading never needs the
    ImageNet weights file.
    """
    ckpt = load_checkpoint(path, device)
    try:
        cfg = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad model config ({exc})") from None
    model = build_model(dataclasses.replace(cfg, visual_init="random"))
    load_weights(model, ckpt["model"], path)
    model.cfg = cfg
    model.meta = dict(ckpt.get("meta", {}))
    return model.to(device).eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
