"""GPU throughput of per-channel quantization against the memory-copy floor, on one GPU.

Run on the GPU machine from the repository root::

    PYTHONPATH=. python3 benchmarks/gpu.py --out "$OUT"
    PYTHONPATH=. python3 benchmarks/gpu.py --only equal_mass,uniform_minmax --out "$OUT"  # no lloyd_max
    PYTHONPATH=. python3 benchmarks/gpu.py --only sensitivity --out "$OUT"

Prints every figure to stdout and writes ``gpu.json`` into ``--out``.  Measured in one run:

* the device-to-device copy bandwidth (bytes read + written, 2 GiB, median of 20), and the
  *floor* of a method: the weights read once (4 bytes), the codes (1 byte) and the
  dequantized weights (4 bytes) written once, at that bandwidth;
* ``equal_mass`` per channel on 4096 x 4096 float32, b = 4: the torch path
  (:mod:`fmq_theory.quantizers.torch_equal_mass`, rows in chunks; its result checked equal
  to the unchunked one) and three fused Triton paths (``benchmarks/gpu_triton.py``): one
  sorting each row in registers, one sort-free (the K-1 chunk-end order statistics by a
  bitwise binary search), and the radix path (one histogram of a digit of the scaled value,
  then a sort of the keys of the thresholds' bins only) at each launch configuration of
  ``gpu_triton.RADIX_CONFIGS``, with its rows counted by route and the fastest exact one marked
  ``best_of_grid``; each checked equal to the CPU quantizer on 256 rows and, but the sorting
  kernel, to the sorting kernel on every row: weights/s, ratio to the floor and to a bare
  ``torch.sort`` of the same rows (the bound of a sort-based method);
* ``uniform_minmax`` per channel: the torch twin (:mod:`fmq_theory.quantizers.torch_rows`)
  and the fused Triton kernel (``benchmarks/gpu_triton.py``) at every launch configuration of
  a small grid (rows per program x warps), each checked equal to the CPU quantizer (codes
  and dequantized weights); the fastest is a measurement of the run, marked ``best_of_grid``;
* exact ``lloyd_max`` per channel (the batched DP of :mod:`fmq_theory.quantizers.torch_rows`,
  its middle layers in torch and in the Triton kernel of ``benchmarks/gpu_triton.py``): first
  the Triton kernel at each of ``gpu_triton.LLOYD_CONFIGS`` on one batch of the row length
  that holds most of the model, each checked equal to the torch DP, with its speed-up over
  the first configuration (the previous kernel's schedule) in the same run; then both solvers,
  the Triton one at its fastest configuration, on row batches of the row lengths of FLUX.1's
  transformer linear layers, b = 4, the time per weight of each row length extrapolated to
  the 11.9e9 weights of the synthetic FLUX.1-shaped model (labelled as an extrapolation), and
  rows sampled for equality with the CPU ``lloyd_max``;
* the peak extra device memory of each path over its input size (outputs included);
* stage ``sensitivity`` (issue 18, target 4): the plan's sensitivity pass on the paper's
  55.7M-parameter network (random weights: the time does not depend on them) with the
  settings of ``scripts/gpu_plan_eval.py`` (256 noise draws, 8 replicates, batches of 32,
  midpoint 10 steps), one batch per backward pass in float32 and under bfloat16 autocast, and
  2, 4 and 8 batches per vectorized pass in float32 (``batches_per_pass``, the discrete adjoint
  of :func:`fmq_theory.plan.sensitivity.probe_gradients`; :data:`SENSITIVITY_PASSES`),
  against sampling the 10,000 images of one FID evaluation as the evaluation does (one batch,
  bfloat16 autocast, 20 NFE), with each pass's peak device memory (of it, the float64 sums of
  the replicate being run, ``device_sums_bytes``: 8 bytes a parameter since 2026-12-05, when
  the sums of all 8 replicates, 64, were held on the device), beside its estimate
  (``estimated_peak_bytes``, :func:`fmq_theory.plan.pass_memory`).  The Inception features
  are not in the denominator, so the ratio is an upper bound on the share of a whole FID
  evaluation.  Every estimate is compared tensor by tensor with the first (float32, one
  batch per pass) against that one's replicate standard error.

Times: ``seconds`` is the median of calls each followed by a device synchronisation (so a
call's host overhead, the kernel launch, is in it); ``seconds_back_to_back`` the median per
call of runs of calls launched back to back and synchronised once (the device's throughput,
launch overhead hidden behind the previous call's work); ``ratio_to_floor`` and
``ratio_to_floor_back_to_back`` divide each by the floor.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fmq_theory import quantize
from fmq_theory.flow.solvers import make_noise, sample
from fmq_theory.harness.models.paper_unet import PaperUNet, PaperUNetConfig
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.plan import pass_memory, sensitivity_memory, weight_sensitivity
from fmq_theory.quantizers.torch_equal_mass import default_chunk_rows, dequantize_rows, equal_mass_rows
from fmq_theory.quantizers.torch_rows import affine_dequantize_rows, lloyd_max_rows, torch_layers, uniform_minmax_rows

#: FLUX.1 [dev]/[schnell] transformer linear layers as (out_features, in_features, count):
#: 19 double-stream blocks (two AdaLN modulations 18432x3072, eight 3072x3072 attention
#: projections, two MLPs 12288x3072 + 3072x12288), 38 single-stream blocks (modulation
#: 9216x3072, q/k/v 3072x3072, MLP-in 12288x3072, output 3072x15360), and the embedders and
#: final layers.  Per-channel rows are the out_features rows of in_features weights.
FLUX_LINEARS = (
    (18432, 3072, 38), (3072, 3072, 8 * 19 + 3 * 38 + 2), (12288, 3072, 2 * 19 + 38), (3072, 12288, 2 * 19),
    (9216, 3072, 38), (3072, 15360, 38), (6144, 3072, 1), (3072, 4096, 1), (3072, 256, 2), (3072, 768, 1),
    (3072, 64, 1), (64, 3072, 1),
)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, *, repeats=5):
    """Median wall time of ``fn()`` in seconds, device synchronised (after one warm-up call),
    and its last result."""
    result = fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def back_to_back(fn, *, seconds_per_call, repeats=5, batch_s=0.02, max_calls=50):
    """Median time per call of ``fn`` over runs of calls launched back to back and
    synchronised once (each run about ``batch_s`` long, from ``seconds_per_call``, between 2
    and ``max_calls`` calls), after one warm-up run."""
    calls = int(min(max_calls, max(2, np.ceil(batch_s / max(seconds_per_call, 1e-9)))))

    def run():
        for _ in range(calls):
            result = fn()
        return result

    seconds, _ = timed(run, repeats=repeats)
    return seconds / calls


def timings(fn, *, floor, repeats):
    """``(fields, result)``: both times of ``fn`` (module docstring), their ratios to
    ``floor``, and ``fn``'s last result."""
    seconds, result = timed(fn, repeats=repeats)
    pipelined = back_to_back(fn, seconds_per_call=seconds, repeats=repeats)
    return dict(seconds=seconds, ratio_to_floor=seconds / floor, seconds_back_to_back=pipelined,
                ratio_to_floor_back_to_back=pipelined / floor), result


class PeakMemory:
    """Peak device memory allocated inside the ``with`` block over what was allocated at its
    start (``extra``, bytes; 0 on the CPU dry run, which has no allocator statistics)."""

    def __enter__(self):
        sync()
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        return self

    def __exit__(self, *exc):
        sync()
        self.extra = torch.cuda.max_memory_allocated() - self.base if self.cuda else 0
        return False


def peak_extra(fn, input_bytes):
    """Peak device memory allocated by ``fn()`` over what was allocated before, / ``input_bytes``."""
    with PeakMemory() as peak:
        result = fn()
        del result
    return peak.extra / input_bytes


def copy_bandwidth(device, *, nbytes=2**31, repeats=20) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    seconds, _ = timed(lambda: dst.copy_(src), repeats=repeats)
    return 2 * nbytes / seconds


def floor_seconds(n_weights, bandwidth):
    return 9 * n_weights / bandwidth  # 4 bytes read, 1 + 4 bytes written per weight


def triton_module():
    """``benchmarks/gpu_triton.py`` (the package has no Triton dependency)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu_triton

    return gpu_triton


def same_bits(a: torch.Tensor, b: np.ndarray) -> bool:
    """``a`` (on any device) and ``b`` hold the same bytes: equal dtype, shape and bit patterns."""
    a = a.cpu().numpy()
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def equal_mass_cases(w, bandwidth, bits, *, repeats):
    n_weights = w.numel()
    floor = floor_seconds(n_weights, bandwidth)

    def quantize_dequantize():
        codes, levels = equal_mass_rows(w, bits=bits)
        return codes, dequantize_rows(codes, levels)

    seconds, _ = timed(lambda: equal_mass_rows(w, bits=bits), repeats=repeats)
    times, (codes, out) = timings(quantize_dequantize, floor=floor, repeats=repeats)
    sort_s, _ = timed(lambda: torch.sort(w, dim=1), repeats=repeats)
    whole_codes, whole_levels = equal_mass_rows(w, bits=bits, chunk_rows=w.shape[0])
    unchunked = bool(torch.equal(codes, whole_codes)
                     and torch.equal(out, dequantize_rows(whole_codes, whole_levels, chunk_rows=w.shape[0])))
    del whole_codes, whole_levels, codes, out
    probe = w[:256]
    cpu = quantize(probe.cpu().numpy(), method="equal_mass", bits=bits, granularity="channel")
    ours = dequantize_rows(*equal_mass_rows(probe, bits=bits)).cpu()
    err = float((ours - torch.from_numpy(cpu.dequantize())).abs().max())
    full_s = times["seconds"]
    rows = [dict(method="equal_mass", path="torch (sort + cumsum + scatter)", **times, quantize_only_s=seconds,
                 weights_per_s=n_weights / full_s, sort_s=sort_s, ratio_to_sort=full_s / sort_s,
                 max_abs_diff_vs_cpu=err, chunk_rows=default_chunk_rows(w.shape[0]), equal_to_unchunked=unchunked,
                 peak_extra_over_input=peak_extra(quantize_dequantize, 4 * n_weights))]
    try:  # the Triton kernels are experiments of this script; report a failure and go on
        variants = triton_equal_mass_variants(triton_module(), bits=bits)
    except Exception as exc:  # noqa: BLE001 - printed, the run goes on
        print(f"triton equal_mass failed: {type(exc).__name__}: {exc}", flush=True)
        variants = []
    sorted_result = None
    for path, tile, warps, label, call in variants:
        try:  # the Triton kernels are experiments of this script; report a failure and go on
            times, result = timings(lambda: call(w), floor=floor, repeats=repeats)
            codes, out, levels, _ = call(probe)
            row = dict(method="equal_mass", path=label, **times, weights_per_s=n_weights / times["seconds"],
                       sort_s=sort_s, ratio_to_sort=times["seconds"] / sort_s,
                       max_abs_diff_vs_cpu=float(np.abs(out.cpu().numpy() - cpu.dequantize()).max()),
                       equal_to_cpu=same_bits(codes, cpu.codes) and same_bits(levels, cpu.levels)
                       and same_bits(out, cpu.dequantize()),
                       peak_extra_over_input=peak_extra(lambda: call(w), 4 * n_weights))
            if path == "sort":
                sorted_result = result[:3]
            elif sorted_result is not None:  # every row, against the sorting kernel
                row["equal_to_sort_kernel"] = all(bool(torch.equal(a, b)) for a, b in zip(result[:3], sorted_result))
            if path == "radix":
                row.update(tile=tile, num_warps=warps,
                           rows_by_route={str(r): int((result[3] == r).sum()) for r in range(3)})
            rows.append(row)
        except Exception as exc:  # noqa: BLE001 - printed, the run goes on
            print(f"triton equal_mass ({label}) failed: {type(exc).__name__}: {exc}", flush=True)
    radix = [row for row in rows if "rows_by_route" in row]
    mark_fastest(radix, [row for row in radix if row["equal_to_cpu"] and row.get("equal_to_sort_kernel", False)],
                 name="equal_mass Triton radix", equal_to="the CPU and the sorting kernel",
                 extra=lambda best: f"; rows by route {best['rows_by_route']}")
    return rows


def mark_fastest(grid, exact, *, name, equal_to, extra=lambda best: ""):
    """Marks ``best_of_grid`` on every row of a grid of launch configurations: true on the fastest
    of ``exact`` (its rows whose result is exact) by device throughput (back to back), and prints
    it; nothing when no row is exact.  ``extra(best)``: text added to the printed line."""
    if not exact:
        return
    best = min(exact, key=lambda row: row["seconds_back_to_back"])
    for row in grid:
        row["best_of_grid"] = row is best
    print(f"{name}: fastest exact configuration of {len(grid)} ({len(exact)} equal to {equal_to}): "
          f"{best['path']}, {best['seconds_back_to_back'] * 1e6:.1f} us back to back = "
          f"{best['ratio_to_floor_back_to_back']:.2f} x floor ({best['seconds'] * 1e6:.1f} us synced call = "
          f"{best['ratio_to_floor']:.2f} x){extra(best)}", flush=True)


def triton_equal_mass_variants(gpu_triton, *, bits):
    """The Triton ``equal_mass`` paths timed, as ``(path, tile, warps, label, call)`` with
    ``call(x) -> (codes, dequantized, levels, route)`` (``route`` is ``None`` but on the radix
    path): the sorting kernel first (the others are checked against it on every row), the
    bisection, then the radix path at each of ``gpu_triton.RADIX_CONFIGS``."""
    def fixed(path):
        return lambda x: (*gpu_triton.equal_mass_rows_triton(x, bits=bits, path=path), None)

    def radix(tile, warps):
        return lambda x: gpu_triton.equal_mass_radix_rows_triton(x, bits=bits, tile=tile, num_warps=warps)

    return [("sort", None, None, "triton fused (row sorted in registers)", fixed("sort")),
            ("bisect", None, None, "triton fused sort-free (K-1 order statistics by bitwise binary search)",
             fixed("bisect"))] + [
        ("radix", tile, warps, f"triton fused radix (one {gpu_triton.RADIX_BINS}-bin histogram of the scaled value, "
         f"the candidates' keys sorted; tile {tile}, {warps} warps)", radix(tile, warps))
        for tile, warps in gpu_triton.RADIX_CONFIGS]


def uniform_cases(w, bandwidth, bits, *, repeats, rows_per_program, warps):
    floor = floor_seconds(w.numel(), bandwidth)
    probe = w[:256]
    cpu = quantize(probe.cpu().numpy(), method="uniform_minmax", bits=bits, granularity="channel")

    def eager():
        codes, scale, offset = uniform_minmax_rows(w, bits=bits)
        return codes, affine_dequantize_rows(codes, scale, offset)

    times, _ = timings(eager, floor=floor, repeats=repeats)
    codes, scale, offset = uniform_minmax_rows(probe, bits=bits)
    same = same_bits(codes, cpu.codes) and same_bits(affine_dequantize_rows(codes, scale, offset), cpu.dequantize())
    rows = [dict(method="uniform_minmax", path="torch eager", **times, weights_per_s=w.numel() / times["seconds"],
                 equal_to_cpu=same, peak_extra_over_input=peak_extra(eager, 4 * w.numel()))]
    grid = []
    for per_program in rows_per_program:
        for num_warps in warps:
            path = f"triton fused ({per_program} rows per program, {num_warps} warps)"
            try:  # the Triton kernel is an experiment of this script; report a failure and go on
                kernel = triton_module().uniform_minmax_rows_triton

                def call(per_program=per_program, num_warps=num_warps, x=w):
                    return kernel(x, bits=bits, rows_per_program=per_program, num_warps=num_warps)

                times, _ = timings(call, floor=floor, repeats=repeats)
                codes, out, _, _ = call(x=probe)
                grid.append(dict(method="uniform_minmax", path=path, rows_per_program=per_program,
                                 num_warps=num_warps, **times, weights_per_s=w.numel() / times["seconds"],
                                 equal_to_cpu=same_bits(codes, cpu.codes) and same_bits(out, cpu.dequantize()),
                                 peak_extra_over_input=peak_extra(call, 4 * w.numel())))
            except Exception as exc:  # noqa: BLE001 - printed, the run goes on
                print(f"triton uniform_minmax ({path}) failed: {type(exc).__name__}: {exc}", flush=True)
    mark_fastest(grid, [row for row in grid if row["equal_to_cpu"]], name="uniform_minmax Triton", equal_to="the CPU")
    return rows + grid


def weights_by_length(shapes) -> dict:
    """The model's weights per row length (``in_features``), of ``(out_f, in_f, count)`` linear shapes."""
    by_length = {}
    for out_f, in_f, count in shapes:
        by_length[in_f] = by_length.get(in_f, 0) + out_f * in_f * count
    return by_length


def lloyd_case(bandwidth, bits, *, rows_per_length, batch, budget_s, device, shapes, solver, label):
    """Time per weight of the exact DP (middle layers by ``solver``) at each FLUX.1 row
    length, extrapolated to the model."""
    by_length = weights_by_length(shapes)
    total = sum(by_length.values())
    gen = torch.Generator(device=device).manual_seed(0)
    per_length = []
    spent = 0.0
    for n in sorted(by_length, key=by_length.get, reverse=True):
        rows = max(1, rows_per_length or 2 * batch // n)
        w = torch.randn(rows, n, device=device, generator=gen)
        lloyd_max_rows(w[:2], bits=bits, batch=batch, layers=solver)  # warm-up (compilation, schedule, allocator)
        with PeakMemory() as peak:
            start = time.perf_counter()
            codes, levels = lloyd_max_rows(w, bits=bits, batch=batch, layers=solver)
            out = dequantize_rows(codes, levels)
            sync()
            seconds = time.perf_counter() - start
        spent += seconds
        sample = w[: min(8, rows)].cpu().numpy()
        cpu = quantize(sample, method="lloyd_max", bits=bits, granularity="channel")
        same_codes = float(np.mean(codes[: sample.shape[0]].cpu().numpy() == cpu.codes))
        level_diff = float(np.abs(levels[: sample.shape[0]].cpu().numpy() - cpu.levels).max())
        mse_gpu = ((w[: sample.shape[0]].double() - out[: sample.shape[0]].double()) ** 2).mean(dim=1).cpu().numpy()
        mse_cpu = np.mean((sample.astype(np.float64) - cpu.dequantize()) ** 2, axis=1)
        extra = peak.extra / (4 * w.numel())
        row = dict(path=label, row_length=n, rows_timed=rows, weights_timed=rows * n, seconds=seconds,
                   s_per_weight=seconds / (rows * n), model_weights_at_length=by_length[n],
                   extrapolated_s=by_length[n] * seconds / (rows * n),
                   codes_equal_cpu_fraction=same_codes, max_abs_level_diff_vs_cpu=level_diff,
                   max_rel_mse_diff_vs_cpu=float(np.max(np.abs(mse_gpu - mse_cpu) / mse_cpu)),
                   peak_extra_over_input=extra, peak_extra_bytes=peak.extra)
        print(json.dumps(row), flush=True)
        per_length.append(row)
        del w, codes, levels, out
        if spent > budget_s:
            print(f"lloyd_max: time budget {budget_s} s spent; remaining row lengths extrapolated from "
                  f"the slowest measured s/weight", flush=True)
            break
    measured = {r["row_length"] for r in per_length}
    worst = max(r["s_per_weight"] for r in per_length)
    estimate = sum(r["extrapolated_s"] for r in per_length) + sum(
        weights * worst for n, weights in by_length.items() if n not in measured)
    return dict(method="lloyd_max", path=label, model_weights=total,
                extrapolated_model_s=estimate, floor_model_s=floor_seconds(total, bandwidth),
                per_length=per_length, batch=batch)


def full_model_case(bits, *, batch, device, shapes, solver, label, cap_s):
    """The whole synthetic FLUX.1-shaped model quantized with the exact DP, layer by layer:
    each layer's weights drawn on the device (not timed), then ``lloyd_max_rows`` and the
    dequantization timed.  Stops after ``cap_s`` seconds of timed work and reports the share
    of the model's weights done."""
    total = sum(o * i * c for o, i, c in shapes)
    gen = torch.Generator(device=device).manual_seed(1)
    timed_s, done = 0.0, 0
    layers = ((out_f, in_f) for out_f, in_f, count in shapes for _ in range(count))
    with PeakMemory() as peak:
        for out_f, in_f in layers:
            w = torch.randn(out_f, in_f, device=device, generator=gen)
            sync()
            start = time.perf_counter()
            codes, levels = lloyd_max_rows(w, bits=bits, batch=batch, layers=solver)
            dequantize_rows(codes, levels)
            sync()
            timed_s += time.perf_counter() - start
            done += w.numel()
            del w, codes, levels
            if timed_s > cap_s:
                break
    return dict(method="lloyd_max", path=label + ", whole model measured", model_weights=total,
                weights_done=done, share_done=done / total, measured_s=timed_s,
                measured_model_s=timed_s if done == total else None, batch=batch,
                peak_extra_bytes=peak.extra)


#: The sensitivity stage's configurations: (autocast, batches per pass); the first is the reference.
SENSITIVITY_PASSES = ((False, 1), (True, 1), (False, 2), (False, 4), (False, 8))


def sensitivity_case(device, *, samples, plan_samples):
    """The plan's sensitivity pass against sampling one FID evaluation's images (module docstring)."""
    cuda = device.type == "cuda"
    config = PaperUNetConfig() if cuda else PaperUNetConfig(model_channels=8, num_res_blocks=1, groups=4)
    torch.manual_seed(0)
    model = PaperUNet(config)
    with torch.no_grad():  # the zero-initialised layers drawn too, so that every weight has a gradient
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                torch.nn.init.kaiming_uniform_(p, a=5**0.5)
    model = model.to(device).eval()
    adapter = unet_adapter(model, None, 0.0)
    event = (config.in_channels, config.image_size, config.image_size)
    noise = make_noise(samples, event, seed=0).to(device)
    probes = make_noise(plan_samples, event, seed=1).to(device)
    replicates, batch = 8, plan_samples // 8

    def draw(n):
        return sample(model, noise[:n], adapter=adapter, solver="midpoint", steps=10, clip=(-1.0, 1.0),
                      batch_size=n, autocast=cuda)

    def sensitivity(autocast, per_pass, n=plan_samples, replicates=replicates):
        return weight_sensitivity(model, probes[:n], adapter=adapter, solver="midpoint", steps=10,
                                  replicates=replicates, batch_size=batch, seed=1, autocast=autocast,
                                  batches_per_pass=per_pass)

    draw(min(samples, 500))  # warm-up: kernels chosen, memory pools filled
    for autocast, per_pass in SENSITIVITY_PASSES:
        try:
            sensitivity(autocast, per_pass, n=batch * per_pass, replicates=per_pass)
        except (RuntimeError, torch.OutOfMemoryError):  # recorded when timed
            pass
    if cuda:  # the warm-up passes' cached blocks released: sampling 10k images in one batch on an 80 GB card ran
        torch.cuda.empty_cache()  # out of memory beside them (2026-12-05, H100: 10.8 GiB reserved, unallocated)
    sync()
    start = time.perf_counter()
    draw(samples)
    sync()
    sampling_s = time.perf_counter() - start
    row = dict(method="sensitivity", path="paper network, random weights", parameters=sum(p.numel() for p in
               model.parameters()), fid_samples=samples, sampling_s=sampling_s, plan_samples=plan_samples,
               replicates=replicates, batch_size=batch,
               device_sums_bytes=sensitivity_memory(model, replicates=replicates).device_sums, passes=[])
    reference = None
    for autocast, per_pass in SENSITIVITY_PASSES:
        entry = dict(precision="bfloat16 autocast" if autocast else "float32", batches_per_pass=per_pass,
                     estimated_peak_bytes=pass_memory(model, probes, adapter=adapter, solver="midpoint", steps=10,
                                                      replicates=replicates, batch_size=batch, autocast=autocast,
                                                      batches_per_pass=per_pass).total)
        if cuda:  # after the estimate's two evaluations, so that the peak is the pass's alone
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        sync()
        start = time.perf_counter()
        try:
            estimate = sensitivity(autocast, per_pass)
        except (RuntimeError, torch.OutOfMemoryError) as exc:  # recorded; the other passes go on
            entry.update(error=f"{type(exc).__name__}: {str(exc)[:300]}")
            row["passes"].append(entry)
            print(json.dumps(entry), flush=True)
            continue
        sync()
        seconds = time.perf_counter() - start
        reference = reference or estimate
        entry.update(seconds=seconds, share_of_sampling=seconds / sampling_s,
                     peak_bytes=torch.cuda.max_memory_allocated() if cuda else None)
        if estimate is not reference:
            entry.update(against_reference(reference, estimate))
        row["passes"].append(entry)
        print(json.dumps(entry), flush=True)
    row.update(target="sensitivity <= 0.1 x one 10k-sample FID evaluation")
    return row


def against_reference(full, other) -> dict:
    """Per tensor, ``other``'s estimate against ``full``'s: relative difference of the sums,
    and the difference in ``full``'s replicate standard errors."""
    z, rel = [], []
    for name, s in full.diag.items():
        totals = full.replicates[name].reshape(full.replicates[name].shape[0], -1).sum(axis=1, dtype=np.float64)
        se = totals.std(ddof=1) / np.sqrt(totals.size)
        diff = abs(float(other.diag[name].sum()) - float(s.sum()))
        if s.sum() > 0:
            rel.append(diff / float(s.sum()))
            z.append(diff / se if se > 0 else np.inf)
    return dict(tensors=len(rel), median_relative_difference=float(np.median(rel)),
                max_relative_difference=float(np.max(rel)), max_difference_in_standard_errors=float(np.max(z)))


#: The stages of a run, in order (``--only``).
STAGES = ("equal_mass", "uniform_minmax", "lloyd_max", "sensitivity")


def stages(text: str) -> tuple[str, ...]:
    """``--only``: comma-separated names of :data:`STAGES`, at least one."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in STAGES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"--only {text!r}: give one or more of {','.join(STAGES)}")
    return names


def positive_ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive integers")
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu.json")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--lloyd-rows", type=int, default=0,
                        help="rows timed per FLUX.1 row length (default: two DP batches)")
    parser.add_argument("--lloyd-batch", type=int, default=1 << 22, help="weights per DP batch")
    parser.add_argument("--triton-batch", type=int, default=1 << 23, help="weights per DP batch, Triton solver")
    parser.add_argument("--lloyd-budget", type=float, default=45.0,
                        help="seconds of lloyd_max timing (Triton solver) before the remaining row lengths are "
                             "extrapolated from the slowest measured one")
    parser.add_argument("--torch-budget", type=float, default=25.0, help="the same for the torch solver")
    parser.add_argument("--full-model-if-below", type=float, default=150.0,
                        help="quantize the whole synthetic model (measured) when the faster solver's "
                             "extrapolation is below this many seconds")
    parser.add_argument("--full-model-cap", type=float, default=120.0, help="seconds of timed work, whole model")
    parser.add_argument("--device", default="cuda", help="'cpu' for a dry run of the script (tiny sizes)")
    parser.add_argument("--only", type=stages, default=STAGES,
                        help=f"comma-separated stages to run, of {','.join(STAGES)} (default: all); "
                             "equal_mass,uniform_minmax takes well under a minute on an H200")
    parser.add_argument("--fid-samples", type=int, default=10_000,
                        help="images sampled in the denominator of the sensitivity stage")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (or runs of calls) per figure; median")
    parser.add_argument("--uniform-rows-per-program", type=positive_ints, default=(1, 2, 4),
                        help="rows per program of the Triton uniform_minmax grid (powers of two, comma-separated)")
    parser.add_argument("--uniform-warps", type=positive_ints, default=(4, 8, 16),
                        help="warps per program of the Triton uniform_minmax grid (comma-separated)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give at least 1")
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU dry run"
    print(f"{gpu}; torch {torch.__version__}", flush=True)
    bandwidth = copy_bandwidth(device, nbytes=2**31 if device.type == "cuda" else 2**24)
    print(f"copy bandwidth (read + write): {bandwidth / 1e9:.0f} GB/s", flush=True)
    w = torch.randn(args.rows, args.cols, device=device, generator=torch.Generator(device=device).manual_seed(0))
    floor = floor_seconds(w.numel(), bandwidth)
    results = dict(gpu=gpu, torch=torch.__version__, bits=args.bits, copy_bandwidth_GBps=bandwidth / 1e9,
                   chunk=f"{args.rows}x{args.cols}", floor_s=floor, stages=list(args.only), methods=[])
    args.out.mkdir(parents=True, exist_ok=True)

    def save():  # after every stage, so a later failure loses nothing measured
        (args.out / "gpu.json").write_text(json.dumps(results, indent=2))

    rows = equal_mass_cases(w, bandwidth, args.bits, repeats=args.repeats) if "equal_mass" in args.only else []
    if "uniform_minmax" in args.only:
        rows += uniform_cases(w, bandwidth, args.bits, repeats=args.repeats,
                              rows_per_program=args.uniform_rows_per_program, warps=args.uniform_warps)
    for row in rows:
        results["methods"].append(row)
        print(json.dumps(row), flush=True)
    save()
    del w
    torch.cuda.empty_cache()
    lloyds = lloyd_cases(args, bandwidth, device, results, save) if "lloyd_max" in args.only else []
    if "sensitivity" in args.only:
        row = sensitivity_case(device, samples=args.fid_samples if device.type == "cuda" else 64,
                               plan_samples=256 if device.type == "cuda" else 32)
        results["methods"].append(row)
        save()
        print(json.dumps(row), flush=True)
    print_summary(results, lloyds, gpu=gpu, bandwidth=bandwidth, bits=args.bits)
    print(f"wrote {args.out / 'gpu.json'}")
    return 0


def triton_lloyd_config(bits, *, batch, device, shapes):
    """Times the Triton DP at each of ``gpu_triton.LLOYD_CONFIGS`` (the first: the previous
    kernel's schedule, the baseline) on one batch of the row length that holds most of the
    model's weights, each checked equal to the torch DP, and returns the fastest
    ``(flat, tile, warps)`` and the grid's rows, with each one's speed-up over the baseline."""
    gpu_triton = triton_module()
    by_length = weights_by_length(shapes)
    n = max(by_length, key=by_length.get)
    w = torch.randn(max(1, batch // n), n, device=device, generator=torch.Generator(device=device).manual_seed(2))
    reference = lloyd_max_rows(w[:16], bits=bits, batch=batch, layers=torch_layers)
    grid = []
    for flat, tile, warps in gpu_triton.LLOYD_CONFIGS:
        solver = functools.partial(gpu_triton.triton_layers, flat=flat, tile=tile, warps=warps)
        check = lloyd_max_rows(w[:16], bits=bits, batch=batch, layers=solver)  # also the warm-up (compilation)
        same = bool(torch.equal(check[0], reference[0]) and torch.equal(check[1], reference[1]))
        seconds, _ = timed(lambda solver=solver: lloyd_max_rows(w, bits=bits, batch=batch, layers=solver), repeats=3)
        grid.append(dict(flat=flat, tile=tile, warps=warps, row_length=n, rows=w.shape[0], seconds=seconds,
                         ns_per_weight=1e9 * seconds / w.numel(), speedup_over_baseline=grid[0]["seconds"] / seconds
                         if grid else 1.0, equal_to_torch_dp=same))
        print(json.dumps(grid[-1]), flush=True)
    best = min((g for g in grid if g["equal_to_torch_dp"]), key=lambda g: g["seconds"])
    best["fastest"] = True
    return best["flat"], best["tile"], best["warps"], grid


def lloyd_cases(args, bandwidth, device, results, save):
    """The ``lloyd_max`` stage: both DP solvers row length by row length, then the whole
    model with the faster one when its extrapolation is short enough; appended to
    ``results`` (saved after each step).  Returns ``[(result, solver), ...]``."""
    shapes = FLUX_LINEARS if device.type == "cuda" else ((8, 96, 3), (8, 64, 1))
    lloyds = []
    try:  # the Triton DP is an experiment of this script; report its failure and go on
        flat, tile, warps, grid = triton_lloyd_config(args.bits, batch=args.triton_batch, device=device,
                                                      shapes=shapes)
        results["lloyd_triton_grid"] = grid
        triton_layers = functools.partial(triton_module().triton_layers, flat=flat, tile=tile, warps=warps)
        lloyds.append((lloyd_case(bandwidth, args.bits, rows_per_length=args.lloyd_rows, batch=args.triton_batch,
                                  budget_s=args.lloyd_budget, device=device, shapes=shapes, solver=triton_layers,
                                  label=f"torch + Triton DP kernel (one program per row; "
                                        f"{'candidates flattened' if flat else 'the previous schedule'}, "
                                        f"{tile} lanes, {warps} warps)"), triton_layers))
        results["methods"].append(lloyds[-1][0])
        save()
    except Exception as exc:  # noqa: BLE001 - printed, the run goes on
        print(f"triton lloyd_max failed: {type(exc).__name__}: {exc}", flush=True)
    lloyds.append((lloyd_case(bandwidth, args.bits, rows_per_length=args.lloyd_rows, batch=args.lloyd_batch,
                              budget_s=args.torch_budget, device=device, shapes=shapes, solver=torch_layers,
                              label="torch level-synchronous D&C DP"), torch_layers))
    results["methods"].append(lloyds[-1][0])
    save()
    best, solver = min(lloyds, key=lambda pair: pair[0]["extrapolated_model_s"])
    if best["extrapolated_model_s"] < args.full_model_if_below:  # measure the whole model, not only its rows
        full = full_model_case(args.bits, batch=best["batch"], device=device, shapes=shapes, solver=solver,
                               label=best["path"], cap_s=args.full_model_cap)
        results["methods"].append(full)
        save()
        print(f"lloyd_max ({full['path']}): {full['weights_done']:.3g} of {full['model_weights']:.3g} weights "
              f"in {full['measured_s']:.1f} s MEASURED (whole model: "
              f"{'%.1f s' % full['measured_model_s'] if full['measured_model_s'] else 'not finished within the cap'}; "
              f"peak extra {full['peak_extra_bytes'] / 2**30:.2f} GiB)", flush=True)
    return lloyds


def print_summary(results, lloyds, *, gpu, bandwidth, bits):
    """The extrapolations of ``lloyd_max`` and the table of every measured path."""
    for g in results.get("lloyd_triton_grid", ()):
        print(f"lloyd_max Triton DP, {'candidates flattened' if g['flat'] else 'previous schedule (baseline)'}, "
              f"{g['tile']} lanes, {g['warps']} warps: {g['ns_per_weight']:.2f} ns per weight on {g['rows']} rows of "
              f"{g['row_length']}, {g['speedup_over_baseline']:.2f} x the baseline's speed; equal to the torch DP: "
              f"{g['equal_to_torch_dp']}{'; FASTEST' if g.get('fastest') else ''}", flush=True)
    for lloyd, _ in lloyds:
        print(f"lloyd_max ({lloyd['path']}): synthetic FLUX.1-shaped model, {lloyd['model_weights']:.3g} weights, "
              f"b={bits}: EXTRAPOLATED from the timed row batches: {lloyd['extrapolated_model_s']:.1f} s "
              f"(target < 60 s; copy floor {lloyd['floor_model_s']:.2f} s)", flush=True)
    print("\n| GPU | method | path | weights/s | ratio to floor | back to back: ratio to floor | other |")
    print("|---|---|---|---|---|---|---|")
    for m in results["methods"]:
        if m["method"] == "sensitivity":
            print(f"sensitivity pass ({m['parameters']:,} parameters, {m['plan_samples']} draws) against sampling "
                  f"{m['fid_samples']} images ({m['sampling_s']:.2f} s; target 0.1 x the whole FID evaluation):",
                  flush=True)
            for p in m["passes"]:
                if "error" in p:
                    print(f"  {p['precision']}, {p['batches_per_pass']} batches per pass: {p['error']}", flush=True)
                    continue
                diff = (f"; against the first, per tensor: median {p['median_relative_difference']:.1e} relative, "
                        f"at most {p['max_difference_in_standard_errors']:.2f} standard errors"
                        if "tensors" in p else "")
                peak = (f", peak {p['peak_bytes'] / 2**30:.1f} GiB (estimated {p['estimated_peak_bytes'] / 2**30:.1f}, "
                        f"{p['estimated_peak_bytes'] / p['peak_bytes']:.3f} x)" if p["peak_bytes"] else "")
                print(f"  {p['precision']}, {p['batches_per_pass']} batches per pass: {p['seconds']:.2f} s = "
                      f"{p['share_of_sampling']:.3f} x{peak}{diff}", flush=True)
    for m in results["methods"]:
        if m["method"] in ("lloyd_max", "sensitivity"):
            continue
        parts = [f"{m['ratio_to_sort']:.2f} x bare torch.sort", f"max abs diff vs CPU {m['max_abs_diff_vs_cpu']:.1e}"] \
            if m["method"] == "equal_mass" else []
        parts += [f"codes and values equal to CPU: {m['equal_to_cpu']}"] if "equal_to_cpu" in m else []
        parts += [f"equal to unchunked: {m['equal_to_unchunked']}"] if "equal_to_unchunked" in m else []
        parts += [f"equal to the sorting kernel on every row: {m['equal_to_sort_kernel']}"] \
            if "equal_to_sort_kernel" in m else []
        parts += [f"rows by route (0 candidates sorted, 1 row sorted whole, 2 with a pass for first values): "
                  f"{m['rows_by_route']}"] if "rows_by_route" in m else []
        parts += ["FASTEST of the grid"] if m.get("best_of_grid") else []
        other = "; ".join(parts)
        print(f"| {gpu} | {m['method']} | {m['path']} | {m['weights_per_s']:.3g} | {m['ratio_to_floor']:.2f} | "
              f"{m['ratio_to_floor_back_to_back']:.2f} | {other}; peak extra / input "
              f"{m['peak_extra_over_input']:.2f} |")
    for r in (r for lloyd, _ in lloyds for r in lloyd["per_length"]):
        print(f"| {gpu} | lloyd_max | {r['path']}: rows of {r['row_length']} ({r['rows_timed']} rows timed) | "
              f"{1 / r['s_per_weight']:.3g} | {r['s_per_weight'] * bandwidth / 9:.0f} | | codes = CPU on "
              f"{r['codes_equal_cpu_fraction']:.4f} of sampled weights; peak extra / input "
              f"{r['peak_extra_over_input']:.2f} ({r['peak_extra_bytes'] / 2**30:.2f} GiB, a fixed per-batch "
              f"budget) |")


if __name__ == "__main__":
    sys.exit(main())
