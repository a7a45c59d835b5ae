r"""The paper's logarithmic quantizer.

For each sign, :math:`K/2` levels at :math:`2^{\mathrm{linspace}(\log_2 \min|w|,\,
\log_2 \max|w|,\, K/2)}` over the non-zero weights of that sign (the end points are
set to :math:`\min|w|` and :math:`\max|w|` exactly, so the quantizer is idempotent);
every weight goes to the nearest level by linear distance; zeros go to the
smallest-magnitude level (the negative one if both signs tie).  A sign with no weights
gets :math:`K/2` copies of the other sign's smallest-magnitude level (unused); an
all-zero group gets the level 0.  Stored: the ``codebook`` of K levels per group.
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers._common import nearest_codes


def _sign_levels(mag: np.ndarray, present: np.ndarray, half: int) -> np.ndarray:
    """Levels of one sign from magnitudes ``mag`` (``nan`` where not of that sign)."""
    lo = np.where(present, np.nanmin(np.where(np.isnan(mag), np.inf, mag), axis=1), 1.0)
    hi = np.where(present, np.nanmax(np.where(np.isnan(mag), -np.inf, mag), axis=1), 1.0)
    out = np.exp2(np.linspace(np.log2(lo), np.log2(hi), half, axis=1))
    out = np.maximum.accumulate(np.clip(out, lo[:, None], hi[:, None]), axis=1)  # sorted despite rounding
    out[:, 0] = lo
    if half > 1:
        out[:, -1] = hi
    return out


def fit_log2(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    """Fit the logarithmic quantizer; returns ``(stored, codes, info)``."""
    half = 2 ** (bits - 1)
    v = x.astype(np.float64)
    has_pos = (v > 0).any(axis=1)
    has_neg = (v < 0).any(axis=1)
    pos = _sign_levels(np.where(v > 0, v, np.nan), has_pos, half)
    neg = _sign_levels(np.where(v < 0, -v, np.nan), has_neg, half)
    pos = np.where(has_pos[:, None], pos, np.where(has_neg[:, None], -neg[:, :1], 0.0))
    neg = np.where(has_neg[:, None], neg, np.where(has_pos[:, None], -pos[:, :1], 0.0))
    codebook = np.concatenate([-neg[:, ::-1], pos], axis=1).astype(storage_dtype)
    codes = nearest_codes(x, codebook, bits)
    return {"codebook": codebook}, codes, {}
