r"""NF-style quantizer: a fixed normal-quantile codebook with per-block absmax scaling.

The codebook generalises QLoRA's NF4 to any b: with :math:`K = 2^b` and the offset
:math:`\delta = \tfrac12[(1 - \tfrac{1}{2(K-1)}) + (1 - \tfrac{1}{2K})]` (0.9677083 for
K = 16, as in bitsandbytes' ``create_normal_map``), the :math:`K/2` positive levels are
:math:`\Phi^{-1}` at ``linspace(delta, 1/2, K/2 + 1)[:-1]``, the :math:`K/2 - 1` negative
levels are :math:`-\Phi^{-1}` at ``linspace(delta, 1/2, K/2)[:-1]``, plus an exact 0, all
divided by the largest (so the codebook spans :math:`[-1, 1]`; for b = 1 it is
:math:`\{0, 1\}`).  It is a pure function of b (computed with the standard library's
``statistics.NormalDist``), so a checkpoint stores only the per-block ``absmax``.

Blocks: like bitsandbytes, blocks are runs of ``block_size`` (default 64) consecutive
weights of the row-major flattened tensor, whatever the granularity ("tensor" and
"channel" both mean these blocks; ``("group", g)`` sets the block to g); with
``block_size=None`` the granularity's own groups are the blocks.  Each weight goes to
the nearest level of ``absmax * codebook``.

References
----------
.. [1] T. Dettmers, A. Pagnoni, A. Holtzman, L. Zettlemoyer, "QLoRA: efficient
   finetuning of quantized LLMs", NeurIPS 2023.
"""

from __future__ import annotations

from functools import lru_cache
from statistics import NormalDist

import numpy as np

from fmq_theory._util import check_positive_int
from fmq_theory.quantizers._common import nearest_codes

#: Default block length (QLoRA / bitsandbytes).
DEFAULT_BLOCK_SIZE = 64


@lru_cache(maxsize=None)
def _codebook(bits: int) -> tuple:
    n_levels = 2**bits
    delta = 0.5 * ((1.0 - 1.0 / (2 * (n_levels - 1))) + (1.0 - 1.0 / (2 * n_levels)))
    inv = NormalDist().inv_cdf
    n_pos = n_levels // 2
    n_neg = n_levels // 2 - 1
    pos = [inv(p) for p in np.linspace(delta, 0.5, n_pos + 1)[:-1]]
    neg = [-inv(p) for p in np.linspace(delta, 0.5, n_neg + 1)[:-1]] if n_neg else []
    values = np.array(sorted(pos + neg + [0.0]), dtype=np.float64)
    return tuple(values / np.max(np.abs(values)))


def nf_codebook(bits: int) -> np.ndarray:
    """The normalised NF codebook of ``bits`` bits: sorted, shape ``(2**bits,)``, float64."""
    return np.array(_codebook(int(bits)))


def nf_levels(bits: int, stored) -> np.ndarray:
    """Levels ``absmax * codebook`` (float64 product, rounded to the stored dtype): ``(r, K)``."""
    absmax = np.asarray(stored["absmax"])
    return (absmax.astype(np.float64)[:, None] * nf_codebook(bits)[None, :]).astype(absmax.dtype)


def nf_granularity(granularity: tuple, options: dict) -> tuple:
    """The blocks actually used: ``("group", block_size)`` unless ``block_size`` is None."""
    block = check_positive_int(options.get("block_size", DEFAULT_BLOCK_SIZE), name="block_size", allow_none=True)
    if block is None:
        return granularity
    if granularity[0] == "group":
        return granularity
    return ("group", int(block))


def fit_normal_float(x: np.ndarray, *, bits: int, storage_dtype: np.dtype, block_size=DEFAULT_BLOCK_SIZE):
    """Fit per-block absmax scales; returns ``(stored, codes, info)``."""
    absmax = np.abs(x).max(axis=1).astype(storage_dtype)
    stored = {"absmax": absmax}
    codes = nearest_codes(x, nf_levels(bits, stored), bits)
    return stored, codes, {}
