"""``fmq plan`` sweeps (:mod:`fmq_theory.harness.plan_sweep`) on a tiny UNet: several budgets as
cells of the sweep engine.

Oracles: the in-process loop (``--scheduler none``) for a 2-worker ``LocalCluster`` (rows equal
to the last digit but for the timings and the file names, plan data byte for byte), the
single-budget ``fmq plan`` for each budget of a sweep (the same plan tensor for tensor), the
plan file itself for its row, and a count of the sensitivity estimates and candidate fits (one
per process, never one per budget).  Every run uses one torch thread, since CPU sums depend on the thread count.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json

import pytest
import torch
from _tiny_unet import save_tiny_unet
from safetensors.torch import save_file

from fmq_theory._util import file_sha256
from fmq_theory.cli import main
from fmq_theory.harness import engine, plan_sweep
from fmq_theory.harness.models.paper_unet import EMA, PaperUNet, PaperUNetConfig
from fmq_theory.harness.plan_sweep import PlanSweepConfig, budget_output, plan_sweep_cells, run_plan_sweep
from fmq_theory.plan import load_plan
from fmq_theory.results.schema import PLAN_SWEEP

SETTINGS = ["--samples", "4", "--steps", "2", "--replicates", "4"]
#: Columns that differ between two runs of the same cells: timings, the file name, and the file's
#: hash and size (its header holds the name and the plan's wall time; its data is compared).
VARYING = ("output", "output_sha256", "file_bytes", "sensitivity_s", "fit_s", "plan_s")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    save_tiny_unet(folder)
    return folder


def _plan(tiny, out, *argv) -> int:
    return main(["plan", str(tiny / "model.safetensors"), "--model-config", str(tiny / "config.json"),
                 "-o", str(out), *SETTINGS, *argv])


def _stable(rows: list[dict]) -> dict:
    return {r["budget"]: {k: v for k, v in r.items() if k not in VARYING} for r in rows}


def _cfg(tiny) -> PlanSweepConfig:
    return PlanSweepConfig(checkpoint=str(tiny / "model.safetensors"), model_config=str(tiny / "config.json"),
                           samples=4, steps=2, replicates=4)


@pytest.mark.slow
def test_two_workers_give_the_rows_of_the_in_process_loop(tiny, tmp_path, capsys):
    one, two = tmp_path / "none" / "p.safetensors", tmp_path / "local" / "p.safetensors"
    assert _plan(tiny, one, "--budget", "3,4", "--scheduler", "none", "--threads", "1") == 0
    text = capsys.readouterr().out
    assert _plan(tiny, two, "--budget", "3,4", "--scheduler", "local", "--workers", "2", "--threads", "1") == 0
    assert "scheduler local, 2 workers" in capsys.readouterr().out
    rows_one, rows_two = PLAN_SWEEP.read(one.with_suffix(".csv")), PLAN_SWEEP.read(two.with_suffix(".csv"))
    assert sorted(r["budget"] for r in rows_one) == [3.0, 4.0]
    assert _stable(rows_one) == _stable(rows_two)  # to the last digit, plan data byte for byte
    assert text.startswith("# fmq_theory ") and "2 new rows, 0 already there" in text
    for row in rows_one + rows_two:  # each row describes its file
        path = budget_output(one if row in rows_one else two, row["budget"])
        plan = load_plan(path)
        assert row["output"] == str(path) and row["output_sha256"] == file_sha256(path)
        assert (row["bits_per_weight"], row["total_bytes"], row["predicted_delta"], row["predicted_low"],
                row["predicted_high"], row["dual_bound"]) == (
            plan.bits_per_weight, plan.total_bytes, plan.predicted_delta.value, plan.predicted_delta.low,
            plan.predicted_delta.high, plan.dual_bound)
        assert row["bits_per_weight"] <= row["budget"] and row["file_bytes"] == path.stat().st_size
        assert row["data_sha256"] == hashlib.sha256(path.read_bytes()[row["file_bytes"] - row["data_bytes"]:]).hexdigest()


def test_each_budget_is_the_single_budget_plan(tiny, tmp_path, capsys):
    out = tmp_path / "p.safetensors"
    assert _plan(tiny, out, "--budget", "2.5,3", "--scheduler", "none", "--threads", "1") == 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert _plan(tiny, tmp_path / "single.safetensors", "--budget", "3") == 0
    finally:
        torch.set_num_threads(threads)
    assert "budget=3.0 " in capsys.readouterr().out  # the one-budget output is unchanged
    single, swept = load_plan(tmp_path / "single.safetensors"), load_plan(budget_output(out, 3.0))
    assert single.choices == swept.choices and single.predicted_delta == swept.predicted_delta
    a, b = single.state_dict(), swept.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_skips_done_budgets_and_the_sensitivity_and_fits_are_made_once(tiny, tmp_path, monkeypatch):
    calls, fits = [], []
    estimate, fit = plan_sweep.weight_sensitivity, plan_sweep.fit_candidates
    monkeypatch.setattr(plan_sweep, "weight_sensitivity", lambda *a, **k: calls.append(1) or estimate(*a, **k))
    monkeypatch.setattr(plan_sweep, "fit_candidates", lambda *a, **k: fits.append(1) or fit(*a, **k))
    monkeypatch.setattr(engine, "_CONTEXT", {})
    out, results = tmp_path / "p.safetensors", tmp_path / "rows.csv"
    common = dict(out=out, results=results, scheduler="none", threads=1, progress=False)
    first = run_plan_sweep(_cfg(tiny), budgets=(3.0, 4.0), **common)
    assert len(first.written) == 2 and len(calls) == len(fits) == 1  # one estimate and one fit for two budgets
    before = _stable(PLAN_SWEEP.read(results))
    monkeypatch.setattr(engine, "_CONTEXT", {})  # a fresh process
    resumed = run_plan_sweep(_cfg(tiny), budgets=(2.5, 3.0, 4.0), **common)
    assert resumed.skipped == 2 and [dict(zip(PLAN_SWEEP.key, k))["budget"] for k in resumed.written] == [2.5]
    after = _stable(PLAN_SWEEP.read(results))
    assert {b: after[b] for b in (3.0, 4.0)} == before and set(after) == {2.5, 3.0, 4.0}
    budget_output(out, 4.0).unlink()  # a lost plan file is planned again, to the same data
    again = run_plan_sweep(_cfg(tiny), budgets=(2.5, 3.0, 4.0), **common)
    assert again.skipped == 2 and len(again.written) == 1 and _stable(PLAN_SWEEP.read(results)) == after
    assert len(calls) == len(fits) == 2 and not run_plan_sweep(_cfg(tiny), budgets=(2.5, 3.0, 4.0), **common).written


def test_families_and_groupings_are_part_of_a_rows_key(tiny, tmp_path, monkeypatch):
    """A row names the families and groupings sampled and the ones kept; other families or groupings,
    or a row written before they were recorded (no ``families`` column), are planned again."""
    monkeypatch.setattr(engine, "_CONTEXT", {})
    out, results = tmp_path / "p.safetensors", tmp_path / "rows.csv"
    common = dict(out=out, results=results, scheduler="none", threads=1, progress=False)
    run_plan_sweep(_cfg(tiny), budgets=(3.0,), **common)
    (row,) = PLAN_SWEEP.read(results)
    plan = load_plan(budget_output(out, 3.0))
    assert row["families"] == "optimal,minmax,half_quadratic" and row["family"] == plan.settings["family"]
    assert row["groupings"] == "any" and row["grouping"] == plan.settings["grouping"] == "any"
    optimal = dataclasses.replace(_cfg(tiny), families=("optimal",))
    assert len(run_plan_sweep(optimal, budgets=(3.0,), **common).written) == 1
    assert sorted(r["families"] for r in PLAN_SWEEP.read(results)) == ["optimal", "optimal,minmax,half_quadratic"]
    grouped = dataclasses.replace(optimal, groupings=("any", "groups"))
    assert len(run_plan_sweep(grouped, budgets=(3.0,), **common).written) == 1
    assert sorted(r["groupings"] for r in PLAN_SWEEP.read(results)) == ["any", "any", "any,groups"]
    with open(results, newline="") as f:  # an old file: no families columns at all
        rows = list(csv.DictReader(f))
    with open(results, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c not in ("families", "family")],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    again = run_plan_sweep(_cfg(tiny), budgets=(3.0,), **common)
    assert again.skipped == 0 and len(again.written) == 1
    with pytest.raises(ValueError, match="families"):
        dataclasses.replace(_cfg(tiny), families=("nope",))
    with pytest.raises(ValueError, match="groupings"):
        dataclasses.replace(_cfg(tiny), groupings=("any", "any"))


def test_a_budget_below_the_cheapest_plan_fails_alone(tiny, tmp_path, capsys):
    out = tmp_path / "p.safetensors"
    assert _plan(tiny, out, "--budget", "0.01,3", "--scheduler", "none", "--threads", "1") == 1
    captured = capsys.readouterr()
    assert "budget_bits=0.01 is below the cheapest plan" in captured.err and "1 failed" in captured.out
    assert [r["budget"] for r in PLAN_SWEEP.read(out.with_suffix(".csv"))] == [3.0]
    assert not budget_output(out, 0.01).exists()


@pytest.mark.parametrize("argv, match", [
    (["--budget", "3,3.0"], "repeats a budget"),
    (["--budget", "3,x"], "--budget"),
    (["--budget", "3", "--scheduler", "none"], "--scheduler: applies to a sweep"),
    (["--budget", "3,4", "--replicates", "1"], "replicates=1 must be at least 4"),
    (["--budget", "3", "--results", "r.csv"], "--results: applies to a sweep"),
    (["--budget", "3,4", "--batches-per-pass", "2"], "--batches-per-pass: applies to one budget only"),
    (["--budget", "3", "--batches-per-pass", "0"], "--batches-per-pass"),
])
def test_bad_sweep_arguments_are_named(tiny, tmp_path, argv, match, capsys):
    out = tmp_path / "x.safetensors"
    try:
        code = _plan(tiny, out, *argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_papers_network_has_one_name_from_its_run_folder_and_its_ema_file(tiny, tmp_path):
    """A sweep's rows name a training run folder by its record's ``checkpoint_sha256`` (its EMA wrapper's
    file, as the paper network's result rows do), not by the averaged ``model.safetensors`` it is read
    from: planning the folder or its ``ema.safetensors`` alone gives the same name.  A file is named by
    itself."""
    torch.manual_seed(0)
    cfg = PaperUNetConfig(model_channels=16, channel_mult=(2, 2), num_res_blocks=1)
    ema = EMA(PaperUNet(cfg), decay=0.5)
    with torch.no_grad():
        for p in ema.model.parameters():
            p.normal_(std=0.05)
    ema.update_ema()
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, str(tmp_path / "ema.safetensors"))
    save_file(ema.averaged_state_dict(), str(tmp_path / "model.safetensors"))
    (tmp_path / "train.json").write_text(json.dumps({
        "config": cfg.to_dict(), "checkpoint_sha256": file_sha256(tmp_path / "ema.safetensors"),
        "model_sha256": file_sha256(tmp_path / "model.safetensors")}))

    def name(checkpoint) -> str:
        cell = plan_sweep_cells(PlanSweepConfig(checkpoint=str(checkpoint)), [3.0], out=tmp_path / "p.safetensors")[0]
        return dict(zip(PLAN_SWEEP.key, cell.key))["checkpoint_sha256"]

    assert name(tmp_path) == name(tmp_path / "ema.safetensors") == file_sha256(tmp_path / "ema.safetensors")
    assert name(tmp_path) != file_sha256(tmp_path / "model.safetensors")
    assert name(tiny / "model.safetensors") == file_sha256(tiny / "model.safetensors")
