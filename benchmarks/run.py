"""``make bench``: time fmq_theory against its peers, in one process run.

Every case times our implementation and a peer on the same input in the same run, takes
the median of repeated runs, and reports ``ratio = ours_s / peer_s`` (below 1: we are
faster).  Ratios, not seconds, are the targets, so they hold on a noisy machine.  The
table is printed and written to ``benchmarks/latest.json`` (atomically) as
``[{"case", "ours_s", "peer", "peer_s", "ratio", "target", "met", "note", "error"}]``.

Cases (issue 6): per-channel ``equal_mass`` against the paper's reference algorithm and
against ``np.sort`` alone; per-tensor ``equal_mass`` on 1e8 weights against ``np.sort``;
exact ``lloyd_max`` against scikit-learn's KMeans per channel (time and MSE on every
channel); ``uniform_minmax`` against a vectorized numpy expression; exact W2 against
``ot.wasserstein_1d``; the peak extra memory of quantizing (``memory_*``: bytes over the
input's 4n, in ``ours_s`` / ``peer_s``); the law-level rho(b) tables against an
independent mpmath reference (:mod:`rho_reference`; ``error`` holds the largest relative
error of rho, the case's target); the plan's ``fit_candidates`` on every core against one
worker (parallel efficiency, and the same options).  ``--smoke`` shrinks every size so CI can check that
the script still runs; smoke numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (benchmarks/ is a script folder, not a package)

from fmq_theory import __version__, quantize  # noqa: E402
from fmq_theory.quantizers import _kernels  # noqa: E402
from fmq_theory.theory.wasserstein import wasserstein_1d  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Result:
    """One row of the benchmark table (seconds are medians over ``repeats`` runs).

    ``ratio = ours_s / peer_s``; ``met`` says whether ``target`` holds; ``error`` is the
    largest relative error of the case's numbers where accuracy is the target (rho
    tables), else ``None``.
    """

    case: str
    ours_s: float
    peer: str
    peer_s: float
    ratio: float
    target: str
    met: bool
    note: str = ""
    error: float | None = None


def median_time(fn, *, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(case, ours, peer_name, peer, *, repeats, target, limit, note="") -> Result:
    """Time ``ours`` and ``peer`` on the same input and build a :class:`Result`.

    ``limit`` is the largest ratio that meets the target.
    """
    ours_s = median_time(ours, repeats=repeats)
    peer_s = median_time(peer, repeats=repeats)
    ratio = ours_s / peer_s
    return Result(case, ours_s, peer_name, peer_s, ratio, target, bool(ratio <= limit), note)


def equal_mass_cases(rng, *, rows, cols, tensor_n, repeats):
    matrix = rng.standard_normal((rows, cols), dtype=np.float32)
    fit = lambda: quantize(matrix, method="equal_mass", bits=4, granularity="channel")  # noqa: E731
    ours = lambda: fit().dequantize()  # noqa: E731
    ref = peers.paper_equal_mass_per_channel(matrix, bits=4)
    far = np.abs(ours() - ref) > 1e-5
    del ref
    sorted_rows = np.sort(matrix, axis=1)
    kth = np.cumsum([len(c) for c in np.array_split(np.arange(cols), 16)])[:-1] - 1
    tied = np.any(sorted_rows[:, kth] == sorted_rows[:, kth + 1], axis=1)  # a tie straddles a chunk end
    del sorted_rows
    agreement = (f"entries differing from the reference by > 1e-5: {int(far.sum())}, in {int(far.any(axis=1).sum())} "
                 f"rows, {int((far.any(axis=1) & ~tied).sum())} of them without a tie straddling a chunk end "
                 f"(ties follow the library's documented rule)")
    result = compare(
        "equal_mass_channel_vs_reference", ours,
        "paper reference (argsort+array_split per channel)",
        lambda: peers.paper_equal_mass_per_channel(matrix, bits=4),
        repeats=max(1, repeats // 2), target="ratio <= 0.1 (>= 10x faster)", limit=0.1,
        note=f"{rows}x{cols} float32, b=4; ours = quantize + dequantize (same output as the reference); "
             f"{agreement}",
    )
    np_sort_s = median_time(lambda: np.sort(matrix, axis=1), repeats=repeats)
    ends = np.cumsum([len(c) for c in np.array_split(np.arange(cols), 16)]) - 1
    codes = np.empty(matrix.shape, dtype=np.uint8)
    ours_sort_s = median_time(lambda: _kernels.chunk_stats_rows(matrix, ends, codes), repeats=repeats)
    yield Result(**{**asdict(result), "note": result.note + (
        f"; for scale: np.sort(W, axis=1) alone takes {np_sort_s:.4g} s = {np_sort_s / result.peer_s:.3f} of the "
        f"reference; our radix sort + cell sums + codes, on every core (_kernels.chunk_stats_rows) "
        f"{ours_sort_s:.4g} s = "
        f"{ours_sort_s / result.peer_s:.3f}; ours in all is {result.ours_s / np_sort_s:.2f} x np.sort")})
    full_s = median_time(ours, repeats=repeats)
    sort_s = median_time(lambda: np.sort(matrix, axis=1), repeats=repeats)
    yield compare(
        "equal_mass_channel_vs_sort", fit, "np.sort(W, axis=1)", lambda: np.sort(matrix, axis=1),
        repeats=repeats, target="ratio <= 2", limit=2.0,
        note=f"{rows}x{cols} float32, b=4; ours = quantize (codes + codebook); with dequantize "
             f"{full_s:.4g} s = {full_s / sort_s:.2f} x the sort",
    )
    del matrix
    flat = rng.standard_normal(tensor_n, dtype=np.float32)
    yield compare(
        "equal_mass_tensor_vs_sort",
        lambda: quantize(flat, method="equal_mass", bits=4, granularity="tensor").dequantize(),
        "np.sort(w)", lambda: np.sort(flat),
        repeats=max(1, repeats // 2), target="ratio <= 1.5", limit=1.5,
        note=f"n={tensor_n:.0e} float32, b=4; ours = quantize + dequantize",
    )


def lloyd_max_case(rng, *, rows, cols, repeats):
    matrix = rng.standard_normal((rows, cols), dtype=np.float32)

    def ours_mse():
        wq = quantize(matrix, method="lloyd_max", bits=4, granularity="channel").dequantize()
        return np.mean((matrix.astype(np.float64) - wq) ** 2, axis=1)

    start = time.perf_counter()  # KMeans is slow: one timed run, which also gives its MSE
    kmeans_mse = peers.sklearn_kmeans_per_channel(matrix, bits=4)
    peer_s = time.perf_counter() - start
    ours_s = median_time(ours_mse, repeats=repeats)
    mse = ours_mse()
    worse = int(np.sum(mse > kmeans_mse * (1 + 1e-6)))
    gain = float(np.median(kmeans_mse / mse))
    return Result(
        "lloyd_max_vs_kmeans", ours_s, "sklearn KMeans(n_init=1) per channel (one run)", peer_s, ours_s / peer_s,
        "ratio < 1 and MSE <= KMeans on every channel", bool(ours_s < peer_s and worse == 0),
        f"{rows}x{cols} float32, b=4; ours = quantize + dequantize + per-channel MSE; channels where ours "
        f"is worse than KMeans (rel. 1e-6): {worse}; median KMeans MSE / ours = {gain:.4f}",
    )


def partition_sse(x: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted within-cell sum of squares of every row of ``x`` (2-D) for the cell ``labels``,
    two-pass in float64 (cell means first, then squared deviations): the same arithmetic for
    every partition compared, so equal partitions give bit-equal sums."""
    x = np.atleast_2d(x).astype(np.float64)
    labels = np.atleast_2d(labels).astype(np.int64)
    w = np.ones_like(x) if weights is None else np.atleast_2d(weights).astype(np.float64)
    r, _ = x.shape
    n_cells = int(labels.max()) + 1
    flat = (labels + n_cells * np.arange(r)[:, None]).ravel()
    mass = np.bincount(flat, weights=w.ravel(), minlength=r * n_cells)
    means = np.bincount(flat, weights=(w * x).ravel(), minlength=r * n_cells) / np.where(mass > 0, mass, 1.0)
    dev = x.ravel() - means[flat]
    return np.bincount(flat, weights=w.ravel() * dev * dev, minlength=r * n_cells).reshape(r, n_cells).sum(axis=1)


def ckmeans_agreement(x, ours_labels, peer_labels, weights=None) -> tuple[bool, str]:
    """Whether both partitions reach the same optimal cost (1e-12 relative) on every row, and a note."""
    ours = partition_sse(x, ours_labels, weights)
    peer = partition_sse(x, peer_labels, weights)
    rel = float(np.max(np.abs(ours - peer) / np.maximum(peer, np.finfo(np.float64).tiny)))
    same = int(np.sum(np.all(np.atleast_2d(ours_labels) == np.atleast_2d(peer_labels), axis=1)))
    return rel <= 1e-12, (f"optimal MSE (two-pass float64 from each partition) max rel. diff {rel:.1e} "
                          f"(<= 1e-12 required); identical partitions in {same} of {ours.size} rows")


def ckmeans_cases(rng, *, tensor_n, rows, cols, repeats):
    """Exact ``lloyd_max`` (and the weighted DP of :mod:`fmq_theory.plan.weighted`) against
    Ckmeans.1d.dp on the same data and K: time, and equality of the optimal cost."""
    from fmq_theory.plan.weighted import weighted_codebook

    flat = rng.standard_normal(tensor_n, dtype=np.float32)
    flat64 = flat.astype(np.float64)
    for bits in (2, 4, 6):
        fit = lambda: quantize(flat, method="lloyd_max", bits=bits, granularity="tensor",  # noqa: E731
                               exact_limit=max(2, tensor_n))
        peer_labels = peers.ckmeans_labels(flat64, levels=2**bits)
        met, agreement = ckmeans_agreement(flat64, fit().codes.reshape(-1), peer_labels)
        result = compare(
            f"lloyd_max_tensor_b{bits}_vs_ckmeans", fit, "Ckmeans.1d.dp (ckmeans-1d-dp, method='linear')",
            lambda: peers.ckmeans_labels(flat64, levels=2**bits),
            repeats=max(1, repeats // 2), target="ratio <= 1 and same optimal MSE", limit=1.0,
            note=f"n={tensor_n:.0e} float32 (Ckmeans gets it as float64), b={bits}, exact mode; ours = quantize "
                 f"(sort, DP, codes, codebook); peer = clustering (its sort, DP, labels, centers); {agreement}")
        yield Result(**{**asdict(result), "met": result.met and met})
    matrix = rng.standard_normal((rows, cols), dtype=np.float32)
    matrix64 = matrix.astype(np.float64)
    fit = lambda: quantize(matrix, method="lloyd_max", bits=4, granularity="channel")  # noqa: E731
    met, agreement = ckmeans_agreement(matrix64, fit().codes, peers.ckmeans_labels(matrix64, levels=16))
    result = compare(
        "lloyd_max_channel_vs_ckmeans", fit, "Ckmeans.1d.dp per row (one 2-D call; its C++ loops the rows)",
        lambda: peers.ckmeans_labels(matrix64, levels=16),
        repeats=repeats, target="ratio <= 1 and same optimal MSE", limit=1.0,
        note=f"{rows}x{cols} float32, b=4; ours = quantize (codes + codebook); {agreement}")
    yield Result(**{**asdict(result), "met": result.met and met})
    sens = rng.exponential(size=(rows, cols))
    ours_codes = weighted_codebook(matrix64, sens, bits=4)[1]
    met, agreement = ckmeans_agreement(matrix64, ours_codes, peers.ckmeans_labels(matrix64, levels=16, weights=sens),
                                       sens)
    result = compare(
        "weighted_channel_vs_ckmeans", lambda: weighted_codebook(matrix64, sens, bits=4),
        "Ckmeans.1d.dp with weights y, one call per row",
        lambda: peers.ckmeans_labels(matrix64, levels=16, weights=sens),
        repeats=max(1, repeats // 2), target="ratio <= 1 and same optimal weighted MSE", limit=1.0,
        note=f"{rows}x{cols} float64, exponential(1) sensitivities, b=4; ours = plan.weighted.weighted_codebook "
             f"(codebook + nearest codes); {agreement}")
    yield Result(**{**asdict(result), "met": result.met and met})


def pwlq_case(rng, *, rows, cols, repeats):
    """Per-channel ``pwlq`` against per-channel ``uniform_mse``: both search one ratio per
    channel with the same grid + golden-section search (about 100 MSE evaluations of the
    whole matrix), pwlq on a non-uniform grid of levels."""
    matrix = rng.standard_normal((rows, cols), dtype=np.float32)
    return compare(
        "pwlq_channel_vs_uniform_mse",
        lambda: quantize(matrix, method="pwlq", bits=4, granularity="channel"),
        "quantize(method='uniform_mse') (same search, uniform grid)",
        lambda: quantize(matrix, method="uniform_mse", bits=4, granularity="channel"),
        repeats=repeats, target="ratio <= 10", limit=10.0,
        note=f"{rows}x{cols} float32, b=4; both = quantize (search + codes)",
    )


def uniform_case(rng, *, rows, cols, repeats):
    matrix = rng.standard_normal((rows, cols), dtype=np.float32)
    ours = lambda: quantize(matrix, method="uniform_minmax", bits=4, granularity="channel").dequantize()  # noqa: E731
    peer_out = peers.numpy_uniform_minmax_per_channel(matrix, bits=4)
    ours_out = ours()
    differ = np.abs(ours_out - peer_out) > 1e-5
    nearer = np.abs(ours_out - matrix)[differ] <= np.abs(peer_out - matrix)[differ]
    gap = (f"entries on another level than numpy's: {int(differ.sum())} (half-way cases; ours is at least as near "
           f"in {int(nearer.sum())}: numpy's expression rounds in float32)")
    del peer_out, ours_out
    return compare(
        "uniform_vs_numpy", ours, "vectorized numpy min-max expression",
        lambda: peers.numpy_uniform_minmax_per_channel(matrix, bits=4),
        repeats=repeats, target="ratio <= 1.5", limit=1.5,
        note=f"{rows}x{cols} float32, b=4; ours = quantize + dequantize; {gap}",
    )


def w2_case(rng, *, n, repeats):
    u = rng.standard_normal(n)
    v = rng.standard_t(5, size=n)
    gap = abs(wasserstein_1d(u, v, p=2) - peers.pot_wasserstein_1d(u, v, p=2))
    return compare(
        "w2_vs_pot", lambda: wasserstein_1d(u, v, p=2), "ot.wasserstein_1d",
        lambda: peers.pot_wasserstein_1d(u, v, p=2),
        repeats=repeats, target="ratio <= 1", limit=1.0, note=f"n={n:.0e} each; |ours - POT| = {gap:.1e}",
    )


MEMORY_PROBE = r"""
import sys, numpy as np
from fmq_theory import quantize
n = int(sys.argv[1])
def status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
w = np.random.default_rng(0).standard_normal(n, dtype=np.float32).reshape(1024, -1)
for method in sys.argv[2:]:
    quantize(w[:8], method=method, bits=4, granularity="channel")  # compile / load the kernels first
    with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM (the peak) to the current RSS
        fh.write("5")
    base = status("VmRSS:")
    if status("VmHWM:") > base + (1 << 20):
        sys.exit("VmHWM was not reset")
    qt = quantize(w, method=method, bits=4, granularity="channel")
    print(method, status("VmHWM:") - base)
    del qt
"""
MEMORY_METHODS = ("equal_mass", "uniform_minmax", "lloyd_max")


def memory_cases(*, n):
    """Peak extra resident memory of quantizing ``n`` float32 weights (1024 channels).

    Measured in a fresh process from the kernel's high-water mark ``VmHWM``, reset to the
    current resident size (``/proc/self/clear_refs``) right before each call, so neither
    the input nor the kernels' compilation count; the result (codes, levels) does count.
    """
    if n % 1024:
        raise ValueError(f"n={n} must be a multiple of the 1024 channels")
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(n), *MEMORY_METHODS], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"memory probe failed:\n{out.stderr}")
    floor = 4 * n
    for line in out.stdout.strip().splitlines():
        method, extra = line.split()
        extra = int(extra)
        yield Result(
            f"memory_{method}", float(extra), "input size 4n bytes", float(floor), extra / floor,
            "ratio <= 3", extra / floor <= 3.0,
            f"peak extra RSS (VmHWM, bytes) of per-channel quantization of n={n:.0e} float32 weights, 1024 channels",
        )


def rho_case(*, max_bits):
    """Time of the rho(b) tables (4 laws, b=1..max_bits, law level) and their error vs mpmath."""
    from rho_reference import rho_tables_benchmark

    seconds, ref_seconds, max_rel_err, note = rho_tables_benchmark(max_bits=max_bits)
    return Result("rho_tables", seconds, "independent mpmath reference (time; error in 'error')", ref_seconds,
                  seconds / ref_seconds, "max relative error of rho <= 1e-8 (issue 3's accuracy requirement)",
                  max_rel_err <= 1e-8, note,
                  error=max_rel_err)


def plan_fit_case(rng, *, sets: int, shape: tuple) -> Result:
    """``fit_candidates`` on every core against one worker, on a synthetic model of ``sets`` x
    (a conv of ``shape``, a 128 x 512 matrix, a 256-vector), every default option of every
    tensor; checks that both give the same options (costs and scores bit for bit)."""
    import torch

    from fmq_theory.plan import fit_candidates
    from fmq_theory.plan.sensitivity import WeightSensitivity

    def synthetic(n_sets):
        model = torch.nn.Module()
        for i in range(n_sets):
            for name, size in ((f"conv{i}", shape), (f"lin{i}", (128, 512)), (f"vec{i}", (256,))):
                model.register_parameter(name, torch.nn.Parameter(
                    torch.from_numpy(rng.standard_normal(size).astype(np.float32) * 0.05)))
        reps = {k: np.abs(rng.standard_normal((4, *v.shape))).astype(np.float32)
                for k, v in model.state_dict().items()}
        sens = WeightSensitivity(diag={k: r.mean(axis=0, dtype=np.float64) for k, r in reps.items()}, replicates=reps,
                                 n_samples=8, projections=1, solver="midpoint", steps=2, seed=0)
        return model, sens

    workers = os.cpu_count() or 1
    warm, warm_sens = synthetic(1)
    fit_candidates(warm, sensitivity=warm_sens, progress=False)  # compiles the kernels (untimed)
    model, sens = synthetic(sets)
    times, fits = {}, {}
    for w in (workers, 1):
        start = time.perf_counter()
        fits[w] = fit_candidates(model, sensitivity=sens, workers=w, progress=False)
        times[w] = time.perf_counter() - start
    same = all(np.array_equal(a, b) for a, b in zip(fits[1].values + fits[1].costs,
                                                    fits[workers].values + fits[workers].costs))
    n = sum(v.numel() for v in model.state_dict().values())
    ratio = times[workers] / times[1]
    limit = 1.5 / workers
    return Result("plan_fit_workers_vs_one", times[workers], "fit_candidates(workers=1)", times[1], ratio,
                  f"ratio <= {limit:.3g} (1.5 / cores: parallel efficiency >= 2/3)", bool(ratio <= limit and same),
                  f"{n / 1e6:.2f}M weights in {3 * sets} tensors, {sum(len(f) for f in fits[1].fitted)} options, "
                  f"workers={workers}; same options as one worker: {same}")


def write_json_atomic(rows, path: Path):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump([asdict(r) for r in rows], fh, indent=2)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI check that the script runs)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=HERE / "latest.json")
    parser.add_argument("--only", action="append", metavar="STEP",
                        help="run only this step (repeatable): equal_mass, lloyd_max, ckmeans, pwlq, uniform, w2, "
                             "memory, rho, plan_fit")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.smoke:
        sizes = dict(em=(64, 96), tensor_n=10**5, ck_n=10**4, lm=(8, 96), w2=10**4, mem=1024 * 64, rho_bits=3,
                     fit=(1, (16, 8, 3, 3)))
        repeats = 1
    else:
        sizes = dict(em=(4096, 4096), tensor_n=10**8, ck_n=10**6, lm=(1024, 1152), w2=10**7, mem=1024 * 9766,
                     rho_bits=12, fit=(2, (256, 256, 3, 3)))
        repeats = args.repeats
    from tqdm import tqdm

    steps = {
        "equal_mass": lambda: list(equal_mass_cases(rng, rows=sizes["em"][0], cols=sizes["em"][1],
                                                    tensor_n=sizes["tensor_n"], repeats=repeats)),
        "lloyd_max": lambda: [lloyd_max_case(rng, rows=sizes["lm"][0], cols=sizes["lm"][1], repeats=repeats)],
        "ckmeans": lambda: list(ckmeans_cases(rng, tensor_n=sizes["ck_n"], rows=sizes["lm"][0], cols=sizes["lm"][1],
                                              repeats=repeats)),
        "pwlq": lambda: [pwlq_case(rng, rows=sizes["lm"][0], cols=sizes["lm"][1], repeats=repeats)],
        "uniform": lambda: [uniform_case(rng, rows=sizes["em"][0], cols=sizes["em"][1], repeats=repeats)],
        "w2": lambda: [w2_case(rng, n=sizes["w2"], repeats=repeats)],
        "memory": lambda: list(memory_cases(n=sizes["mem"])),
        "rho": lambda: [rho_case(max_bits=sizes["rho_bits"])],
        "plan_fit": lambda: [plan_fit_case(rng, sets=sizes["fit"][0], shape=sizes["fit"][1])],
    }
    unknown = set(args.only or ()) - set(steps)
    if unknown:
        parser.error(f"--only: unknown step(s) {sorted(unknown)}; choose from {sorted(steps)}")
    chosen = [name for name in steps if not args.only or name in args.only]
    rows: list[Result] = []
    for name in tqdm(chosen, desc="benchmark cases", file=sys.stderr):
        rows.extend(steps[name]())
    print(f"fmq_theory {__version__} benchmarks ({'smoke' if args.smoke else 'full'}; median of {repeats}; "
          f"{os.cpu_count()} CPUs)")
    header = f"{'case':34s} {'ours':>11s} {'peer':>11s} {'ratio':>8s}  met  target / peer / note"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.case:34s} {r.ours_s:11.4g} {r.peer_s:11.4g} {r.ratio:8.3g}  {'yes' if r.met else 'NO ':3s}  "
              f"{r.target}; vs {r.peer}; {r.note}")
    write_json_atomic(rows, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
