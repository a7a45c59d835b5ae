"""The sweep engine (:mod:`fmq_theory.harness.engine`) on the CPU: a tiny sweep on a 2-worker
Dask ``LocalCluster`` that loses a worker mid-sweep, an interrupted client that resumes, failed
cells retried once, and per-cell seeds that do not depend on the order of the cells.

The oracle of every check is the in-process loop (``scheduler="none"``): the cluster's rows must
equal its rows to the last digit (every column but the wall time), at the same torch thread
count (one), since CPU sums depend on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from distributed import Client, LocalCluster

from fmq_theory.cli import main
from fmq_theory.harness.checkpoints import save_checkpoint
from fmq_theory.harness.engine import Cell, cell_seed, run_cells
from fmq_theory.harness.models.unet import UNet, UNetConfig
from fmq_theory.harness.sweep import SweepConfig, run_sweep, sweep_cells
from fmq_theory.results.schema import SWEEP, Table

ARGS = dict(dataset="mnist", methods=("equal_mass", "uniform_minmax"), bits=(2, 4), samples=32, steps=2,
            batch_size=32, latent=False, inception_cells="none:32", real_images=200)
TOY = Table(name="toy", columns=(("cell", str), ("value", float)), key=("cell",))


def _timeless(rows: list[dict]) -> dict:
    return {SWEEP.row_key(r): {k: v for k, v in r.items() if k != "wall_s"} for r in rows}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained tiny class-conditional UNet (seeded), its sweep config and the in-process rows."""
    torch.manual_seed(0)
    model = UNet(UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(),
                            groups=4, dropout=0.0))
    root = tmp_path_factory.mktemp("engine")
    save_checkpoint(root / "ck", model, {"dataset": "mnist"})
    cfg = SweepConfig(checkpoint=str(root / "ck"), **ARGS)
    ref = root / "none.csv"
    report = run_sweep(cfg, out=ref, progress=False, scheduler="none", threads=1)
    assert len(report.written) == 5 and not report.failed
    return cfg, root, SWEEP.read(ref)


@pytest.mark.slow
def test_two_workers_one_killed_every_cell_once_rows_equal_in_process(tiny, tmp_path):
    cfg, _, ref = tiny
    out = tmp_path / "local.csv"
    killed = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit=0,
                      env={"OMP_NUM_THREADS": "1"}) as cluster, Client(cluster) as client:

        def kill_a_busy_worker():
            """When the first row lands, SIGKILL a worker that holds a task (its nanny restarts it)."""
            while not out.exists():
                time.sleep(0.05)
            busy = [a for a, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                killed["tasks"] = client.processing()[busy[0]]
                os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        report = run_sweep(cfg, out=out, progress=False, scheduler=cluster.scheduler_address, threads=1)
        killer.join()
    assert killed.get("tasks"), "no worker held a task when the first row landed"
    keys = [c.key for c in sweep_cells(cfg)]
    assert sorted(report.written) == sorted(keys) and not report.failed  # every cell once
    rows = SWEEP.read(out)
    assert len(rows) == 5 and _timeless(rows) == _timeless(ref)  # to the last digit


@pytest.mark.slow
def test_interrupted_client_resumes_and_loses_nothing(tiny, tmp_path):
    cfg, root, ref = tiny
    out = tmp_path / "resumed.csv"
    argv = [sys.executable, "-m", "fmq_theory", "experiment", "--dataset", "mnist", "--checkpoint", cfg.checkpoint,
            "--methods", *cfg.methods, "--bits", ",".join(map(str, cfg.bits)), "--samples", str(cfg.samples),
            "--steps", str(cfg.steps), "--batch-size", str(cfg.batch_size), "--no-latent",
            "--inception-cells", cfg.inception_cells, "--real-images", str(cfg.real_images), "--quiet",
            "--scheduler", "local", "--workers", "1", "--threads", "1", "--out", str(out)]
    proc = subprocess.Popen(argv, env=dict(os.environ, PYTHONPATH=os.getcwd()), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    while not out.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C of the client, right after the first row landed
    log = proc.communicate(timeout=120)[0]
    done = SWEEP.read(out) if out.exists() else []
    assert 1 <= len(done) <= 5, log
    report = run_sweep(cfg, out=out, progress=False, scheduler="none", threads=1)
    assert report.skipped == len(done) and len(report.written) == 5 - len(done)
    assert _timeless(SWEEP.read(out)) == _timeless(ref)


def _draw(context, *, name: str) -> dict:
    """A toy cell: one draw of numpy's and one of torch's global generator."""
    return {"cell": name, "value": float(np.random.random() + torch.rand(()).item() + context)}


def test_a_cells_numbers_do_not_depend_on_the_order(tmp_path):
    cells = [Cell(key=(f"c{i}",), params={"name": f"c{i}"}) for i in range(4)]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    common = dict(task=_draw, load=lambda: 0.0, context_key="toy", table=TOY, scheduler="none", progress=False)
    run_cells(cells, out=a, **common)
    run_cells(cells[::-1], out=b, **common)
    rows_a = {r["cell"]: r["value"] for r in TOY.read(a)}
    assert rows_a == {r["cell"]: r["value"] for r in TOY.read(b)}
    seed = cell_seed(("c2",))  # the oracle: fresh generators seeded from the key
    expected = np.random.RandomState(seed % 2**32).random() + torch.rand((), generator=torch.Generator().manual_seed(seed)).item()
    assert rows_a["c2"] == float(expected)
    assert len(set(rows_a.values())) == 4


def test_done_keys_are_the_keys_of_the_rows_is_done_accepts(tmp_path):
    out = tmp_path / "t.csv"
    TOY.write(out, [{"cell": "a", "value": 1.0}, {"cell": "b"}, {"cell": "c", "value": 3.0}])
    assert TOY.done_keys(out) == {("a",), ("b",), ("c",)}
    assert TOY.done_keys(out, is_done=lambda r: r.get("value") is not None) == {("a",), ("c",)}
    assert TOY.done_keys(tmp_path / "absent.csv", is_done=lambda r: True) == set()


def test_run_cells_skips_exactly_the_done_rows(tmp_path):
    """A row that ``is_done`` refuses is measured again; one it accepts is not (the oracle: the calls made)."""
    out = tmp_path / "t.csv"
    TOY.write(out, [{"cell": "a", "value": 1.0}, {"cell": "b"}])
    made = []

    def task(context, *, name: str) -> dict:
        made.append(name)
        return {"cell": name, "value": 2.0}

    cells = [Cell(key=(n,), params={"name": n}) for n in ("a", "b", "c")]
    report = run_cells(cells, task=task, load=lambda: None, context_key="done", table=TOY, out=out,
                       scheduler="none", progress=False, is_done=lambda r: r.get("value") is not None)
    assert sorted(made) == ["b", "c"] and report.skipped == 1
    assert {r["cell"]: r["value"] for r in TOY.read(out)} == {"a": 1.0, "b": 2.0, "c": 2.0}


_CALLS: dict = {}


def _flaky(context, *, name: str) -> dict:
    """Fails on its first call for ``once``, always for ``never``."""
    _CALLS[name] = _CALLS.get(name, 0) + 1
    if name == "never" or (name == "once" and _CALLS[name] == 1):
        raise RuntimeError(f"cell {name} broke")
    return {"cell": name, "value": 1.0}


def test_a_failed_cell_is_reported_retried_once_and_spares_the_others(tmp_path, capsys):
    cells = [Cell(key=(n,), params={"name": n}) for n in ("once", "never", "fine")]
    out = tmp_path / "t.csv"
    report = run_cells(cells, task=_flaky, load=lambda: None, context_key="flaky", table=TOY, out=out,
                       scheduler="none", progress=False)
    assert sorted(report.written) == [("fine",), ("once",)] and report.retried == 2
    assert [k for k, _ in report.failed] == [("never",)] and "RuntimeError: cell never broke" in report.failed[0][1]
    assert _CALLS == {"once": 2, "never": 2, "fine": 1}
    assert "Traceback" in capsys.readouterr().err
    assert sorted(r["cell"] for r in TOY.read(out)) == ["fine", "once"]


@pytest.mark.parametrize("argv, flag", [(["--scheduler", "slurm"], "--scheduler"), (["--workers", "0"], "--workers")])
def test_bad_engine_flags_are_refused_naming_the_flag(argv, flag, tmp_path, capsys):
    out = tmp_path / "s.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["experiment", "--dataset", "mnist", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and flag in err and not out.exists(), err
