"""The results tables (:mod:`fmq_theory.results.schema`): typed reading, writing, and the committed files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmq_theory.results.schema import BOUND_CHECK, PAPER_ARCH, PLAN, PLAN_CHOICES, SENSITIVITY, SWEEP, TABLES, Table

ROOT = Path(__file__).resolve().parents[1]
DEMO = Table(name="demo", columns=(("name", str), ("bits", int), ("fid", float), ("inside_noise", bool)),
             key=("name", "bits"))


def _table_of(path: Path) -> Table:
    if path.name.startswith("bound_check_"):
        return BOUND_CHECK
    if path.name.startswith("sensitivity_"):
        return SENSITIVITY
    if path.name.startswith("plan_choices_"):
        return PLAN_CHOICES
    if path.name.startswith("plan_"):
        return PLAN
    if path.name.startswith("paper_arch_"):
        return PAPER_ARCH
    return SWEEP


def test_typed_round_trip(tmp_path):
    rows = [{"name": "a", "bits": 2, "fid": 0.1 + 0.2, "inside_noise": False},
            {"name": "b,c", "bits": 8, "fid": float("inf"), "inside_noise": True},
            {"name": None, "bits": None, "fid": float("nan"), "inside_noise": None},
            {"name": "d", "bits": np.int64(4), "fid": np.float32(0.5), "inside_noise": np.bool_(False)}]
    path = tmp_path / "t.csv"
    DEMO.write(path, rows)
    back = DEMO.read(path)
    assert [type(v) for v in back[3].values()] == [str, int, float, bool]
    assert back[0] == rows[0] and back[1] == rows[1]
    assert back[2]["name"] is None and back[2]["bits"] is None and math.isnan(back[2]["fid"])
    assert back[2]["inside_noise"] is None
    assert back[3] == {"name": "d", "bits": 4, "fid": 0.5, "inside_noise": False}
    text = path.read_bytes()
    DEMO.write(path, back)
    assert path.read_bytes() == text  # what was read is written back byte for byte
    assert text.splitlines()[1] == b"a,2,0.30000000000000004,False"


def test_false_reads_as_false():
    row = DEMO.typed({"name": "a", "bits": "3", "fid": "nan", "inside_noise": "False"})
    assert row["inside_noise"] is False and not row["inside_noise"]
    assert DEMO.typed({"inside_noise": "True"})["inside_noise"] is True
    assert DEMO.typed({"fid": "", "name": ""}) == {"fid": None, "name": None}
    assert math.isnan(row["fid"]) and row["bits"] == 3


@pytest.mark.parametrize("row, error, match", [
    ({"inside_noise": "false"}, ValueError, "neither 'True' nor 'False'"),
    ({"inside_noise": 1}, TypeError, "expected a bool"),
    ({"bits": 2.5}, TypeError, "demo.bits: expected int"),
    ({"bits": True}, TypeError, "expected int"),
    ({"fid": "x"}, ValueError, "demo.fid: 'x' is not float text"),
    ({"bits": "2.0"}, ValueError, "demo.bits: '2.0' is not int text"),
    ({"name": 3}, TypeError, "expected str"),
    ({"nope": 1}, KeyError, "no column 'nope'"),
])
def test_cells_of_the_wrong_type_raise(row, error, match):
    with pytest.raises(error, match=match):
        DEMO.typed(row)


def test_nan_text_and_missing_cells(tmp_path):
    SWEEP.write(tmp_path / "s.csv", [{"dataset": "mnist", "method": "none", "fid": float("nan"), "psnr": math.inf}])
    header, line = (tmp_path / "s.csv").read_text().splitlines()
    assert header.split(",") == list(SWEEP.names)
    cells = dict(zip(SWEEP.names, line.split(",")))
    assert cells["fid"] == "" and cells["psnr"] == "inf" and cells["bits"] == ""
    assert SWEEP.read(tmp_path / "s.csv")[0]["fid"] is None


def test_bad_files(tmp_path):
    (tmp_path / "a.csv").write_text("name,oops\na,1\n")
    with pytest.raises(ValueError, match=r"\['oops'\] are not columns of the demo table"):
        DEMO.read(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("name,bits\na,1,2\n")
    with pytest.raises(ValueError, match="more cells than the header"):
        DEMO.read(tmp_path / "b.csv")
    with pytest.raises(FileNotFoundError):
        DEMO.read(tmp_path / "missing.csv")


def test_renamed_columns_read_under_their_new_names(tmp_path):
    table = Table(name="toy", columns=(("dataset", str), ("bits", int), ("lipschitz_x_lower", float)),
                  renamed=(("lipschitz_x", "lipschitz_x_lower"),))
    (tmp_path / "old.csv").write_text("dataset,bits,lipschitz_x\nmnist,4,15.5\n")
    assert table.read(tmp_path / "old.csv") == [{"dataset": "mnist", "bits": 4, "lipschitz_x_lower": 15.5}]


def test_bound_check_refuses_the_earlier_constant_columns(tmp_path):
    # the naive chain's constants changed estimator (lip_features is now a rigorous upper bound),
    # so an earlier file is refused by name instead of being read under the new columns
    assert BOUND_CHECK.renamed == ()
    (tmp_path / "old.csv").write_text("dataset,bits,lipschitz_x,lip_features\nmnist,4,15.5,8.75\n")
    with pytest.raises(ValueError, match="lipschitz_x"):
        BOUND_CHECK.read(tmp_path / "old.csv")


def test_tables_are_consistent():
    assert set(TABLES) == {"sweep", "bound_check", "sensitivity", "paper_arch", "plan", "plan_choices",
                           "plan_sweep"}
    assert SWEEP.row_key({"dataset": "mnist", "method": "none", "bits": "32", "granularity": "none",
                          "samples": 10, "solver": "midpoint", "steps": "10", "cfg_scale": 0, "seed": 0,
                          "fid_real_test_samples": "100"}) == ("mnist", "none", 32, "none", 10, "midpoint", 10, 0.0,
                                                                 0, 100)
    with pytest.raises(ValueError, match="repeated"):
        Table(name="x", columns=(("a", str), ("a", int)))
    with pytest.raises(ValueError, match="type"):
        Table(name="x", columns=(("a", list),))


#: every committed table: the complete ones in results/ and the rows waiting in results/pending/
COMMITTED_TABLES = sorted((ROOT / "results").glob("*.csv")) + sorted((ROOT / "results" / "pending").glob("*.csv"))


@pytest.mark.parametrize("path", COMMITTED_TABLES, ids=lambda p: str(p.relative_to(ROOT / "results")))
def test_committed_tables_round_trip_byte_for_byte(path, tmp_path):
    table = _table_of(path)
    rows = table.read(path)
    assert rows and tuple(rows[0]) == table.names
    table.write(tmp_path / path.name, rows)
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()


def test_paper_network_rows_are_of_the_network_their_record_names():
    """Every table of the paper's network, complete (results/) or waiting (results/pending/), was measured on
    the one network of its training record: no table mixes two networks."""
    tables = [path for path in COMMITTED_TABLES if path.name.startswith("paper_arch_")]
    assert tables
    for path in tables:
        record = json.loads(path.with_name(f"{path.stem}_train.json").read_text())
        assert {r["checkpoint_sha256"] for r in PAPER_ARCH.read(path)} == {record["checkpoint_sha256"]}, path.name


def test_waiting_plan_rows_are_of_the_committed_model():
    """A plan table waiting in results/pending/ (its lease ran out) holds rows of the committed checkpoint the
    complete table in results/ was measured on, so that the rows can be carried as done into the next lease."""
    waiting = [path for path in COMMITTED_TABLES if path.parent.name == "pending" and path.name.startswith("plan_")]
    for path in waiting:
        model = path.stem.removeprefix("plan_")
        card = json.loads((ROOT / "checkpoints" / model / "model_card.json").read_text())
        assert {r["checkpoint_sha256"] for r in PLAN.read(path)} == {card["weights_sha256"]}, path.name
        assert {r["checkpoint_sha256"] for r in PLAN.read(ROOT / "results" / path.name)} == {card["weights_sha256"]}


@pytest.mark.slow
def test_merge_script_reproduces_the_committed_tables_and_figures(tmp_path):
    """Merging each committed bound-check table with itself gives back the table and its figure."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for ds in ("mnist", "fashion_mnist"):
        table = ROOT / "results" / f"bound_check_{ds}.csv"
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "merge_bound_check.py"), "--dataset", ds,
                               str(table), str(table)], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "results" / table.name).read_bytes() == table.read_bytes()
        figure = Path("results") / "figures" / f"bound_check_{ds}.png"
        assert (tmp_path / figure).read_bytes() == (ROOT / figure).read_bytes()
