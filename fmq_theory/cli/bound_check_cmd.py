"""``fmq bound-check``: measured FID change vs naive, certified and predicted bounds.

For one dataset, a trained checkpoint and its classifier feature net, and every
(method, bits) cell:

* measured: paired sampling of the FP and quantized models from the same noise and labels
  (deployed fixed-step solver, float32, TF32 off), classifier-feature FID of both against
  the real test set, ``dFID = FID_q - FID_fp`` with a paired-bootstrap interval (a cell is
  *inside the sampling noise* when the interval contains 0), mode-switch rate (classifier
  label of the pair differs), paired sample distances;
* certified (:func:`fmq_theory.bounds.certify_fid`): ``(sqrt(FID_fp) + sqrt(FD_paired))^2 -
  FID_fp`` from the paired features, and the trajectory certificate
  (:func:`fmq_theory.bounds.certify`) of the sample-space W2 on a subset;
* predicted (:func:`fmq_theory.bounds.predict`): noise gains of the FP model and the
  row-wise weight MSE of the quantizer only; the dither test samples the FP weights plus
  uniform noise of the same row-wise variance; the same linearised propagation with the
  actual weight error (``predicted_dfid_actual``, which needs the quantized weights but no
  sampling of the quantized model) separates the noise model's miss from the linearisation's;
* naive (:func:`fmq_theory.theory.fid_chain.fid_chain`): the textbook chain with constants
  estimated at sampled points (largest observed values; lower estimates of the suprema the
  chain needs, so the naive bound shown is, if anything, too small).

Features are those of the classifier's penultimate layer on clipped samples mapped to
``[0, 1]`` without rounding to uint8 (so that the same differentiable map serves the
measurement, the certificate and the prediction); the reference moments are those of the
real test images ``uint8 / 255``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

from fmq_theory._util import write_atomic
from fmq_theory.cli._spec import parse_bits

__all__ = ["COLUMNS", "plot", "register", "write_csv"]

METHODS_DEFAULT = ("equal_mass", "lloyd_max", "uniform_minmax")

COLUMNS = (
    "dataset", "method", "bits", "samples", "solver", "steps", "feature_net", "device",
    "weight_mse", "fid_fp", "fid_q", "measured_dfid", "dfid_low", "dfid_high", "inside_noise",
    "naive_bound", "certified_bound", "certified_bound_fits", "predicted_dfid",
    "predicted_dfid_linear_rms", "predicted_dfid_actual", "dither_dfid", "switch_rate", "ratio_certified",
    "ratio_predicted", "ratio_predicted_actual", "ratio_dither", "ratio_naive", "measured_w2_paired", "cert_samples", "certified_w2",
    "certified_w2_rms", "measured_w2_paired_cert", "certified_w2_over_measured",
    "cert_per_sample_ratio_median", "lanczos_residual_max", "fd_paired", "fd_between",
    "predicted_sample_msd", "predicted_sample_msd_mc", "predicted_sample_msd_actual", "measured_sample_msd",
    "dither_sample_msd",
    "predicted_feature_msd", "predicted_step_mse", "measured_step_mse", "dominant_tensors",
    "lipschitz_x", "lipschitz_theta", "lip_features", "pred_samples", "draws", "t_quantize", "t_measure",
    "t_certify", "t_predict", "t_dither", "wall_s",
)


def register(subparsers) -> None:
    """Add the ``bound-check`` sub-command."""
    p = subparsers.add_parser("bound-check", help="measured FID change vs naive, certified and predicted bounds",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=("mnist", "fashion_mnist"))
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default checkpoints/<dataset>)")
    p.add_argument("--classifier", type=Path, default=None,
                   help="classifier checkpoint (default checkpoints/classifier_<dataset>.safetensors)")
    p.add_argument("--methods", default=",".join(METHODS_DEFAULT), help="comma-separated quantizer names")
    p.add_argument("--bits", type=parse_bits, default=parse_bits("2:8"), help="'2:8' or '2,4,8'")
    p.add_argument("--cert-bits", type=lambda spec: parse_bits(spec, flag="--cert-bits"), default=None,
                   help="bit widths that get the trajectory (W2) certificate (default: all)")
    p.add_argument("--samples", type=int, default=5000, help="paired samples for the measured FID")
    p.add_argument("--cert-samples", type=int, default=64, help="samples for the trajectory certificate")
    p.add_argument("--pred-samples", type=int, default=2000, help="samples for the FID prediction Monte Carlo")
    p.add_argument("--gain-samples", type=int, default=64, help="samples for the noise gains")
    p.add_argument("--draws", type=int, default=2, help="antithetic Monte Carlo draws of the weight noise")
    p.add_argument("--solver", default="midpoint", choices=("euler", "midpoint", "heun"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n-boot", type=int, default=100, help="paired-bootstrap replicates of the measured dFID")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--time-limit", type=float, default=None, help="seconds; no new cell starts after this")
    p.add_argument("--out", type=Path, default=None, help="csv (default results/bound_check_<dataset>.csv)")
    p.add_argument("--figure", type=Path, default=None,
                   help="png (default results/figures/bound_check_<dataset>.png)")
    p.set_defaults(func=_handler)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` under :data:`COLUMNS` to ``path`` atomically (:func:`fmq_theory._util.write_atomic`)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in COLUMNS})

    write_atomic(path, write)


def _handler(args) -> int:
    if args.samples < 2 or args.cert_samples < 2 or args.pred_samples < 2 or args.gain_samples < 1:
        raise ValueError("--samples, --cert-samples and --pred-samples must be >= 2, --gain-samples >= 1")
    methods = [m for m in args.methods.split(",") if m]
    from fmq_theory.quantizers import METHODS

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"--methods has unknown quantizers {bad}; known: {sorted(METHODS)}")
    out = args.out or Path("results") / f"bound_check_{args.dataset}.csv"
    figure = args.figure or Path("results") / "figures" / f"bound_check_{args.dataset}.png"
    rows: list[dict] = []

    def on_row(row: dict) -> None:
        rows.append(row)
        write_csv(out, rows)
        print(summary_line(row), flush=True)

    bound_check(dataset=args.dataset, checkpoint=args.checkpoint or Path("checkpoints") / args.dataset,
                classifier=args.classifier, cert_bits=args.cert_bits or args.bits,
                    methods=methods, bits=args.bits, samples=args.samples, cert_samples=args.cert_samples,
                    pred_samples=args.pred_samples, gain_samples=args.gain_samples, draws=args.draws,
                    solver=args.solver, steps=args.steps, n_boot=args.n_boot, confidence=args.confidence,
                    device=args.device, seed=args.seed, batch_size=args.batch_size,
                    time_limit=args.time_limit, on_row=on_row)
    plot(rows, figure, title=f"{args.dataset}: FID change vs bounds ({args.solver}, {args.steps} steps)")
    print(f"wrote {out} ({len(rows)} rows) and {figure}")
    return 0


# ---------------------------------------------------------------------------------------------
# the measurement


def summary_line(row: dict) -> str:
    """One progress line per cell."""
    return (f"{row['method']:>15s} b={row['bits']}  dFID {row['measured_dfid']:+.4g} "
            f"[{row['dfid_low']:+.3g}, {row['dfid_high']:+.3g}]  cert {row['certified_bound']:.4g}  "
            f"pred {row['predicted_dfid']:.4g}/{row['predicted_dfid_actual']:.4g}  dither {row['dither_dfid']:+.4g}  naive {row['naive_bound']:.3g}  "
            f"switch {row['switch_rate']:.4f}  W2 {row['measured_w2_paired']:.4g}/{row['certified_w2']:.4g}  "
            f"{row['wall_s']:.0f}s (quant {row['t_quantize']:.0f} meas {row['t_measure']:.0f} "
            f"cert {row['t_certify']:.0f} pred {row['t_predict']:.0f} dither {row['t_dither']:.0f})")


def _ratio(num: float, den: float, inside_noise: bool) -> float:
    return num / den if (den > 0 and not inside_noise) else float("nan")


class _Setup:
    """Everything computed once per dataset: models, features, reference, FP samples, gains."""

    def __init__(self, *, dataset, checkpoint, classifier, samples, gain_samples, solver, steps, seed, batch_size, device):
        import numpy as np
        import torch

        from fmq_theory.bounds import noise_gains
        from fmq_theory.harness.checkpoints import load_trained_model
        from fmq_theory.harness.data import load
        from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
        from fmq_theory.flow.solvers import balanced_labels, make_noise

        self.device = torch.device(device)
        self.loaded = load_trained_model(Path(checkpoint), device=self.device)
        self.model = self.loaded.model.eval()
        self.classifier = ClassifierFeatures(classifier or classifier_checkpoint(dataset), device=self.device)
        self.net = self.classifier.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        cfg = self.model.config
        self.shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
        self.noise = make_noise(samples, self.shape, seed=seed)
        self.labels = balanced_labels(samples, cfg.num_classes) if cfg.num_classes else None
        self.solver, self.steps, self.batch_size = solver, steps, batch_size
        real = load(dataset, "test")
        with torch.no_grad():
            feats = torch.cat([self.net.features(torch.from_numpy(real.images[i:i + batch_size]).to(self.device).float() / 255)
                               for i in range(0, real.images.shape[0], batch_size)]).double()
        self.ref_mean = feats.mean(0).cpu().numpy()
        self.ref_cov = np.cov(feats.cpu().numpy().T)
        self.x_fp = self.sample(self.model)
        self.f_fp, self.y_fp = self.features(self.x_fp)
        self.gains = noise_gains(self.model, self.noise[:gain_samples], feature_fn=self.feature_fn,
                                 labels=None if self.labels is None else self.labels[:gain_samples],
                                 solver=solver, steps=steps, projections=2, batch_size=8, device=self.device,
                                 seed=seed, progress=True)
        self.constants = _naive_constants(self)

    def feature_fn(self, images):
        return self.net.features((images + 1) / 2)

    def sample(self, model):
        import torch

        from fmq_theory.flow.solvers import guided_velocity, integrate

        outs = []
        with torch.no_grad():
            for i in range(0, self.noise.shape[0], self.batch_size):
                y = None if self.labels is None else self.labels[i:i + self.batch_size].to(self.device)
                res = integrate(guided_velocity(model, y, 0.0), self.noise[i:i + self.batch_size].to(self.device),
                                solver=self.solver, steps=self.steps)
                outs.append(res.x.float())
        return torch.cat(outs)

    def features(self, x):
        import torch

        with torch.no_grad():
            f = torch.cat([self.feature_fn(x[i:i + self.batch_size].clamp(-1, 1)) for i in range(0, x.shape[0], self.batch_size)])
            y = self.net.head(f).argmax(1)
        return f.double(), y.cpu().numpy()

    def model_with(self, state_dict):
        import copy

        m = copy.deepcopy(self.model)
        m.load_state_dict(state_dict)
        return m.eval()


def _max_norm_x(step_map_of, points, iterations=8):
    """Largest Lanczos estimate of ``||D f||_2`` over a batch of points (estimate from below)."""
    from fmq_theory.bounds.spectral import jacobian_spectral_norm

    return float(jacobian_spectral_norm(step_map_of, points, iterations=iterations).norm.max())


def _naive_constants(setup: "_Setup") -> dict:
    """Constants of the textbook chain at sampled points (largest observed values).

    ``lipschitz_x``: max over 8 times x 16 FP trajectory points of ``||d v / d x||_2``;
    ``lipschitz_theta``: max over 8 (time, sample) points of ``||d v / d theta||_2`` (power
    iteration on ``J J^T`` in output space); ``lip_features``: max over 64 FP samples of
    ``||d phi / d x||_2``.  All are lower estimates of the suprema the chain assumes.
    """
    import numpy as np
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from fmq_theory.bounds.certificate import one_step_map
    from fmq_theory.flow.solvers import guided_velocity

    dev = setup.device
    n = 16
    x = setup.noise[:n].to(dev)
    y = None if setup.labels is None else setup.labels[:n].to(dev)
    v = guided_velocity(setup.model, y, 0.0)
    times = np.linspace(0, 1, setup.steps + 1)
    lx, states = 0.0, []
    with sdpa_kernel([SDPBackend.MATH]):
        for k in range(setup.steps):
            states.append((float(times[k]), x))
            with torch.no_grad():
                x = one_step_map(v, float(times[k]), float(times[k + 1] - times[k]), solver=setup.solver)(x)
        for t, xs in states[:: max(1, setup.steps // 8)]:
            lx = max(lx, _max_norm_x(lambda z, t=t: v(t, z), xs))
        params = {k: p.detach() for k, p in setup.model.named_parameters()}
        lt = 0.0
        for t, xs in states[:: max(1, setup.steps // 8)]:
            x1 = xs[:1]
            y1 = None if y is None else y[:1]

            def f(p, x1=x1, y1=y1, t=t):
                return torch.func.functional_call(setup.model, p, (x1, torch.full((1,), t, device=dev), y1))

            _, vjp_fn = torch.func.vjp(f, params)
            u = torch.randn_like(x1)
            sigma = 0.0
            for _ in range(10):  # power iteration on J J^T (output space)
                u = u / u.norm()
                (g,) = vjp_fn(u)
                _, ju = torch.func.jvp(f, (params,), (g,))
                sigma = float(ju.flatten() @ u.flatten()) ** 0.5  # u^T J J^T u = |J^T u|^2
                u = ju
            lt = max(lt, sigma)
        imgs = setup.x_fp[:64].clamp(-1, 1)
        lf = _max_norm_x(setup.feature_fn, imgs)
    return {"lipschitz_x": lx, "lipschitz_theta": lt, "lip_features": lf}


def _cell(setup: "_Setup", *, dataset, method, bits, cert_samples, pred_samples, draws, n_boot, confidence,
          seed) -> dict:
    import numpy as np
    import torch

    from fmq_theory.bounds import certify, certify_fid, dither_state_dict, predict
    from fmq_theory.theory.fid_chain import fid_chain
    from fmq_theory.harness.metrics import frechet_distance
    from fmq_theory.quantizers import quantize_state_dict

    t0 = time.perf_counter()
    sd = {k: v.detach() for k, v in setup.model.state_dict().items()}
    qsd = quantize_state_dict(sd, method=method, bits=bits, granularity="channel")
    sd_q = qsd.state_dict()
    n_w = sum(r.n_weights for r in qsd.report)
    weight_mse = sum(r.mse * r.n_weights for r in qsd.report) / n_w
    model_q = setup.model_with(sd_q)
    t1 = time.perf_counter()
    x_q = setup.sample(model_q)
    f_q, y_q = setup.features(x_q)
    fidc = certify_fid(setup.f_fp.cpu(), f_q.cpu(), reference_mean=setup.ref_mean, reference_cov=setup.ref_cov,
                       labels_fp=setup.y_fp, labels_q=y_q, n_boot=n_boot, confidence=confidence, seed=seed)
    msd = float(((x_q - setup.x_fp).double().flatten(1) ** 2).sum(1).mean())
    params = dict(setup.model.named_parameters())
    quantized = {k: v for k, v in sd_q.items() if k in params}
    t2 = time.perf_counter()
    n_c = cert_samples
    cert = None
    if n_c >= 2:
        cert = certify(setup.model, model_q, setup.noise[:n_c],
                       labels=None if setup.labels is None else setup.labels[:n_c], solver=setup.solver,
                       steps=setup.steps, segment_points=(0.0, 0.5, 1.0), lanczos_iterations=5, value_range=2.0,
                       confidence=confidence, batch_size=n_c, device=setup.device, seed=seed)
    t3 = time.perf_counter()
    pred = predict(setup.model, quantized, noise=setup.noise[:pred_samples], feature_fn=setup.feature_fn,
                   reference_mean=setup.ref_mean, reference_cov=setup.ref_cov, gains=setup.gains,
                   labels=None if setup.labels is None else setup.labels[:pred_samples], solver=setup.solver,
                   steps=setup.steps, draws=draws, batch_size=1000, device=setup.device, seed=seed)
    t4 = time.perf_counter()
    model_d = setup.model_with(dither_state_dict(sd, quantized, seed=seed))
    x_d = setup.sample(model_d)
    f_d, _ = setup.features(x_d)
    f_d = f_d.cpu()
    mu_d = f_d.mean(0)
    c_d = f_d - mu_d
    dither_dfid = frechet_distance(mu_d, c_d.T @ c_d / (f_d.shape[0] - 1), setup.ref_mean, setup.ref_cov) - fidc.fid_fp
    dither_msd = float(((x_d - setup.x_fp).double().flatten(1) ** 2).sum(1).mean())
    t5 = time.perf_counter()
    k = setup.constants
    naive = fid_chain(mse=weight_mse, n_params=n_w, lipschitz_theta=k["lipschitz_theta"],
                      lipschitz_x=k["lipschitz_x"], lip_features=k["lip_features"], fid_fp=fidc.fid_fp,
                      solver=setup.solver, steps=setup.steps)
    h = 1.0 / setup.steps
    inside = fidc.inside_noise
    nan = float("nan")
    if cert is not None:
        ratio = cert.per_sample / np.maximum(cert.paired_distance, np.finfo(float).tiny)
        cert_cols = {
            "certified_w2": cert.w2_bound, "certified_w2_rms": cert.w2_rms, "measured_w2_paired_cert": cert.w2_paired,
            "certified_w2_over_measured": cert.w2_bound / max(cert.w2_paired, 1e-300),
            "cert_per_sample_ratio_median": float(np.median(ratio)),
            "lanczos_residual_max": float(cert.lanczos_residual.max()),
            "measured_step_mse": float(np.mean(cert.defect_norms**2)) / h**2,
        }
    else:  # not run for these bits (--cert-bits)
        cert_cols = dict.fromkeys(("certified_w2", "certified_w2_rms", "measured_w2_paired_cert",
                                   "certified_w2_over_measured", "cert_per_sample_ratio_median",
                                   "lanczos_residual_max", "measured_step_mse"), nan)
    return {
        "dataset": dataset, "method": method, "bits": bits, "samples": int(setup.noise.shape[0]),
        "solver": setup.solver, "steps": setup.steps, "feature_net": setup.classifier.name,
        "device": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu",
        "weight_mse": weight_mse, "fid_fp": fidc.fid_fp, "fid_q": fidc.fid_q, "measured_dfid": fidc.measured_dfid,
        "dfid_low": fidc.dfid_low, "dfid_high": fidc.dfid_high, "inside_noise": inside,
        "naive_bound": naive.delta_fid, "certified_bound": fidc.dfid_bound,
        "certified_bound_fits": fidc.dfid_bound_between, "predicted_dfid": pred.dfid,
        "predicted_dfid_linear_rms": pred.dfid_linear_rms, "predicted_dfid_actual": pred.dfid_actual,
        "dither_dfid": dither_dfid,
        "switch_rate": fidc.switch_rate,
        "ratio_certified": _ratio(fidc.dfid_bound, fidc.measured_dfid, inside),
        "ratio_predicted": _ratio(pred.dfid, fidc.measured_dfid, inside),
        "ratio_predicted_actual": _ratio(pred.dfid_actual, fidc.measured_dfid, inside),
        "ratio_dither": _ratio(dither_dfid, fidc.measured_dfid, inside),
        "ratio_naive": _ratio(naive.delta_fid, fidc.measured_dfid, inside),
        "measured_w2_paired": math.sqrt(msd), "cert_samples": n_c if cert is not None else 0, **cert_cols,
        "fd_paired": fidc.fd_paired,
        "fd_between": fidc.fd_between, "predicted_sample_msd": pred.sample_msd,
        "predicted_sample_msd_mc": float(np.mean(pred.sample_msd_mc)),
        "predicted_sample_msd_actual": pred.sample_msd_actual, "measured_sample_msd": msd,
        "dither_sample_msd": dither_msd, "predicted_feature_msd": pred.feature_msd,
        "predicted_step_mse": pred.step_mse,
        "dominant_tensors": ";".join(f"{name}:{share:.3f}" for name, share in pred.dominant("feature", k=3)),
        **k, "pred_samples": pred.n, "draws": draws, "t_quantize": t1 - t0, "t_measure": t2 - t1,
        "t_certify": t3 - t2, "t_predict": t4 - t3, "t_dither": t5 - t4, "wall_s": time.perf_counter() - t0,
    }


def bound_check(*, dataset, checkpoint, classifier, cert_bits, methods, bits, samples, cert_samples, pred_samples, gain_samples, draws,
                solver, steps, n_boot, confidence, device, seed, batch_size, time_limit, on_row) -> None:
    """Run every (method, bits) cell, calling ``on_row(row)`` after each.

    Bits are visited spread out (2, 4, 8, then the rest) with methods inside, so that a run
    cut short by ``time_limit`` still spans the whole range for every method.
    """
    import torch
    from tqdm.auto import tqdm

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    start = time.perf_counter()
    setup = _Setup(dataset=dataset, checkpoint=checkpoint, classifier=classifier, samples=samples, gain_samples=gain_samples,
                   solver=solver, steps=steps, seed=seed, batch_size=batch_size, device=device)
    print(f"setup {time.perf_counter() - start:.1f}s; constants {setup.constants}", flush=True)
    first = [b for b in (2, 4, 8) if b in bits]
    order = first + [b for b in bits if b not in first]
    cells = [(m, b) for b in order for m in methods]
    for method, b in tqdm(cells, desc=f"bound-check {dataset}", unit="cell"):
        if time_limit is not None and time.perf_counter() - start > time_limit:
            print(f"time limit reached: {method} b={b} and later cells not run", flush=True)
            break
        on_row(_cell(setup, dataset=dataset, method=method, bits=b, cert_samples=cert_samples if b in cert_bits else 0,
                     pred_samples=pred_samples, draws=draws, n_boot=n_boot, confidence=confidence, seed=seed))


def plot(rows: list[dict], path: Path, *, title: str) -> None:
    """Measured dFID (with interval) vs certified, predicted, dither and naive, per method, log scale.

    Resolved negative changes are drawn at ``|dFID|`` with open markers.  The y range is set by
    everything but the naive chain, which is many orders above it: the chain is still plotted
    (off scale when it does not fit) and its range is written at the top of each panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(methods)), figsize=(4.8 * max(1, len(methods)), 4.4), sharey=True,
                             squeeze=False)
    shown = []
    for ax, method in zip(axes[0], methods):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: int(r["bits"]))
        b = np.array([int(r["bits"]) for r in rs])

        def col(key):
            return np.array([float(r[key]) if key in r else np.nan for r in rs])

        meas, lo, hi = col("measured_dfid"), col("dfid_low"), col("dfid_high")
        pos, neg = lo > 0, hi < 0
        inside = ~(pos | neg)
        ax.errorbar(b[pos], meas[pos], yerr=[meas[pos] - lo[pos], hi[pos] - meas[pos]], fmt="o-", color="k",
                    label="measured dFID > 0 (95% paired bootstrap)", zorder=5)
        ax.plot(b[neg], -meas[neg], "o", color="k", mfc="none", label="|measured dFID|, resolved < 0", zorder=5)
        ax.plot(b[inside], np.maximum(hi[inside], 1e-12), "kv", mfc="none", label="inside noise: upper end")
        series = [("certified_bound", "s-", "tab:green", "certified (paired features)"),
                  ("certified_bound_fits", "s--", "tab:olive", "certified (FD of the fits)"),
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
        naive = col("naive_bound")
        ax.plot(b, naive, "d--", color="tab:red", label="naive chain")
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
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
