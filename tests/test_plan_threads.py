"""``fit_candidates(workers>1)`` under numba's ``workqueue`` threading layer.

That layer aborts the whole process (SIGABRT, "Concurrent access has been detected") when two
Python threads launch ``parallel=True`` kernels at once.  The fit's workers run the kernels' serial
compilations (:func:`fmq_theory.quantizers.serial_kernels`), and any parallel launch from several
threads is serialised under that layer (:func:`fmq_theory.quantizers._kernels._guarded`).  The fit runs in a fresh
Python with ``NUMBA_THREADING_LAYER=workqueue`` (the layer is chosen once per process), on
tensors large enough for the parallel kernels; oracle: the ``workers=1`` fit of the same
process, compared as ``test_plan_core.test_fitting_threads_give_the_same_options`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys
import numpy as np, torch
import numba
from fmq_theory.plan import Candidate, fit_candidates, weight_sensitivity
from fmq_theory.quantizers import _kernels

class Stack(torch.nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(depth))

    def forward(self, x, t):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x

torch.manual_seed(0)
width = 384  # width**2 = 147456 weights: every tensor takes the kernels' parallel path
model = Stack(width, 4)
assert width * width >= _kernels._PARALLEL_MIN and _kernels.HAVE_NUMBA
sens = weight_sensitivity(model, torch.randn(8, width), solver="midpoint", steps=2, replicates=4, batch_size=2)
options = [Candidate("float16", 16, "tensor", "float16"), Candidate("uniform_mse", 4, "tensor", "float32"),
           Candidate("lloyd_max", 3, "tensor", "float32"), Candidate("uniform_mse", 4, "channel", "float32")]
# threads first: the layer is initialised by concurrent launches
two = fit_candidates(model, sensitivity=sens, candidates=options, workers=int(sys.argv[1]), progress=False)
one = fit_candidates(model, sensitivity=sens, candidates=options, workers=1, progress=False)
same = (one.names == two.names
        and all(np.array_equal(a, b) for a, b in zip(one.values, two.values))
        and all(np.array_equal(a, b) for a, b in zip(one.costs, two.costs)))
print(json.dumps({"layer": numba.threading_layer(), "same": bool(same), "tensors": len(one.names)}))
"""


@pytest.mark.parametrize("workers", [2, 4])
def test_fitting_threads_survive_the_workqueue_layer(workers):
    env = {k: v for k, v in os.environ.items() if k != "FMQ_DISABLE_NUMBA"}
    env.update(NUMBA_THREADING_LAYER="workqueue", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                                        env.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, "-c", CHILD, str(workers)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    assert run.returncode == 0, f"rc={run.returncode}\n{run.stderr[-3000:]}"
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"layer": "workqueue", "same": True, "tensors": 8}
