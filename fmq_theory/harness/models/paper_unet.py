"""The paper's MNIST network: facebookresearch/flow_matching's image-example UNet, and its EMA wrapper.

The paper (arXiv 2511.11418) trains and quantizes, for MNIST and FashionMNIST, the UNet of
facebookresearch/flow_matching's ``examples/image`` (itself the guided-diffusion UNet of
Dhariwal & Nichol 2021) with ``model_channels`` 128, ``channel_mult`` (2, 2, 2), 4
residual blocks per level, attention at downsample rate 2 with one head, dropout 0.3,
scale-shift norm, the "new" attention order (q, k, v split before the heads), average-pool
downsampling and nearest upsampling without convolutions, no class embedding:
55,667,201 parameters (:data:`PAPER_MNIST`).  The checkpoint holds it inside an EMA
wrapper, whose state dict has the model's entries under ``model.``, an integer
``num_updates`` and one ``shadow_params.N`` per parameter (the moving averages, in
parameter order); the paper quantizes every float tensor of that dict.

This module is written for this package (the example's code is CC-BY-NC and is not
copied); it reproduces the example's state-dict names and shapes, so that a checkpoint
of the example loads here with ``load_state_dict`` (``strict=True``).  The key -> shape
table of the EMA-wrapped paper network, derived once from the example, is kept in
``tests/data/paper_unet_keys.json`` and pinned by ``tests/test_paper_unet.py``.

Computation, as in the example: time embedding ``[cos(t f), sin(t f)]`` of the flow time
``t`` in [0, 1] with ``f_i = 10000**(-i/half)`` followed by linear-SiLU-linear
(width ``4 * model_channels``); residual blocks ``GroupNorm(32) -> SiLU -> conv3x3``, then
``GroupNorm(h) * (1 + scale) + shift`` with (scale, shift) from ``SiLU -> linear`` of the
embedding, ``SiLU -> Dropout -> conv3x3`` (zero-initialised), plus the input (through a
1x1 convolution when the width changes); attention ``x + proj(attn(qkv(GroupNorm(x))))``
with softmax scale ``1/sqrt(head channels)`` (computed by
``torch.nn.functional.scaled_dot_product_attention``, equal to the example's two
``1/sqrt(sqrt(c))`` factors up to rounding); output ``GroupNorm -> SiLU -> conv3x3``
(zero-initialised).  GroupNorms compute in float32 as the example's ``GroupNorm32``.
Call: ``model(x, t)`` or ``model(x, t, extra)`` (``extra`` is accepted and ignored for
the unconditional network), so :class:`fmq_theory.flow.velocity.XT` is its adapter.

References
----------
.. [1] P. Dhariwal, A. Nichol, "Diffusion models beat GANs on image synthesis",
   NeurIPS 2021 (the UNet).
.. [2] Y. Lipman et al., "Flow Matching Guide and Code", arXiv:2412.06264, 2024
   (facebookresearch/flow_matching, ``examples/image/models``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from fmq_theory.flow.velocity import XT

__all__ = ["PAPER_MNIST", "EMA", "PaperUNet", "PaperUNetConfig", "paper_adapter", "paper_unet_from_state_dict"]


@dataclass(frozen=True)
class PaperUNetConfig:
    """Hyper-parameters of :class:`PaperUNet` (the example's ``MODEL_CONFIGS`` entries).

    Attributes
    ----------
    in_channels, out_channels : int
        Image channels (1 for MNIST).
    model_channels : int
        Base width; level ``i`` has ``channel_mult[i] * model_channels`` channels, the
        time embedding ``4 * model_channels``.
    channel_mult : tuple of int
    num_res_blocks : int
        Residual blocks per level on the way down (one more on the way up).
    attention_resolutions : tuple of int
        Downsample rates with an attention block after every residual block.
    num_heads : int
    dropout : float
    groups : int
        GroupNorm groups (32 in the example; a width-reduced copy may use fewer).
    image_size : int
        Side of the square images it is sampled at (28 for MNIST); the network itself takes
        any side divisible by ``2 ** (len(channel_mult) - 1)``.
    """

    in_channels: int = 1
    out_channels: int = 1
    model_channels: int = 128
    channel_mult: tuple = (2, 2, 2)
    num_res_blocks: int = 4
    attention_resolutions: tuple = (2,)
    num_heads: int = 1
    dropout: float = 0.3
    groups: int = 32
    image_size: int = 28

    @property
    def num_classes(self) -> None:
        """``None``: the paper's network is unconditional (the harness's convention)."""
        return None

    def to_dict(self) -> dict:
        """Plain dict (lists for tuples), e.g. for a model card."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "PaperUNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown PaperUNetConfig keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


#: The paper's MNIST / FashionMNIST network: 55,667,201 parameters.
PAPER_MNIST = PaperUNetConfig()


def _embed_time(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``[cos(t f), sin(t f)]`` with ``f_i = 10000**(-i / (dim/2))``; ``t`` of shape ``(n,)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _Norm(nn.GroupNorm):
    """GroupNorm computed in float32, returned in the input's dtype."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def _zeroed(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class _Res(nn.Module):
    """Residual block with scale-shift conditioning (names as the example's ``ResBlock``)."""

    def __init__(self, cin: int, cout: int, emb: int, dropout: float, groups: int):
        super().__init__()
        self.in_layers = nn.Sequential(_Norm(groups, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, 2 * cout))
        self.out_layers = nn.Sequential(
            _Norm(groups, cout), nn.SiLU(), nn.Dropout(dropout), _zeroed(nn.Conv2d(cout, cout, 3, padding=1))
        )
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        scale, shift = self.emb_layers(emb).type(h.dtype)[:, :, None, None].chunk(2, dim=1)
        h = self.out_layers[0](h) * (1 + scale) + shift
        return self.skip_connection(x) + self.out_layers[1:](h)


class _Attention(nn.Module):
    """Self-attention over the pixels, q/k/v split before the heads."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = _Norm(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = _zeroed(nn.Conv1d(channels, channels, 1))

    def forward(self, x):
        b, c, *spatial = x.shape
        flat = x.reshape(b, c, -1)
        q, k, v = self.qkv(self.norm(flat)).chunk(3, dim=1)
        split = (b, self.heads, c // self.heads, flat.shape[-1])
        q, k, v = (a.reshape(split).transpose(-1, -2) for a in (q, k, v))
        h = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(b, c, -1)
        return (flat + self.proj_out(h)).reshape(b, c, *spatial)


class _Step(nn.ModuleList):
    """A sequence of layers; residual blocks also receive the embedding."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, _Res) else layer(x)
        return x


class _Resample(nn.Module):
    """Parameter-free 2x average-pool (down) or nearest (up) resampling."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else F.avg_pool2d(x, 2)


class PaperUNet(nn.Module):
    """The example's unconditional UNet (see the module docstring).

    Examples
    --------
    >>> small = PaperUNet(PaperUNetConfig(model_channels=8, num_res_blocks=1, groups=4))
    >>> small(torch.zeros(2, 1, 28, 28), torch.tensor([0.0, 0.5])).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, config: PaperUNetConfig = PAPER_MNIST):
        super().__init__()
        self.config = config
        c, g = config, config.groups
        emb = 4 * c.model_channels
        self.time_embed = nn.Sequential(nn.Linear(c.model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = c.channel_mult[0] * c.model_channels
        self.input_blocks = nn.ModuleList([_Step([nn.Conv2d(c.in_channels, ch, 3, padding=1)])])
        skips, rate = [ch], 1
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                layers = [_Res(ch, mult * c.model_channels, emb, c.dropout, g)]
                ch = mult * c.model_channels
                if rate in c.attention_resolutions:
                    layers.append(_Attention(ch, c.num_heads, g))
                self.input_blocks.append(_Step(layers))
                skips.append(ch)
            if level != len(c.channel_mult) - 1:
                self.input_blocks.append(_Step([_Resample(up=False)]))
                skips.append(ch)
                rate *= 2
        self.middle_block = _Step(
            [_Res(ch, ch, emb, c.dropout, g), _Attention(ch, c.num_heads, g), _Res(ch, ch, emb, c.dropout, g)]
        )
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mult))):
            for i in range(c.num_res_blocks + 1):
                layers = [_Res(ch + skips.pop(), mult * c.model_channels, emb, c.dropout, g)]
                ch = mult * c.model_channels
                if rate in c.attention_resolutions:
                    layers.append(_Attention(ch, c.num_heads, g))
                if level and i == c.num_res_blocks:
                    layers.append(_Resample(up=True))
                    rate //= 2
                self.output_blocks.append(_Step(layers))
        first = c.channel_mult[0] * c.model_channels
        self.out = nn.Sequential(_Norm(g, ch), nn.SiLU(), _zeroed(nn.Conv2d(first, c.out_channels, 3, padding=1)))

    def features(self, x: torch.Tensor, t: torch.Tensor):
        """``(output, h_input, h_middle)``: the velocity and the activations after the
        input blocks and after the middle block (the paper's latent-stability probes)."""
        emb = self.time_embed(_embed_time(t, self.config.model_channels).to(x))
        hs, h = [], x
        for block in self.input_blocks:
            h = block(h, emb)
            hs.append(h)
        h_input = h
        h = self.middle_block(h, emb)
        h_middle = h
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h.type(x.dtype)), h_input, h_middle

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def latent_modules(self) -> tuple:
        """Names of the submodules whose outputs the paper's latent-stability protocol
        records: the last input block and the middle block."""
        return (f"input_blocks.{len(self.input_blocks) - 1}", "middle_block")

    def forward(self, x: torch.Tensor, t: torch.Tensor, extra: dict | None = None) -> torch.Tensor:
        """Velocity at images ``x`` ``(n, C, H, W)`` and flow times ``t`` ``(n,)`` (or a
        0-d tensor, broadcast); ``extra`` is ignored (no conditioning)."""
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        return self.features(x, t)[0]


class EMA(nn.Module):
    """The example's EMA wrapper: ``model``, an integer ``num_updates`` and the moving
    averages ``shadow_params`` of every trainable parameter, in parameter order.

    ``update_ema`` uses the example's decay ``min(decay, (1 + n) / (10 + n))`` at update
    ``n``; :meth:`copy_to_model` writes the averages into the model (what the example
    does when switching to evaluation).  Its state dict has ``model.*``,
    ``num_updates`` and ``shadow_params.N`` (:data:`PAPER_MNIST`: 55,667,201 parameters
    twice).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        self.model = model
        self.decay = decay
        self.register_buffer("num_updates", torch.tensor(0))
        self.shadow_params = nn.ParameterList(
            [nn.Parameter(p.detach().clone(), requires_grad=False) for p in model.parameters() if p.requires_grad]
        )

    @torch.no_grad()
    def update_ema(self) -> None:
        """One moving-average step towards the model's current parameters:
        ``shadow += (1 - decay) * (param - shadow)`` (one fused ``lerp`` over all tensors; the
        update count is also kept on the host, so a step never waits for the device)."""
        if not hasattr(self, "_count"):
            self._count = int(self.num_updates)
        self._count += 1
        self.num_updates += 1
        decay = min(self.decay, (1 + self._count) / (10 + self._count))
        params = [p for p in self.model.parameters() if p.requires_grad]
        torch._foreach_lerp_(list(self.shadow_params), params, 1 - decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Overwrite the model's parameters with the moving averages."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for shadow, p in zip(self.shadow_params, params):
            p.copy_(shadow)

    @torch.no_grad()
    def averaged_state_dict(self) -> dict[str, torch.Tensor]:
        """The network's state dict with the moving averages in place of its trainable
        parameters (contiguous CPU copies): what :meth:`copy_to_model` would leave in the
        network, without changing it.  Half the size of the wrapper's state dict.

        Examples
        --------
        >>> ema = EMA(PaperUNet(PaperUNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, groups=4)))
        >>> sorted(ema.averaged_state_dict()) == sorted(ema.model.state_dict())
        True
        """
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        averages = dict(zip(names, self.shadow_params, strict=True))
        return {k: averages.get(k, v).detach().contiguous().cpu().clone() for k, v in self.model.state_dict().items()}

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


def paper_adapter() -> XT:
    """The velocity adapter of :class:`PaperUNet` (and of :class:`EMA` around it):
    ``model(x, t)`` with one time per sample."""
    return XT()


def _config_of(model_sd: dict, *, num_heads: int, groups: int, image_size: int) -> PaperUNetConfig:
    """The :class:`PaperUNetConfig` whose state dict has the shapes of ``model_sd`` (the
    model's own entries, without the ``model.`` prefix).

    Read from the shapes: ``model_channels`` (time-embedding input), the image channels
    (first and last convolutions), the levels (the input blocks without parameters are the
    downsamplings), the residual blocks per level, ``channel_mult`` (width of each level's
    first residual block) and the attention rates (levels whose input blocks hold
    attention).  Not stored in a state dict, hence arguments: ``num_heads``, ``groups``,
    ``image_size``.
    """
    if any(k.startswith("label_emb.") for k in model_sd):
        raise ValueError("state_dict: a class-conditional example network (label_emb.*); only the "
                         "paper's unconditional network is supported")
    need = ("time_embed.0.weight", "input_blocks.0.0.weight", "out.2.weight")
    missing = [k for k in need if k not in model_sd]
    if missing:
        raise ValueError(f"state_dict: not a flow_matching image-example UNet (no {', '.join(missing)})")
    width = model_sd["time_embed.0.weight"].shape[1]
    index = re.compile(r"(input|output)_blocks\.(\d+)\.")
    seen = {"input": set(), "output": set()}
    for key in model_sd:
        m = index.match(key)
        if m:
            seen[m.group(1)].add(int(m.group(2)))
    n_blocks = max(seen["output"]) + 1  # = levels * (res blocks + 1) = number of input blocks
    downs = sorted(set(range(1, n_blocks)) - seen["input"])
    levels = len(downs) + 1
    if n_blocks % levels:
        raise ValueError(f"state_dict: {n_blocks} output blocks do not split into {levels} levels")
    res_blocks = n_blocks // levels - 1
    firsts = [1 + level * (res_blocks + 1) for level in range(levels)]
    mult = tuple(int(model_sd[f"input_blocks.{i}.0.in_layers.2.weight"].shape[0]) // width for i in firsts)
    rates = tuple(2 ** level for level, i in enumerate(firsts) if f"input_blocks.{i}.1.qkv.weight" in model_sd)
    return PaperUNetConfig(in_channels=int(model_sd["input_blocks.0.0.weight"].shape[1]),
                           out_channels=int(model_sd["out.2.weight"].shape[0]), model_channels=int(width),
                           channel_mult=mult, num_res_blocks=res_blocks, attention_resolutions=rates,
                           num_heads=num_heads, groups=groups, image_size=image_size)


def paper_unet_from_state_dict(state_dict: dict, *, num_heads: int = 1, groups: int = 32,
                               image_size: int = 28) -> PaperUNet:
    """The network of a flow_matching image-example checkpoint, ready to sample (eval mode).

    ``state_dict`` is either the EMA wrapper's (``model.*``, ``num_updates``,
    ``shadow_params.N``: what the example saves under ``"model"``) or the bare network's.
    The configuration is read from the shapes (see :func:`_config_of`); the weights are
    loaded with ``strict=True``; from an EMA wrapper the moving averages are copied into
    the network, as the example does for evaluation.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
    num_heads, groups : int, keyword-only
        Attention heads and GroupNorm groups (not stored in a state dict; the example's
        MNIST network has 1 and 32).
    image_size : int, keyword-only
        Side of the images it is sampled at (28 for MNIST).

    Returns
    -------
    PaperUNet

    Raises
    ------
    ValueError
        ``state_dict`` is not the example's unconditional UNet (or its EMA wrapper), or its
        shapes do not load.

    Examples
    --------
    >>> small = EMA(PaperUNet(PaperUNetConfig(model_channels=16, channel_mult=(2, 2), num_res_blocks=1)))
    >>> paper_unet_from_state_dict(small.state_dict()).config.channel_mult
    (2, 2)
    """
    ema = any(k.startswith("shadow_params.") for k in state_dict)
    model_sd = {k.removeprefix("model."): v for k, v in state_dict.items() if k.startswith("model.")} if ema \
        else dict(state_dict)
    model = PaperUNet(_config_of(model_sd, num_heads=num_heads, groups=groups, image_size=image_size))
    holder = EMA(model) if ema else model
    try:
        holder.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"state_dict does not load into {model.config}: {exc}") from exc
    if ema:
        holder.copy_to_model()
    return model.eval()
