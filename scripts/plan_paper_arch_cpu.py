"""``fmq plan`` of the paper's 55.7M architecture on this CPU machine: the fit's memory, and the plan run packed (issue 12).

Usage (as results/plan_paper_arch_cpu.json was made, 2 cores and 23 GB, ~10 min)::

    PYTHONPATH=. python scripts/plan_paper_arch_cpu.py --out results/plan_paper_arch_cpu.json
    PYTHONPATH=. python scripts/plan_paper_arch_cpu.py --low-memory --out results/plan_paper_arch_cpu_low_memory.json

No trained network of the paper's recipe outlives its GPU lease here (223 MB, too large for the
tracked tree), so this measures the architecture with seeded random weights: its default
initialisation (seed ``--seed``), the output convolutions that start at zero given normal weights of
standard deviation 0.02 as training would give them weights, saved in flow_matching's checkpoint
form (``model.*`` and ``shadow_params.N`` in an EMA wrapper).  Memory and time depend on the tensors'
shapes and on the plan's choices, not on what the network learnt; the choices of a random network
differ from a trained one's (``results/plan_paper_arch.csv`` has the trained network's plans, on the
GPU).

1. ``fmq plan CHECKPOINT --budget B`` in a child process, as a user runs it, with the fit's small
   settings of the refusal measured on 2026-12-04 (``--samples 8 --replicates 4 --batch-size 2
   --bit-floors 2 --families half_quadratic``): its wall time and peak resident memory
   (``getrusage`` of the child) and each phase's peak (sensitivity, fit, ..., sampled from
   ``/proc``), beside the bounds of :func:`fmq_theory.plan.fit_memory_bytes` and
   :func:`fmq_theory.plan.sensitivity_memory` and the machine's available memory
   (``--low-memory``: the fit keeps the options' prices only and the plan fits its chosen options
   again, ``fmq plan --low-memory``);
2. ``scripts/plan_runtime.py`` on the plan written: bytes at rest and sampling time, packed
   against full precision, and whether the packed samples equal the dequantized model's.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from fmq_theory import __version__
from fmq_theory._util import available_memory_bytes, file_sha256, write_atomic
from fmq_theory.harness.models.paper_unet import EMA, PaperUNet, PaperUNetConfig
from fmq_theory.plan import fit_memory_bytes, sensitivity_memory
from fmq_theory.plan.core import _state_sha256

REPLICATES = 4
PLAN_SETTINGS = ["--samples", "8", "--replicates", str(REPLICATES), "--batch-size", "2", "--bit-floors", "2",
                 "--families", "half_quadratic"]


def random_paper_network(path: Path, *, seed: int) -> EMA:
    """The paper's network with seeded random weights, saved as flow_matching's checkpoint at ``path``."""
    torch.manual_seed(seed)
    ema = EMA(PaperUNet(PaperUNetConfig()))
    with torch.no_grad():
        for p in ema.model.parameters():
            if not torch.any(p):  # the zero-initialised output convolutions
                p.normal_(std=0.02)
    ema.update_ema()
    torch.save({"model": ema.state_dict(), "epoch": 0, "args": argparse.Namespace(dataset="mnist")}, path)
    return ema


def tensors_sha256(path: Path) -> str:
    """SHA-256 of a safetensors file's tensors (names, dtypes, shapes, bytes, in name order; the digest a saved fit
    checks its model by), not of its metadata: equal for two plans that store the same codes and side arrays
    whatever their recorded parameters."""
    tensors = load_file(str(path))
    return _state_sha256(tensors, sorted(tensors))


#: The progress bars of ``fmq plan``, in the order it runs them: the phase a moment belongs to is the last one
#: whose bar has appeared in the log (before the first: loading the model).
PHASES = {"VJP probes": "sensitivity", "fitting candidates": "fit", "sampling variants": "variants"}


def _resident_bytes(pid: int) -> int | None:
    """``VmRSS`` of the process ``pid`` (Linux), or ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None


def child(argv: list, log: Path, *, every_s: float = 0.5) -> dict:
    """Run ``argv`` to completion, its output to ``log``: its wall time, peak resident bytes and, sampled every
    ``every_s`` seconds, the peak of each phase of :data:`PHASES` (by the progress bars in the log)."""
    start = time.perf_counter()
    phase_peaks: dict = {}
    with open(log, "w") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": "."})
        while proc.poll() is None:
            rss, text = _resident_bytes(proc.pid), log.read_text(errors="replace")
            seen = [(text.find(bar), phase) for bar, phase in PHASES.items() if bar in text]
            phase = max(seen)[1] if seen else "load"
            if rss is not None:
                phase_peaks[phase] = max(phase_peaks.get(phase, 0), rss)
            time.sleep(every_s)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited with {proc.returncode}; see {log}")
    return {"wall_s": wall, "peak_resident_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            "phase_peak_resident_bytes": phase_peaks, "phase_sampling_s": every_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON file written")
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=8, help="noise draws of the runtime's sampling (one batch)")
    parser.add_argument("--repeats", type=int, default=3, help="timed sampling runs per model (median)")
    parser.add_argument("--low-memory", action="store_true", help="fmq plan --low-memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint, plan_file = work / "checkpoint-0.pth", work / "plan.safetensors"
        ema = random_paper_network(checkpoint, seed=args.seed)
        fmq = [sys.executable, "-c", "import sys; from fmq_theory.cli import main; sys.exit(main(sys.argv[1:]))"]
        plan_argv = ["plan", str(checkpoint), "--budget", str(args.budget), *PLAN_SETTINGS, "-o", str(plan_file),
                     *(["--low-memory"] if args.low_memory else [])]
        print("fmq " + " ".join(plan_argv), flush=True)
        plan = child([*fmq, *plan_argv], work / "plan.log")  # the first child: its peak is the plan's alone
        summary = [line for line in (work / "plan.log").read_text().splitlines() if line.startswith(("honest", "file:"))]
        runtime_out = work / "runtime.json"
        child([sys.executable, "scripts/plan_runtime.py", "--samples", str(args.samples), "--repeats",
               str(args.repeats), "--out", str(runtime_out), "--plans",
               f"paper_arch_random={checkpoint}:{plan_file}"], work / "runtime.log")
        runtime = json.loads(runtime_out.read_text())
        doc = {"version": __version__, "command": "python scripts/plan_paper_arch_cpu.py " + " ".join(
                   f"--{k.replace('_', '-')}" + ("" if isinstance(v, bool) else f" {v}")
                   for k, v in vars(args).items() if v is not False),
               "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "network": {"architecture": "the paper's (fmq_theory.harness.models.paper_unet.PAPER_MNIST)",
                           "weights": f"random: default initialisation, seed {args.seed}; zero-initialised "
                                      "convolutions given N(0, 0.02^2) weights",
                           "parameters": sum(p.numel() for p in ema.model.parameters()),
                           "checkpoint_sha256": file_sha256(checkpoint)},
               "plan": {"command": "fmq " + " ".join(plan_argv).replace(str(work) + "/", ""),
                        "fit_memory_bytes": fit_memory_bytes(ema.model, keep_codes=not args.low_memory),
                        "sensitivity_memory_bytes": asdict(sensitivity_memory(ema.model, replicates=REPLICATES)),
                        "plan_tensors_sha256": tensors_sha256(plan_file),
                        "available_memory_bytes": available_memory_bytes(), **plan, "summary": summary},
               "runtime": {"protocol": runtime["protocol"], "torch_threads": runtime["torch_threads"],
                           **runtime["rows"][0]}}
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1) + "\n"))
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
