"""Copy the full-precision FID of each sweep into its checkpoint's model card.

Usage: python scripts/update_cards.py   (reads results/{mnist,fashion_mnist}.csv)
"""
from pathlib import Path

from fmq_theory.harness.checkpoints import update_card
from fmq_theory.results.schema import SWEEP

for ds in ("mnist", "fashion_mnist"):
    fp = [r for r in SWEEP.read(Path("results") / f"{ds}.csv") if r["method"] == "none"]
    if len(fp) != 1:
        raise SystemExit(f"results/{ds}.csv must hold exactly one full-precision row, has {len(fp)}")
    r = fp[0]
    fid = [{"feature_net": r["feature_net"], "fid": r["fid"], "generated_samples": r["samples"],
            "real_samples": r["fid_real_test_samples"], "real_split": "test", "solver": r["solver"],
            "nfe": r["nfe"], "cfg_scale": r["cfg_scale"], "seed": r["seed"]}]
    if r["fid_inception"] is not None:
        fid.append(dict(fid[0], feature_net=r["inception_net"], fid=r["fid_inception"]))
    update_card(Path("checkpoints") / ds, fp_fid=fid)
    print(ds, [(f["feature_net"], round(f["fid"], 3)) for f in fid])
