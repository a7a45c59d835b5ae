"""Rows measured again on the paper's network, merged into its committed table (scripts/merge_paper_arch.py).

The committed MNIST table (``results/paper_arch_mnist.csv``) is the oracle: merging it with itself
must give it back byte for byte, a measured row must replace exactly the row of its key, and rows
of another network must be refused with the file left as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _scripts import load_script

from fmq_theory.results.schema import PAPER_ARCH

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "merge_paper_arch.py"
TABLE = ROOT / "results" / "paper_arch_mnist.csv"


@pytest.fixture(scope="module")
def merge():
    return load_script("merge_paper_arch")


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_merging_the_table_with_itself_gives_it_back(tmp_path):
    table = tmp_path / TABLE.name
    table.write_bytes(TABLE.read_bytes())
    done = _run(table, TABLE)
    assert done.returncode == 0, done.stderr
    assert table.read_bytes() == TABLE.read_bytes()
    assert f"{len(PAPER_ARCH.read(TABLE))} rows replaced, 0 added" in done.stdout


def test_a_measured_row_replaces_the_row_of_its_key_in_place(tmp_path):
    rows = PAPER_ARCH.read(TABLE)
    at = next(i for i, r in enumerate(rows) if r["protocol"] == "paper" and r["steps"] == 100)  # the 200-NFE arm
    again = dict(rows[at], fid_inception=rows[at]["fid_inception"] + 0.25, dfid_inception=1.5,
                 dfid_inception_low=0.5, dfid_inception_high=2.5)
    measured, table = tmp_path / "measured.csv", tmp_path / TABLE.name
    PAPER_ARCH.write(measured, [again])
    table.write_bytes(TABLE.read_bytes())
    done = _run(table, measured)
    assert done.returncode == 0, done.stderr
    out = PAPER_ARCH.read(table)
    assert len(out) == len(rows)
    assert out[at] == PAPER_ARCH.read(measured)[0]
    assert out[:at] + out[at + 1:] == rows[:at] + rows[at + 1:]


def test_a_new_key_is_added_after_the_committed_rows(merge):
    rows = PAPER_ARCH.read(TABLE)
    new = dict(rows[0], samples=10000)
    assert merge.merged(rows, [new]) == rows + [new]


def test_rows_of_another_network_are_refused_and_nothing_is_written(tmp_path):
    rows = PAPER_ARCH.read(TABLE)
    other = dict(rows[-1], checkpoint_sha256="0" * 64)
    measured, table = tmp_path / "measured.csv", tmp_path / TABLE.name
    PAPER_ARCH.write(measured, [other])
    table.write_bytes(TABLE.read_bytes())
    done = _run(table, measured)
    assert done.returncode != 0
    assert "2 checkpoints" in done.stderr and "one network" in done.stderr
    assert table.read_bytes() == TABLE.read_bytes()


def test_no_measured_rows_is_an_error_naming_them(merge):
    with pytest.raises(ValueError, match="measured"):
        merge.merged(PAPER_ARCH.read(TABLE), [])
