"""Small velocity fields shared by the bound tests (certificate, prediction)."""

import math

import torch


class TinyField(torch.nn.Module):
    """Small MLP velocity on R^2 with a sinusoidal time input."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                                       torch.nn.SiLU(), torch.nn.Linear(width, 2))

    def forward(self, x, t, y=None):
        tt = t.reshape(-1, 1).to(x.dtype)
        return self.net(torch.cat([x, torch.sin(2 * math.pi * tt), torch.cos(2 * math.pi * tt)], 1))
