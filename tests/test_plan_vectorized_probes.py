"""The vectorized probes (``batches_per_pass > 1``) against the one-batch-per-pass loop.

The loop backpropagates through the whole solve with :func:`torch.autograd.grad`; the
vectorized path runs several batches as one :func:`torch.func.vmap` of a step-by-step
discrete adjoint.  Same noise, same projections, so the same gradients up to float32
summation order: they must agree batch by batch to 1e-4 relative of each tensor's largest
entry (float32 sums over a few hundred terms differ by ~1e-6).
"""

import numpy as np
import pytest
import torch

from fmq_theory.flow.velocity import ClassConditional
from fmq_theory.plan.sensitivity import _passes, probe_gradients, weight_sensitivity


class Conditional(torch.nn.Module):
    """Conv, GroupNorm, a label embedding and an unused parameter, called as ``model(x, t, y)``."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 8)
        self.embed = torch.nn.Embedding(4, 8)
        self.out = torch.nn.Conv2d(8, 1, 3, padding=1)
        self.unused = torch.nn.Parameter(torch.ones(3))

    def forward(self, x, t, y):
        h = self.norm(self.c1(x)) + self.embed(y)[:, :, None, None]
        return self.out(torch.nn.functional.silu(h)) * (1 + t[:, None, None, None])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Conditional().eval()


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = float(a.abs().max()) or 1.0
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_vectorized_probes_equal_the_loop(model, solver):
    """Every batch (11 rows in batches of 3: the last one shorter, run alone), every projection."""
    noise = torch.randn(11, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    adapter = ClassConditional(labels=torch.arange(11) % 3, cfg_scale=1.5, null_class=3)
    common = dict(adapter=adapter, solver=solver, steps=3, projections=2, batch_size=3, seed=4)
    loop = list(probe_gradients(model, noise, **common))
    fast = list(probe_gradients(model, noise, batches_per_pass=3, **common))
    assert [(b, rows) for b, rows, _ in fast] == [(b, rows) for b, rows, _ in loop]
    for (_, _, g_loop), (_, _, g_fast) in zip(loop, fast):
        assert "unused" not in g_loop and not g_fast["unused"].any()  # left out / zeros
        for name, g in g_loop.items():
            _close(g, g_fast[name])


def test_vectorized_sensitivity_equals_the_loop(model):
    noise = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    adapter = ClassConditional(labels=torch.arange(16) % 4)
    common = dict(adapter=adapter, solver="midpoint", steps=2, replicates=4, batch_size=4, seed=0)
    loop = weight_sensitivity(model, noise, **common)
    fast = weight_sensitivity(model, noise, batches_per_pass=4, **common)
    for name, s in loop.diag.items():
        np.testing.assert_allclose(fast.diag[name], s, rtol=0, atol=1e-4 * s.max())
        np.testing.assert_allclose(fast.replicates[name], loop.replicates[name], rtol=0,
                                   atol=1e-4 * loop.replicates[name].max())


class WithDropout(torch.nn.Module):
    """A convolution, dropout (as the paper's UNet has, p = 0.3) and batch norm, left in training mode."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.drop = torch.nn.Dropout(0.3)
        self.norm = torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x, t):
        return self.out(self.norm(self.drop(torch.tanh(self.c1(x))))) * (1 + t[:, None, None, None])


@pytest.mark.parametrize("batches_per_pass", [1, 2])
def test_a_model_in_training_mode_is_probed_as_deployed(batches_per_pass):
    """A model left in training mode is probed in eval mode, as ``sample`` samples it: no dropout
    (whose random masks made the loop's estimate noisy and the vectorized pass fail under vmap,
    found on the paper's network on 2026-12-05) and batch norm's running statistics. The estimate
    equals that of the same model put in eval mode first, bit for bit."""
    torch.manual_seed(0)
    trained, deployed = WithDropout(), WithDropout()
    deployed.load_state_dict(trained.state_dict())
    deployed.eval()
    assert trained.training
    noise = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    common = dict(solver="midpoint", steps=2, replicates=2, batch_size=2, batches_per_pass=batches_per_pass, seed=0)
    a, b = weight_sensitivity(trained, noise, **common), weight_sensitivity(deployed, noise, **common)
    assert not trained.training
    for name in b.diag:
        np.testing.assert_array_equal(a.diag[name], b.diag[name])
        np.testing.assert_array_equal(a.replicates[name], b.replicates[name])


def test_vectorized_passes_refuse_autocast(model):
    """bfloat16 autocast under vmap fails in torch's batched backward on CUDA: refused up front."""
    noise = torch.randn(8, 1, 6, 6)
    with pytest.raises(ValueError, match="autocast=True with batches_per_pass=2"):
        weight_sensitivity(model, noise, adapter=ClassConditional(labels=torch.zeros(8, dtype=torch.long)),
                           replicates=2, batch_size=2, autocast=True, batches_per_pass=2)


def test_passes_cover_the_batches_in_order():
    """Brute force over small sizes: consecutive, equal-sized batches, at most k per pass."""
    for n in range(1, 30):
        for batch in range(1, 8):
            for k in range(1, 6):
                passes = _passes(n, batch_size=batch, batches_per_pass=k)
                order = [first + j for first, count in passes for j in range(count)]
                assert order == list(range(-(-n // batch)))
                for first, count in passes:
                    sizes = {min(batch, n - b * batch) for b in range(first, first + count)}
                    assert 1 <= count <= k and len(sizes) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_batches_per_pass_is_checked(model, bad):
    noise = torch.randn(4, 1, 6, 6)
    with pytest.raises(ValueError, match="batches_per_pass"):
        weight_sensitivity(model, noise, adapter=ClassConditional(labels=torch.zeros(4, dtype=torch.long)),
                           batches_per_pass=bad)
