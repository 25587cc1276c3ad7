"""Model and training configuration (SPEC 7-8); the defaults are the released code's recipe (``official``).

A **recipe** names the computations that differ between the released code and the paper's text
(docs/FIDELITY.md): ``official`` (the default: what the published numbers were computed with) or ``paper-text``
(the paper's equations where they differ). It sets the loss forms (``ccstereo.losses.LOSS_FORMS``) and the
evaluation hop (:func:`recipe_hop`); every checkpoint, run and report records it.

Two presets: ``paper`` (the published sizes) and ``cpu-small`` (smaller frames and batch, random visual init, higher
visual learning rate, SCL from step 100, validation hop 10,080) so that a few minutes on 2 CPU cores learn the
synthetic world.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ccstereo.constants import CROP_HEIGHT, CROP_WIDTH, OFFICIAL_HOP_SAMPLES, PAPER_HOP_SAMPLES
from pipelines.contract import FRAME_HEIGHT, FRAME_WIDTH

ARCHS = ("ccstereo", "mono2binaural", "mono-mono")
LOSSES = ("mse", "rec")
PRESETS = ("paper", "cpu-small")
RECIPES = ("official", "paper-text")
SAMPLERS = ("epoch", "stream")  # epoch: each clip once per epoch (released); stream: K segments per clip read
LR_SCHEDULES = ("poly", "step")  # poly: CCStereo's polynomial decay; step: 2.5D Visual Sound's x0.94 every 10 epochs
_RECIPE_HOPS = {"official": OFFICIAL_HOP_SAMPLES, "paper-text": PAPER_HOP_SAMPLES}


def check_recipe(recipe: str) -> str:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
    return recipe


def recipe_hop(recipe: str) -> int:
    """The evaluation (and validation) hop of a recipe: released int(0.1 x 10,080) = 1,008, paper text 0.1 s.
    Both recipes zero-pad the last window past the end (the paper does not say; the released code does)."""
    return _RECIPE_HOPS[check_recipe(recipe)]


@dataclass(frozen=True)
class ModelConfig:
    """What is needed to rebuild a network and to feed it at inference (stored in every checkpoint).

    The Table 5 ladder switches live here too (``avad``, ``loss``, ``scl_weight``) so that a checkpoint says
    which rung it is; TDSS is an inference option.
    """

    arch: str = "ccstereo"
    avad: bool = True
    loss: str = "rec"  # "mse": l_MSE only; "rec": l_MSE + apm_weight * l_APM + phs_weight * l_PHS
    apm_weight: float = 0.005  # zeta
    phs_weight: float = 1.0  # eta
    scl_weight: float = 0.1  # lambda; 0 switches SCL off (and skips the previous frame)
    scl_temperature: float = 0.1
    resize: tuple[int, int] = (FRAME_HEIGHT, FRAME_WIDTH)  # (H, W) of the frame before cropping
    crop: tuple[int, int] = (CROP_HEIGHT, CROP_WIDTH)  # (H, W) fed to the network
    visual_init: str = "imagenet"  # "imagenet" | "random" | path to a ResNet-18 state dict
    fusion_dim: int = 128
    attention_heads: int = 8
    aspp_hidden: int = 256
    aspp_dilations: tuple[int, int, int] = (6, 12, 18)
    # The released CCStereo's two details (issue 16): its ASPP activations are LeakyReLU(0.01), and its last
    # 256 -> 257 mask resize is bilinear with align_corners=True (arch "ccstereo" only). Checkpoints written before
    # these fields existed were built with 0.2 / False (ccstereo.checkpoint fills those in when loading them).
    aspp_negative_slope: float = 0.01
    mask_align_corners: bool = True
    unet_channels: tuple[int, int, int, int, int] = (16, 32, 64, 128, 128)
    # Initial learned positions (released: the fusion's are nn.Embedding tables, N(0, 1); AVAD's 0.02 x randn)
    fusion_position_std: float = 1.0
    avad_position_std: float = 0.02

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r} (known: {', '.join(ARCHS)})")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r} (known: {', '.join(LOSSES)})")
        for name in ("resize", "crop"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 2 or min(value) < 32:
                raise ValueError(f"{name} must be (H, W) with both >= 32, got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        if self.crop[0] > self.resize[0] or self.crop[1] > self.resize[1]:
            raise ValueError(f"crop {self.crop} larger than resize {self.resize}")
        for name in ("aspp_dilations", "unet_channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.fusion_dim % self.attention_heads:
            raise ValueError("fusion_dim must be divisible by attention_heads")

    @property
    def visual_grid(self) -> tuple[int, int]:
        """(H, W) of the ResNet-18 feature map for a ``crop`` input: five stride-2 stages, each ceil(n / 2)."""
        h, w = self.crop
        for _ in range(5):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are plain strings so the config serialises to JSON as is."""

    root: str = ""
    dataset: str = "fair-play"
    protocol: str = "5-split"
    split: str = "1"
    out: str = "runs/ccstereo"
    preset: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 400  # an epoch = one random segment per training clip (SPEC 8)
    max_steps: int | None = None  # overrides the epoch count; also the horizon of the learning-rate decay
    stop_after: int | None = None  # stop (as if killed) after this many steps; resume continues the schedule
    batch_size: int = 128  # global batch, split over ranks
    recipe: str = "official"  # "official" (released code) | "paper-text" (the paper's equations); RECIPES
    sampler: str = "epoch"  # "epoch" (each clip once per epoch, released) | "stream" (K per clip read, faster)
    samples_per_clip: int = 4  # sampler "stream": K segments drawn from each clip read (one tar read feeds K)
    shuffle_buffer: int = 2048  # sampler "stream"
    num_workers: int = 0  # DataLoader worker processes per rank (0: in-process)
    lr_visual: float = 5e-5  # the visual network f_phi (ResNet-18 trunk + ASPP; 2.5D: the trunk)
    lr_other: float = 5e-4  # everything else (audio U-Net, fusion, AVAD)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    lr_schedule: str = "poly"  # LR_SCHEDULES
    poly_power: float = 0.9
    lr_step_epochs: int = 10  # lr_schedule "step": multiply by lr_step_factor every this many epochs
    lr_step_factor: float = 0.94
    grad_clip: float | None = None
    # SCL joins the loss at this step (0: from the start, as released). Before it the step skips the previous
    # frame's pass and the shuffled fusion; the data stream is the same either way (it always reads both frames).
    scl_start_step: int = 0
    precision: str = "fp32"  # "fp32" | "bf16" (autocast)
    val_every_epochs: int = 5  # the official code validates every 5 epochs
    val_hop: int | None = None  # None: the recipe's hop (recipe_hop); a larger hop makes validation cheaper
    val_tdss: bool = True  # TDSS in the selection evaluation (released: always; the Table 5 Baseline: off)
    select_on: str = "val"  # "test" only to mimic the official code; recorded in the metadata
    checkpoint_every: int = 500  # steps between last.pt saves (also written at every validation and the end)
    log_every: int = 10
    seed: int = 0
    threads: int | None = None
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.select_on not in ("val", "test"):
            raise ValueError(f"select_on must be val or test, got {self.select_on!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        check_recipe(self.recipe)
        for name, value, known in (("sampler", self.sampler, SAMPLERS), ("lr_schedule", self.lr_schedule, LR_SCHEDULES)):
            if value not in known:
                raise ValueError(f"{name} must be one of {', '.join(known)}, got {value!r}")
        if self.batch_size < 1 or self.samples_per_clip < 1 or self.epochs < 1 or self.lr_step_epochs < 1:
            raise ValueError("batch_size, samples_per_clip, epochs and lr_step_epochs must be >= 1")
        if self.scl_start_step < 0:
            raise ValueError(f"scl_start_step must be >= 0, got {self.scl_start_step}")
        object.__setattr__(self, "betas", tuple(self.betas))

    @property
    def eval_hop(self) -> int:
        """The hop of the full-clip validation: ``val_hop`` or the recipe's."""
        return self.val_hop if self.val_hop is not None else recipe_hop(self.recipe)

    def to_dict(self) -> dict[str, Any]:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config fields: {sorted(unknown)} (written by another version)")
        model = ModelConfig.from_dict(d.pop("model"))
        return cls(model=model, **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def preset(name: str, model_overrides: dict[str, Any] | None = None, **train_overrides: Any) -> TrainConfig:
    """The named preset with overrides applied (``None`` values are ignored, so CLI defaults pass through)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    model_kw: dict[str, Any] = {}
    train_kw: dict[str, Any] = {"preset": name}
    if name == "cpu-small":
        # Measured on the synthetic world (BENCHMARKS.md, "ccs-train cpu-small"): small frames keep the ResNet
        # cheap, a random trunk needs the higher learning rate, K samples per clip keep the tar reads cheap.
        model_kw.update(resize=(68, 136), crop=(64, 128), visual_init="random")  # crop margin 6%, as 448 of 480
        # SCL on (weight 0.1, both recipes' forms) from step 100. Switched on at step 0 it wins both forms within
        # ~40 steps by a shortcut that leaves the picture out: the shuffled copy is told apart without the sound and
        # the instance through the audio that anchor and positive share, the fused vector stops depending on the
        # frame and the output ignores it (Mono-Mono level after 200 steps). Started after 100 steps of
        # reconstruction, the network keeps using the picture (BENCHMARKS.md, "Recipes and SCL on the synthetic
        # world"; benchmarks/scl_probe.py). The paper preset starts SCL at step 0, as released.
        # val_hop 10,080 (windows tiling the clip): a hop-1,008 validation of the 30 val clips cost as much as
        # ~60 training steps on 2 CPU cores; ``--val-hop`` restores the recipe's.
        train_kw.update(
            batch_size=16, samples_per_clip=8, shuffle_buffer=256, lr_visual=5e-4, lr_other=5e-4,
            epochs=40, val_every_epochs=10, checkpoint_every=100, scl_start_step=100, val_hop=10_080,
        )
    model_kw.update({k: v for k, v in (model_overrides or {}).items() if v is not None})
    train_kw.update({k: v for k, v in train_overrides.items() if v is not None})
    return TrainConfig(model=ModelConfig(**model_kw), **train_kw)
