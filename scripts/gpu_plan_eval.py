"""GPU: the plan against every peer at equal honest bits per weight -> results/plan_<model>.csv.

For each model (the MNIST UNet, the FashionMNIST UNet, the FashionMNIST DiT) and each budget
(bits per weight), every method is put at the same honest bits:

* ``plan``: :func:`fmq_theory.plan.plan_quantization` at ``budget_bits=budget`` (data-free:
  its noise is drawn with seed 1, never the evaluation's noise);  ``--no-with-plan`` leaves it out;
* every peer family of :data:`fmq_theory.harness.peers.FAMILIES` at its setting whose honest
  bits per weight are nearest the budget (within 0.75 bits, else no row): HQQ, GGUF, NF4,
  torchao int4, the paper's four methods and lloyd_max / uniform_mse / normal_float per
  channel, and the issue's naive rule.

Every quantized model is sampled from the same seeded noise and balanced labels as the
full-precision one (:func:`fmq_theory.harness.context.load_context`; midpoint, 10 steps),
and measured: FID against the real test split in the classifier's features and, when the
Inception file is given, in InceptionV3's; the paired-bootstrap interval of FID_q - FID_fp
(:func:`fmq_theory.bounds.certify_fid`; 100 replicates on the classifier features, on the
Inception features only when ``--n-boot-inception`` is given, as each replicate there costs two
2048-d eigendecompositions); PSNR and SSIM (Gaussian)
against the paired full-precision samples; the mode-switch rate.  A setting shared by several
budgets is sampled once.

Resumable and time-limited: a row is complete when it holds the FIDs this call can compute;
after ``--deadline`` seconds no new model evaluation starts.  Generated samples are kept
(uint8) under ``--work/samples`` so that Inception FIDs of earlier rows are filled in, without
sampling again, once the Inception file is there.

Run on the GPU through scripts/gpu_plan_eval.sh; on the CPU for a dry run::

    PYTHONPATH=. python scripts/gpu_plan_eval.py --models mnist --budgets 3 --samples 64 \\
        --families rule:lloyd_max,gguf --no-with-plan --device cpu --out-dir /tmp/plan
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from fmq_theory import __version__
from fmq_theory.bounds import certify_fid
from fmq_theory.flow.frechet import frechet_distance, gaussian_fit
from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.context import load_context
from fmq_theory.harness.features.inception import InceptionFeatures
from fmq_theory.harness.metrics import psnr, ssim_gaussian
from fmq_theory.harness.models import architecture_of
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.peers import FAMILIES, peer_at_budget
from fmq_theory.harness.sweep import to_uint8
from fmq_theory.results.schema import PLAN

#: Model name -> (dataset, default checkpoint folder).
MODELS = {"mnist": ("mnist", "checkpoints/mnist"), "fashion_mnist": ("fashion_mnist", "checkpoints/fashion_mnist"),
          "dit": ("fashion_mnist", "checkpoints/dit_fashion_mnist")}
SOLVER, STEPS, SEED = "midpoint", 10, 0


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mnist,fashion_mnist,dit")
    p.add_argument("--checkpoint", action="append", default=[], help="MODEL=FOLDER (default: see MODELS)")
    p.add_argument("--budgets", default="2,2.5,3,4")
    p.add_argument("--families", default="all", help="comma-separated keys of peers.FAMILIES, or 'all'")
    p.add_argument("--with-plan", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--plan-samples", type=int, default=256, help="noise draws the plan may use (seed 1)")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--n-boot", type=int, default=100, help="paired-bootstrap replicates, classifier features")
    p.add_argument("--n-boot-inception", type=int, default=0,
                   help="paired-bootstrap replicates, Inception features (0: the FIDs only; each replicate "
                        "costs two 2048-d eigendecompositions)")
    p.add_argument("--inception", default=None, help="TorchScript InceptionV3 file (none: classifier FID only)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out-dir", default="runs/results")
    p.add_argument("--work", default="runs/plan_work", help="kept samples and feature caches")
    p.add_argument("--deadline", type=float, default=None, help="seconds after which no new evaluation starts")
    p.add_argument("--real-images", type=int, default=None)
    return p.parse_args()


class _Measure:
    """The full-precision reference of one model and the metrics of a quantized copy."""

    def __init__(self, name: str, args, device: torch.device):
        dataset, default = MODELS[name]
        folders = dict(item.split("=", 1) for item in args.checkpoint)
        self.name, self.args, self.device = name, args, device
        self.ctx = load_context(dataset=dataset, samples=args.samples, seed=SEED, device=device,
                                checkpoint=folders.get(name, default), real_images=args.real_images)
        self.work = Path(args.work) / name
        self.work.mkdir(parents=True, exist_ok=True)
        clf = self.ctx.classifier
        self.ref = gaussian_fit(self._dev(self.ctx.real_features))
        t0 = time.perf_counter()
        self.fp_x, self.nfe = self.generate(self.ctx.model)
        self.fp_u8 = to_uint8(self.fp_x)
        self.f_fp, self.pred_fp = self._dev(clf.features(self.fp_u8)), clf.predict(self.fp_u8)
        print(f"[{name}] {architecture_of(self.ctx.model)} {self.ctx.trained.sha256[:12]}: "
              f"{args.samples} FP samples in {time.perf_counter() - t0:.1f} s", flush=True)
        self.inception = InceptionFeatures(args.inception, device=device) if args.inception else None
        if self.inception is not None:
            self.real_inc = self._cached_inception("real", self.ctx.test_images)
            self.ref_inc = gaussian_fit(self._dev(self.real_inc))
            self.inc_fp = self._dev(self._cached_inception("fp", self.fp_u8))

    def _dev(self, feats) -> torch.Tensor:
        """Features as float64 on the device (the bootstrap's eigendecompositions run there)."""
        return torch.as_tensor(np.asarray(feats)).double().to(self.device)

    def _cached_inception(self, label: str, u8: torch.Tensor) -> np.ndarray:
        path = self.work / f"inception_{label}_{u8.shape[0]}.npy"
        if not path.is_file():
            np.save(path, self.inception.features(u8, batch_size=500))
        return np.load(path)

    def generate(self, model) -> tuple[torch.Tensor, int]:
        res = sample(model, self.ctx.noise, adapter=unet_adapter(model, self.ctx.labels, 0.0), solver=SOLVER,
                     steps=STEPS, clip=(-1.0, 1.0), batch_size=self.args.batch_size, autocast=self.device.type == "cuda")
        return res.x, res.nfe

    def base_row(self) -> dict:
        ctx = self.ctx
        return {"model": self.name, "dataset": ctx.dataset, "architecture": architecture_of(ctx.model),
                "samples": self.args.samples, "solver": SOLVER, "steps": STEPS, "nfe": self.nfe, "seed": SEED,
                "feature_net": ctx.classifier.name, "fid_real_test_samples": int(ctx.real_features.shape[0]),
                "checkpoint_sha256": ctx.trained.sha256,
                "classifier_sha256": ctx.classifier.card.get("checkpoint_sha256", ""),
                "device": str(self.device), "version": __version__}

    def fp_row(self) -> dict:
        n = sum(p.numel() for p in self.ctx.model.state_dict().values() if p.is_floating_point())
        row = self.base_row() | {"budget": 32.0, "method": "none", "setting": "fp32", "bits_per_weight": 32.0,
                                 "total_bits": 32 * n, "n_weights": n, "fp16_weights": 0, "weight_mse": 0.0}
        return row | self.metrics(self.fp_u8, self.fp_x, "fp")

    def metrics(self, u8: torch.Tensor, x: torch.Tensor | None, label: str) -> dict:
        """FIDs with paired-bootstrap dFID intervals, and (when ``x`` is given) PSNR/SSIM."""
        clf = self.ctx.classifier
        cert = certify_fid(self.f_fp, self._dev(clf.features(u8)), reference_mean=self.ref[0], reference_cov=self.ref[1],
                           labels_fp=self.pred_fp, labels_q=clf.predict(u8), n_boot=self.args.n_boot, seed=SEED)
        row = {"fid": cert.fid_q, "fid_fp": cert.fid_fp, "dfid": cert.measured_dfid, "dfid_low": cert.dfid_low,
               "dfid_high": cert.dfid_high, "switch_rate": cert.switch_rate}
        if x is not None:
            a, b = (self.fp_x + 1) / 2, (x + 1) / 2
            row |= {"psnr": psnr(a, b, data_range=1.0).mean, "ssim": ssim_gaussian(a, b, data_range=1.0).mean}
        return row | self.inception_metrics(u8, label)

    def inception_metrics(self, u8: torch.Tensor, label: str) -> dict:
        if self.inception is None:
            return {}
        feats = self.inc_fp if label == "fp" else self._dev(self.inception.features(u8, batch_size=500))
        if self.args.n_boot_inception < 2:
            fid_q = frechet_distance(*gaussian_fit(feats), *self.ref_inc)
            fid_fp = frechet_distance(*gaussian_fit(self.inc_fp), *self.ref_inc)
            return {"fid_inception": fid_q, "fid_inception_fp": fid_fp, "dfid_inception": fid_q - fid_fp,
                    "inception_net": self.inception.name, "inception_sha256": self.inception.sha256}
        cert = certify_fid(self.inc_fp, feats, reference_mean=self.ref_inc[0], reference_cov=self.ref_inc[1],
                           n_boot=self.args.n_boot_inception, seed=SEED)
        return {"fid_inception": cert.fid_q, "fid_inception_fp": cert.fid_fp, "dfid_inception": cert.measured_dfid,
                "dfid_inception_low": cert.dfid_low, "dfid_inception_high": cert.dfid_high,
                "inception_net": self.inception.name, "inception_sha256": self.inception.sha256}


def _predicted(plan) -> dict:
    """The plan's predicted dFID (a number, or an object with ``value``/``low``/``high``)."""
    pred = plan.predicted_delta
    if isinstance(pred, (int, float)):
        return {"predicted_dfid": float(pred)}
    return {"predicted_dfid": float(pred.value), "predicted_dfid_low": float(pred.low),
            "predicted_dfid_high": float(pred.high)}


def _quantized(measure: _Measure, budgets, families, with_plan: bool, plan_samples: int):
    """``label -> (state_dict, row fields, [budgets])`` of every method at every budget."""
    model = measure.ctx.model
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    floating = [k for k, v in sd.items() if v.is_floating_point()]
    n_float = sum(sd[k].numel() for k in floating)

    def _mse(deq: dict) -> float:
        return sum(float(((deq[k].double() - sd[k].double()) ** 2).sum()) for k in floating) / n_float

    cache, out = {}, {}
    for budget in budgets:
        t0 = time.perf_counter()
        if with_plan:
            # imported here so that --no-with-plan runs on a branch without fmq_theory.plan (the
            # plan core is merged separately); move it to the top once both are on main
            from fmq_theory.plan import plan_quantization
            cfg = model.config
            noise = make_noise(plan_samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=1)
            labels = balanced_labels(plan_samples, cfg.num_classes) if cfg.num_classes else None
            plan = plan_quantization(model, budget_bits=budget, adapter=unet_adapter(model, labels, 0.0),
                                     noise=noise.to(measure.device), solver=SOLVER, steps=STEPS)
            deq = {k: v.detach().cpu().float() for k, v in plan.quantized.state_dict().items()}
            fields = {"method": "plan", "setting": f"budget {budget:g}", "bits_per_weight": plan.bits_per_weight,
                      "n_weights": n_float, "weight_mse": _mse(deq)} | _predicted(plan)
            out[f"plan@{budget:g}"] = (deq, fields, [budget])
        for family in families:
            q = peer_at_budget(sd, family=family, budget=budget, cache=cache)
            if q is None:
                continue
            if q.label not in out:
                fp16 = sum(q.state_dict[k].numel() for k, f in q.tensor_format.items() if f == "fp16")
                fields = {"method": family, "setting": q.setting, "bits_per_weight": q.bits_per_weight,
                          "total_bits": q.total_bits, "n_weights": q.n_weights, "fp16_weights": fp16,
                          "weight_mse": _mse(q.state_dict)}
                out[q.label] = (q.state_dict, fields, [])
            out[q.label][2].append(budget)
        print(f"[{measure.name}] budget {budget:g}: quantized in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def _complete(row: dict | None, inception: bool) -> bool:
    return row is not None and row.get("fid") is not None and (not inception or row.get("fid_inception") is not None)


def evaluate_model(name: str, args, device: torch.device, deadline: float | None) -> int:
    out = Path(args.out_dir) / f"plan_{name}.csv"
    rows = {PLAN.row_key(r): r for r in (PLAN.read(out) if out.is_file() else [])}
    measure = _Measure(name, args, device)
    want_inc = measure.inception is not None
    base = measure.base_row()

    def key(budget, method):
        return PLAN.row_key(base | {"budget": budget, "method": method})

    def save():
        PLAN.write(out, sorted(rows.values(), key=lambda r: (r["budget"], r["method"])))

    written = 0
    if not _complete(rows.get(key(32.0, "none")), want_inc):
        rows[key(32.0, "none")] = measure.fp_row()
        save()
        written += 1
    budgets = [float(b) for b in args.budgets.split(",")]
    families = list(FAMILIES) if args.families == "all" else args.families.split(",")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SystemExit(f"--families: {unknown} are not among {list(FAMILIES)}")
    # which setting serves which budget is kept in the work folder, so that a later call that
    # only adds Inception FIDs to kept samples does not quantize again
    assign_path = measure.work / "assignment.json"
    wanted = {"budgets": budgets, "families": families, "with_plan": args.with_plan}
    saved = json.loads(assign_path.read_text()) if assign_path.is_file() else {}
    quantized = None
    if {k: saved.get(k) for k in wanted} != wanted:
        quantized = _quantized(measure, budgets, families, args.with_plan, args.plan_samples)
        saved = wanted | {"labels": {label: [fields, bs] for label, (_, fields, bs) in quantized.items()}}
        assign_path.write_text(json.dumps(saved))
    for label, (fields, label_budgets) in saved["labels"].items():
        done = [rows.get(key(b, fields["method"])) for b in label_budgets]
        if all(_complete(r, want_inc) for r in done):
            continue
        if deadline is not None and time.time() > deadline:
            print(f"[{name}] deadline: {label} and later left for the next call", flush=True)
            break
        t0 = time.perf_counter()
        kept = measure.work / f"{label.replace('/', '_').replace(':', '_')}.npy"
        if all(r is not None and r.get("fid") is not None for r in done) and kept.is_file():
            u8 = torch.from_numpy(np.load(kept))
            new = measure.inception_metrics(u8, label)
        else:
            if quantized is None:
                quantized = _quantized(measure, budgets, families, args.with_plan, args.plan_samples)
            sd = quantized[label][0]
            qmodel = copy.deepcopy(measure.ctx.model)
            qmodel.load_state_dict({k: v.to(qmodel.state_dict()[k].dtype) for k, v in sd.items()}, strict=True)
            x, _ = measure.generate(qmodel.eval())
            u8 = to_uint8(x)
            np.save(kept, u8.numpy())
            new = measure.metrics(u8, x, label)
            del qmodel
        for budget, old in zip(label_budgets, done):
            rows[key(budget, fields["method"])] = (old or {}) | base | fields | new | {
                "budget": budget, "wall_s": round(time.perf_counter() - t0, 2)}
        save()
        written += len(label_budgets)
        row = rows[key(label_budgets[0], fields["method"])]
        inc = row.get("fid_inception")
        print(f"[{name}] {label:28s} {fields['bits_per_weight']:.3f} bpw  FID {row['fid']:.4g}"
              f"  Inception {inc if inc is None else f'{inc:.4g}'}  {time.perf_counter() - t0:.1f} s", flush=True)
    return written


def main() -> None:
    args = _args()
    device = torch.device(args.device)
    deadline = time.time() + args.deadline if args.deadline else None
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"--models: {name!r} is not among {sorted(MODELS)}")
        if deadline is not None and time.time() > deadline:
            print(f"deadline: model {name} left for the next call", flush=True)
            continue
        print(f"{name}: {evaluate_model(name, args, device, deadline)} rows written", flush=True)


if __name__ == "__main__":
    main()
