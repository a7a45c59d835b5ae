"""The velocity adapters, the solver spec and the docstring examples of fmq_theory.flow."""

import doctest

import pytest
import torch

from fmq_theory.flow import frechet, path, solvers, velocity
from fmq_theory.flow.solvers import SolverSpec, integrate, solver_spec, step, time_grid
from fmq_theory.flow.velocity import TX, XT, ClassConditional, XTExtras, placement
from fmq_theory.vocab import FIXED_STEP_SOLVERS, SOLVER_STAGES, SOLVERS


@pytest.mark.parametrize("module", [frechet, path, solvers, velocity])
def test_docstring_examples(module):
    failures, attempted = doctest.testmod(module)
    assert attempted > 0 and failures == 0


def test_every_adapter_passes_time_as_its_library_does():
    x = torch.zeros(3, 2, dtype=torch.float64)
    seen = {}

    def record(key):
        def model(*args, **kwargs):
            seen[key] = (args, kwargs)
            return x

        return model

    XT().bind(record("xt"))(0.25, x)
    TX().bind(record("tx"))(0.25, x)
    XTExtras().bind(record("fm"))(0.25, x)
    ClassConditional().bind(record("cc"))(0.25, x)
    (xx, t), _ = seen["xt"]
    assert xx is x and t.shape == (3,) and t.dtype == torch.float64 and torch.all(t == 0.25)
    (t, xx), _ = seen["tx"]
    assert xx is x and t.shape == () and float(t) == 0.25 and t.dtype == torch.float64
    args, kwargs = seen["fm"]
    assert args == () and kwargs["x"] is x and kwargs["t"].shape == ()
    (xx, t, y), _ = seen["cc"]
    assert xx is x and t.shape == (3,) and y is None
    # scalar_time switches the form
    XT(scalar_time=True).bind(record("xt0"))(0.5, x)
    TX(scalar_time=False).bind(record("tx1"))(0.5, x)
    assert seen["xt0"][0][1].shape == () and seen["tx1"][0][0].shape == (3,)


def test_extras_and_labels_are_cut_to_the_batch():
    labels = torch.arange(6)
    shift = torch.arange(6.0)
    v = XTExtras(extras={"shift": shift, "scale": 3.0}).bind(
        lambda x, t, shift, scale: scale * x + shift[:, None], rows=slice(2, 5))
    torch.testing.assert_close(v(0.0, torch.zeros(3, 1)), torch.tensor([[2.0], [3.0], [4.0]]))
    v = ClassConditional(labels=labels).bind(lambda x, t, y: x + y[:, None], rows=slice(4, 6))
    torch.testing.assert_close(v(0.0, torch.zeros(2, 1)), torch.tensor([[4.0], [5.0]]))
    XTExtras(extras={"shift": shift, "scale": 3.0}).check(6)
    with pytest.raises(ValueError, match="rows"):
        XTExtras(extras={"shift": shift}).check(5)
    with pytest.raises(ValueError, match="labels must have shape"):
        ClassConditional(labels=labels).check(5)


def test_guidance_combination_and_its_checks():
    class M(torch.nn.Module):
        class config:
            num_classes = 3

        def forward(self, x, t, y):
            return x * (y.float()[:, None] + 1)

    x, y = torch.ones(2, 1), torch.tensor([0, 1])
    expected = 1.5 * x * (y.float()[:, None] + 1) - 0.5 * 4 * x  # (1 + w) v(y) - w v(null = 3)
    torch.testing.assert_close(ClassConditional(labels=y, cfg_scale=0.5, null_class=3).bind(M())(0.0, x), expected)
    with pytest.raises(ValueError, match="cfg_scale"):
        ClassConditional(labels=y, cfg_scale=-1.0)
    with pytest.raises(ValueError, match="null_class"):
        ClassConditional(labels=y, cfg_scale=1.0)
    with pytest.raises(ValueError, match="1-D"):
        ClassConditional(labels=y[:, None])


def test_placement_comes_from_the_model():
    lin = torch.nn.Linear(2, 2).double()
    assert placement(lin, like=torch.zeros(1)) == (torch.device("cpu"), torch.float64)
    buffers_only = torch.nn.BatchNorm1d(2, affine=False).half()
    assert placement(buffers_only, like=torch.zeros(1)) == (torch.device("cpu"), torch.float16)
    assert placement(lambda x, t: x, like=torch.zeros(1, dtype=torch.bfloat16))[1] == torch.bfloat16


def test_solver_spec_time_grid_and_step_agree_with_the_vocabulary():
    assert {solver_spec(s).name for s in SOLVERS} == set(SOLVERS)
    for s in FIXED_STEP_SOLVERS:
        spec = solver_spec(s, fixed_step=True)
        assert spec == SolverSpec(s, SOLVER_STAGES[s]) and spec.fixed_step
        res = integrate(lambda t, x: -x, torch.ones(1, 1), solver=s, steps=3)
        assert res.nfe == 3 * spec.stages
    assert not solver_spec("dopri5").fixed_step
    with pytest.raises(ValueError, match="fixed-step"):
        solver_spec("dopri5", fixed_step=True)
    with pytest.raises(ValueError, match="solver"):
        step(lambda t, x: x, torch.zeros(1), 0.0, 0.1, solver="rk4")
    grid = time_grid(5, t_start=1.0, t_end=0.0)
    assert [t for t, _ in grid] == [1.0 + k * -0.2 for k in range(5)] and {h for _, h in grid} == {-0.2}
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)
