"""``scripts/gpu_paper_arch.py train --deterministic``, run on the CPU on a width-8 copy of the paper's network.

On the GPU the option is what lets a later lease train the same network again (cuDNN picks its
convolution algorithms by timing them otherwise); whether it does is measured there.  Here, where
training is deterministic anyway, the test holds the plumbing: the option trains, says so in the
run's record with the ops that have no deterministic kernel (none on the CPU), and two runs give the
same files, bit for bit.  A training split across commands (``--resume``, as a lease trains past one
command's 10 minutes) must be the training of one command: the epoch's shuffle, the place in it and
the random streams carry over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_paper_arch.py"


STEPS_PER_EPOCH = 60_000 // 16  # MNIST's training split at batch 16


def _train(run: Path, *extra: str, steps: int = 2) -> dict:
    subprocess.run([sys.executable, str(SCRIPT), "train", "--run", str(run), "--device", "cpu", "--width", "8",
                    "--res-blocks", "1", "--batch-size", "16", "--epochs", repr(steps / STEPS_PER_EPOCH),
                    "--minutes", "2", *extra],
                   cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, check=True, capture_output=True)
    return json.loads((run / "train.json").read_text())


def test_deterministic_training_is_recorded_and_repeats_itself(tmp_path):
    a, b = _train(tmp_path / "a", "--deterministic"), _train(tmp_path / "b", "--deterministic")
    assert a["deterministic"] is True and a["nondeterministic_ops"] == [] and a["steps"] == b["steps"] >= 1
    assert (a["model_sha256"], a["checkpoint_sha256"]) == (b["model_sha256"], b["checkpoint_sha256"])
    default = _train(tmp_path / "c")
    assert default["deterministic"] is False and "nondeterministic_ops" not in default


def test_a_training_resumed_in_a_second_command_is_the_training_of_one_command(tmp_path):
    whole = _train(tmp_path / "whole", "--deterministic", steps=5)
    _train(tmp_path / "split", "--deterministic", steps=2)
    split = _train(tmp_path / "split", "--deterministic", "--resume", steps=5)
    assert (whole["steps"], split["steps"], split["train_commands"]) == (5, 5, 2)
    assert (split["model_sha256"], split["checkpoint_sha256"]) == (whole["model_sha256"], whole["checkpoint_sha256"])
    assert split["final_loss"] == whole["final_loss"]


def test_the_saved_state_is_read_on_the_host_where_the_random_streams_are_set(tmp_path):
    """The lease of 2026-12-05 read the state onto the GPU, and ``torch.set_rng_state`` refused the
    streams there: the state is read on the host, whatever device trained, and its CPU stream
    restored gives the draws that followed the save."""
    _train(tmp_path / "run", "--deterministic", steps=2)
    state = load_script("gpu_paper_arch").read_train_state(tmp_path / "run" / "train_state.pt")
    for key in ("rng_cpu", "rng_cuda", "order"):
        assert state[key].device.type == "cpu", key
    assert state["rng_cpu"].dtype == torch.uint8 and state["rng_cuda"].dtype == torch.uint8
    torch.set_rng_state(state["rng_cpu"])
    first = torch.rand(4)
    torch.set_rng_state(state["rng_cpu"])
    torch.testing.assert_close(torch.rand(4), first, rtol=0, atol=0)
    assert all(t.device.type == "cpu" for t in state["ema"].values() if isinstance(t, torch.Tensor))
