"""CCStereo (SPEC 7): ResNet-18 + ASPP visual tokens, audio U-Net, cross-attention fusion, AVAD, complex mask.

Shapes at the paper's sizes (crop 224x448): frame [B,3,224,448] -> ResNet-18 [B,512,7,14] -> ASPP [B,128,7,14]
(98 visual tokens); mono spectrogram [B,2,257,64] -> encoder -> bottleneck [B,128,8,2] (16 audio tokens) ->
cross-attention with the visual tokens -> decoder (AVAD as the norm of its first layer) -> mask [B,2,257,64];
output = mask (x) STFT(mono) (complex product) = predicted STFT(L - R).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ccstereo.audio import complex_mul_ri
from ccstereo.baselines import Mono2Binaural, MonoMono
from ccstereo.blocks import AudioEncoder, MaskDecoder, encoder_shapes, init_audio_side, resnet18_trunk
from ccstereo.config import ModelConfig


# ----------------------------------------------------------------------------------------------- visual side
def conv_bn_act(cin: int, cout: int, kernel: int, dilation: int = 1, negative_slope: float = 0.01) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout),
        nn.LeakyReLU(negative_slope),
    )


class ASPP(nn.Module):
    """DeepLabV3-style atrous spatial pyramid pooling: 1x1, three dilated 3x3 and a global-pool branch.

    Every conv + BN is followed by LeakyReLU(``negative_slope``) (ModelConfig.aspp_negative_slope).
    """

    def __init__(
        self, cin: int = 512, hidden: int = 256, cout: int = 128, dilations: tuple[int, ...] = (6, 12, 18),
        negative_slope: float = 0.01,
    ):
        super().__init__()
        act = {"negative_slope": negative_slope}
        self.branches = nn.ModuleList(
            [conv_bn_act(cin, hidden, 1, **act)] + [conv_bn_act(cin, hidden, 3, d, **act) for d in dilations]
        )
        self.pooled = conv_bn_act(cin, hidden, 1, **act)
        self.project = conv_bn_act(hidden * (len(dilations) + 2), cout, 1, **act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        g = self.pooled(F.adaptive_avg_pool2d(x, 1))
        outs.append(g.expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class VisualEncoder(nn.Module):
    """f_phi: ResNet-18 trunk + ASPP head -> [B, 128, h, w] visual tokens."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.trunk = resnet18_trunk(cfg.visual_init)
        self.head = ASPP(512, cfg.aspp_hidden, cfg.fusion_dim, cfg.aspp_dilations, cfg.aspp_negative_slope)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(frame))


# ---------------------------------------------------------------------------------------- audio-visual side
class AVAD(nn.Module):
    """Audio-visual adaptive de-normalisation (paper eq. 4-5): out = BN(x) * (1 + alpha) + beta.

    alpha and beta come from a relevance map: the cosine similarity of every visual token (1x1 conv of the visual
    feature + a learned position) with every audio position of BN(x) (+ a learned position), shaped
    [B, n_visual, H, W], through a shared 5x5 conv + ReLU and two 5x5 conv heads.
    """

    def __init__(self, channels: int, visual_channels: int, n_visual: int, audio_hw: tuple[int, int], hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.visual_proj = nn.Conv2d(visual_channels, channels, 1)
        self.pos_audio = nn.Parameter(torch.zeros(1, channels, *audio_hw))
        self.pos_visual = nn.Parameter(torch.zeros(1, channels, n_visual))
        self.shared = nn.Sequential(nn.Conv2d(n_visual, hidden, 5, padding=2), nn.ReLU())
        self.alpha = nn.Conv2d(hidden, channels, 5, padding=2)
        self.beta = nn.Conv2d(hidden, channels, 5, padding=2)

    def relevance(self, normed: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        audio = F.normalize(normed + self.pos_audio, dim=1)  # [B, C, H, W]
        vis = F.normalize(self.visual_proj(visual).flatten(2) + self.pos_visual, dim=1)  # [B, C, N]
        return torch.einsum("bcn,bchw->bnhw", vis, audio)

    def forward(self, x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)
        h = self.shared(self.relevance(normed, visual))
        return normed * (1 + self.alpha(h)) + self.beta(h)


class CrossModalFusion(nn.Module):
    """f_CA: audio tokens attend to visual tokens, then self-attention and a feed-forward layer.

    Residual + LayerNorm after each of the three; learned positions on queries (audio) and keys (visual).
    """

    def __init__(self, dim: int, heads: int, n_audio: int, n_visual: int):
        super().__init__()
        self.visual_proj = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim), nn.ReLU())
        self.pos_audio = nn.Parameter(torch.zeros(1, n_audio, dim))
        self.pos_visual = nn.Parameter(torch.zeros(1, n_visual, dim))
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, audio_map: torch.Tensor, visual_map: torch.Tensor) -> torch.Tensor:
        """[B, C, h_a, w_a] audio, [B, C, h_v, w_v] visual -> fused [B, C, h_a, w_a]."""
        b, c, h, w = audio_map.shape
        a = audio_map.flatten(2).transpose(1, 2)  # [B, 16, C]
        v = self.visual_proj(visual_map).flatten(2).transpose(1, 2)  # [B, 98, C]
        x = self.norms[0](a + self.cross(a + self.pos_audio, v + self.pos_visual, v, need_weights=False)[0])
        q = x + self.pos_audio
        x = self.norms[1](x + self.self_attn(q, q, x, need_weights=False)[0])
        x = self.norms[2](x + self.ffn(x))
        return x.transpose(1, 2).reshape(b, c, h, w)


class CCStereo(nn.Module):
    """``model(mono_spec [B,2,257,64], frame [B,3,H,W]) -> diff_spec [B,2,257,64]``.

    With ``return_features=True`` it returns a dict: ``diff``, ``z`` (pooled fusion output, the SCL anchor) and,
    when ``prev_frame`` / ``shuffle_perm`` are given, ``z_pos`` (same audio, previous frame) and ``z_neg`` (same
    audio, visual tokens of the current frame spatially permuted by ``shuffle_perm``).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.unet_channels
        grid = cfg.visual_grid
        n_visual = grid[0] * grid[1]
        shapes = encoder_shapes(ch)
        self.visual = VisualEncoder(cfg)
        self.encoder = AudioEncoder(ch)
        self.fusion = CrossModalFusion(cfg.fusion_dim, cfg.attention_heads, shapes[-1][0] * shapes[-1][1], n_visual)
        if ch[-1] != cfg.fusion_dim:
            raise ValueError("the bottleneck width must equal fusion_dim")
        avad = AVAD(ch[3], cfg.fusion_dim, n_visual, shapes[3]) if cfg.avad else None
        self.decoder = MaskDecoder(ch[4], ch, avad, mask_align_corners=cfg.mask_align_corners)
        init_audio_side(self.encoder)
        init_audio_side(self.fusion)
        init_audio_side(self.decoder)
        init_positions(self, cfg)

    def visual_parameters(self) -> list[nn.Parameter]:
        """f_phi, trained at the visual learning rate: the ResNet-18 trunk and the ASPP head (released code, Fig. 2)."""
        return list(self.visual.parameters())

    def forward(
        self,
        mono_spec: torch.Tensor,
        frame: torch.Tensor,
        prev_frame: torch.Tensor | None = None,
        shuffle_perm: torch.Tensor | None = None,
        return_features: bool = False,
    ):
        feats = self.encoder(mono_spec)
        bottleneck = feats[-1]
        visual = self.visual(frame)
        # a pass of its own for the previous frame (released): batch-norm statistics over B frames each, not 2B
        prev_visual = self.visual(prev_frame) if prev_frame is not None else None
        fused = self.fusion(bottleneck, visual)
        mask = self.decoder(fused, feats[-2::-1], visual)
        diff = complex_mul_ri(mask, mono_spec)
        if not return_features:
            return diff
        out = {"diff": diff, "z": fused.mean(dim=(2, 3))}
        if prev_visual is not None:
            out["z_pos"] = self.fusion(bottleneck, prev_visual).mean(dim=(2, 3))
        if shuffle_perm is not None:
            flat = visual.flatten(2)[:, :, shuffle_perm].reshape(visual.shape)
            out["z_neg"] = self.fusion(bottleneck, flat).mean(dim=(2, 3))
        return out


def init_positions(model: CCStereo, cfg: ModelConfig) -> None:
    """Learned positions as released: the fusion's N(0, fusion_position_std) (nn.Embedding's N(0, 1)), AVAD's
    N(0, avad_position_std) (0.02 x randn)."""
    for p in (model.fusion.pos_audio, model.fusion.pos_visual):
        nn.init.normal_(p, 0.0, cfg.fusion_position_std)
    avad = model.decoder.ups[0].norm
    if isinstance(avad, AVAD):
        for p in (avad.pos_audio, avad.pos_visual):
            nn.init.normal_(p, 0.0, cfg.avad_position_std)


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network named by ``cfg.arch`` ("ccstereo", "mono2binaural", "mono-mono")."""
    if cfg.arch == "ccstereo":
        return CCStereo(cfg)
    if cfg.arch == "mono2binaural":
        return Mono2Binaural(cfg)
    if cfg.arch == "mono-mono":
        return MonoMono(cfg)
    raise ValueError(f"unknown arch {cfg.arch!r}")


def visual_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters trained with the visual learning rate (empty for Mono-Mono)."""
    fn = getattr(model, "visual_parameters", None)
    return fn() if fn is not None else []
