"""Velocity networks trained and evaluated by the harness, and the one map from a config to its network.

Every network here is called as ``model(x, t, y)`` and carries its frozen config as
``model.config`` (with ``in_channels``, ``image_size`` and ``num_classes``), so the trainer,
the checkpoints, the samplers and the experiments treat them alike.

Examples
--------
>>> from fmq_theory.harness.models.dit import DiTConfig
>>> architecture_of(DiTConfig(hidden=32, depth=1, num_heads=2))
'dit'
>>> type(build_model(DiTConfig(hidden=32, depth=1, num_heads=2))).__name__
'DiT'
"""

from __future__ import annotations

from fmq_theory.harness.models.dit import DiT, DiTConfig
from fmq_theory.harness.models.paper_unet import PaperUNet, PaperUNetConfig
from fmq_theory.harness.models.unet import UNet, UNetConfig

__all__ = ["ARCHITECTURES", "architecture_of", "build_model", "config_from_dict"]

#: Architecture name -> (config class, network class).
ARCHITECTURES = {"unet": (UNetConfig, UNet), "dit": (DiTConfig, DiT), "paper_unet": (PaperUNetConfig, PaperUNet)}


def architecture_of(config) -> str:
    """The name in :data:`ARCHITECTURES` of a config (or of a network built from one)."""
    config = getattr(config, "config", config)
    for name, (config_cls, _) in ARCHITECTURES.items():
        if isinstance(config, config_cls):
            return name
    raise TypeError(f"config must be one of {[c.__name__ for c, _ in ARCHITECTURES.values()]}, "
                    f"got {type(config).__name__}")


def build_model(config):
    """A freshly initialised network of ``config``'s architecture."""
    return ARCHITECTURES[architecture_of(config)][1](config)


def config_from_dict(architecture: str, d: dict):
    """The config of ``architecture`` from its :meth:`to_dict` form."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    return ARCHITECTURES[architecture][0].from_dict(d)
