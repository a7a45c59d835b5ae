"""Is a mis-ranked pick the noise of the plan's 256 draws, or the shift's own view?  Rescore variants on fresh draws.

The plan keeps the variant of least sampled shift (:func:`fmq_theory.plan.selection.choose_variant`),
estimated on its 256 draws of noise.  On the DiT at HQQ g128's 3.5252 bits it kept
``half_quadratic`` floor 2 (GPU dFID 16.29) over floor 3 (4.63) and ``minmax`` floor 1 flat (3.94):
the three variants' shift intervals overlap (``results/plan_variants_flat_dit_gpu.json``).  Each
interval is that of one estimate, while the three are sampled from the same noise, so their
*differences* are known far better.  This script rebuilds the variants from the plan's own draws
(their weights' SHA-256 checked against a GPU file's rows), samples each and the full-precision
model again from ``--draws`` fresh draws (another seed), and reports every variant's shift with
its interval and its paired difference from the first variant, with a paired bootstrap
interval over the draws (:func:`fmq_theory.plan.selection.shift_difference`)::

    PYTHONPATH=. python scripts/shift_draws_cpu.py --model dit --budget 3.5252 \\
        --variants half_quadratic:2:any,half_quadratic:3:any,minmax:1:flat --draws 2048 \\
        --rows results/plan_variants_flat_dit_gpu.json --out results/shift_draws_dit_cpu.json

CPU dry run: ``--draws 32 --plan-samples 16`` (the weights then differ from the GPU rows').
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, "scripts")
from gpu_plan_eval import MODELS, PLAN_SEED, SOLVER, STEPS  # noqa: E402
from gpu_plan_variants import weights_digest  # noqa: E402

from fmq_theory._util import write_atomic  # noqa: E402
from fmq_theory.flow.solvers import balanced_labels, make_noise  # noqa: E402
from fmq_theory.harness.checkpoints import load_trained_model  # noqa: E402
from fmq_theory.harness.models.unet import unet_adapter  # noqa: E402
from fmq_theory.plan import fit_candidates, plan_quantization, weight_sensitivity  # noqa: E402
from fmq_theory.plan.selection import distribution_shift, sampled, shift_difference  # noqa: E402

#: Seed of the fresh draws (the plan's are PLAN_SEED; the evaluation's 0 and 2).
FRESH_SEED = 11
#: Paired bootstrap resamples of the draws for each difference's interval.
RESAMPLES = 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="dit", choices=sorted(MODELS))
    p.add_argument("--budget", type=float, required=True)
    p.add_argument("--variants", required=True, help="FAMILY:FLOOR:GROUPING,... (the first is the reference)")
    p.add_argument("--draws", type=int, default=2048)
    p.add_argument("--plan-samples", type=int, default=256)
    p.add_argument("--rows", default=None, help="a gpu_plan_variants.py file whose rows' weights are checked")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    start = time.perf_counter()
    model = load_trained_model(Path(MODELS[args.model][1])).model.eval()
    event = (model.config.in_channels, model.config.image_size, model.config.image_size)
    n_classes = model.config.num_classes

    def draws(n: int, seed: int):
        labels = balanced_labels(n, n_classes) if n_classes else None
        return make_noise(n, event, seed=seed), unet_adapter(model, labels, 0.0)

    noise, adapter = draws(args.plan_samples, PLAN_SEED)
    sens = weight_sensitivity(model, noise, adapter=adapter, solver=SOLVER, steps=STEPS, replicates=8,
                              batch_size=32, seed=PLAN_SEED, progress=True)
    fitted = fit_candidates(model, sensitivity=sens, workers=2, progress=True)
    gpu_rows = {} if args.rows is None else {
        (r["family"], r["floor"], r["grouping"]): r for r in json.loads(Path(args.rows).read_text())["rows"]
        if abs(r["budget"] - args.budget) < 1e-9}
    fresh, fresh_adapter = draws(args.draws, FRESH_SEED)
    fp = {k: v.detach().float() for k, v in model.state_dict().items()}
    reference = sampled(model, fp, fresh, adapter=fresh_adapter, solver=SOLVER, steps=STEPS)
    plan_reference = sampled(model, fp, noise, adapter=adapter, solver=SOLVER, steps=STEPS)
    rows, samples = [], []
    for spec in tqdm(args.variants.split(","), desc="variants"):
        family, floor, grouping = spec.split(":")
        plan = plan_quantization(model, budget_bits=args.budget, noise=noise, fitted=fitted, bit_floors=(int(floor),),
                                 families=(family,), groupings=(grouping,), adapter=adapter, progress=False)
        state = {k: v.detach().cpu().float().contiguous() for k, v in plan.state_dict().items()}
        x = sampled(model, state, fresh, adapter=fresh_adapter, solver=SOLVER, steps=STEPS)
        plan_shift = distribution_shift(sampled(model, state, noise, adapter=adapter, solver=SOLVER, steps=STEPS),
                                        plan_reference)
        shift = distribution_shift(x, reference)
        gpu = gpu_rows.get((family, int(floor), grouping))
        digest = weights_digest(state)
        samples.append(x)
        rows.append({"family": family, "floor": int(floor), "grouping": grouping,
                     "bits_per_weight": plan.bits_per_weight, "weights_sha256": digest,
                     "same_weights_as_rows": None if gpu is None else gpu["weights_sha256"] == digest,
                     "rows_dfid": None if gpu is None else gpu["dfid"],
                     "rows_dfid_low": None if gpu is None else gpu["dfid_low"],
                     "rows_dfid_high": None if gpu is None else gpu["dfid_high"],
                     "plan_shift": plan_shift[0], "plan_shift_low": plan_shift[1], "plan_shift_high": plan_shift[2],
                     "shift": shift[0], "shift_low": shift[1], "shift_high": shift[2]})
    for row, x in zip(rows, samples):
        d = shift_difference(x, samples[0], reference, resamples=RESAMPLES)
        row.update({"minus_first": d[0], "minus_first_low": d[1], "minus_first_high": d[2]})
        print(json.dumps(row), flush=True)
    record = {"command": " ".join(["scripts/shift_draws_cpu.py", *sys.argv[1:]]), "model": args.model,
              "budget": args.budget, "draws": args.draws, "fresh_seed": FRESH_SEED, "plan_samples": args.plan_samples,
              "resamples": RESAMPLES, "seconds": round(time.perf_counter() - start, 1), "rows": rows}
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
    print(f"{args.out}: {len(rows)} variants in {record['seconds']} s")


if __name__ == "__main__":
    main()
