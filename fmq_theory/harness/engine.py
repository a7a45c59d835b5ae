"""The sweep engine: every cell of an experiment as one task on Dask distributed.

A sweep is a grid of independent cells (data set x model x method x bits x ...).  Each cell
is one task whose result is one row of a results table (:mod:`fmq_theory.results.schema`);
:func:`run_cells` runs the cells that the results file does not hold yet and writes each row
as its task completes.

Where the tasks run (``scheduler``):

* ``"local"``: a :class:`distributed.LocalCluster` of ``workers`` worker processes on this
  machine, one thread each (on a CUDA host, one worker per GPU: worker ``i`` makes GPU ``i``
  its current device);
* ``"tcp://HOST:PORT"`` (any scheduler address): the workers of a running cluster, for
  instance a Slurm allocation (:class:`dask_jobqueue.SLURMCluster`) or one worker per GPU of
  a multi-GPU host (:class:`dask_cuda.LocalCUDACluster`); see the book page "Running on a
  cluster";
* ``"none"``: a plain loop in this process (for debugging and for the reference run).

Guarantees, whichever scheduler runs the cells:

* **One source of truth.**  The results file, keyed by the table's key
  (:meth:`~fmq_theory.results.schema.Table.row_key`).  Only the client writes it, atomically
  (:func:`fmq_theory._util.write_atomic`), once per completed task, replacing a row of the same
  key; workers never touch it.  A cell whose row is there (and passes ``is_done``) is not run
  again, so a killed or interrupted sweep resumes and loses nothing.
* **Failures.**  A cell that raises is reported with its traceback and submitted once more; a
  second failure is recorded in :attr:`EngineReport.failed` and the other cells go on.  A task
  lost with its worker is re-run by the scheduler elsewhere; its row still lands once.
* **Per-worker set-up.**  The shared set-up (model weights, real-data features, reference
  samples) is built once per worker process by ``load`` and cached under ``context_key``
  (:func:`cached_context`); tasks carry only the cell's small parameters.
* **Determinism.**  Every cell runs with the same torch thread count ``threads`` (CPU sums
  depend on it).  Before a cell runs, the global random generators of :mod:`random`,
  numpy and torch are seeded with :func:`cell_seed` of the cell's key, so a cell gives the
  same numbers whichever worker runs it and in whatever order.  Seeds an experiment passes
  explicitly (the shared noise, bootstrap and Monte Carlo seeds) are unchanged.

References
----------
Dask Development Team, *Dask: Library for dynamic task scheduling* (2016),
https://dask.org; distributed futures: https://distributed.dask.org/en/stable/client.html.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Mapping, Sequence

import numpy as np
import torch
from distributed import Client, LocalCluster, as_completed, get_worker
from tqdm.auto import tqdm

from fmq_theory._util import check_positive_int
from fmq_theory.results.schema import Table

__all__ = ["Cell", "EngineReport", "cached_context", "cell_seed", "default_workers", "run_cells",
           "scheduler_choice"]


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep.

    Attributes
    ----------
    key : tuple
        The row key of the cell's row in the results table (the table's key columns, typed).
    params : dict
        Keyword arguments of the task for this cell (small values only: they travel per task).
    """

    key: tuple
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EngineReport:
    """What one :func:`run_cells` call did.

    Attributes
    ----------
    written : tuple of tuple
        Keys of the rows written by this call, in completion order.
    skipped : int
        Cells whose row the results file already held.
    not_started : int
        Cells not started because the deadline passed (the next call picks them up).
    failed : tuple of (tuple, str)
        ``(key, traceback)`` of each cell that failed twice.
    retried : int
        Cells that failed once and were submitted again.
    scheduler : str
        ``"none"``, ``"local"`` or the scheduler address.
    workers : int
        Workers that could run the cells (1 for ``"none"``).
    dashboard : str or None
        Address of the Dask dashboard when one is up.
    wall_s : float
        Wall time of the call, cluster start-up included.
    """

    written: tuple
    skipped: int
    not_started: int
    failed: tuple
    retried: int
    scheduler: str
    workers: int
    dashboard: str | None
    wall_s: float


def scheduler_choice(value: str) -> str:
    """Check a ``--scheduler`` value: ``"local"``, ``"none"`` or a scheduler address.

    >>> scheduler_choice("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    >>> try:
    ...     scheduler_choice("slurm")
    ... except ValueError as exc:
    ...     print(exc)
    scheduler must be 'local', 'none' or a scheduler address like tcp://HOST:8786, got 'slurm'
    """
    if value in ("local", "none") or "://" in value:
        return value
    raise ValueError(f"scheduler must be 'local', 'none' or a scheduler address like tcp://HOST:8786, got {value!r}")


def default_workers(device: str) -> int:
    """Workers of a local cluster sized to this machine: one per GPU on CUDA, else one per 4 cores.

    On the CPU every worker runs torch on ``cores // workers`` threads (set by :func:`run_cells`).
    """
    if torch.device(device).type == "cuda":
        return max(1, torch.cuda.device_count())
    return max(1, (os.cpu_count() or 1) // 4)


def cell_seed(key: Sequence) -> int:
    """The seed of a cell: the first 8 bytes of SHA-256 of ``repr(key)``, as an int below 2**63.

    Depends on the key only, never on the worker or on the order of the cells.

    >>> cell_seed(("mnist", "equal_mass", 4))
    821238585451240187
    >>> cell_seed(("mnist", "equal_mass", 4)) == cell_seed(("mnist", "equal_mass", 4))
    True
    """
    digest = hashlib.sha256(repr(tuple(key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


_CONTEXT: dict = {}


def cached_context(key: Hashable, load: Callable[[], Any]) -> Any:
    """The set-up ``load()`` of this process, built once per ``key`` (the latest key is kept).

    In a worker process this is the per-worker cache of the model weights and real-data
    features; a new key (another sweep's set-up) replaces the old one, so a long-lived worker
    holds one set-up at a time.
    """
    if key not in _CONTEXT:
        _CONTEXT.clear()
        _CONTEXT[key] = load()
    return _CONTEXT[key]


def _run_cell(key: tuple, params: dict, *, task: Callable, load: Callable, context_key: Hashable,
              threads: int | None, pin_gpu: bool) -> Any:
    """The body of one task (on a worker, or in this process for ``"none"``).

    ``pin_gpu``: on a local cluster, worker ``i`` makes GPU ``i`` its current CUDA device, so
    that ``"cuda"`` means one GPU per worker (``dask-cuda`` does the same through
    ``CUDA_VISIBLE_DEVICES``).
    """
    if pin_gpu:
        torch.cuda.set_device(int(get_worker().name) % torch.cuda.device_count())
    if threads is not None:
        torch.set_num_threads(threads)
    context = cached_context(context_key, load)
    seed = cell_seed(key)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return task(context, **params)


@contextlib.contextmanager
def _client(scheduler: str, workers: int | None, resources: Mapping | None,
            threads: int | None) -> Iterator[Client | None]:
    """A Dask client for ``scheduler`` (``None`` for ``"none"``); a local cluster is closed on exit."""
    if scheduler == "none":
        yield None
        return
    if scheduler == "local":
        n = workers or 1
        env = {"OMP_NUM_THREADS": str(threads or max(1, (os.cpu_count() or 1) // n))}
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, resources=dict(resources or {}),
                          dashboard_address=":0", memory_limit=0, env=env,
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            yield client
        return
    with Client(scheduler) as client:
        if workers:
            client.wait_for_workers(workers)
        yield client


def _worker_count(client: Client | None, resources: Mapping | None) -> int:
    """Workers able to run the cells; a clear error when none offers the ``resources``."""
    if client is None:
        return 1
    info = client.scheduler_info()["workers"].values()
    able = [w for w in info if all(w.get("resources", {}).get(k, 0) >= v for k, v in (resources or {}).items())]
    if not info:
        raise ValueError("scheduler: the cluster has no workers (pass --workers N to wait for them)")
    if not able:
        raise ValueError(f"resources={dict(resources)}: no worker of the cluster offers them "
                         "(start the workers with --resources \"GPU=1\", see 'Running on a cluster')")
    return len(able)


def _traceback(exc: BaseException, tb) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_cells(cells: Sequence[Cell], *, task: Callable[..., Any], load: Callable[[], Any], context_key: Hashable,
              table: Table, out: Path, scheduler: str = "local", workers: int | None = None,
              resources: Mapping | None = None, threads: int | None = None,
              is_done: Callable[[dict], bool] | None = None, finish: Callable[[Cell, Any], dict] | None = None,
              deadline: float | None = None, progress: bool = True, name: str = "sweep") -> EngineReport:
    """Run the cells whose row ``out`` lacks, one task each, writing each row as it completes.

    Parameters
    ----------
    cells : sequence of Cell
        The grid, in submission order; keys must be distinct.
    task : callable
        ``task(context, **cell.params)``; returns the cell's row, or anything ``finish`` turns
        into the row.  Must be picklable (a module-level function).
    load : callable
        ``load()`` builds the shared set-up once per worker (:func:`cached_context`); picklable
        and cheap to ship (e.g. :func:`functools.partial` of a module-level function and a
        frozen config).
    context_key : hashable
        Names the set-up ``load`` builds (e.g. the config and device).
    table : fmq_theory.results.schema.Table
        The results table; ``cell.key`` is :meth:`~Table.row_key` of the cell's row.
    out : pathlib.Path
        The results csv (created if missing; rows of other cells are kept).
    scheduler : str
        ``"local"``, ``"none"`` or a scheduler address (:func:`scheduler_choice`).
    workers : int, optional
        Workers of the local cluster (default :func:`default_workers` of the CPU, 1 and up);
        for an address, wait until this many workers are up.
    resources : mapping, optional
        Abstract resources each task asks for, e.g. ``{"GPU": 1}`` (a local cluster's workers
        offer them once each).
    threads : int, optional
        Torch threads of every cell (and OpenMP threads of a local cluster's workers; default:
        torch's own choice in this process, ``cores // workers`` on a local cluster).  Floating
        point sums on the CPU depend on the thread count, so rows agree to the last digit
        across schedulers only at the same ``threads`` (CUDA kernels do not depend on it).
    is_done : callable, optional
        ``is_done(row)``: whether a row already in ``out`` counts as done (default: any row of
        the cell's key).
    finish : callable, optional
        ``finish(cell, result) -> row`` on the client (e.g. to save a cell's images there).
    deadline : float, optional
        ``time.time()`` after which no new cell is submitted.
    progress : bool
        A progress bar over the cells, and the dashboard address when one is up.
    name : str
        Label of the progress bar.

    Returns
    -------
    EngineReport
    """
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError(f"cells: keys must be distinct, got {len(keys) - len(set(keys))} repeats")
    scheduler = scheduler_choice(scheduler)
    workers = check_positive_int(workers, name="workers", allow_none=True)
    out = Path(out)
    start = time.perf_counter()

    def rows() -> list[dict]:
        return table.read(out) if out.is_file() else []

    done = table.done_keys(out, is_done=is_done)
    todo = [c for c in cells if c.key not in done]
    written, failed = [], []
    retried = 0

    def land(cell: Cell, result: Any) -> None:
        row = finish(cell, result) if finish is not None else result
        if table.row_key(row) != cell.key:
            raise ValueError(f"task returned the row of {table.row_key(row)} for the cell {cell.key}")
        table.write(out, [r for r in rows() if table.row_key(r) != cell.key] + [row])
        written.append(cell.key)

    def failure(cell: Cell, attempt: int, text: str) -> bool:
        """Report a failed attempt; True when the cell gets its second try."""
        tqdm.write(f"{name}: cell {cell.key} failed (attempt {attempt + 1} of 2):\n{text}", file=sys.stderr)
        if attempt == 0:
            return True
        failed.append((cell.key, text))
        return False

    def late() -> bool:
        return deadline is not None and time.time() > deadline

    call = dict(load=load, context_key=context_key, task=task, threads=threads, pin_gpu=False)
    threads_before = torch.get_num_threads()
    queue = list(todo)
    # no cluster is started when every cell is already done
    with _client(scheduler if todo else "none", workers or (default_workers("cpu") if scheduler == "local" else None),
                 resources, threads) as client:
        n_workers = _worker_count(client, resources)
        dashboard = None
        if client is not None:
            port = client.scheduler_info().get("services", {}).get("dashboard")
            dashboard = client.dashboard_link if port else None
        bar = tqdm(total=len(todo), desc=name, unit="cell", disable=not progress)
        if progress and dashboard:
            tqdm.write(f"{name}: Dask dashboard at {dashboard}")
        if client is None:
            while queue and not late():
                cell = queue.pop(0)
                for attempt in (0, 1):
                    try:
                        result = _run_cell(cell.key, cell.params, **call)
                    except Exception as exc:  # reported with its traceback; the sweep goes on
                        if failure(cell, attempt, _traceback(exc, exc.__traceback__)):
                            retried += 1
                            continue
                    else:
                        land(cell, result)
                    break
                bar.update()
            torch.set_num_threads(threads_before)
        else:
            call["pin_gpu"] = scheduler == "local" and bool(resources) and "GPU" in resources
            attempts: dict = {}
            pending = as_completed()

            def submit(cell: Cell, attempt: int) -> None:
                future = client.submit(_run_cell, cell.key, cell.params, **call, resources=resources, pure=False,
                                       key=f"{name}-{cell_seed(cell.key):x}-{attempt}")
                attempts[future.key] = (cell, attempt)
                pending.add(future)

            # a window of 2 tasks per worker, so that the deadline can stop new cells
            for _ in range(2 * n_workers):
                if queue and not late():
                    submit(queue.pop(0), 0)
            for future in pending:
                cell, attempt = attempts.pop(future.key)
                if future.status == "finished":
                    land(cell, future.result())
                    bar.update()
                elif failure(cell, attempt, _traceback(future.exception(), future.traceback())):
                    retried += 1
                    submit(cell, 1)
                else:
                    bar.update()
                future.release()
                if queue and not late():
                    submit(queue.pop(0), 0)
        bar.close()
    return EngineReport(written=tuple(written), skipped=len(cells) - len(todo), not_started=len(queue),
                        failed=tuple(failed), retried=retried, scheduler=scheduler, workers=n_workers,
                        dashboard=dashboard, wall_s=time.perf_counter() - start)
