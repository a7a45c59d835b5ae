"""``scripts/promote_pending.py``: a pending table takes the committed one's place only when complete,
and no file is lost.

The oracle is the committed MNIST table itself: copied into a temporary results folder as both the
committed and the pending table (the latter under another checkpoint), the promotion must move every
file byte for byte, and refuse, moving nothing, when a row is missing, a row names another network
or a target exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _scripts import load_script

from fmq_theory.results.schema import PAPER_ARCH

ROOT = Path(__file__).resolve().parents[1]
promote = load_script("promote_pending")
OLD, NEW = "a" * 64, "b" * 64


def results_tree(tmp_path: Path, *, drop: int = 0, stray: bool = False) -> Path:
    """A results folder: the committed MNIST rows under checkpoint OLD, and pending rows (the same
    keys but the last ``drop``) under NEW, one of them under OLD when ``stray``, with one repeat."""
    results = tmp_path / "results"
    (results / "pending").mkdir(parents=True)
    rows = PAPER_ARCH.read(ROOT / "results" / "paper_arch_mnist.csv")
    PAPER_ARCH.write(results / "paper_arch_mnist.csv", [r | {"checkpoint_sha256": OLD} for r in rows])
    waiting = [r | {"checkpoint_sha256": NEW} for r in rows[:len(rows) - drop]]
    if stray:
        waiting[0]["checkpoint_sha256"] = OLD
    PAPER_ARCH.write(results / "pending" / "paper_arch_mnist.csv", waiting)
    for folder, sha in ((results, OLD), (results / "pending", NEW)):
        (folder / "paper_arch_mnist_train.json").write_text(json.dumps({"checkpoint_sha256": sha}))
    (results / "pending" / "paper_arch_mnist_train_repeat.json").write_text(json.dumps({"checkpoint_sha256": NEW}))
    return results


def contents(results: Path) -> dict:
    return {p.relative_to(results): p.read_bytes() for p in sorted(results.rglob("*")) if p.is_file()}


def test_a_complete_table_is_promoted_byte_for_byte(tmp_path):
    results = results_tree(tmp_path)
    before = contents(results)
    moves = promote.promotion(results, "mnist")
    for source, target in moves:
        shutil.move(source, target)
    after = contents(results)
    assert after[Path("paper_arch_mnist_aaaaaaaa.csv")] == before[Path("paper_arch_mnist.csv")]
    assert after[Path("paper_arch_mnist_aaaaaaaa_train.json")] == before[Path("paper_arch_mnist_train.json")]
    assert after[Path("paper_arch_mnist.csv")] == before[Path("pending/paper_arch_mnist.csv")]
    assert after[Path("paper_arch_mnist_train.json")] == before[Path("pending/paper_arch_mnist_train.json")]
    assert after[Path("paper_arch_mnist_train_repeat.json")] == before[Path("pending/paper_arch_mnist_train_repeat.json")]
    assert not list((results / "pending").iterdir())
    assert sorted(after.values()) == sorted(before.values())  # every file kept, none written


@pytest.mark.parametrize("case, match", [
    (dict(drop=2), "2 rows of .* not measured yet"),
    (dict(stray=True), "rows of checkpoints \\['aaaaaaaaaaaaaaaa'\\]"),
])
def test_an_incomplete_or_mixed_table_moves_nothing(tmp_path, case, match):
    results = results_tree(tmp_path, **case)
    before = contents(results)
    with pytest.raises(ValueError, match=match):
        promote.promotion(results, "mnist")
    assert contents(results) == before


def test_an_existing_target_is_never_overwritten(tmp_path):
    results = results_tree(tmp_path)
    (results / "paper_arch_mnist_aaaaaaaa.csv").write_text("kept")
    with pytest.raises(ValueError, match="targets exist: .*paper_arch_mnist_aaaaaaaa.csv"):
        promote.promotion(results, "mnist")


@pytest.mark.parametrize("dataset, error", [("", ValueError), ("../mnist", ValueError), ("cifar", FileNotFoundError)])
def test_bad_dataset_names_the_argument(tmp_path, dataset, error):
    results = results_tree(tmp_path)
    with pytest.raises(error, match="dataset" if error is ValueError else "table: no file"):
        promote.promotion(results, dataset)
