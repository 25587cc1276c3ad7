"""Building blocks shared by CCStereo and the Mono2Binaural baseline (SPEC 7): the ResNet-18 trunk, the audio U-Net
encoder and mask decoder, and the audio-side initialisation.

Both networks use a U-Net over the mono spectrogram ``[B, 2, 257, 64]``: five conv 4x4 / stride 2 steps down, four
transposed-conv steps up with skips, and a last transposed conv to a complex mask in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ccstereo.constants import N_FREQ, N_SEGMENT_FRAMES
from pipelines.weights import cache_dir, find_cached

AUDIO_INPUT_HW = (N_FREQ, N_SEGMENT_FRAMES)  # (257, 64)


# ----------------------------------------------------------------------------------------------- visual side
def find_imagenet_resnet18() -> Path | None:
    """torchvision's cached ImageNet ResNet-18 (``<torch hub dir>/checkpoints/resnet18-*.pth``), if present."""
    return find_cached()


def resnet18_weights_path(init: str) -> Path:
    """Where the ``init`` weights ("imagenet" or a state-dict path) are; a clear error when they are not there."""
    if init == "imagenet":
        path = find_imagenet_resnet18()
        if path is None:
            raise FileNotFoundError(
                f"ImageNet ResNet-18 weights not found in torchvision's cache ({cache_dir()}/resnet18-*.pth). "
                "Download them with `ccs-data fetch-weights`, pass their path (--visual-init PATH), or train "
                "from scratch with --visual-init random."
            )
        return path
    path = Path(init)
    if not path.is_file():
        raise FileNotFoundError(f"visual init weights {path} do not exist")
    return path


def resnet18_trunk(init: str) -> nn.Sequential:
    """ResNet-18 without avgpool/fc; ``init`` = "imagenet" (torchvision cache), "random", or a state-dict path.

    Never downloads: there may be no internet where this runs.
    """
    net = torchvision.models.resnet18(weights=None)
    if init != "random":
        path = resnet18_weights_path(init)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(f"{path} is not a ResNet-18 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)


# ------------------------------------------------------------------------------------------------ audio side
def down_block(cin: int, cout: int) -> nn.Sequential:
    """U-Net encoder step: conv 4x4 stride 2 + BN + LeakyReLU(0.2)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def match_size(x: torch.Tensor, hw: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of a feature map to ``hw`` (skips and the final mask); identity when sizes agree."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=align_corners)


class AudioEncoder(nn.Module):
    """Five down blocks; returns every stage's output (the last one is the bottleneck)."""

    def __init__(self, channels: tuple[int, ...], cin: int = 2):
        super().__init__()
        ins = (cin,) + tuple(channels[:-1])
        self.blocks = nn.ModuleList(down_block(i, o) for i, o in zip(ins, channels))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


def encoder_shapes(channels: tuple[int, ...], hw: tuple[int, int] = AUDIO_INPUT_HW) -> list[tuple[int, int]]:
    """(H, W) after each conv 4x4 / stride 2 / pad 1 stage: floor(n / 2)."""
    out, (h, w) = [], hw
    for _ in channels:
        h, w = h // 2, w // 2
        out.append((h, w))
    return out


class UpBlock(nn.Module):
    """Decoder step: transposed conv 4x4 stride 2 + norm + ReLU.

    The norm is BN, or a visually conditioned norm (CCStereo's AVAD) called as ``norm(x, visual)``: the block calls
    it that way whenever it is given the visual feature.
    """

    def __init__(self, cin: int, cout: int, conditioned_norm: nn.Module | None = None):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        self.norm = conditioned_norm if conditioned_norm is not None else nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, visual: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv(x)
        x = self.norm(x) if visual is None else self.norm(x, visual)
        return F.relu(x)


class MaskDecoder(nn.Module):
    """f_psi: four UpBlocks with U-Net skips, a last transposed conv + sigmoid; mask = 2 * sigmoid - 1.

    ``first_norm`` (AVAD) replaces the BN of the first UpBlock and receives the visual feature.
    ``mask_align_corners`` is the bilinear ``align_corners`` of the last 256 -> 257 resize of the mask (CCStereo
    passes ModelConfig.mask_align_corners; Mono2Binaural keeps False).
    """

    def __init__(
        self, bottleneck_in: int, channels: tuple[int, ...], first_norm: nn.Module | None = None,
        mask_align_corners: bool = False,
    ):
        super().__init__()
        self.mask_align_corners = mask_align_corners
        c1, c2, c3, c4, c5 = channels
        self.conditioned = first_norm is not None
        self.ups = nn.ModuleList([
            UpBlock(bottleneck_in, c4, first_norm), UpBlock(2 * c4, c3), UpBlock(2 * c3, c2), UpBlock(2 * c2, c1),
        ])
        self.last = nn.ConvTranspose2d(2 * c1, 2, 4, 2, 1)

    def forward(self, bottleneck: torch.Tensor, skips: list[torch.Tensor], visual: torch.Tensor | None = None) -> torch.Tensor:
        """``skips`` = encoder outputs 4, 3, 2, 1 (deepest first)."""
        x = bottleneck
        for i, (up, skip) in enumerate(zip(self.ups, skips)):
            x = up(x, visual if i == 0 and self.conditioned else None)
            x = torch.cat([x, match_size(skip, x.shape[-2:])], dim=1)
        mask = 2 * torch.sigmoid(self.last(x)) - 1
        return match_size(mask, AUDIO_INPUT_HW, self.mask_align_corners)


def init_audio_side(module: nn.Module) -> None:
    """Conv/linear weights N(0, 0.02), BN weights N(1, 0.02), biases 0 (SPEC 7); learned positions are set by
    ``ccstereo.model.init_positions``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
