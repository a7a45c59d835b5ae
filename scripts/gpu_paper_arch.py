"""The paper's 55.7M network on MNIST (or FashionMNIST, ``--dataset``): train, then evaluate full precision and quantized, in chained calls.

Usage (repository root, ``PYTHONPATH=. FMQ_DATA_DIR=.carry/harness_data``; every stage keeps
its state under ``--run`` (default ``runs/paper_arch_<dataset>``) on the machine's disk and
writes the rows of ``paper_arch_<dataset>.csv`` there, copied to ``$OUT`` at the end of each
call)::

    python scripts/gpu_paper_arch.py train --minutes 7.5 --batch-size 512
    python scripts/gpu_paper_arch.py evaluate --fid-samples 10000 --nfe-samples 1000 --samples 2000 --budget-s 300

Stages:

* ``train``: :class:`~fmq_theory.harness.models.paper_unet.PaperUNet` (:data:`PAPER_MNIST`,
  or ``--width``/``--res-blocks`` for a reduced copy) in its EMA wrapper, conditional-OT flow
  matching on the MNIST training split in [-1, 1], AdamW lr 1e-4, betas (0.9, 0.95) (the
  paper's arguments), bf16 autocast, in ``--memory-format`` (default contiguous), until ``--minutes`` of wall time (whole
  epochs only when ``--whole-epochs``).  Saves ``ema.safetensors`` (the EMA state dict,
  ``model.*``, ``num_updates``, ``shadow_params.N``), ``model.safetensors`` (the network with
  the averages in place: what is evaluated, half the size, the file that travels between
  machines, ``scripts/gpu_checkpoint_parts.sh``) and ``train.json`` (epochs, wall time, final
  loss = mean of the last 50 steps, both files' SHA-256); the stages below read the run with
  :func:`fmq_theory.harness.checkpoints.load_training_run`.  ``--deterministic`` trains with
  deterministic kernels only, so that the same command trains the same network, bit for bit, in a
  later lease: the default picks cuDNN's convolution algorithms by timing them, and nine MNIST
  trainings of one command and seed on the H200 (3,510 steps each) ended at final losses from
  0.1715 to 0.1718, only two of them in the same network (checkpoint ``794236c6...``);
  FashionMNIST's two of 2026-12-04 differed too.  With it (H200, 2026-12-05) two trainings of 117
  steps gave the same files, bit for bit, torch named no op without a deterministic kernel, and a
  full training ran at 1,551 images/s against the default's ~1,700 (3,380 steps in a 9.3-minute
  cap, not 15 epochs); whether another H200 repeats it is not yet measured.  ``--resume`` carries
  the epoch's shuffle, the place in it and the random streams, so a training split across
  commands is the training of one command.
* ``probe``: training images/s and sampling evaluations/s in both memory formats (a minute
  or two on the H200), so that a lease trains and samples in the faster one.
* ``evaluate``: every row below is one cell of the sweep engine
  (:func:`fmq_theory.harness.engine.run_cells`, in this process); the csv is the single source
  of truth, done rows are skipped, and no new cell starts after ``--budget-s`` seconds.

  - Full precision (the EMA averages copied into the model, as the example evaluates):
    ``--fid-samples`` samples (midpoint, ``--steps`` steps) under the paper's protocol
    (Inception FID against the training set, torchmetrics' ``normalize=True`` uint8
    truncation) and ours (Inception and classifier FID against the test set, rounded uint8),
    with latent stability.
  - NFE check: ``--nfe-samples`` of the same noise at 20 NFE and at the paper's step 0.01
    (100 midpoint steps, 200 NFE), paper protocol.  The 20-NFE arm is the full-precision
    sample set of that count (the same noise, so kept once).
  - Cells: for each method x bits, the model holding the EMA averages quantized per channel
    (:func:`fmq_theory.quantizers.quantize_state_dict`, every float tensor; the paper's four
    methods with ``reference_compatible=True``, bit-exact with its code), then ``--samples``
    samples from the same noise: classifier and Inception FID against the test set, sample
    PSNR/SSIM against the full-precision samples, the paper's t=0 PSNR/SSIM (one forward pass
    on the first 64 real test images, peak 1.0, box window 11) and latent stability (PCA-20
    after the input blocks and after the middle block at t=0 on ``--latent-images`` test
    images).
  - Every row paired with the full-precision samples of the cells' count and NFE (the cells,
    and the NFE check's 200-NFE arm) also gets its change of classifier FID against them with a
    95% paired-bootstrap interval (:func:`fmq_theory.bounds.certify_fid`, ``--n-boot``
    replicates); the 200-NFE arm its change of Inception FID too (``--n-boot-inception``).  A paired
    row without its change (one carried in from a lease that lacked the reference samples) is not
    done: it is measured again once the reference is sampled (``--kinds`` must then hold ``fp``).

  ``--kinds`` limits the rows to some of these kinds.

  Samples are kept (uint8) under ``run/kept``, so a call without the Inception file computes
  everything else, and a later call adds the Inception FIDs without sampling again.  The
  full-precision rows other than the cells' reference (the large FIDs, the NFE check's 200-NFE
  arm) are sampled in parts of about ``--part-evals`` network evaluations, each kept as it is
  done (:func:`sample_in_parts`): a row longer than one 10-minute command (both of those on an
  H100) goes on from its first missing part in the lease's next command.  The cells'
  quantizations run on the CPU in one background thread, in the cells' order, while the GPU
  samples the cell before (each 2-12 s on the 55.7M network; a cell waits only for its own).

Inception: ``--inception PATH`` (default ``runs/inception/default_1.pt`` when present).
"""
import argparse
import copy
import functools
from concurrent.futures import Future, ThreadPoolExecutor
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from fmq_theory import __version__
from fmq_theory._util import file_sha256, write_atomic
from fmq_theory.bounds import certify_fid
from fmq_theory.flow.frechet import fid_from_features, gaussian_fit
from fmq_theory.flow.path import cond_ot_path
from fmq_theory.flow.solvers import make_noise, sample
from fmq_theory.harness.checkpoints import EMA_FILE, RUN_RECORD, WEIGHTS_FILE, load_training_run
from fmq_theory.harness.data import load
from fmq_theory.harness.engine import Cell, cached_context, run_cells
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
from fmq_theory.harness.features.inception import InceptionFeatures
from fmq_theory.harness.latent import latent_stability
from fmq_theory.harness.metrics import psnr, ssim_box, ssim_gaussian
from fmq_theory.harness.models.paper_unet import EMA, PAPER_MNIST, PaperUNet, PaperUNetConfig, paper_adapter
from fmq_theory.harness.train import images_to_model_space, to_uint8
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.results.schema import PAPER_ARCH

#: The paper's four methods, quantized bit-exactly as its reference code does.
PAPER_METHODS = ("equal_mass", "uniform_minmax", "piecewise_quantile", "log2")

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def config(args) -> PaperUNetConfig:
    if args.width == PAPER_MNIST.model_channels and args.res_blocks == PAPER_MNIST.num_res_blocks:
        return PAPER_MNIST
    return PaperUNetConfig(model_channels=args.width, num_res_blocks=args.res_blocks,
                           groups=min(32, 2 * args.width))


def paper_uint8(x: torch.Tensor) -> torch.Tensor:
    """torchmetrics' FID with ``normalize=True``: ``(img * 255).byte()`` of ``(x + 1) / 2``."""
    return (((x.clamp(-1, 1) + 1) / 2) * 255).to(torch.uint8)


def rows_path(run: Path) -> Path:
    return run / f"paper_arch_{json.loads((run / 'dataset.json').read_text())}.csv"


def export(run: Path) -> None:
    out = os.environ.get("OUT")
    if out and rows_path(run).is_file():
        shutil.copy(rows_path(run), Path(out) / rows_path(run).name)
        for name in (RUN_RECORD, "log.txt"):
            if (run / name).is_file():
                shutil.copy(run / name, Path(out) / name)


def _memory_format(args) -> torch.memory_format:
    return {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}[args.memory_format]


def _trainer(args, device: torch.device, state: dict | None = None):
    """``(ema, opt, step)``: the EMA-wrapped network and its optimizer (fresh, or from a saved
    training ``state``), ``step(x1) -> loss`` one update."""
    fmt = _memory_format(args)
    ema = EMA(PaperUNet(config(args))).to(device).to(memory_format=fmt)
    opt = torch.optim.AdamW(ema.model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.0,
                            fused=device.type == "cuda")
    if state is not None:
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
    ema.model.train()

    def step(x1: torch.Tensor) -> torch.Tensor:
        x1 = x1.contiguous(memory_format=fmt)
        ps = cond_ot_path(torch.randn_like(x1), x1, torch.rand(x1.shape[0], device=device))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            v = ema.model(ps.x_t, ps.t)
        loss = torch.mean((v.float() - ps.target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update_ema()
        return loss.detach()

    return ema, opt, step


def read_train_state(path: Path) -> dict:
    """The training state ``train`` saved (for ``--resume``), read on the host.

    Read on the host, not the training's device: ``torch.set_rng_state`` and
    ``torch.cuda.set_rng_state`` take CPU byte tensors (the random streams read onto a GPU raised
    "RNG state must be a torch.ByteTensor" in the lease of 2026-12-05), and ``load_state_dict``
    copies the network's and the optimizer's tensors onto their parameters' device.
    """
    return torch.load(path, map_location="cpu")


def train(args, run: Path, device: torch.device) -> None:
    torch.manual_seed(args.seed)
    x_all = images_to_model_space(torch.as_tensor(load(args.dataset, "train").images)).to(device)
    state_path = run / "train_state.pt"
    if args.resume and not state_path.is_file():
        raise FileNotFoundError(f"--resume: {state_path} is missing (no earlier training command in this run folder)")
    state = read_train_state(state_path) if args.resume else None
    if state is not None and state["batch_size"] != args.batch_size:
        raise ValueError(f"--batch-size {args.batch_size} differs from the saved run's {state['batch_size']}")
    ema, opt, train_step = _trainer(args, device, state)
    n, bs = x_all.shape[0], args.batch_size
    steps_per_epoch = n // bs
    target_steps = round(args.epochs * steps_per_epoch) if args.epochs else float("inf")
    start = time.perf_counter()
    # the saved losses are read on the host (read_train_state): back onto the device of the new ones
    step, losses, done_s = ((state["step"], [loss.to(device) for loss in state["losses"]], state["wall_s"])
                            if state else (0, [], 0.0))
    commands = state["commands"] + 1 if state else 1
    # the epoch under way (its shuffle, and the next batch in it) and the random streams carry over,
    # so that training split across commands is the same training as in one command
    order, position = (state["order"].to(device), state["position"]) if state else (None, steps_per_epoch)
    if state:
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], device)
    deadline = start + 60 * args.minutes
    log(f"train: {sum(p.numel() for p in ema.model.parameters())} parameters, {n} images, batch {bs}, "
        f"{args.memory_format}" + (", deterministic" if args.deterministic else "")
        + (f", resumed at step {step}" if state else ""))
    # torch's warnings of ops without a deterministic kernel, recorded once per place (not once per step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        while step < target_steps:
            if position == steps_per_epoch:
                order, position = torch.randperm(n, device=device), 0
            losses.append(train_step(x_all[order[position * bs:(position + 1) * bs]]))
            step, position = step + 1, position + 1
            if step % 200 == 0:
                log(f"step {step} epoch {step / steps_per_epoch:.2f} "
                    f"loss {float(torch.stack(losses[-50:]).mean()):.4f}")
            if time.perf_counter() > deadline and (not args.whole_epochs or position == steps_per_epoch):
                break
    marker = " does not have a deterministic implementation"
    nondeterministic = sorted({str(w.message).partition(marker)[0] for w in caught if marker in str(w.message)})
    for w in caught:  # the others are shown as usual
        if marker not in str(w.message):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    wall = done_s + time.perf_counter() - start
    losses = losses[-50:]
    final_loss = float(torch.stack(losses).mean())  # before any file is written: a failure here leaves the last set
    torch.save({"ema": ema.state_dict(), "optimizer": opt.state_dict(), "step": step, "losses": losses,
                "wall_s": wall, "batch_size": bs, "commands": commands, "order": order.cpu(), "position": position,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.empty(0, dtype=torch.uint8)},
               state_path)  # for --resume in the next command
    ema.eval()
    sd = {k: v.detach().contiguous().cpu() for k, v in ema.state_dict().items()}
    save_file(sd, str(run / EMA_FILE))
    save_file(ema.averaged_state_dict(), str(run / WEIGHTS_FILE))
    card = {"config": config(args).to_dict(), "epochs": step / steps_per_epoch, "steps": step, "batch_size": bs,
            "memory_format": args.memory_format, "train_commands": commands,
            "train_wall_s": round(wall, 1), "final_loss": final_loss,
            "images_per_s": round(step * bs / wall, 1), "checkpoint_sha256": file_sha256(run / EMA_FILE),
            "model_sha256": file_sha256(run / WEIGHTS_FILE),
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "deterministic": args.deterministic}
    if args.deterministic:
        card["nondeterministic_ops"] = nondeterministic
    (run / RUN_RECORD).write_text(json.dumps(card, indent=2))
    log(f"train done: {json.dumps(card)}")


class Eval:
    """The trained model, noise, real data and feature networks shared by ``fp`` and ``cells``."""

    def __init__(self, args, run: Path, device: torch.device):
        self.args, self.run, self.device = args, run, device
        trained = load_training_run(run)  # the record and the network, checked against it
        self.card = trained.card
        self.model = trained.model.to(device, memory_format=_memory_format(args)).eval()
        self.classifier = ClassifierFeatures(classifier_checkpoint(args.dataset), device=device)
        test = torch.as_tensor(load(args.dataset, "test").images)
        self.test_u8 = test
        self.test_x = images_to_model_space(test)
        self.real_clf = self.classifier.features(test)
        inc = Path(args.inception) if args.inception else Path("runs/inception/default_1.pt")
        self.inception = InceptionFeatures(inc, device=device) if inc.is_file() else None
        self.real_inc_test = self.inception.features(test, batch_size=500) if self.inception else None
        self.fp_sd = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}  # the EMA averages
        self.t0_fp = self.t0(self.model)
        self._quantizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quantize")
        self._quantized: dict[tuple[str, int], Future] = {}
        self._paired: dict[tuple[str, bool], tuple] = {}  # (protocol, inception) -> fp features, real moments
        log(f"eval set-up: inception {'yes' if self.inception else 'no'}, {test.shape[0]} test images")

    def prefetch(self, cells) -> None:
        """Start the quantizations of ``cells`` (``(method, bits)`` pairs, in order) in the background."""
        for method, bits in cells:
            if (method, bits) not in self._quantized:
                self._quantized[method, bits] = self._quantizer.submit(
                    quantize_state_dict, self.fp_sd, method=method, bits=bits, granularity="channel",
                    reference_compatible=method in PAPER_METHODS)

    def quantized(self, method: str, bits: int):
        """The per-channel quantization of the EMA averages (from :meth:`prefetch`, else made now);
        the kept result is released, so that each is held only until its cell has it."""
        self.prefetch([(method, bits)])
        return self._quantized.pop((method, bits)).result()

    def stop_prefetch(self) -> None:
        """Drop the quantizations not started (cells left past the deadline), so that the process
        exits when the last cell is done, not when the queue is."""
        self._quantizer.shutdown(wait=False, cancel_futures=True)
        self._quantized.clear()

    def paired_change(self, features, *, protocol: str, inception: bool) -> dict:
        """FID_q - FID_fp with its 95% paired-bootstrap interval (:func:`certify_fid`): ``features``
        of samples paired with the full-precision samples at the cells' count and NFE (the same
        noise), both in ``protocol``'s uint8 and against its real images; ``{}`` before those
        samples exist."""
        stem = _kept(self.run, f"fp_none_b32_n{self.args.samples}_s{self.args.steps}")
        path = stem.with_suffix(f".{protocol}.npy")
        if not path.is_file():
            return {}
        key = (protocol, inception)
        if key not in self._paired:
            u8 = torch.from_numpy(np.load(path))
            if inception:
                real = self.real_inc_train() if protocol == "paper" else self.real_inc_test
                fp = self.inception.features(u8, batch_size=500)
            else:
                real, fp = self.real_clf, self.classifier.features(u8)
            dev = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.device)  # noqa: E731
            self._paired[key] = (dev(fp), gaussian_fit(dev(real)))
        fp, (mean, cov) = self._paired[key]
        cert = certify_fid(fp, features, reference_mean=mean, reference_cov=cov,  # features follow fp's device
                           n_boot=self.args.n_boot_inception if inception else self.args.n_boot, seed=self.args.seed)
        name = "dfid_inception" if inception else "dfid"
        return {name: cert.measured_dfid, f"{name}_low": cert.dfid_low, f"{name}_high": cert.dfid_high}

    def real_inc_train(self) -> np.ndarray:
        """Inception features of the training split (the paper's reference), computed once and kept."""
        path = self.run / "real_train_inception.npy"
        if not path.is_file():
            np.save(path, self.inception.features(torch.as_tensor(load(self.args.dataset, "train").images),
                                                  batch_size=500))
        return np.load(path)

    def base_row(self, **fields) -> dict:
        row = {"dataset": self.args.dataset, "seed": self.args.seed, "solver": "midpoint", "epochs": self.card["epochs"],
               "train_wall_s": self.card["train_wall_s"], "final_loss": self.card["final_loss"],
               "checkpoint_sha256": self.card["checkpoint_sha256"], "feature_net": self.classifier.name,
               "n_parameters": sum(p.numel() for p in self.model.parameters()), "device": self.card["device"],
               "version": __version__}
        row.update(fields)
        return row

    def generate(self, model, noise: torch.Tensor, steps: int) -> tuple[torch.Tensor, int]:
        res = sample(model, noise, adapter=paper_adapter(), solver="midpoint", steps=steps, clip=(-1.0, 1.0),
                     batch_size=self.args.batch_size)
        return res.x, res.nfe

    def t0(self, model) -> torch.Tensor:
        x = self.test_x[:64].to(self.device)
        with torch.no_grad():
            return model(x, torch.zeros(64, device=self.device)).float().cpu()

    def latent(self, model) -> dict:
        n = min(self.args.latent_images, self.test_x.shape[0])
        stats = latent_stability(model, lambda x: model(x, torch.zeros(x.shape[0], device=x.device)),
                                 self.test_x[:n].to(self.device), module_names=model.latent_modules(), batch_size=500,
                                 pca_device=self.device)
        return {"latent_in_mean_var": stats[0].mean_variance, "latent_in_std_var": stats[0].std_variance,
                "latent_in_collapsed": stats[0].collapsed, "latent_mid_mean_var": stats[1].mean_variance,
                "latent_mid_std_var": stats[1].std_variance, "latent_mid_collapsed": stats[1].collapsed,
                "latent_images": n}


def probe(args, run: Path, device: torch.device) -> None:
    """Throughput of training and of sampling in each memory format, for choosing the lease's settings.

    For each format: ``--probe-steps`` training updates of batch ``--batch-size`` after 5
    warm-up updates (images/s), then ``--probe-samples`` samples at ``--steps`` midpoint steps
    from the trained-for-a-moment network after one warm-up batch (network evaluations/s).
    Random images stand in for data (speed only).  Writes ``probe.json``.
    """
    results = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fmt in ("contiguous", "channels_last"):
        args.memory_format = fmt
        torch.manual_seed(args.seed)
        ema, _, train_step = _trainer(args, device)
        x = torch.rand(args.batch_size, 1, 28, 28, device=device) * 2 - 1
        for _ in range(5):
            train_step(x)
        sync()
        t = time.perf_counter()
        for _ in range(args.probe_steps):
            train_step(x)
        sync()
        train_rate = args.probe_steps * args.batch_size / (time.perf_counter() - t)
        model = ema.model.eval()
        noise = make_noise(args.probe_samples, (1, 28, 28), seed=args.seed)
        sample(model, noise[:min(args.batch_size, args.probe_samples)], adapter=paper_adapter(), solver="midpoint",
               steps=1, batch_size=args.batch_size)
        sync()
        t = time.perf_counter()
        res = sample(model, noise, adapter=paper_adapter(), solver="midpoint", steps=args.steps,
                     batch_size=args.batch_size)
        sync()
        results.append({"memory_format": fmt, "train_images_per_s": round(train_rate, 1), "batch_size": args.batch_size,
                        "sample_evals_per_s": round(args.probe_samples * res.nfe / (time.perf_counter() - t), 1)})
        log(f"probe: {json.dumps(results[-1])}")
        del ema, model
    (run / "probe.json").write_text(json.dumps(results, indent=2))


def _kept(run: Path, label: str) -> Path:
    (run / "kept").mkdir(exist_ok=True)
    return run / "kept" / label


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` through :func:`~fmq_theory._util.write_atomic`: a command stopped mid-write leaves no file."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)
    write_atomic(path, write)


def part_samples(*, samples: int, steps: int, part_evals: int, batch_size: int) -> int:
    """Draws per part of a row sampled in parts: about ``part_evals`` network evaluations
    (midpoint: ``2 steps`` per draw), a whole number of ``batch_size`` batches, at least one.

    Examples
    --------
    >>> part_samples(samples=50_000, steps=10, part_evals=250_000, batch_size=1000)  # 20 NFE
    12000
    >>> part_samples(samples=5_000, steps=100, part_evals=250_000, batch_size=1000)  # 200 NFE
    1000
    """
    per = max(batch_size, part_evals // (2 * steps) // batch_size * batch_size)
    return min(per, samples)


def sample_in_parts(generate, noise: torch.Tensor, steps: int, *, stem: Path, part: int) -> tuple[dict, int, float]:
    """The samples of ``noise``, made ``part`` draws at a time, each part kept as it is done.

    A part is kept as ``stem.partK.{ours,paper}.npy`` (both uint8 roundings) with
    ``stem.partK.json`` (its NFE and seconds) written last, so that a row longer than one command
    (the 50,000-sample FIDs, or the NFE check's 200-NFE arm, on a card slower than the H200)
    resumes in the lease's next command at its first part without a record, and a command
    stopped mid-part loses only that part.  The parts are the batches of one call of
    ``generate`` on all of ``noise`` (``part`` a multiple of its batch size), so the samples are
    the same.

    Parameters
    ----------
    generate : callable
        ``generate(noise, steps) -> (x, nfe)``, samples in [-1, 1].
    noise : torch.Tensor
        The row's starting noise, all draws.
    steps : int
    stem : Path
        Where the row's samples are kept (:func:`_kept`).
    part : int
        Draws per part (:func:`part_samples`).

    Returns
    -------
    (dict, int, float)
        ``{"ours": uint8, "paper": uint8}`` of all draws, the NFE per draw, and the seconds the
        parts took to sample, in this command and earlier ones.  The caller removes the parts
        (:func:`remove_parts`) once it has kept the whole.
    """
    starts = range(0, noise.shape[0], part)
    for k, start in enumerate(starts):
        record = stem.with_suffix(f".part{k:03d}.json")
        if record.is_file():
            continue
        t = time.perf_counter()
        x, nfe = generate(noise[start:start + part], steps)
        _save_atomic(stem.with_suffix(f".part{k:03d}.ours.npy"), to_uint8(x).numpy())
        _save_atomic(stem.with_suffix(f".part{k:03d}.paper.npy"), paper_uint8(x).numpy())
        record.write_text(json.dumps({"nfe": nfe, "seconds": round(time.perf_counter() - t, 1)}))
        log(f"{stem.name}: part {k + 1} of {len(starts)} ({x.shape[0]} draws) in {time.perf_counter() - t:.1f} s")
    records = [json.loads(stem.with_suffix(f".part{k:03d}.json").read_text()) for k in range(len(starts))]
    u8 = {p: np.concatenate([np.load(stem.with_suffix(f".part{k:03d}.{p}.npy")) for k in range(len(starts))])
          for p in ("ours", "paper")}
    return u8, records[0]["nfe"], round(sum(r["seconds"] for r in records), 1)


def remove_parts(stem: Path) -> None:
    """Remove the parts :func:`sample_in_parts` kept for ``stem``."""
    for f in stem.parent.glob(f"{stem.name}.part*"):
        f.unlink()


def is_paired(args, *, method: str, samples: int, steps: int) -> bool:
    """Whether a row is paired with the full-precision reference samples (the same noise at the cells'
    count and NFE): the quantized cells and the NFE check's 200-NFE arm, not the reference itself nor
    another sample count."""
    return samples == args.samples and not (method == "none" and steps == args.steps)


def evaluate_cell(ev: "Eval", *, kind: str, method: str, bits: int, samples: int, steps: int, protocol: str) -> dict:
    """One row: a full-precision FID (``kind`` "fp"), an NFE check ("nfe") or a quantized cell ("cell").

    Samples are generated once and kept (uint8, both roundings) under ``run/kept``, shared by the
    rows of both protocols; the Inception FIDs are added from them once the Inception file is
    there, without sampling again.
    """
    t = time.perf_counter()
    if kind == "nfe" and steps == ev.args.steps:
        kind = "fp"  # the check's 20-NFE arm: the full-precision samples of the same noise, kept once
    stem = _kept(ev.run, f"{kind}_{method}_b{bits}_n{samples}_s{steps}")
    # every row but the reference itself is paired with the full-precision samples of the same noise
    paired = is_paired(ev.args, method=method, samples=samples, steps=steps)
    metrics_path = stem.with_suffix(f".{protocol}.json")
    m = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    earlier_s = m.get("sample_s", 0.0)  # the row's time in an earlier command (its samples and classifier FID)
    if "fid" not in m or (paired and "dfid" not in m):  # (no paired change while the reference samples were missing)
        if not stem.with_suffix(".ours.npy").is_file():
            model, extra = ev.model, {}
            if kind == "cell":
                qsd = ev.quantized(method, bits)
                model = copy.deepcopy(ev.model)
                model.load_state_dict(qsd.state_dict(), strict=True)
                extra = {"bits_per_weight": qsd.bits_per_weight, "weight_mse": qsd.mse, "n_weights": qsd.n_weights,
                         "quantize_wait_s": round(time.perf_counter() - t, 1)}
            noise = make_noise(samples, (1, 28, 28), seed=ev.args.seed)
            reference = kind == "fp" and samples == ev.args.samples  # the cells' reference samples
            if kind == "cell" or reference:  # the samples themselves are needed
                t_sample = time.perf_counter()
                x, nfe = ev.generate(model, noise, steps)
                u8 = {"paper": paper_uint8(x).numpy(), "ours": to_uint8(x).numpy()}
                extra |= {"nfe": nfe, "generate_s": round(time.perf_counter() - t_sample, 1)}
            else:  # a large or long row: in parts, resumed by a later command of the lease
                part = part_samples(samples=samples, steps=steps, part_evals=ev.args.part_evals,
                                    batch_size=ev.args.batch_size)
                u8, nfe, generate_s = sample_in_parts(functools.partial(ev.generate, model), noise, steps,
                                                      stem=stem, part=part)
                extra |= {"nfe": nfe, "generate_s": generate_s, "parts": -(-samples // part)}
            if reference:
                torch.save(x.half(), ev.run / "fp_samples.pt")
            if kind == "cell":
                fp_x = torch.load(ev.run / "fp_samples.pt").float()[:samples]
                a, b = (fp_x + 1) / 2, (x + 1) / 2
                t0_q = ev.t0(model)
                extra |= {"psnr": psnr(a, b, data_range=1.0).mean, "ssim": ssim_gaussian(a, b, data_range=1.0).mean,
                          "psnr_t0_paper": psnr(ev.t0_fp, t0_q, data_range=1.0).mean,
                          "ssim_box_t0_paper": ssim_box(ev.t0_fp, t0_q, data_range=1.0).mean}
            if kind in ("cell", "fp"):
                t_latent = time.perf_counter()
                extra |= ev.latent(model) | {"latent_s": round(time.perf_counter() - t_latent, 1)}
            stem.with_suffix(".extra.json").write_text(json.dumps(extra))
            log(f"{stem.name}: " + ", ".join(f"{k} {extra[k]} s" for k in ("quantize_wait_s", "generate_s", "latent_s")
                                             if k in extra) + f", in all {time.perf_counter() - t:.1f} s")
            _save_atomic(stem.with_suffix(".paper.npy"), u8["paper"])
            _save_atomic(stem.with_suffix(".ours.npy"), u8["ours"])  # last: its presence marks the samples done
            remove_parts(stem)
            del model
        u8 = torch.from_numpy(np.load(stem.with_suffix(".ours.npy")))
        m = json.loads(stem.with_suffix(".extra.json").read_text())
        feats = ev.classifier.features(u8)
        m["fid"] = fid_from_features(ev.real_clf, feats)
        if paired:
            m |= ev.paired_change(feats, protocol="ours", inception=False)
        m["sample_s"] = round(time.perf_counter() - t, 1)
        metrics_path.write_text(json.dumps(m))
    if ev.inception is not None and "fid_inception" not in m:
        u8 = torch.from_numpy(np.load(stem.with_suffix(f".{protocol}.npy")))
        real = ev.real_inc_train() if protocol == "paper" else ev.real_inc_test
        feats = ev.inception.features(u8, batch_size=500)
        m["fid_inception"] = fid_from_features(real, feats)
        if paired and kind == "nfe":  # 2048-d: ~0.5 s a replicate on the H200, so for the NFE check alone
            m |= ev.paired_change(feats, protocol=protocol, inception=True)
        m["real_samples"] = int(real.shape[0])
        m["inception_net"] = ev.inception.name
        metrics_path.write_text(json.dumps(m))
    m.setdefault("real_samples", int(ev.test_u8.shape[0]))
    row = ev.base_row(method=method, bits=bits, granularity="channel" if kind == "cell" else "none",
                      protocol=protocol, samples=samples, steps=steps)
    row.update({k: v for k, v in m.items() if k in PAPER_ARCH.names})
    row["wall_s"] = round(earlier_s + time.perf_counter() - t, 1)
    return row


def _load_eval(args, run: Path, device: str) -> "Eval":
    return Eval(args, run, torch.device(device))


def evaluate_stage(args, run: Path, device: torch.device) -> None:
    """Every row (full precision, NFE check, quantized cells) as one task of the sweep engine."""
    # In the order of what a short lease must not miss: the full-precision samples at the cells' own
    # count (the cells' paired reference and FID ratios of equal bias), the low-bit cells, the NFE
    # check (it says whether every 20-NFE row has converged), the large full-precision FIDs (before the
    # NFE check with --large-fid-first), and last the 8-bit cells (they only confirm the near-lossless end).
    def cell_specs(bits_list):
        return [dict(kind="cell", method=method, bits=bits, samples=args.samples, steps=args.steps, protocol="ours")
                for bits in bits_list for method in args.methods]
    specs = [dict(kind="fp", method="none", bits=32, samples=args.samples, steps=args.steps, protocol="ours")]
    specs += cell_specs([b for b in args.bits if b < 8])
    nfe = [dict(kind="nfe", method="none", bits=32, samples=args.nfe_samples, steps=steps, protocol="paper")
           for steps in (args.steps, 100)]
    large = []
    if args.fid_samples and args.fid_samples != args.samples:
        large.append(dict(kind="fp", method="none", bits=32, samples=args.fid_samples, steps=args.steps, protocol="ours"))
    if args.fid_samples:
        large.append(dict(kind="fp", method="none", bits=32, samples=args.fid_samples, steps=args.steps,
                          protocol="paper"))
    specs += large + nfe if args.large_fid_first else nfe + large
    specs += cell_specs([b for b in args.bits if b >= 8])
    specs = [c for c in specs if c["kind"] in args.kinds]
    load = functools.partial(_load_eval, args, run, str(device))
    ev = cached_context(("paper_arch", str(run)), load)  # built once; the cells run in this process
    cells = [Cell(key=PAPER_ARCH.row_key(ev.base_row(method=c["method"], bits=c["bits"],
                                                     granularity="channel" if c["kind"] == "cell" else "none",
                                                     protocol=c["protocol"], samples=c["samples"], steps=c["steps"])),
                  params=c) for c in specs]
    want_inc = ev.inception is not None
    # The cells' paired reference: while rows paired with it are asked for, its row counts as done only with its
    # samples on this disk. Rows carried in from an earlier lease (results/pending/) come without them, so the
    # reference is then sampled again first; asked for unpaired rows only (the large FIDs), the carried row stands.
    reference = PAPER_ARCH.row_key(ev.base_row(method="none", bits=32, granularity="none", protocol="ours",
                                               samples=args.samples, steps=args.steps))
    has_reference = (run / "fp_samples.pt").is_file()
    paired_kinds = {"cell"} | ({"nfe"} if args.nfe_samples == args.samples else set())
    needs_reference = bool(paired_kinds & set(args.kinds))
    if needs_reference and "fp" not in args.kinds and not has_reference:
        raise ValueError(f"--kinds {' '.join(args.kinds)}: the paired rows ({', '.join(sorted(paired_kinds))}) need "
                         f"the full-precision reference samples, which {run} does not hold; add fp")

    def is_done(r: dict) -> bool:
        """A row is done with its FIDs and, where it is paired with the reference samples (the cells and the
        NFE check's 200-NFE arm), its paired change: a row carried in without it is measured again."""
        if PAPER_ARCH.row_key(r) == reference and needs_reference and not has_reference:
            return False
        if r.get("fid") is None or (want_inc and r.get("fid_inception") is None):
            return False
        if not is_paired(args, method=r["method"], samples=r["samples"], steps=r["steps"]):
            return True
        nfe_arm = r["method"] == "none"  # paired and full precision: the 200-NFE arm, paired in Inception too
        return r.get("dfid") is not None and not (nfe_arm and want_inc and r.get("dfid_inception") is None)

    done = PAPER_ARCH.done_keys(rows_path(run), is_done=is_done)
    ev.prefetch([(c.params["method"], c.params["bits"]) for c in cells if c.params["kind"] == "cell"
                 and c.key not in done and not _kept(run, f"cell_{c.params['method']}_b{c.params['bits']}_n"
                                                          f"{c.params['samples']}_s{c.params['steps']}.ours.npy").is_file()])
    deadline = time.time() + args.budget_s
    report = run_cells(cells, task=evaluate_cell, load=load, context_key=("paper_arch", str(run)), table=PAPER_ARCH,
                       out=rows_path(run), scheduler="none", deadline=deadline, name="paper arch",
                       is_done=is_done)
    ev.stop_prefetch()
    log(f"evaluate: {len(report.written)} rows written, {report.skipped} done before, {report.not_started} left, "
        f"{len(report.failed)} failed, {report.wall_s:.1f} s")
    for key, tb in report.failed:
        log(f"FAILED {key}:\n{tb}")
    for r in PAPER_ARCH.read(rows_path(run)):
        log(f"{r['protocol']:5s} {r['method']:18s} b{r['bits']:<2d} n={r['samples']} steps={r['steps']}: "
            f"fid {r.get('fid')} inception {r.get('fid_inception')} psnr_t0 {r.get('psnr_t0_paper')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["train", "evaluate", "probe"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--run", default=None, help="state folder (default runs/paper_arch_<dataset>)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=PAPER_MNIST.model_channels)
    p.add_argument("--res-blocks", type=int, default=PAPER_MNIST.num_res_blocks)
    p.add_argument("--minutes", type=float, default=8.5)
    p.add_argument("--whole-epochs", action="store_true")
    p.add_argument("--epochs", type=float, default=None, help="stop after this many epochs (--minutes still caps)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--memory-format", default="contiguous", choices=["contiguous", "channels_last"],
                   help="of the network and its inputs (channels_last trained at 1,272-1,308 images/s on the H200, "
                        "plain contiguous at 1,672 in an earlier run; ``probe`` measures both in one run)")
    p.add_argument("--resume", action="store_true",
                   help="train on from the run's train_state.pt (a later command of the same lease): the step count, "
                        "EMA, optimizer, wall time, the epoch's shuffle and the random streams continue, so that a training "
                        "split across commands is the training of one command, bit for bit (with --deterministic on a GPU)")
    p.add_argument("--deterministic", action="store_true",
                   help="train with deterministic kernels only (cuDNN's fixed algorithms, cuBLAS's deterministic "
                        "workspace, torch.use_deterministic_algorithms with warn_only): so that a later lease can "
                        "train the same network again, bit for bit, and measure the rows one lease cannot; ops "
                        "torch has no deterministic kernel for are named in train.json (nondeterministic_ops)")
    p.add_argument("--probe-steps", type=int, default=40)
    p.add_argument("--probe-samples", type=int, default=2000)
    p.add_argument("--steps", type=int, default=10, help="midpoint steps of the FIDs (10 = 20 NFE)")
    p.add_argument("--fid-samples", type=int, default=20000, help="the large full-precision FIDs (0: none)")
    p.add_argument("--nfe-samples", type=int, default=2000)
    p.add_argument("--large-fid-first", action="store_true",
                   help="the large full-precision FIDs (the paper's protocol) before the NFE check, not after")
    p.add_argument("--samples", type=int, default=3000, help="samples per quantized cell")
    p.add_argument("--latent-images", type=int, default=10000)
    p.add_argument("--methods", nargs="+", default=["equal_mass", "uniform_minmax", "piecewise_quantile", "log2",
                                                    "lloyd_max"])
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 8])
    p.add_argument("--kinds", nargs="+", choices=("fp", "cell", "nfe"), default=["fp", "cell", "nfe"],
                   help="which rows ``evaluate`` measures: full precision (both protocols), the quantized cells, the "
                        "NFE check (``--kinds nfe`` measures the check again on a network whose other rows are done)")
    p.add_argument("--part-evals", type=int, default=250_000,
                   help="network evaluations per part of a full-precision or NFE-check row sampled in parts (each "
                        "part kept as it is done, so a row longer than one command resumes in the next); ~60 s "
                        "on the H200")
    p.add_argument("--budget-s", type=float, default=540)
    p.add_argument("--inception", default=None)
    p.add_argument("--n-boot", type=int, default=200,
                   help="paired-bootstrap replicates of each dFID interval, classifier features")
    p.add_argument("--n-boot-inception", type=int, default=20,
                   help="the same for Inception features (each replicate two 2048-d Frechet distances)")
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts: its deterministic mode
        torch.use_deterministic_algorithms(True, warn_only=True)
    # fixed batch shapes: the fastest convolution algorithms, chosen once by timing them (so a run may not repeat
    # another bit for bit: --deterministic)
    torch.backends.cudnn.benchmark = not args.deterministic
    torch.backends.cudnn.deterministic = args.deterministic
    run = Path(args.run or f"runs/paper_arch_{args.dataset}")
    run.mkdir(parents=True, exist_ok=True)
    (run / "dataset.json").write_text(json.dumps(args.dataset))
    device = torch.device(args.device)
    try:
        {"train": train, "evaluate": evaluate_stage, "probe": probe}[args.stage](args, run, device)
    finally:
        export(run)


if __name__ == "__main__":
    main()
