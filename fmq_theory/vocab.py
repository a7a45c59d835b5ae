"""The package's vocabulary: every list of names and every limit, defined once.

Each list below is the single source for its names: the quantizers, the theory engine, the
solvers, the CLI's choices and the tests all import it from here, so that a method, a law
or a solver cannot be known to one layer and missing from another.

Examples
--------
>>> "lloyd_max" in METHODS and set(PAPER_METHODS) <= set(METHODS)
True
>>> FIXED_STEP_SOLVERS
('euler', 'midpoint', 'heun')
>>> QUANTIZER_BITS, LAW_BITS
((1, 16), (1, 12))
"""

from __future__ import annotations

#: Every quantization method of :mod:`fmq_theory.quantizers`, in the order the book lists them.
METHODS = (
    "uniform_minmax",
    "uniform_absmax",
    "uniform_mse",
    "half_quadratic",
    "piecewise_quantile",
    "pwlq",
    "log2",
    "equal_mass",
    "lloyd_max",
    "normal_float",
)

#: The four methods of the paper's reference code (arXiv 2511.11418): OT, uniform, PWL, log.
PAPER_METHODS = ("equal_mass", "uniform_minmax", "piecewise_quantile", "log2")

#: Methods whose law-level distortion is computed exactly (no sampling).
LAW_METHODS = ("equal_mass", "lloyd_max", "uniform_mse")

#: Methods whose finite-n distortion is computed exactly by quadrature.
FINITE_N_EXACT_METHODS = ("uniform_minmax",)

#: Methods with a leading asymptotic form derived by :mod:`fmq_theory.theory.symbolic`.
SYMBOLIC_METHODS = ("uniform_minmax", "uniform_mse", "lloyd_max", "equal_mass")

#: Weight-law families of :mod:`fmq_theory.theory.laws`.
LAWS = ("gaussian", "laplace", "student-t", "gen-gaussian")

#: Fixed-step explicit ODE solvers and their velocity evaluations per step.
SOLVER_STAGES = {"euler": 1, "midpoint": 2, "heun": 2}

#: Fixed-step explicit ODE solvers (the certificate and the discrete bound need one).
FIXED_STEP_SOLVERS = tuple(SOLVER_STAGES)

#: Every sampling solver: the fixed-step ones and torchdiffeq's adaptive ``dopri5``.
SOLVERS = (*FIXED_STEP_SOLVERS, "dopri5")

#: Flows the textbook bound chain can bound: the exact flow and each fixed-step solver.
CHAIN_FLOWS = ("exact", *FIXED_STEP_SOLVERS)

#: Bit widths a quantizer accepts, inclusive (exact ``lloyd_max`` stops at :data:`LAW_BITS`).
QUANTIZER_BITS = (1, 16)

#: Bit widths of the law-level theory engine (and of exact ``lloyd_max``), inclusive.
LAW_BITS = (1, 12)

#: Bit widths of symbolic asymptotic forms, inclusive.
SYMBOLIC_BITS = (1, 64)

#: Bit widths a code can be packed at, inclusive.
PACKED_BITS = (1, 8)

#: Float dtypes of tensors and stored side information, by their torch/numpy name.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

__all__ = [
    "CHAIN_FLOWS",
    "FINITE_N_EXACT_METHODS",
    "FIXED_STEP_SOLVERS",
    "FLOAT_DTYPES",
    "LAWS",
    "LAW_BITS",
    "LAW_METHODS",
    "METHODS",
    "PACKED_BITS",
    "PAPER_METHODS",
    "QUANTIZER_BITS",
    "SOLVERS",
    "SOLVER_STAGES",
    "SYMBOLIC_BITS",
    "SYMBOLIC_METHODS",
]
