"""A fake released CCStereo checkpoint: every key and shape of the authors' ``best_model.pth`` (``--backbone 18
--dim_scale 1``), random values. Written from the facts in issue 16 (names, 254 keys, 17,658,244 numbers), not from
the converter's table (ccstereo.released.MAPPING)."""

from __future__ import annotations

import math

import torch
import torchvision

A = "net_audio."
ASPP = "net_visual.segment.aspp."
AVAD = A + "audionet_upconvlayer1.upnorm."
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
U = (16, 32, 64, 128, 128)  # the audio U-Net's widths
# Dropped keys whose shapes the issue does not give; these plausible ones (a DeepLab-style 1x1 conv 128 -> 48 + BN
# for ``reduce``, an 8-head attention of width 128, a 1x1 conv 128 -> 128) make the total of 17,658,244.
DROPPED = {
    "net_visual.segment.reduce.0.weight": (48, 128, 1, 1),
    **{f"net_visual.segment.reduce.1.{p}": (48,) for p in BN[:4]},
    "net_visual.segment.reduce.1.num_batches_tracked": (),
    AVAD + "attn_layer.in_proj_weight": (384, 128), AVAD + "attn_layer.in_proj_bias": (384,),
    AVAD + "attn_layer.out_proj.weight": (128, 128), AVAD + "attn_layer.out_proj.bias": (128,),
    AVAD + "flow_conv.weight": (128, 128, 1, 1), AVAD + "flow_conv.bias": (128,),
}


def _bn(prefix: str, c: int, affine: bool = True) -> dict[str, tuple[int, ...]]:
    names = BN if affine else BN[2:]
    return {prefix + n: (() if n == "num_batches_tracked" else (c,)) for n in names}


def _conv(prefix: str, cout: int, cin: int, k: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    return {prefix + "weight": (cout, cin, k, k), **({prefix + "bias": (cout,)} if bias else {})}


def _attention(prefix: str) -> dict[str, tuple[int, ...]]:
    return {prefix + "in_proj_weight": (384, 128), prefix + "in_proj_bias": (384,),
            prefix + "out_proj.weight": (128, 128), prefix + "out_proj.bias": (128,)}


def released_layout() -> dict[str, tuple[int, ...]]:
    """Every key of the released ``best_model.pth`` state dict and its shape."""
    layout: dict[str, tuple[int, ...]] = {}
    index = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}  # Sequential(children[:-2])
    for k, v in torchvision.models.resnet18(weights=None).state_dict().items():
        head, _, rest = k.partition(".")
        if head != "fc":
            layout[f"net_visual.backbone.feature_extraction.{index[head]}.{rest}"] = tuple(v.shape)
    layout.update(_conv(ASPP + "map_convs.0.", 256, 512, 1, bias=False))
    for i in (1, 2, 3):
        layout.update(_conv(f"{ASPP}map_convs.{i}.", 256, 512, 3, bias=False))
    layout.update(_bn(ASPP + "map_bn.", 1024))
    layout.update(_conv(ASPP + "global_pooling_conv.", 256, 512, 1, bias=False))
    layout.update(_bn(ASPP + "global_pooling_bn.", 256))
    layout.update(_conv(ASPP + "red_conv.", 128, 1024, 1, bias=False))
    layout.update(_conv(ASPP + "pool_red_conv.", 128, 256, 1, bias=False))
    layout.update(_bn(ASPP + "red_bn.", 128))
    for n, (cin, cout) in enumerate(zip((2, *U[:-1]), U), start=1):
        layout.update(_conv(f"{A}audionet_convlayer{n}.0.", cout, cin, 4))
        layout.update(_bn(f"{A}audionet_convlayer{n}.1.", cout))
    layout.update(_conv(A + "conv1x1_rgb.0.", 128, 128, 1))
    layout.update(_bn(A + "conv1x1_rgb.1.", 128))
    layout[A + "img_pos_embed.weight"] = (98, 128)
    layout[A + "aud_pos_embed.weight"] = (16, 128)
    layout.update(_attention(A + "transformer_cross_attention_layers.0.multihead_attn."))
    layout.update(_attention(A + "transformer_self_attention_layers.0.self_attn."))
    for part in ("transformer_cross_attention_layers", "transformer_self_attention_layers", "transformer_ffn_layers"):
        layout.update({f"{A}{part}.0.norm.weight": (128,), f"{A}{part}.0.norm.bias": (128,)})
    for lin in ("linear1", "linear2"):
        layout.update({f"{A}transformer_ffn_layers.0.{lin}.weight": (128, 128),
                       f"{A}transformer_ffn_layers.0.{lin}.bias": (128,)})
    # ConvTranspose2d weights are [in, out, k, k]; inputs after the first are the concatenated skips
    for n, (cin, cout) in enumerate(((128, 128), (256, 64), (128, 32), (64, 16), (32, 2)), start=1):
        layout[f"{A}audionet_upconvlayer{n}.upconv.weight"] = (cin, cout, 4, 4)
        layout[f"{A}audionet_upconvlayer{n}.upconv.bias"] = (cout,)
        if 2 <= n <= 4:
            layout.update(_bn(f"{A}audionet_upconvlayer{n}.upnorm.", cout))
    layout.update(_bn(AVAD + "param_free_norm.", 128, affine=False))
    layout.update(_conv(AVAD + "visual_conv.", 128, 128, 1))
    layout.update(_conv(AVAD + "mlp_shared.0.", 128, 98, 5))
    layout.update(_conv(AVAD + "mlp_gamma.", 128, 128, 5))
    layout.update(_conv(AVAD + "mlp_beta.", 128, 128, 5))
    layout[AVAD + "pos_embed_v"] = (1, 98, 128)
    layout[AVAD + "pos_embed_a"] = (1, 64, 128)
    layout.update(DROPPED)
    return layout


def fake_released(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values of the released layout: BN variances positive, batch counters integers."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in released_layout().items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(1000 + len(out), dtype=torch.long)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) <= 1:  # BN / LayerNorm scales near 1; biases and running means near 0
            out[key] = float(key.endswith("weight")) + 0.1 * torch.randn(shape, generator=g)
        elif "pos" in key:  # learned positions, at the scale of the tokens
            out[key] = 0.5 * torch.randn(shape, generator=g)
        else:
            out[key] = torch.randn(shape, generator=g) / math.prod(shape[1:]) ** 0.5
    return out
