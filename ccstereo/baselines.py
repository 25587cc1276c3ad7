"""Baselines (SPEC 7): Mono2Binaural (2.5D Visual Sound architecture) and Mono-Mono (diff = 0)."""

from __future__ import annotations

import torch
from torch import nn

from ccstereo.audio import complex_mul_ri
from ccstereo.blocks import AudioEncoder, MaskDecoder, encoder_shapes, init_audio_side, resnet18_trunk
from ccstereo.config import ModelConfig

M2B_CHANNELS = (64, 128, 256, 512, 512)
M2B_VISUAL_CHANNELS = 8


class Mono2Binaural(nn.Module):
    """2.5D Visual Sound: ResNet-18 -> 1x1 conv 512->8 + BN + ReLU, flattened (8 x 7 x 14 = 784 at 224x448) and
    tiled over the audio bottleneck, concatenated; U-Net 64/128/256/512/512; complex mask like CCStereo."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        grid = cfg.visual_grid
        self.visual_dim = M2B_VISUAL_CHANNELS * grid[0] * grid[1]
        self.trunk = resnet18_trunk(cfg.visual_init)
        self.visual_reduce = nn.Sequential(nn.Conv2d(512, M2B_VISUAL_CHANNELS, 1), nn.BatchNorm2d(M2B_VISUAL_CHANNELS), nn.ReLU())
        self.encoder = AudioEncoder(M2B_CHANNELS)
        self.decoder = MaskDecoder(M2B_CHANNELS[-1] + self.visual_dim, M2B_CHANNELS)
        self.bottleneck_hw = encoder_shapes(M2B_CHANNELS)[-1]
        init_audio_side(self.encoder)
        init_audio_side(self.decoder)

    def visual_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def forward(self, mono_spec: torch.Tensor, frame: torch.Tensor, return_features: bool = False, **_: object):
        feats = self.encoder(mono_spec)
        bottleneck = feats[-1]
        vis = self.visual_reduce(self.trunk(frame)).flatten(1)  # [B, 784]
        tiled = vis[:, :, None, None].expand(-1, -1, *bottleneck.shape[-2:])
        mask = self.decoder(torch.cat([bottleneck, tiled], dim=1), feats[-2::-1])
        diff = complex_mul_ri(mask, mono_spec)
        return {"diff": diff} if return_features else diff


class MonoMono(nn.Module):
    """No model: predicts diff = 0, i.e. L = R = mono / 2. Has no parameters to train."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, mono_spec: torch.Tensor, frame: torch.Tensor | None = None, return_features: bool = False, **_: object):
        diff = torch.zeros_like(mono_spec)
        return {"diff": diff} if return_features else diff
