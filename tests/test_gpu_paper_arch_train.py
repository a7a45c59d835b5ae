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
