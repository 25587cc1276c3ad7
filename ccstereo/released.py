"""The authors' released CCStereo model as a toolkit checkpoint (issue 16).

The released trainer saves ``best_model.pth`` = ``{"state_dict": model.state_dict()}`` with ``net_visual.*`` and
``net_audio.*`` keys (254 of them, 17,658,244 numbers for ResNet-18 at width 1). A Lightning ``.ckpt`` of its training
wrapper prefixes them with ``autoencoder.`` and adds the optical-flow network, the STFT-loss and mel buffers, which
inference does not use. :data:`MAPPING` says where every released weight goes in :class:`ccstereo.model.CCStereo`;
the network matches the released one once ``ModelConfig.aspp_negative_slope`` is 0.01 and
``mask_align_corners`` is True (the released values, and the defaults).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ccstereo.checkpoint import save_checkpoint
from ccstereo.config import ModelConfig, preset
from ccstereo.model import build_model
from ccstereo.provenance import git_commit
from pipelines.io import sha256_bytes

RELEASED_NOTE = "released CCStereo, FAIR-Play 5-split split 2, selected on test by the authors"
TRUST_FLAG = "--trust-pickle"
WRAPPER_PREFIXES = ("module.", "autoencoder.")  # DataParallel and the Lightning wrapper
N_ASPP_BRANCHES = 4  # the 1x1 and three dilated branches share the released map_bn

# How a released tensor becomes toolkit tensors:
#   same      the same tensor under the new name
#   embed     an nn.Embedding table [N, C] -> a learned position [1, N, C]
#   permute   [1, N, C] -> [1, C, N]
#   grid      [1, H*W, C] -> [1, C, H, W] (token t = h * W + w), H x W from the toolkit's tensor
#   branches  a BN over the 4 branches concatenated [4 * C] -> 4 BNs [C] ("{i}" in the target); a scalar (the
#             batch counter) is copied to all four
#   concat    several released tensors -> one, concatenated along dim 1 in the order of their rows
#   drop      not used by the released forward, or not part of the network

_AUDIO = "net_audio."
_ASPP = "net_visual.segment.aspp."
_AVAD = _AUDIO + "audionet_upconvlayer1.upnorm."
_AVAD_OURS = "decoder.ups.0.norm."

# (released key or prefix ending in "."), (toolkit key or prefix, None when dropped), conversion). A released key
# takes the row whose released name is the key or a prefix of it; what follows the prefix is kept.
MAPPING: tuple[tuple[str, str | None, str], ...] = (
    ("net_visual.backbone.feature_extraction.", "visual.trunk.", "same"),  # indices 0, 1, 4, 5, 6, 7 as ours
    (_ASPP + "map_convs.0.", "visual.head.branches.0.0.", "same"),
    (_ASPP + "map_convs.1.", "visual.head.branches.1.0.", "same"),
    (_ASPP + "map_convs.2.", "visual.head.branches.2.0.", "same"),
    (_ASPP + "map_convs.3.", "visual.head.branches.3.0.", "same"),
    (_ASPP + "map_bn.", "visual.head.branches.{i}.1.", "branches"),
    (_ASPP + "global_pooling_conv.", "visual.head.pooled.0.", "same"),
    (_ASPP + "global_pooling_bn.", "visual.head.pooled.1.", "same"),
    # red_conv(maps) + pool_red_conv(pooled) is one 1x1 conv over [maps, pooled]
    (_ASPP + "red_conv.weight", "visual.head.project.0.weight", "concat"),
    (_ASPP + "pool_red_conv.weight", "visual.head.project.0.weight", "concat"),
    (_ASPP + "red_bn.", "visual.head.project.1.", "same"),
    ("net_visual.segment.reduce.", None, "drop"),
    *((f"{_AUDIO}audionet_convlayer{n}.", f"encoder.blocks.{n - 1}.", "same") for n in range(1, 6)),
    (_AUDIO + "conv1x1_rgb.", "fusion.visual_proj.", "same"),
    (_AUDIO + "img_pos_embed.weight", "fusion.pos_visual", "embed"),
    (_AUDIO + "aud_pos_embed.weight", "fusion.pos_audio", "embed"),
    (_AUDIO + "transformer_cross_attention_layers.0.multihead_attn.", "fusion.cross.", "same"),
    (_AUDIO + "transformer_cross_attention_layers.0.norm.", "fusion.norms.0.", "same"),
    (_AUDIO + "transformer_self_attention_layers.0.self_attn.", "fusion.self_attn.", "same"),
    (_AUDIO + "transformer_self_attention_layers.0.norm.", "fusion.norms.1.", "same"),
    (_AUDIO + "transformer_ffn_layers.0.linear1.", "fusion.ffn.0.", "same"),
    (_AUDIO + "transformer_ffn_layers.0.linear2.", "fusion.ffn.2.", "same"),
    (_AUDIO + "transformer_ffn_layers.0.norm.", "fusion.norms.2.", "same"),
    *((f"{_AUDIO}audionet_upconvlayer{n}.upconv.", f"decoder.ups.{n - 1}.conv.", "same") for n in range(1, 5)),
    (_AVAD + "param_free_norm.", _AVAD_OURS + "norm.", "same"),
    (_AVAD + "visual_conv.", _AVAD_OURS + "visual_proj.", "same"),
    (_AVAD + "mlp_shared.0.", _AVAD_OURS + "shared.0.", "same"),
    (_AVAD + "mlp_gamma.", _AVAD_OURS + "alpha.", "same"),
    (_AVAD + "mlp_beta.", _AVAD_OURS + "beta.", "same"),
    (_AVAD + "pos_embed_v", _AVAD_OURS + "pos_visual", "permute"),
    (_AVAD + "pos_embed_a", _AVAD_OURS + "pos_audio", "grid"),
    (_AVAD + "attn_layer.", None, "drop"),
    (_AVAD + "flow_conv.", None, "drop"),
    *((f"{_AUDIO}audionet_upconvlayer{n}.upnorm.", f"decoder.ups.{n - 1}.norm.", "same") for n in range(2, 5)),
    (_AUDIO + "audionet_upconvlayer5.upconv.", "decoder.last.", "same"),
    # the Lightning wrapper's other members
    ("flow_model.", None, "drop"),
    ("sdstft.", None, "drop"),
    ("mel_scale.fb", None, "drop"),
)


@dataclass(frozen=True)
class ImportResult:
    out: Path
    source_sha256: str
    n_released: int  # released keys read (after the wrapper prefixes are stripped)
    dropped: tuple[str, ...]  # released keys deliberately left out
    n_converted: int  # toolkit keys written


def released_model_config() -> ModelConfig:
    """The ``paper`` preset's network with the released architecture details (stated even where they are the
    defaults, so that a change of default never changes what an imported checkpoint is)."""
    return dataclasses.replace(preset("paper").model, aspp_negative_slope=0.01, mask_align_corners=True)


def read_released(data: bytes, source: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The released state dict in a checkpoint file's bytes: ``{"state_dict": ...}`` or a bare state dict, with
    wrapper prefixes stripped. Only tensors are read unless ``trust_pickle`` (which runs the file's pickled code)."""
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        if trust_pickle or not _is_torch_archive(data):  # a torch archive the tensors-only reader refused
            raise ValueError(f"{source}: not a loadable torch checkpoint ({type(exc).__name__})") from None
        raise ValueError(f"{source}: holds pickled objects besides tensors (e.g. a Lightning .ckpt), so it needs full "
                         f"unpickling, which can run code from the file; pass {TRUST_FLAG} only for a file you "
                         "trust") from None
    except Exception as exc:  # a torn or foreign file: torch raises many kinds
        raise ValueError(f"{source}: not a loadable torch checkpoint ({type(exc).__name__})") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source}: no state dict of tensors (expected {{'state_dict': ...}} or a state dict)")
    return {_strip_wrappers(k): v for k, v in state.items()}


def _is_torch_archive(data: bytes) -> bool:
    """Whether ``data`` is torch.save's zip archive (a ``<name>/data.pkl`` member and its tensors)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key


def mapping_row(key: str) -> int | None:
    """The index of a released key's :data:`MAPPING` row (None: no row, an unknown key)."""
    for index, (released, _, _) in enumerate(MAPPING):
        if key == released or (released.endswith(".") and key.startswith(released)):
            return index
    return None


def convert_state(released: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
                  ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Released tensors -> (toolkit state dict, dropped released keys). ``target`` is the toolkit network's state
    dict (names and shapes). ValueError when a released key has no row or the result is not exactly ``target``'s
    keys and shapes."""
    out: dict[str, torch.Tensor] = {}
    pieces: dict[str, list[tuple[int, torch.Tensor]]] = {}
    dropped, unknown = [], []
    for key, tensor in released.items():
        index = mapping_row(key)
        if index is None:
            unknown.append(key)
            continue
        prefix, ours, how = MAPPING[index]
        if how == "drop":
            dropped.append(key)
            continue
        name = ours + key[len(prefix):]
        if how == "concat":
            pieces.setdefault(name, []).append((index, tensor))
        elif how == "branches":
            chunks = [tensor] * N_ASPP_BRANCHES if tensor.dim() == 0 else tensor.chunk(N_ASPP_BRANCHES, dim=0)
            out.update({name.format(i=i): chunk.clone() for i, chunk in enumerate(chunks)})
        else:
            out[name] = _reshape(how, tensor, target.get(name), key)
    if unknown:
        raise ValueError(f"{len(unknown)} released keys this converter does not know (first: {unknown[0]})")
    for name, parts in pieces.items():  # in MAPPING's order (red_conv, then pool_red_conv), whatever the file's
        try:
            out[name] = torch.cat([t for _, t in sorted(parts, key=lambda part: part[0])], dim=1)
        except RuntimeError:
            raise ValueError(f"the released parts of {name} do not fit together "
                             f"({[list(t.shape) for _, t in parts]})") from None
    missing = [k for k in target if k not in out]
    reshaped = [k for k in target if k in out and out[k].shape != target[k].shape]
    if missing or reshaped:
        first = missing[0] if missing else f"{reshaped[0]} {list(out[reshaped[0]].shape)}"
        raise ValueError(f"the released weights do not fill the toolkit network ({len(missing)} missing, "
                         f"{len(reshaped)} with another shape; first: {first})")
    return {k: out[k].contiguous() for k in target}, dropped


def _reshape(how: str, tensor: torch.Tensor, like: torch.Tensor | None, key: str) -> torch.Tensor:
    """One released tensor in the toolkit's layout (a wrong shape is left to the caller's shape check when it
    can be carried that far, else one ValueError naming ``key``)."""
    if how == "same":
        return tensor.clone()
    if how == "embed":
        return tensor.unsqueeze(0)
    if how in ("permute", "grid") and tensor.dim() == 3:
        tokens_last = tensor.permute(0, 2, 1)
        if how == "grid" and like is not None and like.numel() == tensor.numel():
            return tokens_last.reshape(like.shape)
        return tokens_last
    raise ValueError(f"released {key} {list(tensor.shape)} does not have the shape its conversion ({how}) needs")


def import_released(src: str | Path, dst: str | Path, *, trust_pickle: bool = False) -> ImportResult:
    """``ccs-bench import-released``: convert the released checkpoint ``src`` into the toolkit checkpoint ``dst``.

    The result loads with :func:`ccstereo.checkpoint.load_model`; its metadata names the source file's sha256 and
    where the weights come from (:data:`RELEASED_NOTE`).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"released checkpoint {src} does not exist")
    data = src.read_bytes()
    released = read_released(data, src, trust_pickle)
    cfg = released_model_config()
    network = build_model(dataclasses.replace(cfg, visual_init="random"))
    try:
        state, dropped = convert_state(released, network.state_dict())
    except ValueError as exc:
        raise ValueError(f"{src}: {exc}") from None
    network.load_state_dict(state)  # strict: the converted names and shapes are exactly the network's
    sha = sha256_bytes(data)
    meta = {
        "select_on": "test", "dataset": "fair-play", "protocol": "5-split", "split": "2", "preset": "paper",
        "provenance": {"source": RELEASED_NOTE, "source_file": src.name, "source_sha256": sha,
                       "converted_by": "ccs-bench import-released", "commit": git_commit(),
                       "dropped_keys": len(dropped)},
    }
    save_checkpoint(dst, {"model_config": cfg.to_dict(), "model": state, "meta": meta})
    return ImportResult(dst, sha, len(released), tuple(dropped), len(state))


def describe(result: ImportResult) -> str:
    """One line for the command's output."""
    return (f"wrote {result.out}: {result.n_converted} tensors from {result.n_released} released keys "
            f"({len(result.dropped)} unused ones dropped); source sha256 {result.source_sha256}; {RELEASED_NOTE}")
