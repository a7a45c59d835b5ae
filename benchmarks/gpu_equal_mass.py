"""GPU throughput of per-channel equal-mass quantization against the memory floor.

Run on the GPU machine (``scripts/gpu_bench.sh``).  Quantizes a synthetic model of
``--params`` float32 weights in chunks of ``--rows x --cols`` matrices (drawn on the device,
not timed), and compares the time with the memory floor: the weights read once and the
dequantized weights written once at the device-to-device copy bandwidth measured in the
same run.  Prints a markdown table for ``benchmarks/gpu.md``.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from fmq_theory.quantizers.torch_equal_mass import dequantize_rows, equal_mass_rows


def copy_bandwidth(device, *, nbytes=2**31, repeats=20) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        dst.copy_(src)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return 2 * nbytes / times[len(times) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=float, default=1e9)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=4096)
    parser.add_argument("--bits", type=int, default=4)
    args = parser.parse_args(argv)
    device = torch.device("cuda")
    chunk = args.rows * args.cols
    n_chunks = max(1, round(args.params / chunk))
    bandwidth = copy_bandwidth(device)
    # correctness on one chunk against the CPU quantizer (tie-free random data)
    from fmq_theory import quantize

    probe = torch.randn(256, args.cols, device=device)
    codes, levels = equal_mass_rows(probe, bits=args.bits)
    cpu = quantize(probe.cpu().numpy(), method="equal_mass", bits=args.bits, granularity="channel")
    err = float((dequantize_rows(codes, levels).cpu() - torch.from_numpy(cpu.dequantize())).abs().max())
    gen = torch.Generator(device=device).manual_seed(0)
    weights = torch.randn(args.rows, args.cols, device=device, generator=gen)
    equal_mass_rows(weights, bits=args.bits)  # warm-up
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    total = 0.0
    for _ in range(n_chunks):
        weights.normal_(generator=gen)
        start.record()
        codes, levels = equal_mass_rows(weights, bits=args.bits)
        out = dequantize_rows(codes, levels)
        end.record()
        torch.cuda.synchronize()
        total += start.elapsed_time(end) / 1e3
    n_weights = n_chunks * chunk
    floor = 8 * n_weights / bandwidth  # 4 bytes read + 4 bytes written per weight
    row = dict(
        gpu=torch.cuda.get_device_name(0), torch=torch.__version__, params=n_weights, chunk=f"{args.rows}x{args.cols}",
        bits=args.bits, seconds=total, weights_per_s=n_weights / total, copy_bandwidth_GBps=bandwidth / 1e9,
        floor_seconds=floor, ratio_to_floor=total / floor, max_abs_diff_vs_cpu=err,
    )
    print(json.dumps(row))
    print("| GPU | weights | chunk | b | time (s) | weights/s | copy BW (GB/s, r+w) | floor (s) | ratio to floor | max abs diff vs CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {row['gpu']} | {n_weights:.3g} | {row['chunk']} | {args.bits} | {total:.3f} | {row['weights_per_s']:.3g} | "
          f"{row['copy_bandwidth_GBps']:.0f} | {floor:.4f} | {row['ratio_to_floor']:.1f} | {err:.1e} |")
    del out
    return 0


if __name__ == "__main__":
    sys.exit(main())
