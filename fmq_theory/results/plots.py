"""Figures of a sweep (``fmq plot``): degradation vs bits, sample grids, weight W2 vs FID.

Inputs (all under ``results/``):

* ``<dataset>.csv`` - the sweep rows of :mod:`fmq_theory.harness.sweep`;
* ``bound_<dataset>.json`` (optional) - the naive chain's bound per cell, from
  ``scripts/bound_compare.py``; drawn dashed beside the measurements;
* ``grids_<dataset>.npz`` (optional) - uint8 samples ``(64, C, H, W)`` keyed
  ``<method>_<bits>`` from the same initial noise for every model.

Outputs (``results/figures/``): ``degradation_<dataset>.png``, ``grid_<dataset>.png``,
``w2_vs_fid_<dataset>.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["plot_degradation", "plot_grid", "plot_w2_vs_fid", "plot_all"]

#: Methods drawn in the sample grids, in row order.
GRID_METHODS = ("equal_mass", "lloyd_max", "uniform_minmax", "piecewise_quantile", "log2")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    return path


def _by_method(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        if r["method"] != "none":
            out.setdefault(r["method"], []).append(r)
    return {m: sorted(rs, key=lambda r: int(r["bits"])) for m, rs in sorted(out.items())}


def plot_degradation(rows: list[dict], *, out: Path, bound: dict | None = None) -> Path:
    """``FID_q - FID_fp`` (classifier features; Inception where measured) vs bits, log scale.

    Points at or below zero (inside the sampling noise) are drawn at the noise floor with an
    open marker. The dashed curves are the naive chain's bounds when ``bound`` is given; the
    grey line has the slope of a ``2^(-2b)`` law.
    """
    plt = _plt()
    fp = next(r for r in rows if r["method"] == "none")
    dataset = fp["dataset"]
    panels = [("fid", fp["feature_net"])]
    if fp.get("fid_inception"):
        panels.append(("fid_inception", fp["inception_net"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, (col, net) in zip(axes[0], panels):
        base = float(fp[col])
        floor = None
        for i, (m, rs) in enumerate(_by_method(rows).items()):
            pts = [(int(r["bits"]), float(r[col]) - base) for r in rs if r[col]]
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
    return _save(fig, out)


def plot_grid(grids: dict, *, dataset: str, out: Path, n: int = 8) -> Path:
    """Rows: FP, then each of :data:`GRID_METHODS` at 2/3/4 bits; ``n`` samples each."""
    plt = _plt()
    rows = [("none_32", "full precision")]
    for m in GRID_METHODS:
        for b in (2, 3, 4):
            if f"{m}_{b}" in grids:
                rows.append((f"{m}_{b}", f"{m} {b}b"))
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.6 + 1.6, len(rows) * 0.62))
    for ax, (key, label) in zip(np.atleast_1d(axes), rows):
        imgs = grids[key][:n, 0]
        ax.imshow(np.concatenate(list(imgs), axis=1), cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(top=1 - 0.35 / len(rows), hspace=0.08)
    fig.suptitle(f"{dataset}: same initial noise for every model", fontsize=9)
    return _save(fig, out)


def plot_w2_vs_fid(rows: list[dict], *, out: Path) -> Path:
    """Weight W2 (size-weighted RMS of per-tensor W2) vs measured FID, one colour per method."""
    plt = _plt()
    fp = next(r for r in rows if r["method"] == "none")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (m, rs) in enumerate(_by_method(rows).items()):
        w2 = [float(r["weight_w2"]) for r in rs]
        fid = [float(r["fid"]) for r in rs]
        ax.plot(w2, fid, "o", color=f"C{i % 10}", label=m, ms=4)
        for r, x, y in zip(rs, w2, fid):
            ax.annotate(r["bits"], (x, y), fontsize=5, xytext=(2, 2), textcoords="offset points")
    ax.axhline(float(fp["fid"]), color="k", lw=0.8, ls=":", label="full precision")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight W2 (RMS over tensors, exact 1-D)")
    ax.set_ylabel(f"FID ({fp['feature_net']})")
    ax.set_title(f"{fp['dataset']}: weight W2 vs FID (labels: bits)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out)


def plot_all(*, results_dir: Path, out_dir: Path) -> list[Path]:
    """Draw every figure for every ``<dataset>.csv`` found in ``results_dir``."""
    from fmq_theory.harness.sweep import read_rows

    results_dir, out_dir = Path(results_dir), Path(out_dir)
    written = []
    for ds in ("mnist", "fashion_mnist"):
        rows = read_rows(results_dir / f"{ds}.csv")
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
