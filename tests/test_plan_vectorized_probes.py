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

from fmq_theory.flow.solvers import integrate
from fmq_theory.flow.velocity import ClassConditional, with_parameters
from fmq_theory.plan.sensitivity import (
    _passes, pass_memory, probe_gradients, replicate_batch_size, weight_sensitivity,
)


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
    """Brute force over small sizes, in batch order and in the sensitivity's replicate order: the
    passes are the order cut into runs of equal-sized batches, at most k each, each as long as it
    can be (cut only when full or where the size changes)."""
    for n in range(1, 30):
        for batch in range(1, 8):
            n_batches = -(-n // batch)
            sizes = [min(batch, n - b * batch) for b in range(n_batches)]
            for replicates in (1, 3):
                order = [b for r in range(replicates) for b in range(r, n_batches, replicates)]
                for k in range(1, 6):
                    passes = _passes(order, sizes=sizes, batches_per_pass=k)
                    assert [b for p in passes for b in p] == order
                    for p, after in zip(passes, passes[1:] + [None]):
                        assert 1 <= len(p) <= k and len({sizes[b] for b in p}) == 1
                        assert after is None or len(p) == k or sizes[after[0]] != sizes[p[0]]


@pytest.mark.parametrize("batches_per_pass", [1, 3])
def test_any_batch_order_gives_every_batch_its_own_gradients(model, batches_per_pass):
    """Run in a shuffled order, every batch gets the gradients it gets in batch order: the same
    projections, so bit for bit in the loop and to float32 summation order (1e-4 of each tensor's
    largest entry) when batches share another vectorized pass. A bad order is refused by name."""
    noise = torch.randn(11, 1, 6, 6, generator=torch.Generator().manual_seed(5))
    adapter = ClassConditional(labels=torch.arange(11) % 3)
    common = dict(adapter=adapter, solver="midpoint", steps=2, projections=2, batch_size=3, seed=6,
                  batches_per_pass=batches_per_pass)
    order = [2, 0, 3, 1]
    plain = {(b, p): g for (b, _, g), p in zip(probe_gradients(model, noise, **common), [0, 1] * 4)}
    shuffled = list(probe_gradients(model, noise, batch_order=order, **common))
    assert [b for b, _, _ in shuffled] == [b for b in order for _ in range(2)]
    for (b, rows, g), p in zip(shuffled, [0, 1] * 4):
        assert rows == slice(3 * b, min(3 * b + 3, 11))
        for name, value in g.items():
            if batches_per_pass == 1:
                assert torch.equal(value, plain[(b, p)][name])
            else:
                _close(plain[(b, p)][name], value)
    for bad in ([0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 4]):
        with pytest.raises(ValueError, match="batch_order"):
            list(probe_gradients(model, noise, batch_order=bad, **common))


def _sensitivity_in_batch_order(model, noise, *, replicates, batch_size, **common):
    """The estimate accumulated as the sensitivity did before it ran replicate by replicate: every
    replicate's float64 sums held at once and added to in batch order (the oracle, bit for bit)."""
    sums, count = {}, np.zeros(replicates)
    for b, rows, grads in probe_gradients(model, noise, batch_size=batch_size, **common):
        for k, g in grads.items():
            sums.setdefault(k, torch.zeros((replicates, *g.shape), dtype=torch.float64))[b % replicates] += \
                g.double() ** 2
        count[b % replicates] += rows.stop - rows.start
    counts = torch.as_tensor(count, dtype=torch.float64)
    means = {k: a / counts.reshape((-1,) + (1,) * (a.ndim - 1)) for k, a in sums.items()}
    return {k: a.mean(dim=0).numpy() for k, a in means.items()}, {k: a.float().numpy() for k, a in means.items()}


@pytest.mark.parametrize(("n", "replicates", "batch_size", "batches_per_pass", "projections"),
                         [(16, 4, 4, 1, 1), (17, 3, 4, 1, 2), (24, 4, 2, 2, 1), (13, 2, 3, 2, 2)])
def test_replicate_by_replicate_equals_every_replicate_at_once(model, n, replicates, batch_size,
                                                               batches_per_pass, projections):
    """``weight_sensitivity`` holds one replicate's sums at a time on the model's device; its estimate
    equals the oracle that held every replicate's at once in batch order, bit for bit (the same
    squares added in the same order to each replicate's sum)."""
    noise = torch.randn(n, 1, 6, 6, generator=torch.Generator().manual_seed(n))
    common = dict(adapter=ClassConditional(labels=torch.arange(n) % 4), solver="midpoint", steps=2, seed=1,
                  projections=projections, batches_per_pass=batches_per_pass)
    sens = weight_sensitivity(model, noise, replicates=replicates, batch_size=batch_size, **common)
    diag, reps = _sensitivity_in_batch_order(model, noise, replicates=replicates, batch_size=batch_size, **common)
    assert set(diag) <= set(sens.diag)
    for k in sens.diag:  # a parameter the samples do not depend on: no probe in the loop, zeros
        np.testing.assert_array_equal(sens.diag[k], diag.get(k, np.zeros_like(sens.diag[k])))
        np.testing.assert_array_equal(sens.replicates[k], reps.get(k, np.zeros_like(sens.replicates[k])))


def test_every_replicate_gets_a_batch():
    """Brute force: the batch size is the largest at most the one asked for and ``ceil(n / replicates)``
    that cuts the samples into at least ``replicates`` batches, and the smaller of those two wherever
    it already did (the size used before).  Found on 2026-12-05: 6 samples with 4
    replicates were cut into 3 batches of 2, and the empty replicate's 0 / 0 made NaN estimates."""
    for n in range(1, 41):
        for replicates in range(1, n + 1):
            for asked in range(1, 12):
                size = replicate_batch_size(n, batch_size=asked, replicates=replicates)
                assert 1 <= size <= asked and -(-n // size) >= replicates
                before = min(asked, -(-n // replicates))
                assert size == before or -(-n // (size + 1)) < replicates
                if -(-n // before) >= replicates:
                    assert size == before


@pytest.mark.parametrize(("n", "replicates"), [(5, 4), (6, 4), (9, 4), (7, 3)])
def test_no_replicate_is_empty(model, n, replicates):
    """The cases that gave NaN estimates: every replicate's estimate is finite and has draws."""
    noise = torch.randn(n, 1, 6, 6, generator=torch.Generator().manual_seed(7))
    sens = weight_sensitivity(model, noise, adapter=ClassConditional(labels=torch.arange(n) % 4),
                              solver="euler", steps=2, replicates=replicates)
    for k, reps in sens.replicates.items():
        assert reps.shape[0] == replicates and np.isfinite(reps).all() and np.isfinite(sens.diag[k]).all()
    assert all(sens.replicates[k].reshape(replicates, -1).any(axis=1).all() for k in ("c1.weight", "out.weight"))
    with pytest.raises(ValueError, match="replicates=4 needs at least that many noise samples"):
        replicate_batch_size(3, batch_size=16, replicates=4)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_batches_per_pass_is_checked(model, bad):
    noise = torch.randn(4, 1, 6, 6)
    with pytest.raises(ValueError, match="batches_per_pass"):
        weight_sensitivity(model, noise, adapter=ClassConditional(labels=torch.zeros(4, dtype=torch.long)),
                           batches_per_pass=bad)


def test_the_adjoint_holds_one_steps_activations_at_a_time(model, monkeypatch):
    """The backward pass of a step is dropped before the next step's is built.

    Before, ``pull`` of step ``n`` lived until ``vjp`` of step ``n - 1`` returned, so the pass
    held two steps' activations: on the H200 (benchmarks/gpu_h200_sensitivity.json) the paper
    network's vectorized pass peaked at 13.4 GB a batch of 32 against 6.6 GB for one midpoint
    step's activations (102.7 MB a row and evaluation, measured on the CPU)."""
    live, most, vjp = [0], [0], torch.func.vjp

    class Pull:
        def __init__(self, pull):
            self.pull = pull
            live[0] += 1
            most[0] = max(most[0], live[0])

        def __call__(self, *args):
            return self.pull(*args)

        def __del__(self):
            live[0] -= 1

    def counted(f, *primals):
        out, pull = vjp(f, *primals)
        return out, Pull(pull)

    monkeypatch.setattr(torch.func, "vjp", counted)
    noise = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    adapter = ClassConditional(labels=torch.arange(6) % 3, cfg_scale=0.0, null_class=3)
    list(probe_gradients(model, noise, adapter=adapter, solver="midpoint", steps=4, batch_size=3,
                         batches_per_pass=2))
    assert most[0] == 1 and live[0] == 0


def _saved_bytes(run, *, leave_out: set) -> int:
    """Bytes of every storage autograd saves while ``run()`` builds its graph, but those at ``leave_out``."""
    storages = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in leave_out:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(storages.values())


@pytest.mark.parametrize("solver, steps, rows", [("euler", 3, 4), ("midpoint", 5, 3), ("heun", 2, 5)])
def test_pass_memory_counts_what_a_batchs_solve_saves(model, solver, steps, rows):
    """Oracle: the storages autograd saves while one batch is integrated through the solver, as
    the one-batch pass does (every evaluation's graph held to the end)."""
    noise = torch.randn(4 * rows, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    adapter = ClassConditional(labels=torch.arange(4 * rows) % 3, cfg_scale=0.0, null_class=3)
    estimate = pass_memory(model, noise, adapter=adapter, solver=solver, steps=steps, replicates=4, batch_size=rows)
    params = {k: p.detach().requires_grad_(True) for k, p in model.named_parameters()}
    velocity = adapter.bind(with_parameters(model, params), rows=slice(0, rows))
    x0 = noise[:rows].clone()
    own = {p.untyped_storage().data_ptr() for p in params.values()}
    exact = _saved_bytes(lambda: integrate(velocity, x0, solver=solver, steps=steps), leave_out=own)
    assert estimate.activations == exact  # to the byte: every evaluation saves the same, plus nothing of the solver
    n = sum(p.numel() for p in model.parameters())
    assert (estimate.parameters, estimate.sums, estimate.gradients) == (4 * n, 8 * n, 4 * n)


def test_pass_memory_of_a_vectorized_pass_holds_one_step_of_k_batches(model):
    noise = torch.randn(12, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    one = pass_memory(model, noise, solver="midpoint", steps=4, replicates=4, batch_size=3,
                      adapter=ClassConditional(labels=torch.arange(12) % 3, cfg_scale=0.0, null_class=3))
    vec = pass_memory(model, noise, solver="midpoint", steps=4, replicates=4, batch_size=3, batches_per_pass=2,
                      projections=2, adapter=ClassConditional(labels=torch.arange(12) % 3, cfg_scale=0.0, null_class=3))
    assert vec.activations == 2 * (vec.shared + vec.per_row * 3 * 2)
    assert one.activations == one.shared + one.per_row * 3 * 2 * 4 and one.per_row == vec.per_row > 0
    assert vec.gradients == 3 * 2 * 2 * one.parameters


@pytest.mark.parametrize("bad, match", [(dict(noise=torch.randn(0, 1, 6, 6)), "noise"),
                                        (dict(autocast=True, batches_per_pass=2), "autocast"),
                                        (dict(noise=torch.full((4, 1, 6, 6), float("nan"))), "noise"),
                                        (dict(batch_size=0), "batch_size")])
def test_pass_memory_names_bad_input(model, bad, match):
    args = dict(noise=torch.randn(4, 1, 6, 6)) | bad
    with pytest.raises(ValueError, match=match):
        pass_memory(model, args.pop("noise"), adapter=ClassConditional(labels=torch.arange(4) % 3), **args)


def test_pass_memory_of_one_row_counts_it_all_as_the_rows(model):
    """With one row of noise nothing tells the shared bytes from the row's: all count as the row's."""
    noise = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    adapter = ClassConditional(labels=torch.arange(3) % 3)
    many = pass_memory(model, noise, adapter=adapter, replicates=1, batch_size=1)
    one = pass_memory(model, noise[:1], adapter=adapter, replicates=1, batch_size=1)
    assert one.per_row == many.per_row + many.shared and one.shared == 0 and one.activations >= many.activations
