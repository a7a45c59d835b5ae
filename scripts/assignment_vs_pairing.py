"""Does a better coupling of the two feature sets shrink the paired-feature certificate?

For ``fmq bound-check``'s certificate, ``FD(N_q, N_fp) <= mean_i |phi(y_i) - phi(x_i)|^2`` over
the pairs from shared noise (Gelbrich). Any coupling of the two empirical feature laws gives
such a bound, and the optimal one is an assignment problem between the two equal-size sets
(scipy ``linear_sum_assignment`` on squared distances). This script compares the pairing, the
optimal assignment and the FD between the Gaussian fits on the committed MNIST model, on the
CPU (results/FINDINGS.md, section (f); about 9 minutes for 1000 samples and three cells):

    PYTHONPATH=. .venv/bin/python scripts/assignment_vs_pairing.py --samples 1000 \
        equal_mass:4 lloyd_max:4 uniform_minmax:6
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from tqdm.auto import tqdm

from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
from fmq_theory.flow.frechet import frechet_distance
from fmq_theory.flow.solvers import balanced_labels, integrate, make_noise
from fmq_theory.harness.models.unet import guided_velocity
from fmq_theory.quantizers import quantize_state_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cells", nargs="+", help="method:bits, e.g. equal_mass:4")
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion_mnist"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10, help="midpoint steps (as in the bound check)")
    args = parser.parse_args()
    model = load_trained_model(Path("checkpoints") / args.dataset, device="cpu").model.eval()
    net = ClassifierFeatures(classifier_checkpoint(args.dataset), device="cpu").net.eval()
    cfg = model.config
    noise = make_noise(args.samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=0)
    labels = balanced_labels(args.samples, cfg.num_classes)

    def features(m):
        with torch.no_grad():
            x = integrate(guided_velocity(m, labels, 0.0), noise, solver="midpoint", steps=args.steps).x.float()
            return net.features((x.clamp(-1, 1) + 1) / 2).double().numpy()

    def fit(f):
        return torch.as_tensor(f.mean(0)), torch.as_tensor(np.cov(f.T))

    f_fp = features(model)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    print("cell | paired mean |dphi|^2 | optimal assignment | FD of the fits")
    for cell in tqdm(args.cells, desc="cells"):
        method, bits = cell.split(":")
        q = copy.deepcopy(model)
        q.load_state_dict(quantize_state_dict(state, method=method, bits=int(bits), granularity="channel").state_dict())
        f_q = features(q.eval())
        cost = cdist(f_fp, f_q, "sqeuclidean")
        rows, cols = linear_sum_assignment(cost)
        print(f"{cell} | {np.diag(cost).mean():.4g} | {cost[rows, cols].mean():.4g} | "
              f"{frechet_distance(*fit(f_q), *fit(f_fp)):.4g}", flush=True)


if __name__ == "__main__":
    main()
