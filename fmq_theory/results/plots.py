"""Figures of the results tables: the sweep's (``fmq plot``) and the bound check's.

Sweep figures: degradation vs bits, sample grids, weight W2 vs FID.  Inputs (all under
``results/``):

* ``<dataset>.csv`` - the sweep rows (:data:`fmq_theory.results.schema.SWEEP`);
* ``bound_<dataset>.json`` (optional) - the naive chain's bound per cell, from
  ``scripts/bound_compare.py``; drawn dashed beside the measurements;
* ``grids_<dataset>.npz`` (optional) - uint8 samples ``(64, C, H, W)`` keyed
  ``<method>_<bits>`` from the same initial noise for every model.

Outputs (``results/figures/``): ``degradation_<dataset>.png``, ``grid_<dataset>.png``,
``w2_vs_fid_<dataset>.png``.

Bound-check figure (:func:`plot_bound_check`): ``results/figures/bound_check_<dataset>.png``
from the rows of :data:`fmq_theory.results.schema.BOUND_CHECK`.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state, no backend
switch) and written atomically (:func:`fmq_theory._util.write_atomic`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fmq_theory._util import write_atomic
from fmq_theory.results.schema import SWEEP

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


def plot_degradation(rows: list[dict], *, out: Path, bound: dict | None = None) -> Path:
    """``FID_q - FID_fp`` (classifier features; Inception where measured) vs bits, log scale.

    Points at or below zero (inside the sampling noise) are drawn at the noise floor with an
    open marker. The dashed curves are the naive chain's bounds when ``bound`` is given; the
    grey line has the slope of a ``2^(-2b)`` law.
    """
    fp = next(r for r in rows if r["method"] == "none")
    dataset = fp["dataset"]
    panels = [("fid", fp["feature_net"])]
    if fp.get("fid_inception") is not None:
        panels.append(("fid_inception", fp["inception_net"]))
    fig = Figure(figsize=(6.5 * len(panels), 4.8))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (col, net) in zip(axes[0], panels):
        base = fp[col]
        floor = None
        for i, (m, rs) in enumerate(_by_method(rows).items()):
            pts = [(r["bits"], r[col] - base) for r in rs if r[col] is not None]
            if not pts:
                continue
            b = np.array([p[0] for p in pts])
            d = np.array([p[1] for p in pts])
            color = f"C{i % 10}"
            pos = d > 0
            ax.plot(b[pos], d[pos], "o-", color=color, label=m, ms=4)
            small = 1e-3 * max(1.0, base)
            ax.plot(b[~pos], np.full((~pos).sum(), small), "o", mfc="none", color=color, ms=4)
            if bound is not None and col == "fid":
                cells = sorted((c["bits"], c["naive_bound_dfid"]) for c in bound["cells"]
                               if c["method"] == m)
                if cells:
                    ax.plot([c[0] for c in cells], [c[1] for c in cells], "--", color=color,
                            lw=0.8, alpha=0.7)
            floor = small
        bb = np.arange(2, 9)
        ax.plot(bb, 300 * 4.0 ** (-(bb - 2)), color="0.6", lw=1, label="slope of 2^(-2b)")
        ax.set_yscale("log")
        ax.set_xlabel("bits b")
        ax.set_ylabel(f"FID_q - FID_fp  (FID_fp = {base:.3g})")
        ax.set_title(f"{dataset}: {net}\n{fp['samples']} samples/cell, {fp['solver']} NFE {fp['nfe']}"
                     + ("; dashed: naive chain bound" if bound is not None and col == "fid" else ""),
                     fontsize=9)
        if floor is not None:
            ax.axhline(floor, color="0.85", lw=0.8)
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, out, dpi=120, bbox_inches="tight")


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
    fig.subplots_adjust(top=1 - 0.35 / len(rows), hspace=0.08)
    fig.suptitle(f"{dataset}: same initial noise for every model", fontsize=9)
    return _save(fig, out, dpi=120, bbox_inches="tight")


def plot_w2_vs_fid(rows: list[dict], *, out: Path) -> Path:
    """Weight W2 (size-weighted RMS of per-tensor W2) vs measured FID, one colour per method."""
    fp = next(r for r in rows if r["method"] == "none")
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for i, (m, rs) in enumerate(_by_method(rows).items()):
        w2 = [r["weight_w2"] for r in rs]
        fid = [r["fid"] for r in rs]
        ax.plot(w2, fid, "o", color=f"C{i % 10}", label=m, ms=4)
        for r, x, y in zip(rs, w2, fid):
            ax.annotate(str(r["bits"]), (x, y), fontsize=5, xytext=(2, 2), textcoords="offset points")
    ax.axhline(fp["fid"], color="k", lw=0.8, ls=":", label="full precision")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight W2 (RMS over tensors, exact 1-D)")
    ax.set_ylabel(f"FID ({fp['feature_net']})")
    ax.set_title(f"{fp['dataset']}: weight W2 vs FID (labels: bits)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out, dpi=120, bbox_inches="tight")


def plot_all(*, results_dir: Path, out_dir: Path) -> list[Path]:
    """Draw every figure for every ``<dataset>.csv`` found in ``results_dir``."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    written = []
    for ds in ("mnist", "fashion_mnist"):
        path = results_dir / f"{ds}.csv"
        rows = SWEEP.read(path) if path.is_file() else []
        if not rows:
            continue
        bound_path = results_dir / f"bound_{ds}.json"
        bound = json.loads(bound_path.read_text()) if bound_path.is_file() else None
        written.append(plot_degradation(rows, out=out_dir / f"degradation_{ds}.png", bound=bound))
        written.append(plot_w2_vs_fid(rows, out=out_dir / f"w2_vs_fid_{ds}.png"))
        grid_path = results_dir / f"grids_{ds}.npz"
        if grid_path.is_file():
            with np.load(grid_path) as z:
                grids = {k: z[k] for k in z.files}
            written.append(plot_grid(grids, dataset=ds, out=out_dir / f"grid_{ds}.png"))
    if not written:
        raise FileNotFoundError(f"no results/<dataset>.csv found in {results_dir}")
    return written


def bound_check_title(dataset: str, *, solver: str, steps: int) -> str:
    """Title of the bound-check figure of ``dataset``."""
    return f"{dataset}: FID change vs bounds ({solver}, {steps} steps)"


def plot_bound_check(rows: list[dict], path: Path, *, title: str) -> Path:
    """Measured dFID (with interval) vs certified, predicted, dither and naive, per method, log scale.

    ``rows`` are typed rows of :data:`fmq_theory.results.schema.BOUND_CHECK`.  Resolved negative
    changes are drawn at ``|dFID|`` with open markers.  The y range is set by everything but
    the naive chain, which is many orders above it: the chain is still plotted (off scale when
    it does not fit) and its range is written at the top of each panel.
    """
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig = Figure(figsize=(4.8 * max(1, len(methods)), 4.4))
    axes = fig.subplots(1, max(1, len(methods)), sharey=True, squeeze=False)
    shown = []
    for ax, method in zip(axes[0], methods):
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
        naive = col("estimated_naive_dfid")
        ax.plot(b, naive, "d--", color="tab:red", label="naive chain (estimated constants)")
        ax.text(0.02, 0.98, f"naive chain: {np.nanmin(naive):.1e} to {np.nanmax(naive):.1e}", transform=ax.transAxes,
                va="top", fontsize=7, color="tab:red")
        ax.set_yscale("log")
        ax.set_xlabel("bits")
        ax.set_title(method)
        ax.grid(True, which="both", alpha=0.3)
    shown = np.array([v for v in shown if np.isfinite(v) and v > 0])
    if shown.size:
        axes[0][0].set_ylim(shown.min() / 3, shown.max() * 5)
    axes[0][0].set_ylabel("FID change (classifier features)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=5, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return _save(fig, path, dpi=110)
