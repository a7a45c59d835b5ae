"""A compact UNet velocity network v_theta(x, t, y) for flow matching on small images.

The architecture follows the family of the guided-diffusion / facebookresearch
``flow_matching`` image example that the paper quantizes (Dhariwal & Nichol 2021; Lipman et
al. 2024, "Flow Matching Guide and Code"), scaled down so that an fp32 checkpoint stays under
12 MB:

* sinusoidal time embedding followed by a two-layer MLP, plus an optional class embedding
  (one extra "null" class for classifier-free guidance) added to it;
* residual blocks ``GroupNorm -> SiLU -> conv3x3 -> GroupNorm -> (1 + scale) h + shift ->
  SiLU -> dropout -> conv3x3`` with the scale/shift predicted from the embedding
  ("scale-shift norm"), and a 1x1 skip convolution when the width changes;
* multi-head self-attention blocks at the resolutions named in ``attention_resolutions``
  and in the middle block;
* strided-conv downsampling, nearest-neighbour upsampling, skip connections by concatenation.

All hyper-parameters live in the frozen :class:`UNetConfig`, which is stored in every
checkpoint's model card so that a model is rebuilt exactly from its card.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fmq_theory._util import check_positive_int
from fmq_theory.flow.velocity import ClassConditional, Velocity

__all__ = ["UNetConfig", "UNet", "conditioning_embedding", "guided_velocity", "timestep_embedding", "unet_adapter"]


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of :class:`UNet`.

    Attributes
    ----------
    in_channels : int
        Image channels (1 for MNIST).
    image_size : int
        Side of the square input; must be divisible by ``2 ** (len(channel_mult) - 1)``.
    base_channels : int
        Width of the first level; level ``i`` has ``base_channels * channel_mult[i]``.
    channel_mult : tuple of int
        Width multipliers, one per resolution level.
    num_res_blocks : int
        Residual blocks per level on the way down (one more on the way up).
    attention_resolutions : tuple of int
        Spatial sizes (e.g. ``(7,)``) at which self-attention follows the residual blocks.
    num_heads : int
        Attention heads.
    dropout : float
        Dropout inside residual blocks (training only).
    num_classes : int or None
        Number of classes for conditioning; ``None`` for an unconditional model. A
        conditional model has one extra embedding row, the null class ``num_classes``,
        used for classifier-free guidance.
    groups : int
        GroupNorm groups.
    """

    in_channels: int = 1
    image_size: int = 28
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (7,)
    num_heads: int = 4
    dropout: float = 0.1
    num_classes: int | None = 10
    groups: int = 8

    def __post_init__(self):
        for name in ("in_channels", "image_size", "base_channels", "num_res_blocks",
                     "num_heads", "groups"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name=name))
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        object.__setattr__(self, "attention_resolutions",
                           tuple(int(r) for r in self.attention_resolutions))
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"channel_mult must be positive ints, got {self.channel_mult!r}")
        if self.image_size % (2 ** (len(self.channel_mult) - 1)):
            raise ValueError(f"image_size {self.image_size} is not divisible by "
                             f"2**{len(self.channel_mult) - 1} (channel_mult={self.channel_mult})")
        for m in self.channel_mult:
            if (self.base_channels * m) % self.groups:
                raise ValueError(f"width {self.base_channels * m} is not divisible by "
                                 f"groups={self.groups}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "num_classes",
                           check_positive_int(self.num_classes, name="num_classes", allow_none=True))

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["attention_resolutions"] = list(self.attention_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown UNetConfig keys: {sorted(unknown)}")
        return cls(**d)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of times ``t`` (shape ``(B,)``, values in [0, 1]) -> ``(B, dim)``.

    Uses ``1000 t`` as the phase argument, so the frequencies span the same range as the
    integer diffusion steps of Ho et al. (2020).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device,
                                                           dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def conditioning_embedding(t, y: torch.Tensor | None, *, batch: int, width: int, time_mlp: nn.Module,
                           label_emb: nn.Module | None, num_classes: int | None,
                           device: torch.device) -> torch.Tensor:
    """``time_mlp(timestep_embedding(t, width))`` plus the class embedding of ``y``: shape ``(B, d)``.

    A scalar ``t`` is broadcast to the batch.  A class-conditional model (``label_emb`` set)
    reads a missing ``y`` as the null class ``num_classes`` (classifier-free guidance); an
    unconditional model refuses a ``y``.  Shared by :class:`UNet` and the DiT.
    """
    t = torch.as_tensor(t, device=device, dtype=torch.float32)
    if t.ndim == 0:
        t = t.expand(batch)
    emb = time_mlp(timestep_embedding(t, width))
    if label_emb is not None:
        if y is None:
            y = torch.full((batch,), num_classes, dtype=torch.long, device=emb.device)
        emb = emb + label_emb(y)
    elif y is not None:
        raise ValueError("y must be None for an unconditional model (num_classes=None)")
    return emb


class ResBlock(nn.Module):
    """Residual block with scale-shift GroupNorm conditioning on the embedding."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over spatial positions, residual."""

    def __init__(self, channels: int, num_heads: int, groups: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels {channels} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, hgt * wid))
        q, k, v = qkv.reshape(b, 3, self.num_heads, c // self.num_heads, hgt * wid).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2),
                                             v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(b, c, hgt * wid)
        return x + self.proj(out).reshape(b, c, hgt, wid)


class UNet(nn.Module):
    """Velocity network ``v(x, t, y)`` of shape-preserving type ``(B, C, H, W) -> (B, C, H, W)``.

    Parameters
    ----------
    config : UNetConfig
        Architecture; see its attributes.

    Notes
    -----
    ``forward(x, t, y=None)``: ``x`` is ``(B, C, H, W)``, ``t`` is ``(B,)`` or a scalar in
    [0, 1], ``y`` is ``(B,)`` int64 labels (``num_classes`` = null class) or ``None`` (all
    null) for a conditional model; it must be ``None`` for an unconditional one.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = config
        ch = config.base_channels
        emb_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = (nn.Embedding(config.num_classes + 1, emb_dim)
                          if config.num_classes is not None else None)
        self.input_conv = nn.Conv2d(config.in_channels, ch, 3, padding=1)

        def block(cin, cout, res):
            layers = nn.ModuleList([ResBlock(cin, cout, emb_dim, config.dropout, config.groups)])
            if res in config.attention_resolutions:
                layers.append(AttentionBlock(cout, config.num_heads, config.groups))
            return layers

        self.down = nn.ModuleList()
        skips = [ch]
        cur, res = ch, config.image_size
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                self.down.append(block(cur, ch * mult, res))
                cur = ch * mult
                skips.append(cur)
            if level != len(config.channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(cur, cur, 3, stride=2, padding=1)]))
                res //= 2
                skips.append(cur)
        self.mid1 = ResBlock(cur, cur, emb_dim, config.dropout, config.groups)
        self.mid_attn = AttentionBlock(cur, config.num_heads, config.groups)
        self.mid2 = ResBlock(cur, cur, emb_dim, config.dropout, config.groups)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks + 1):
                layers = block(cur + skips.pop(), ch * mult, res)
                cur = ch * mult
                if level and i == config.num_res_blocks:
                    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    layers.append(nn.Conv2d(cur, cur, 3, padding=1))
                    res *= 2
                self.up.append(layers)
        self.out_norm = nn.GroupNorm(config.groups, cur)
        self.out_conv = nn.Conv2d(cur, config.in_channels, 3, padding=1)

    def embed(self, t: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Time (+ class) embedding of shape ``(B, 4 * base_channels)``."""
        return conditioning_embedding(t, y, batch=batch, width=self.config.base_channels, time_mlp=self.time_mlp,
                                      label_emb=self.label_emb, num_classes=self.config.num_classes,
                                      device=self.input_conv.weight.device)

    @staticmethod
    def _run_stage(layers: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        emb = self.embed(t, y, x.shape[0])
        h = self.input_conv(x)
        hs = [h]
        for layers in self.down:
            h = self._run_stage(layers, h, emb)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layers in self.up:
            h = self._run_stage(layers, torch.cat([h, hs.pop()], dim=1), emb)
        return self.out_conv(F.silu(self.out_norm(h)))

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def latent_modules(self) -> tuple:
        """Names of the submodules the latent-stability protocol records: the last layer of
        the down path (its stages are iterated ModuleLists, so the hook goes on their last
        layer) and the middle block."""
        last = len(self.down) - 1
        return (f"down.{last}.{len(self.down[last]) - 1}", "mid2")


def unet_adapter(model: "UNet", labels: torch.Tensor | None = None, cfg_scale: float = 0.0) -> ClassConditional:
    """The :class:`~fmq_theory.flow.velocity.ClassConditional` adapter of this package's UNet.

    The UNet is called as ``model(x, t, y)``; its unconditional (null) label is
    ``model.config.num_classes``, used when ``cfg_scale > 0``.
    """
    null = model.config.num_classes if cfg_scale > 0 and labels is not None else None
    return ClassConditional(labels=labels, cfg_scale=cfg_scale, null_class=null)


def guided_velocity(model: "UNet", y: torch.Tensor | None, cfg_scale: float) -> Velocity:
    """``v(t, x)`` of the UNet for labels ``y`` with guidance ``cfg_scale``: :func:`unet_adapter` bound.

    Examples
    --------
    >>> guided_velocity(lambda x, t, y: x + t[:, None], None, 0.0)(0.25, torch.zeros(1, 1))
    tensor([[0.2500]])
    """
    return unet_adapter(model, y, cfg_scale).bind(model)
