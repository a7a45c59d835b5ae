"""``fmq features``: the feature networks of FID and the files they come in.

::

    fmq features fetch-inception
    fmq features train-classifier --dataset mnist [--epochs 5] [--batch-size 128] [--lr 1e-3]
                                  [--seed 0] [--device cpu] [--out FILE]
    fmq features noise-floor --dataset mnist --net {classifier,inception} [--inception-path FILE]
                             [--n 10000] [--n-boot 50] [--seed 0] [--device cpu]
    fmq features split FILE --parts 2 [--dest DIR]
    fmq features join PART [PART ...] --out FILE [--sha256 HEX]

``noise-floor`` prints one JSON object: the real-data FID of
:func:`fmq_theory.harness.features.classifier.real_data_fid` with its bootstrap interval.
A data source that cannot be fetched exits with status 1.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fmq_theory._util import check_output_path, file_sha256
from fmq_theory.cli._output import command_line, document, render
from fmq_theory.harness.data import DATASETS, DataUnavailableError
from fmq_theory.harness.features.classifier import (
    ClassifierFeatures,
    classifier_checkpoint,
    real_data_fid,
    save_classifier,
    train_classifier,
)
from fmq_theory.harness.features.files import join_parts, split_file
from fmq_theory.harness.features.inception import InceptionFeatures, fetch_inception

__all__ = ["register", "run"]


def _fetch_inception(args) -> None:
    path = fetch_inception()
    print(f"{path} sha256={file_sha256(path)}")


def _train_classifier(args) -> None:
    check_output_path(args.out or classifier_checkpoint(args.dataset), argument="--out")
    trained = train_classifier(args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, seed=args.seed, device=args.device)
    out = save_classifier(trained, args.out or classifier_checkpoint(args.dataset))
    print(f"{out}: test accuracy {trained.card.test_accuracy:.4f}, {trained.card.steps} steps, "
          f"{trained.card.wall_time_s:.1f} s")


def _noise_floor(args) -> None:
    if args.net == "classifier":
        net = ClassifierFeatures(classifier_checkpoint(args.dataset), device=args.device)
    else:
        net = InceptionFeatures(args.inception_path, device=args.device, trust=args.trust_inception)
    t0 = time.perf_counter()
    iv = real_data_fid(args.dataset, net, n=args.n, seed=args.seed, n_boot=args.n_boot)
    wall_s = round(time.perf_counter() - t0, 1)
    doc = document(command=command_line(args),
                   parameters={"dataset": args.dataset, "net": args.net, "n": args.n, "seed": args.seed,
                               "n_boot": args.n_boot, "device": str(args.device)},
                   units={"fid": "FID units (squared feature distance)", "wall_s": "seconds"},
                   result={"feature_net": net.name, "n_test": iv.n_a, "n_train": iv.n_b, "fid": iv.value,
                           "low": iv.low, "high": iv.high, "bootstrap_shift": iv.bootstrap_shift,
                           "wall_s": wall_s},
                   interval_level=iv.confidence)
    sys.stdout.write(render(doc, columns=[], fmt="json"))


def _split(args) -> None:
    for piece in split_file(args.path, parts=args.parts, dest=args.dest):
        print(piece)


def _join(args) -> None:
    check_output_path(args.out, argument="--out")
    out = join_parts(args.parts, out=args.out, sha256=args.sha256)
    print(f"{out} sha256={file_sha256(out)}")


def run(args) -> int:
    """Handler of ``fmq features``: run the chosen action; status 1 when data is unavailable."""
    try:
        args.action(args)
    except DataUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers) -> None:
    """Add the ``features`` sub-command and its actions."""
    parser = subparsers.add_parser("features", help="feature networks of FID: Inception, classifiers, noise floor")
    sub = parser.add_subparsers(dest="features_command", required=True, metavar="ACTION")
    parser.set_defaults(func=run)

    p = sub.add_parser("fetch-inception", help="download the Inception TorchScript file into the data cache")
    p.set_defaults(action=_fetch_inception)

    p = sub.add_parser("train-classifier", help="train and save the feature classifier of a dataset")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="default: checkpoints/classifier_<dataset>.safetensors")
    p.set_defaults(action=_train_classifier)

    p = sub.add_parser("noise-floor", help="FID of real test vs real train images (the noise floor)")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--net", required=True, choices=["classifier", "inception"])
    p.add_argument("--inception-path", type=Path, default=None, help="default: fetch into the data cache")
    p.add_argument("--trust-inception", action="store_true",
                   help="load an --inception-path file whose SHA-1 is not the shipped network's (it runs code)")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--n-boot", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(action=_noise_floor)

    p = sub.add_parser("split", help="split a file into pieces")
    p.add_argument("path", type=Path)
    p.add_argument("--parts", type=int, required=True)
    p.add_argument("--dest", type=Path, default=None)
    p.set_defaults(action=_split)

    p = sub.add_parser("join", help="join pieces made by split")
    p.add_argument("parts", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sha256", default=None)
    p.set_defaults(action=_join)
