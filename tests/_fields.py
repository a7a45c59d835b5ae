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


def trained_tiny_field(steps: int = 300) -> TinyField:
    """A TinyField fitted by flow matching to four Gaussian blobs (seed 0, Adam, ``steps`` steps)."""
    torch.manual_seed(0)
    model = TinyField()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    for _ in range(steps):
        x1 = centers[torch.randint(4, (256,))] + 0.3 * torch.randn(256, 2)
        x0 = torch.randn(256, 2)
        t = torch.rand(256)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        loss = ((model(xt, t) - (x1 - x0)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
