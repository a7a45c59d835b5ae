"""The tiny UNet file of the ``fmq plan`` tests (plan command, plan sweeps)."""

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from fmq_theory.harness.models.unet import UNet, UNetConfig


def save_tiny_unet(folder: Path) -> UNet:
    """Write a seeded untrained tiny class-conditional UNet to ``folder``: ``model.safetensors``
    and ``config.json`` (its :class:`~fmq_theory.harness.models.unet.UNetConfig`); return it."""
    torch.manual_seed(0)
    config = UNetConfig(image_size=8, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                        attention_resolutions=(), groups=4, num_classes=3)
    model = UNet(config)
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    return model
