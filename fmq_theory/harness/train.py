"""Train a flow-matching velocity network (UNet or DiT) on MNIST / FashionMNIST with EMA, fixed seeds and AMP.

The loss is the conditional flow-matching loss of :func:`fmq_theory.flow.path.flow_matching_loss`
on the conditional-OT path; labels are dropped to the null class with probability
``label_dropout`` so the model also learns the unconditional field (classifier-free
guidance). The weights kept are the exponential moving average (EMA) with the warm-up
``decay_k = min(ema_decay, (1 + k) / (10 + k))`` of Tarvainen & Valpola / guided-diffusion.

Everything random (initialisation, batches, noise, times, label dropout) is drawn from
generators seeded with ``seed``; on a GPU, kernels may still be non-deterministic at the
last bit.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from fmq_theory._util import check_positive_int
from fmq_theory.harness import data as data_mod
from fmq_theory.flow.path import flow_matching_loss
from fmq_theory.harness.models import architecture_of, build_model

__all__ = ["TrainConfig", "TrainResult", "train", "images_to_model_space", "to_uint8"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    Attributes
    ----------
    dataset : str
        ``"mnist"`` or ``"fashion_mnist"``.
    steps : int
        Optimiser steps (upper limit when ``time_limit_s`` is set).
    batch_size : int
    lr : float
        AdamW learning rate after a linear warm-up of ``warmup`` steps; cosine decay to
        ``lr / 10`` over ``steps``.
    warmup : int
    weight_decay : float
    ema_decay : float
    label_dropout : float
        Probability of replacing a label by the null class (CFG training).
    grad_clip : float
        Global gradient-norm clip.
    seed : int
    amp : bool
        bfloat16 autocast on CUDA.
    limit_train : int or None
        Use only the first ``limit_train`` training images (tests).
    time_limit_s : float or None
        Stop early after this many seconds of training; the card records the steps done.
    """

    dataset: str = "mnist"
    steps: int = 20000
    batch_size: int = 256
    lr: float = 5e-4
    warmup: int = 500
    weight_decay: float = 0.0
    ema_decay: float = 0.9995
    label_dropout: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    amp: bool = True
    limit_train: int | None = None
    time_limit_s: float | None = None

    def __post_init__(self):
        if self.dataset not in data_mod.DATASETS:
            raise ValueError(f"dataset must be one of {sorted(data_mod.DATASETS)}, got {self.dataset!r}")
        for name in ("steps", "batch_size"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name=name))
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {self.label_dropout!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    ema_model : UNet or DiT
        EMA weights, eval mode, on the training device.
    steps : int
        Steps actually taken.
    wall_time_s : float
    losses : numpy.ndarray
        Training loss per step, shape ``(steps,)``.
    data_sha256 : str
        Checksum of the training split used.
    """

    ema_model: torch.nn.Module
    steps: int
    wall_time_s: float
    losses: np.ndarray
    data_sha256: str

    def card(self, *, train_config: TrainConfig, device: str) -> dict:
        """Model-card fields of this run (JSON-ready; the model config is added by
        :func:`fmq_theory.harness.checkpoints.save_checkpoint`)."""
        tail = self.losses[-min(500, len(self.losses)):]
        return {
            "dataset": train_config.dataset,
            "train_config": asdict(train_config),
            "steps": self.steps,
            "wall_time_s": round(self.wall_time_s, 2),
            "final_loss_mean_last_500": float(np.mean(tail)),
            "data_sha256_train": self.data_sha256,
            "device": device,
            "torch_version": torch.__version__,
            "weights": "EMA",
        }


def images_to_model_space(images_uint8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels in [0, 255] to floats in [-1, 1] (``x / 127.5 - 1``)."""
    t = torch.as_tensor(images_uint8)
    if t.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {t.dtype}")
    return t.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model-space images in [-1, 1] -> uint8 pixels ``round((x + 1) * 127.5)``, the inverse of
    :func:`images_to_model_space` on its range (values outside [-1, 1] are clipped first)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(model_config, train_config: TrainConfig, *, device: str = "cpu",
          progress: bool = True) -> TrainResult:
    """Train a network with the flow-matching loss; return its EMA weights and the loss trace.

    ``model_config`` is a :class:`~fmq_theory.harness.models.unet.UNetConfig` or a
    :class:`~fmq_theory.harness.models.dit.DiTConfig` (see :func:`fmq_theory.harness.models.build_model`).
    """
    architecture_of(model_config)
    if not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig, got {type(train_config).__name__}")
    cfg = train_config
    dev = torch.device(device)
    split = data_mod.load(cfg.dataset, "train", limit=cfg.limit_train)
    x_all = images_to_model_space(split.images).to(dev)
    y_all = torch.as_tensor(split.labels, dtype=torch.long).to(dev)
    if tuple(x_all.shape[1:]) != (model_config.in_channels, model_config.image_size,
                                   model_config.image_size):
        raise ValueError(f"data shape {tuple(x_all.shape[1:])} does not fit the model config")

    torch.manual_seed(cfg.seed)
    model = build_model(model_config).to(dev)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)
    null = model_config.num_classes
    use_amp = cfg.amp and dev.type == "cuda"
    losses = []
    t0 = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=f"train {cfg.dataset}", disable=not progress,
               mininterval=2.0)
    for step in bar:
        idx = torch.randint(0, x_all.shape[0], (cfg.batch_size,), generator=gen, device=dev)
        x1 = x_all[idx]
        y = None
        if null is not None:
            y = y_all[idx]
            drop = torch.rand(cfg.batch_size, generator=gen, device=dev) < cfg.label_dropout
            y = torch.where(drop, torch.full_like(y, null), y)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            loss = flow_matching_loss(model, x1, y=y, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        losses.append(loss.detach())
        if step % 200 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if cfg.time_limit_s is not None and time.perf_counter() - t0 > cfg.time_limit_s:
            break
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    loss_arr = torch.stack(losses).float().cpu().numpy()
    return TrainResult(ema_model=ema, steps=len(losses), wall_time_s=wall, losses=loss_arr,
                       data_sha256=split.sha256)
