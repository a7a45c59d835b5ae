"""Snapshot of the quantizers: MSE on one real weight tensor, equal-mass speed.

1. Real tensor: a 64-128-10 MLP trained for 300 full-batch Adam steps (seed 0, a few
   seconds on a CPU) on scikit-learn's 8x8 ``load_digits`` (1797 images, pixels / 16);
   its first Linear weight (128 x 64 = 8192 weights) is quantized by every method at
   b = 2 and 4, per tensor and per output channel.  Printed: MSE and bits/weight
   (codes + stored side information), and the MSE relative to ``lloyd_max`` (the exact
   optimum at that granularity).
2. Speed, same run: per-channel ``equal_mass`` at b = 2 and 4 on a 1024 x 1152 float32
   standard Gaussian matrix (seed 0) against the paper's reference algorithm (per row:
   argsort, ``numpy.array_split`` of the sorted values, chunk means, inverse
   permutation) and against ``numpy.sort(W, axis=1)`` alone; best of 5 wall-clock runs
   each after one warm-up.

Run:  ``.venv/bin/python benchmarks/quantizer_snapshot.py``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

from fmq_theory.quantizers import METHODS, quantize
from fmq_theory.quantizers._kernels import HAVE_NUMBA


def trained_digits_weight(steps: int = 300, seed: int = 0) -> np.ndarray:
    """First Linear weight (128, 64) of a small MLP trained on ``load_digits``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    accuracy = float((net(x).argmax(1) == y).float().mean())
    print(f"MLP 64-128-10 on load_digits: {steps} Adam steps, train loss {float(loss):.4f}, accuracy {accuracy:.3f}")
    return net[0].weight.detach().numpy().copy()


def paper_equal_mass_per_channel(w: np.ndarray, n_levels: int) -> np.ndarray:
    """The paper's reference: argsort + array_split + chunk means, one channel at a time."""
    out = np.empty_like(w)
    for i, row in enumerate(w):
        order = np.argsort(row)
        sorted_row = row[order]
        q = np.empty_like(sorted_row)
        start = 0
        for chunk in np.array_split(sorted_row, n_levels):
            q[start : start + chunk.size] = chunk.mean()
            start += chunk.size
        out[i, order] = q
    return out


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def mse_table(w: np.ndarray) -> None:
    print(f"\nMSE on the trained weight, shape {w.shape}, std {w.std():.4f} (float32)")
    print(f"{'method':<20}{'b':>3}  {'MSE tensor':>12}{'bpw':>8}{'/LM':>7}  {'MSE channel':>12}{'bpw':>8}{'/LM':>7}")
    rows = {}
    for method in tqdm(METHODS, desc="methods", leave=False):
        for bits in (2, 4):
            cells = []
            for gran in ("tensor", "channel"):
                qt = quantize(w, method=method, bits=bits, granularity=gran)
                cells.append((float(np.mean((w.astype(np.float64) - qt.dequantize()) ** 2)), qt.bits_per_weight))
            rows[method, bits] = cells
    for bits in (2, 4):
        lm = rows["lloyd_max", bits]
        for method in METHODS:
            (mt, bt), (mc, bc) = rows[method, bits]
            print(f"{method:<20}{bits:>3}  {mt:>12.4e}{bt:>8.3f}{mt / lm[0][0]:>7.2f}  {mc:>12.4e}{bc:>8.3f}{mc / lm[1][0]:>7.2f}")


def speed(repeats: int) -> None:
    w = np.random.default_rng(0).standard_normal((1024, 1152)).astype(np.float32)
    t_sort = best_time(lambda: np.sort(w, axis=1), repeats)
    print(f"\nper-channel equal_mass on a 1024 x 1152 float32 Gaussian matrix (best of {repeats}; numba: {HAVE_NUMBA})")
    print(f"np.sort(W, axis=1): {t_sort * 1e3:.1f} ms")
    for bits in (2, 4):
        ours = quantize(w, method="equal_mass", bits=bits, granularity="channel").dequantize()
        ref = paper_equal_mass_per_channel(w, 2**bits)
        diff = float(np.max(np.abs(ours - ref)))
        t_ours = best_time(lambda: quantize(w, method="equal_mass", bits=bits, granularity="channel"), repeats)
        t_ref = best_time(lambda: paper_equal_mass_per_channel(w, 2**bits), repeats)
        print(
            f"b={bits}: fmq_theory {t_ours * 1e3:.1f} ms, paper reference {t_ref * 1e3:.1f} ms "
            f"-> {t_ref / t_ours:.1f}x faster; {t_ours / t_sort:.2f}x np.sort; max |ours - reference| = {diff:.2e}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (best is kept)")
    args = parser.parse_args(argv)
    mse_table(trained_digits_weight())
    speed(args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
