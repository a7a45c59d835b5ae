"""Figures of the results tables: the sweep's (``fmq plot``) and the bound check's.

Sweep figures: degradation against honest bits per weight, sample grids, weight W2 vs FID.  Inputs (all under
``results/``):

* ``<dataset>.csv`` - the sweep rows (:data:`fmq_theory.results.schema.SWEEP`);
* ``grids_<dataset>.npz`` (optional) - uint8 samples ``(64, C, H, W)`` keyed
  ``<method>_<bits>`` from the same initial noise for every model.

Outputs (``results/figures/``): ``degradation_<dataset>.png``, ``grid_<dataset>.png``,
``w2_vs_fid_<dataset>.png``.

Bound-check figure (:func:`plot_bound_check`): ``results/figures/bound_check_<dataset>.png``
from the rows of :data:`fmq_theory.results.schema.BOUND_CHECK` (``bound_check_<dataset>.csv``;
:func:`plot_all` draws it too).  Legends use 9-point text on figures at most 7.5 inches wide,
so they stay readable at the book's page width.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state, no backend
switch) and written atomically (:func:`fmq_theory._util.write_atomic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fmq_theory._util import write_atomic
from fmq_theory.results.schema import BOUND_CHECK, SWEEP

__all__ = ["bound_check_title", "plot_all", "plot_bound_check", "plot_degradation", "plot_grid", "plot_w2_vs_fid"]

#: Methods drawn in the sample grids, in row order.
GRID_METHODS = ("equal_mass", "lloyd_max", "uniform_minmax", "piecewise_quantile", "log2")


def _save(fig: Figure, path: Path, **savefig) -> Path:
    """Write ``fig`` as png to ``path`` atomically (``savefig``: keyword arguments of :meth:`Figure.savefig`)."""
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", **savefig))
    return path


def _by_method(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        if r["method"] != "none":
            out.setdefault(r["method"], []).append(r)
    return {m: sorted(rs, key=lambda r: r["bits"]) for m, rs in sorted(out.items())}


def plot_degradation(rows: list[dict], *, out: Path) -> Path:
    """``FID_q - FID_fp`` (classifier features; Inception where measured) against the honest
    bits per weight each method stores (codes, codebooks and scales), log scale.

    Methods are compared at equal stored bits, not at equal nominal ``b`` (log-2 axis).  Points
    at or below zero (inside the sampling noise) are drawn at the noise floor with an open
    marker; the grey line has the slope of a ``2^(-2b)`` law.  The bounds are drawn by
    :func:`plot_bound_check`, not here (one message per figure).
    """
    fp = next(r for r in rows if r["method"] == "none")
    dataset = fp["dataset"]
    panels = [("fid", fp["feature_net"])]
    if fp.get("fid_inception") is not None:
        panels.append(("fid_inception", fp["inception_net"]))
    fig = Figure(figsize=(7.5, 3.9 * len(panels) + 1.2), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)
    for ax, (col, net) in zip(axes[:, 0], panels):
        base = fp[col]
        floor = None
        for i, (m, rs) in enumerate(_by_method(rows).items()):
            pts = [(r["bits_per_weight"], r[col] - base) for r in rs if r[col] is not None]
            if not pts:
                continue
            b = np.array([p[0] for p in pts])
            d = np.array([p[1] for p in pts])
            color = f"C{i % 10}"
            pos = d > 0
            ax.plot(b[pos], d[pos], "o-", color=color, label=m, ms=4)
            small = 1e-3 * max(1.0, base)
            ax.plot(b[~pos], np.full((~pos).sum(), small), "o", mfc="none", color=color, ms=4)
            floor = small
        bb = np.arange(2, 9)
        ax.plot(bb, 300 * 4.0 ** (-(bb - 2)), color="0.6", lw=1, label="slope of $2^{-2b}$")
        ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ax.set_xticks([2, 3, 4, 6, 8, 12, 16, 24, 32], labels=["2", "3", "4", "6", "8", "12", "16", "24", "32"])
        ax.set_ylabel(f"FID$_q$ - FID$_{{fp}}$ (FID$_{{fp}}$ = {base:.3g})")
        ax.set_title(f"{dataset}: {net.split('(')[0]} features\n{fp['samples']} samples per cell, "
                     f"{fp['solver']}, {fp['nfe']} NFE", fontsize=10)
        if floor is not None:
            ax.axhline(floor, color="0.85", lw=0.8)
    axes[-1, 0].set_xlabel("honest bits per weight (codes + codebooks + scales); one point per b = 2..8")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9, frameon=False)
    return _save(fig, out, dpi=110)


def plot_grid(grids: dict, *, dataset: str, out: Path, n: int = 8) -> Path:
    """Rows: FP, then each of :data:`GRID_METHODS` at 2/3/4 bits; ``n`` samples each."""
    rows = [("none_32", "full precision")]
    for m in GRID_METHODS:
        for b in (2, 3, 4):
            if f"{m}_{b}" in grids:
                rows.append((f"{m}_{b}", f"{m} {b}b"))
    fig = Figure(figsize=(n * 0.6 + 1.6, len(rows) * 0.62))
    axes = fig.subplots(len(rows), 1)
    for ax, (key, label) in zip(np.atleast_1d(axes), rows):
        imgs = grids[key][:n, 0]
        ax.imshow(np.concatenate(list(imgs), axis=1), cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(hspace=0.08)
    top = max(ax.get_position().y1 for ax in np.atleast_1d(axes))
    fig.text(0.5, top + 0.1 / fig.get_figheight(), f"{dataset}: same initial noise for every model",
             ha="center", va="bottom", fontsize=9)  # above the first row, never over it
    return _save(fig, out, dpi=120, bbox_inches="tight")


def plot_w2_vs_fid(rows: list[dict], *, out: Path) -> Path:
    """Weight W2 (size-weighted RMS of per-tensor W2) vs measured FID, one colour per method."""
    fp = next(r for r in rows if r["method"] == "none")
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    for i, (m, rs) in enumerate(_by_method(rows).items()):
        w2 = [r["weight_w2"] for r in rs]
        fid = [r["fid"] for r in rs]
        ax.plot(w2, fid, "o", color=f"C{i % 10}", label=m, ms=4)
        for r, x, y in zip(rs, w2, fid):
            ax.annotate(str(r["bits"]), (x, y), fontsize=7, xytext=(2, 2), textcoords="offset points")
    ax.axhline(fp["fid"], color="k", lw=0.8, ls=":", label="full precision")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight W2 (RMS over tensors, exact 1-D)")
    ax.set_ylabel(f"FID ({fp['feature_net']})")
    ax.set_title(f"{fp['dataset']}: weight W2 vs FID (labels: bits)", fontsize=10)
    ax.legend(fontsize=9, ncol=2)
    return _save(fig, out, dpi=110, bbox_inches="tight")


def plot_all(*, results_dir: Path, out_dir: Path) -> list[Path]:
    """Draw every figure for every ``<dataset>.csv`` found in ``results_dir``."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    written = []
    for ds in ("mnist", "fashion_mnist"):
        path = results_dir / f"{ds}.csv"
        rows = SWEEP.read(path) if path.is_file() else []
        if not rows:
            continue
        written.append(plot_degradation(rows, out=out_dir / f"degradation_{ds}.png"))
        written.append(plot_w2_vs_fid(rows, out=out_dir / f"w2_vs_fid_{ds}.png"))
        grid_path = results_dir / f"grids_{ds}.npz"
        if grid_path.is_file():
            with np.load(grid_path) as z:
                grids = {k: z[k] for k in z.files}
            written.append(plot_grid(grids, dataset=ds, out=out_dir / f"grid_{ds}.png"))
        check_path = results_dir / f"bound_check_{ds}.csv"
        if check_path.is_file():
            checks = BOUND_CHECK.read(check_path)
            written.append(plot_bound_check(checks, out_dir / f"bound_check_{ds}.png", title=bound_check_title(
                ds, solver=checks[0]["solver"], steps=checks[0]["steps"])))
    if not written:
        raise FileNotFoundError(f"no results/<dataset>.csv found in {results_dir}")
    return written


def bound_check_title(dataset: str, *, solver: str, steps: int) -> str:
    """Title of the bound-check figure of ``dataset``."""
    return f"{dataset}: FID change vs bounds ({solver}, {steps} steps)"


def plot_bound_check(rows: list[dict], path: Path, *, title: str) -> Path:
    """Measured dFID (with interval) vs certified, predicted and dither, one panel per method, log scale.

    ``rows`` are typed rows of :data:`fmq_theory.results.schema.BOUND_CHECK`.  Resolved negative
    changes are drawn at ``|dFID|`` with open markers.  The naive chain is many orders above
    everything else: its range is written at the top of each panel instead of a curve off the
    scale (so every legend entry has a visible mark).
    """
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig = Figure(figsize=(7.5, 2.7 * max(1, len(methods)) + 1.6), layout="constrained")
    axes = fig.subplots(max(1, len(methods)), 1, sharex=True, sharey=True, squeeze=False)
    shown = []
    for ax, method in zip(axes[:, 0], methods):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["bits"])
        b = np.array([r["bits"] for r in rs])

        def col(key):
            return np.array([np.nan if r.get(key) is None else r[key] for r in rs], dtype=float)

        meas, lo, hi = col("measured_dfid"), col("dfid_low"), col("dfid_high")
        pos, neg = lo > 0, hi < 0
        inside = ~(pos | neg)
        ax.errorbar(b[pos], meas[pos], yerr=[meas[pos] - lo[pos], hi[pos] - meas[pos]], fmt="o-", color="k",
                    label="measured dFID > 0 (95% paired bootstrap)", zorder=5)
        ax.plot(b[neg], -meas[neg], "o", color="k", mfc="none", label="|measured dFID|, resolved < 0", zorder=5)
        ax.plot(b[inside], np.maximum(hi[inside], 1e-12), "kv", mfc="none", label="inside noise: upper end")
        series = [("certified_dfid", "s-", "tab:green", "certified (paired features)"),
                  ("certified_dfid_fits", "s--", "tab:olive", "certified (FD of the fits)"),
                  ("predicted_dfid", "^-", "tab:blue", "predicted (noise model)"),
                  ("predicted_dfid_actual", "v-", "tab:cyan", "predicted (actual error, linearised)"),
                  ("dither_dfid", "x:", "tab:purple", "dither (sampled)")]
        for key, fmt, color, label in series:
            y = col(key)
            ok = y > 0
            ax.plot(b[ok], y[ok], fmt, color=color, label=label, ms=5)
            shown.extend(y[ok])
        shown.extend(np.abs(meas[pos | neg]))
        shown.extend(hi[inside])
        naive = col("estimated_naive_dfid")  # many orders above the rest: stated, not drawn off scale
        ax.text(0.99, 0.96, f"naive chain (off scale): {np.nanmin(naive):.1e} to {np.nanmax(naive):.1e}",
                transform=ax.transAxes, ha="right", va="top", fontsize=9, color="tab:red")
        ax.set_yscale("log")
        ax.set_title(method, fontsize=10, loc="left")
        ax.set_ylabel("FID change")
        ax.grid(True, which="both", alpha=0.3)
    shown = np.array([v for v in shown if np.isfinite(v) and v > 0])
    if shown.size:
        axes[0][0].set_ylim(shown.min() / 3, shown.max() * 50)
    axes[-1][0].set_xlabel("bits b (classifier-feature FID)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=9, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path, dpi=110)
