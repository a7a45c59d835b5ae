"""``fmq quantize``: quantize every floating tensor of a checkpoint into a packed file.

::

    fmq quantize IN.safetensors --method M --bits B [--granularity channel] -o OUT.safetensors
                 [--key KEY] [--format {table,json}] [--in-place]

The input is read by :func:`fmq_theory.io.float_checkpoint.load_state_dict_file` (``.safetensors``, or a
``.pt``/``.pth``/``.bin`` read with ``torch.load(weights_only=True)``, whose state dict
``--key`` picks inside a training checkpoint); every tensor goes
through :func:`fmq_theory.quantizers.quantize_state_dict` (the paper's rule: floating
tensors with ``ndim > 1`` at the chosen granularity, 1-D ones per tensor, others kept as
they are); the result is written atomically by :func:`fmq_theory.io.quantized_file.save_quantized`.

Printed: the package version and every parameter, a per-tensor table (shape, MSE, W2,
bits/weight, grouping actually used) and totals over all quantized weights:

* MSE: the weight-count-weighted mean of the per-tensor MSEs;
* W2: ``sqrt(sum_t n_t W2_t^2 / sum_t n_t)``, the cost of coupling every tensor with its
  own quantized version (an upper bound on W2 between the pooled weight laws);
* bits/weight: all index bits and side-information bits over the number of weights;
* file size in bytes (header and data separately) and the compression against the same
  tensors stored in fp32 (``4 * n`` bytes per quantized tensor, passthrough tensors as
  they are) divided by the file size.

Bad arguments (unknown method, bits outside 1..8, malformed granularity, output not
``.safetensors``, missing input, an input that is a directory, an output that is a
directory or not writable) exit with status 2 before any work and write nothing.  An
output that is the input file itself (also through a link) is refused unless
``--in-place`` is given; a tensor that cannot be quantized (NaN or Inf weights, ...) is
named in the error.  JSON is printed whole or not at all.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from tqdm import tqdm

from fmq_theory import __version__
from fmq_theory._util import check_not_input, check_output_path
from fmq_theory.cli._output import command_line, document, render
from fmq_theory.io.float_checkpoint import load_state_dict_file
from fmq_theory.io.quantized_file import save_quantized
from fmq_theory.quantizers import QuantizedStateDict, format_granularity, parse_granularity, quantize_state_dict
from fmq_theory.vocab import METHODS, PACKED_BITS, PAPER_METHODS

_MIN_BITS, _MAX_BITS = PACKED_BITS


def _method(value: str) -> str:
    if value not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {value!r}; choose from {', '.join(METHODS)}")
    return value


def _bits(value: str) -> int:
    try:
        bits = int(value)
    except ValueError:
        bits = 0
    if not _MIN_BITS <= bits <= _MAX_BITS or str(bits) != value.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"bits={value!r} must be an integer in {_MIN_BITS}..{_MAX_BITS}")
    return bits


def _granularity(value: str) -> tuple:
    try:
        return parse_granularity(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _output(value: str) -> str:
    if not value.endswith(".safetensors"):
        raise argparse.ArgumentTypeError(f"output {value!r} must end in '.safetensors'")
    return value


def register(subparsers) -> None:
    """Add the ``quantize`` sub-command."""
    parser = subparsers.add_parser(
        "quantize",
        help="quantize a checkpoint into a bit-packed .safetensors file",
        description="Quantize every floating tensor of a checkpoint into one bit-packed .safetensors file.",
    )
    parser.add_argument("input", metavar="IN", help="checkpoint: .safetensors (or .pt/.pth/.bin, weights only)")
    parser.add_argument("--method", required=True, type=_method, help="quantizer name (fmq_theory.vocab.METHODS)")
    parser.add_argument(
        "--bits", required=True, type=_bits, help=f"index bits per weight, {_MIN_BITS}..{_MAX_BITS}"
    )
    parser.add_argument(
        "--granularity",
        default="channel",
        type=_granularity,
        help="'tensor', 'channel' (default; tensors with ndim < 2 are then quantized per tensor) "
        "or 'group:G'; normal_float uses blocks of 64 unless 'group:G' is given",
    )
    parser.add_argument("-o", "--output", required=True, type=_output, metavar="OUT", help="output .safetensors")
    parser.add_argument(
        "--key",
        default=None,
        help="entry of a .pt/.pth/.bin dict holding the state dict (default: the file itself, "
        "or its single 'state_dict'/'model'/'ema' entry)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.add_argument(
        "--reference-compatible",
        action="store_true",
        help="reproduce the paper's reference code bit for bit (its four methods only; see "
        "fmq_theory.quantizers.quantize_state_dict): tensors with fewer than 2**bits weights kept as they are "
        "for equal_mass/piecewise_quantile/log2, float32 chunk means for equal_mass",
    )
    parser.add_argument(
        "--in-place", action="store_true",
        help="allow OUT to be IN itself (the float checkpoint is then replaced by the quantized one)",
    )
    parser.set_defaults(func=run)


#: Units of the numbers of ``fmq quantize --format json``.
_UNITS = {"mse": "per-weight mean squared error, in the weights' units squared",
          "w2": "2-Wasserstein distance, in the weights' units",
          "bits_per_weight": "honest bits per weight (codes + codebooks + scales)",
          "file_bytes": "bytes", "header_bytes": "bytes", "data_bytes": "bytes", "fp32_bytes": "bytes"}


def _quantize_with_progress(state_dict: dict, *, method: str, bits: int, granularity: tuple,
                            reference_compatible: bool = False):
    """Quantize tensor by tensor (so tqdm can show progress); same result as one call."""
    quantized, passthrough, report = {}, {}, []
    for name in tqdm(list(state_dict), desc="fmq quantize", unit="tensor", file=sys.stderr):
        try:
            part = quantize_state_dict({name: state_dict[name]}, method=method, bits=bits, granularity=granularity,
                                       reference_compatible=reference_compatible)
        except ValueError as exc:
            if repr(name) in str(exc):
                raise
            raise ValueError(f"tensor {name!r}: {exc}") from exc
        quantized.update(part.quantized)
        passthrough.update(part.passthrough)
        report.extend(part.report)
    return QuantizedStateDict(
        quantized=quantized, passthrough=passthrough, report=tuple(report), keys=tuple(state_dict)
    )


def _summary(args, qsd, info) -> dict:
    rows = [
        {
            "name": r.name,
            "shape": list(r.shape),
            "n_weights": int(r.n_weights),
            "mse": float(r.mse),
            "w2": float(r.w2),
            "bits_per_weight": float(r.bits_per_weight),
            "granularity": r.granularity,
        }
        for r in qsd.report
    ]
    kept = [
        {
            "name": name,
            "shape": list(t.shape),
            "dtype": str(t.dtype).removeprefix("torch."),
            "bytes": int(info.tensor_bytes[name]),
        }
        for name, t in qsd.passthrough.items()
    ]
    n_total = sum(r["n_weights"] for r in rows)
    kept_bytes = sum(k["bytes"] for k in kept)
    fp32_bytes = 4 * n_total + kept_bytes

    def weighted(key):
        return sum(r["n_weights"] * r[key] for r in rows) / n_total if n_total else 0.0

    return {
        "package_version": __version__,
        "parameters": {
            "input": args.input,
            "output": args.output,
            "method": args.method,
            "bits": args.bits,
            "granularity": format_granularity(args.granularity),
            "key": args.key,
            "in_place": args.in_place,
        },
        "tensors": rows,
        "passthrough": kept,
        "total": {
            "n_tensors": len(rows),
            "n_weights": n_total,
            "mse": weighted("mse"),
            "w2": math.sqrt(sum(r["n_weights"] * r["w2"] ** 2 for r in rows) / n_total) if n_total else 0.0,
            "bits_per_weight": weighted("bits_per_weight"),
            "file_bytes": info.file_bytes,
            "header_bytes": info.header_bytes,
            "data_bytes": info.data_bytes,
            "fp32_bytes": fp32_bytes,
            "compression_vs_fp32": fp32_bytes / info.file_bytes,
        },
    }


def _print_table(summary: dict, out) -> None:
    p, t = summary["parameters"], summary["total"]
    print(f"fmq_theory {summary['package_version']}  fmq quantize", file=out)
    print("  " + "  ".join(f"{k}={v}" for k, v in p.items()), file=out)
    rows = [
        (r["name"], "x".join(map(str, r["shape"])) or "()", r["mse"], r["w2"], r["bits_per_weight"], r["granularity"])
        for r in summary["tensors"]
    ]
    width = max([len("tensor")] + [len(r[0]) for r in rows])
    swidth = max([len("shape")] + [len(r[1]) for r in rows])
    print(
        f"{'tensor':<{width}}  {'shape':>{swidth}}  {'MSE':>11}  {'W2':>11}  {'bits/weight':>11}  grouping",
        file=out,
    )
    for name, shape, mse, w2, bpw, grouping in rows:
        print(f"{name:<{width}}  {shape:>{swidth}}  {mse:11.4e}  {w2:11.4e}  {bpw:11.4f}  {grouping}", file=out)
    print(
        f"{'TOTAL':<{width}}  {'n=' + str(t['n_weights']):>{swidth}}  {t['mse']:11.4e}  {t['w2']:11.4e}  "
        f"{t['bits_per_weight']:11.4f}",
        file=out,
    )
    if summary["passthrough"]:
        kept = ", ".join(f"{k['name']} ({k['dtype']}, {k['bytes']} B)" for k in summary["passthrough"])
        print(f"kept as is: {kept}", file=out)
    print(
        f"{t['n_tensors']} tensors quantized, {t['n_weights']} weights; MSE weighted by weight count, "
        "W2 = sqrt(weighted mean of per-tensor W2^2)",
        file=out,
    )
    print(
        f"file: {t['file_bytes']} bytes ({t['data_bytes']} data + {t['header_bytes']} header); "
        f"fp32: {t['fp32_bytes']} bytes; compression vs fp32: {t['compression_vs_fp32']:.2f}x",
        file=out,
    )


def run(args) -> int:
    """Handler of ``fmq quantize``; returns the exit status."""
    check_output_path(args.output, argument="-o/--output")
    check_not_input(args.output, [args.input], argument="-o/--output", allow=args.in_place)
    if args.reference_compatible and args.method not in PAPER_METHODS:
        raise ValueError(f"--reference-compatible applies to the paper's methods {', '.join(PAPER_METHODS)}, "
                         f"not --method {args.method}")
    state_dict = load_state_dict_file(args.input, key=args.key, argument="argument IN")
    qsd = _quantize_with_progress(state_dict, method=args.method, bits=args.bits, granularity=args.granularity,
                                  reference_compatible=args.reference_compatible)
    info = save_quantized(
        args.output,
        qsd,
        metadata={
            "command": "fmq quantize",
            "input": os.path.basename(args.input),
            "method": args.method,
            "bits": args.bits,
            "granularity": format_granularity(args.granularity),
            "reference_compatible": args.reference_compatible,
        },
    )
    summary = _summary(args, qsd, info)
    if args.format == "json":
        doc = document(command=command_line(args), parameters=summary["parameters"], units=_UNITS,
                       result={k: summary[k] for k in ("tensors", "passthrough", "total")}, interval_level=None)
        sys.stdout.write(render(doc, columns=[], fmt="json"))
    else:
        _print_table(summary, sys.stdout)
    return 0
