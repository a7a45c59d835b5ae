"""A small diffusion transformer (DiT) velocity network v_theta(x, t, y) for flow matching.

The architecture is the DiT of Peebles & Xie (2023) [1]_, scaled down for 28 x 28 images:

* **patchify**: a ``patch x patch`` convolution with stride ``patch`` turns the image into
  ``(image_size / patch)**2`` tokens of width ``hidden``, plus a fixed 2-D sine-cosine
  position embedding (not a parameter, recomputed from the config);
* **conditioning**: the sinusoidal time embedding of
  :func:`fmq_theory.harness.models.unet.timestep_embedding` through a two-layer MLP, plus a
  class embedding with one extra "null" row for classifier-free guidance (as in the UNet);
* ``depth`` **blocks with adaLN-zero**: each block computes, from ``c = SiLU(embedding)``,
  six modulation vectors ``(shift, scale, gate)`` for attention and for the MLP,

  .. math::

      h \\leftarrow h + g_1 \\odot \\mathrm{Attn}(\\mathrm{LN}(h)(1 + s_1) + b_1), \\qquad
      h \\leftarrow h + g_2 \\odot \\mathrm{MLP}(\\mathrm{LN}(h)(1 + s_2) + b_2),

  with parameter-free LayerNorms and the modulation layer initialised to zero, so that each
  block starts as the identity ("adaLN-zero");
* **final layer**: adaLN (shift, scale) then a linear map to ``patch**2 * in_channels``
  values per token (zero-initialised), and unpatchify.

All hyper-parameters live in the frozen :class:`DiTConfig`, stored in the checkpoint's card
so that the model is rebuilt exactly (:mod:`fmq_theory.harness.checkpoints`).  The network is
called like the UNet, ``model(x, t, y)``, so every adapter and sampler of the harness drives
it unchanged.

References
----------
.. [1] W. Peebles and S. Xie, "Scalable Diffusion Models with Transformers", ICCV 2023,
   arXiv:2212.09748.

Examples
--------
>>> import torch
>>> net = DiT(DiTConfig(hidden=32, depth=1, num_heads=2))
>>> net(torch.zeros(2, 1, 28, 28), torch.tensor([0.0, 1.0]), None).shape
torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fmq_theory._util import check_positive_int
from fmq_theory.harness.models.unet import conditioning_embedding

__all__ = ["DiTConfig", "DiT", "sincos_position_embedding"]


@dataclass(frozen=True)
class DiTConfig:
    """Hyper-parameters of :class:`DiT`.

    Attributes
    ----------
    in_channels : int
    image_size : int
        Side of the square input; divisible by ``patch``.
    patch : int
        Side of a patch (one token per patch).
    hidden : int
        Token width; divisible by ``num_heads`` and by 4 (the 2-D position embedding).
    depth : int
        Transformer blocks.
    num_heads : int
    mlp_ratio : float
        MLP width over ``hidden``.
    num_classes : int or None
        Classes for conditioning (plus the null class ``num_classes``); ``None``:
        unconditional.
    """

    in_channels: int = 1
    image_size: int = 28
    patch: int = 2
    hidden: int = 160
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int | None = 10

    def __post_init__(self):
        for name in ("in_channels", "image_size", "patch", "hidden", "depth", "num_heads"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name=name))
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch={self.patch}")
        if self.hidden % self.num_heads or self.hidden % 4:
            raise ValueError(f"hidden={self.hidden} must be divisible by num_heads={self.num_heads} and by 4")
        if not self.mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be > 0, got {self.mlp_ratio!r}")
        object.__setattr__(self, "num_classes",
                           check_positive_int(self.num_classes, name="num_classes", allow_none=True))

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiTConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown DiTConfig keys: {sorted(unknown)}")
        return cls(**d)


def sincos_position_embedding(hidden: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding, shape ``(grid**2, hidden)``.

    Half of the channels encode the row, half the column, each as ``[sin(p w_k), cos(p w_k)]``
    with ``w_k = 10000**(-k / (hidden / 4))`` (the MAE / DiT embedding).

    Examples
    --------
    >>> sincos_position_embedding(8, 2).shape
    torch.Size([4, 8])
    """
    quarter = hidden // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    pos = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(pos, pos, indexing="ij")

    def encode(p):
        args = p.reshape(-1)[:, None] * omega[None]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=1)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Pre-LN transformer block with adaLN-zero modulation."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        width = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden, width), nn.GELU(approximate="tanh"), nn.Linear(width, hidden))
        self.ada = nn.Linear(hidden, 6 * hidden)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b1, s1, g1, b2, s2, g2 = self.ada(c).chunk(6, dim=1)
        batch, tokens, hidden = h.shape
        qkv = self.qkv(_modulate(self.norm1(h), b1, s1))
        q, k, v = qkv.reshape(batch, tokens, 3, self.num_heads, hidden // self.num_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, hidden)
        h = h + g1[:, None] * self.proj(att)
        return h + g2[:, None] * self.mlp(_modulate(self.norm2(h), b2, s2))


class DiT(nn.Module):
    """Velocity network ``v(x, t, y)``: ``(B, C, H, W) -> (B, C, H, W)`` (see the module notes).

    Parameters
    ----------
    config : DiTConfig

    Notes
    -----
    ``forward(x, t, y=None)`` takes the same arguments as
    :class:`fmq_theory.harness.models.unet.UNet`: ``t`` of shape ``(B,)`` or a scalar in
    [0, 1]; ``y`` int64 labels (``num_classes`` = null class) or ``None`` (all null).
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        if not isinstance(config, DiTConfig):
            raise TypeError(f"config must be a DiTConfig, got {type(config).__name__}")
        self.config = config
        hid = config.hidden
        self.patch_embed = nn.Conv2d(config.in_channels, hid, config.patch, stride=config.patch)
        grid = config.image_size // config.patch
        self.register_buffer("pos_embed", sincos_position_embedding(hid, grid), persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(hid, hid), nn.SiLU(), nn.Linear(hid, hid))
        self.label_emb = nn.Embedding(config.num_classes + 1, hid) if config.num_classes is not None else None
        self.blocks = nn.ModuleList([DiTBlock(hid, config.num_heads, config.mlp_ratio) for _ in range(config.depth)])
        self.final_norm = nn.LayerNorm(hid, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(hid, 2 * hid)
        self.final_linear = nn.Linear(hid, config.patch ** 2 * config.in_channels)
        for layer in (self.final_ada, self.final_linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def embed(self, t: torch.Tensor, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Time (+ class) embedding of shape ``(B, hidden)``."""
        return conditioning_embedding(t, y, batch=batch, width=self.config.hidden, time_mlp=self.time_mlp,
                                      label_emb=self.label_emb, num_classes=self.config.num_classes,
                                      device=self.patch_embed.weight.device)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        batch = x.shape[0]
        c = F.silu(self.embed(t, y, batch))
        h = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_ada(c).chunk(2, dim=1)
        out = self.final_linear(_modulate(self.final_norm(h), shift, scale))
        grid, p = cfg.image_size // cfg.patch, cfg.patch
        out = out.reshape(batch, grid, grid, p, p, cfg.in_channels).permute(0, 5, 1, 3, 2, 4)
        return out.reshape(batch, cfg.in_channels, cfg.image_size, cfg.image_size)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

