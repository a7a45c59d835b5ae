"""Bit-exactness table: this package's paper quantizers against the paper's reference code.

Usage::

    PYTHONPATH=. python scripts/reference_equality.py --reference /path/to/LowBit-HighFid/.git \
        [--commit 63d3f53] [--checkpoint checkpoints/mnist/model.safetensors] [--bits 2 3 4 5 6 7 8] \
        [--reference-compatible]

The reference code (Quantized-FM/LowBit-HighFid at ``--commit``, the four files
``quantizerFunctions/PC-{OT,Uniform,PWL,Log-ECQ}-Quant.py``) is read from the given git
directory with ``git show`` into a temporary directory and imported from there at run time;
none of it is kept in this repository.  Its needs: torch, numpy, scipy, scikit-learn.

For every method of :data:`fmq_theory.vocab.PAPER_METHODS` and every bit width, every float
tensor of the checkpoint is quantized per channel (the reference's only mode) by the
reference and by :func:`fmq_theory.quantizers.quantize_state_dict`; a weight is *equal*
when the two outputs, cast to the tensor's dtype, are the same bits.  For ``equal_mass``
only tie-free groups are compared (a group = a slice along axis 0 of a tensor with
``ndim > 1``, else the whole tensor; tie-free = no value occurs twice): on tied groups the
reference's unstable argsort may send equal weights to different levels, which this
package refuses by design (see :mod:`fmq_theory.quantizers.equal_mass`).

``--write-cases PATH`` instead derives the small fixed reference outputs kept as test
data (``tests/data/reference_quantizers.npz``, read by ``tests/test_reference_quantizers.py``):
for every input of :func:`cases` (seeded, float32 unless named ``*_f64``) and every method
and bit width 1..8, the reference's output cast back to the input's dtype (as
``load_state_dict`` would), keys ``"<case>"`` and ``"<case>/<method>/<bits>"``.

``--write-digests PATH`` writes the SHA-256 of the reference's output on the checkpoint per
method and bit width (:func:`output_digest`; ``tests/data/reference_digests_mnist.json``),
so a test can check the whole real checkpoint without keeping the outputs.

``--reference-compatible`` passes ``reference_compatible=True`` to ``quantize_state_dict``
(the reference's handling of tensors with fewer than ``2**bits`` weights); without it the
library's default is measured.  Prints one cell per method and bit width: ``=`` when every
compared weight is equal, else the number of differing weights; then the count of equal cells.

``--write-table PATH`` also records that table in a json file (``results/reference_equality_mnist.json``,
read by the book page ``notebooks/paper_setup.md``): under ``runs[OPTIONS]`` (``"library default"``
or ``"reference_compatible"``) the differing and compared weights of every cell; runs with other
options already in the file are kept.
"""
import argparse
import hashlib
import importlib.util
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from fmq_theory._util import write_atomic
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.vocab import PAPER_METHODS

#: Reference file and its state-dict function, per method of this package.
REFERENCE = {
    "equal_mass": ("PC-OT-Quant.py", lambda m, sd, b: m.quantize_state_dict_ot(sd, b)),
    "uniform_minmax": ("PC-Uniform-Quant.py", lambda m, sd, b: m.quantize_state_dict(sd, b)),
    "piecewise_quantile": ("PC-PWL-Quant.py", lambda m, sd, b: m.quantize_state_dict_pwl(sd, b)),
    "log2": ("PC-Log-ECQ-Quant.py", lambda m, sd, b: m.quantize_state_dict(sd, b, "log")),
}


def load_reference(git_dir: str, commit: str, directory: Path) -> dict:
    """Import the reference quantizer files of ``commit`` (read with ``git show``)."""
    modules = {}
    for method, (name, _) in REFERENCE.items():
        source = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{commit}:quantizerFunctions/{name}"],
            check=True, capture_output=True, text=True,
        ).stdout
        path = directory / name.replace("-", "_")
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[method] = module
    return modules


def tie_free_mask(t: torch.Tensor) -> torch.Tensor:
    """Boolean mask of ``t``'s shape: True on the groups in which no value repeats."""
    rows = t.reshape(t.shape[0], -1) if t.ndim > 1 else t.reshape(1, -1)
    srt = rows.sort(dim=1).values
    free = ~(srt[:, 1:] == srt[:, :-1]).any(dim=1)
    return free[:, None].expand_as(rows).reshape(t.shape)


def compare(ours: dict, ref: dict, sd: dict, *, ties_excluded: bool, ulps: int = 0) -> tuple[int, int]:
    """(differing weights, compared weights) over the float tensors of ``sd``; with
    ``ulps > 0`` a weight differs only when the two outputs are more than ``ulps`` units in
    the last place (of the larger magnitude, in the tensor's dtype) apart."""
    diff = total = 0
    for name, w in sd.items():
        if not w.is_floating_point():
            continue
        a = ours[name].to(w.dtype)
        b = ref[name].to(w.dtype)
        mask = tie_free_mask(w) if ties_excluded else torch.ones_like(w, dtype=torch.bool)
        same = a.view(torch.int32) == b.view(torch.int32) if w.dtype == torch.float32 else a == b
        if ulps:
            big = torch.maximum(a.abs(), b.abs())
            same = (a - b).abs() <= ulps * (torch.nextafter(big, torch.full_like(big, float("inf"))) - big)
        diff += int((~same & mask).sum())
        total += int(mask.sum())
    return diff, total


def cases() -> dict:
    """The inputs of the fixed reference outputs: shapes and laws that exercise every rule."""
    g = np.random.default_rng(20251113)
    f32 = np.float32
    ties = np.round(g.standard_normal((12, 30)), 1).astype(f32)
    ties[3, :5] = 0.0
    constant = g.standard_normal((4, 10)).astype(f32)
    constant[1] = f32(0.7)
    return {
        "normal": g.standard_normal((16, 37)).astype(f32),
        "laplace_conv": g.laplace(size=(8, 3, 3, 3)).astype(f32),
        "bias": (0.1 * g.standard_normal(50)).astype(f32),
        "norm_gain": (1.0 + 0.05 * g.standard_normal(40)).astype(f32),
        "negative": -np.abs(g.standard_normal((6, 20))).astype(f32),
        "ties_zeros": ties,
        "short_rows": g.standard_normal((5, 9)).astype(f32),
        "tiny": g.standard_normal(3).astype(f32),
        "scalar": np.array(0.37, dtype=f32),
        "constant_row": constant,
        "halfway": np.array([[0.0, 3.0, 0.5, 1.5, 2.5, 1.0], [-1.0, 2.0, -0.5, 0.5, 1.5, 0.0]], dtype=f32),
        "wide_f64": g.standard_t(3, size=(7, 25)),
    }


def write_cases(modules: dict, path: str) -> None:
    """Run the reference on :func:`cases` at bits 1..8 and save inputs and outputs."""
    out = {}
    for name, x in cases().items():
        out[name] = x
        t = torch.from_numpy(np.array(x))
        for method, (_, run) in REFERENCE.items():
            for bits in range(1, 9):
                got = run(modules[method], {"w": t}, bits)["w"]
                out[f"{name}/{method}/{bits}"] = got.to(t.dtype).numpy().reshape(x.shape)
    np.savez_compressed(path, **out)
    print(f"wrote {len(out)} arrays to {path}")


def output_digest(out: dict, sd: dict, *, ties_excluded: bool) -> str:
    """SHA-256 over the float tensors of a quantized state dict in key order, each cast to
    its original dtype; with ``ties_excluded`` the tied groups are zeroed first."""
    h = hashlib.sha256()
    for name, w in sd.items():
        if not w.is_floating_point():
            continue
        t = out[name].to(w.dtype)
        if ties_excluded:
            t = torch.where(tie_free_mask(w), t, torch.zeros_like(t))
        h.update(name.encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def write_digests(modules: dict, sd: dict, bits: list, path: str, checkpoint: str, commit: str) -> None:
    """The reference's output digests on the checkpoint, per method and bits (test data)."""
    digests = {f"{method}/{b}": output_digest(REFERENCE[method][1](modules[method], sd, b), sd,
                                              ties_excluded=method == "equal_mass")
               for method in REFERENCE for b in bits}
    doc = {"provenance": f"Quantized-FM/LowBit-HighFid @ {commit}, quantizerFunctions/PC-*-Quant.py, run on "
                         f"{checkpoint} by scripts/reference_equality.py --write-digests; digest = "
                         "output_digest() of that script (equal_mass: tied channels zeroed)",
           "checkpoint_sha256": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest(), "digests": digests}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(digests)} digests to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, help="git directory of Quantized-FM/LowBit-HighFid")
    parser.add_argument("--commit", default="63d3f53")
    parser.add_argument("--checkpoint", default="checkpoints/mnist/model.safetensors")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--methods", nargs="+", default=list(PAPER_METHODS))
    parser.add_argument("--reference-compatible", action="store_true")
    parser.add_argument("--ulps", type=int, default=0,
                        help="count a weight as equal within this many ulps (0: the same bits)")
    parser.add_argument("--write-cases", default=None, help="derive the fixed test outputs into this .npz")
    parser.add_argument("--write-digests", default=None, help="write the reference's output digests (json)")
    parser.add_argument("--write-table", default=None, help="record the equality table in this json file")
    args = parser.parse_args()
    if args.write_digests:
        with tempfile.TemporaryDirectory() as tmp:
            write_digests(load_reference(args.reference, args.commit, Path(tmp)), load_file(args.checkpoint),
                          args.bits, args.write_digests, args.checkpoint, args.commit)
        return
    if args.write_cases:
        with tempfile.TemporaryDirectory() as tmp:
            write_cases(load_reference(args.reference, args.commit, Path(tmp)), args.write_cases)
        return
    sd = load_file(args.checkpoint)
    options = {"reference_compatible": True} if args.reference_compatible else {}
    print(f"checkpoint {args.checkpoint}: {len(sd)} tensors, {sum(v.numel() for v in sd.values())} weights; "
          f"reference {args.commit}; options {options or 'library default'}; "
          f"{f'equal within {args.ulps} ulp' if args.ulps else 'equal = same bits'}")
    with tempfile.TemporaryDirectory() as tmp:
        modules = load_reference(args.reference, args.commit, Path(tmp))
        cells = {}
        for method in args.methods:
            for bits in args.bits:
                ref = REFERENCE[method][1](modules[method], sd, bits)
                ours = quantize_state_dict(sd, method=method, bits=bits, granularity="channel", **options).state_dict()
                cells[method, bits] = compare(ours, ref, sd, ties_excluded=method == "equal_mass", ulps=args.ulps)
    width = max(len(m) for m in args.methods)
    print(f"{'method':<{width}} " + " ".join(f"{f'b={b}':>8}" for b in args.bits) + "   compared weights")
    for method in args.methods:
        row = [cells[method, b][0] for b in args.bits]
        print(f"{method:<{width}} " + " ".join(f"{('=' if d == 0 else str(d)):>8}" for d in row)
              + f"   {cells[method, args.bits[0]][1]}")
    n_equal = sum(d == 0 for d, _ in cells.values())
    print(f"equal cells: {n_equal} of {len(cells)}")
    if args.write_table:
        write_table(args.write_table, cells, checkpoint=args.checkpoint, commit=args.commit,
                    run="reference_compatible" if args.reference_compatible else "library default", ulps=args.ulps)


def write_table(path: str, cells: dict, *, checkpoint: str, commit: str, run: str, ulps: int) -> None:
    """Merge one equality table (``cells[method, bits] = (differing, compared)``) into ``path``."""
    target = Path(path)
    doc = json.loads(target.read_text()) if target.is_file() else {"runs": {}}
    doc.update(provenance=f"Quantized-FM/LowBit-HighFid @ {commit}, quantizerFunctions/PC-*-Quant.py, against "
                          f"fmq_theory.quantizers.quantize_state_dict (granularity channel) on {checkpoint}, by "
                          "scripts/reference_equality.py --write-table; equal = same bits in the tensor's dtype"
                          + (f" within {ulps} ulp" if ulps else "") + "; equal_mass compared on tie-free groups only",
               checkpoint_sha256=hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest())
    doc["runs"][run] = {f"{method}/{bits}": {"differing": d, "compared": n} for (method, bits), (d, n) in cells.items()}
    write_atomic(target, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1) + "\n"))
    print(f"wrote run {run!r} to {path}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
