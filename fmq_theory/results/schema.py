"""The results tables: their columns and types, and the one reader and writer of their csv files.

Every csv file under ``results/`` holds one of the tables below:

* :data:`SWEEP` - ``results/<dataset>.csv``, one row per (method, bits) cell of
  :func:`fmq_theory.harness.sweep.run_sweep`;
* :data:`BOUND_CHECK` - ``results/bound_check_<dataset>.csv``, one row per cell of
  :func:`fmq_theory.harness.bound_check.bound_check_cell`;
* :data:`SENSITIVITY` - ``results/sensitivity_<dataset>_<bits>b.csv``, one row per tensor of
  ``scripts/sensitivity.py``;
* :data:`PLAN` - ``results/plan_<model>.csv``, one row per (budget, method or peer) of
  ``scripts/gpu_plan_eval.py``;
* :data:`PLAN_CHOICES` - ``results/plan_choices_<model>_<budget>.csv``, one row per tensor of
  the plan at that budget;
* :data:`PLAN_SWEEP` - the ``--results`` csv of ``fmq plan`` with several budgets, one row per
  budget of :func:`fmq_theory.harness.plan_sweep.run_plan_sweep`.

Each column has one type, ``str``, ``int``, ``float`` or ``bool``.  :meth:`Table.read` returns
typed rows: numbers as ``int`` or ``float`` (``nan`` and ``inf`` included), booleans as
``bool`` (the text ``"False"`` reads as ``False``, not as a non-empty string), and an empty
cell as ``None``.  :meth:`Table.write` writes the text back: ``None`` as an empty cell, a
float by :func:`repr` (the shortest text that reads back as the same double), a float NaN as
the table's :attr:`Table.nan_text`, a bool as ``True``/``False``; the file is replaced
atomically (:func:`fmq_theory._util.write_atomic`).  A file written by :meth:`Table.write`
therefore comes back byte for byte from ``write(read(path))``, which is how
``scripts/merge_bound_check.py`` reproduces the committed tables.

Examples
--------
>>> demo = Table(name="demo", columns=(("method", str), ("bits", int), ("fid", float),
...                                    ("inside_noise", bool)))
>>> row = demo.typed({"method": "equal_mass", "bits": "4", "fid": "", "inside_noise": "False"})
>>> row
{'method': 'equal_mass', 'bits': 4, 'fid': None, 'inside_noise': False}
>>> demo.text(row | {"fid": 0.1})
{'method': 'equal_mass', 'bits': '4', 'fid': '0.1', 'inside_noise': 'False'}
"""

from __future__ import annotations

import csv
import math
import numbers
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from fmq_theory._util import write_atomic

__all__ = ["BOUND_CHECK", "PLAN", "PLAN_CHOICES", "PLAN_SWEEP", "SENSITIVITY", "SWEEP", "TABLES", "Table"]

_TYPES = (str, int, float, bool)
_BOOL_TEXT = {"True": True, "False": False}


@dataclass(frozen=True)
class Table:
    """One results table: its columns in file order with their types.

    Attributes
    ----------
    name : str
        What the table is, for error messages.
    columns : tuple of (str, type)
        ``(name, type)`` in file order; ``type`` is one of ``str``, ``int``, ``float``, ``bool``.
    key : tuple of str
        Columns that identify a row (a cell of the experiment).
    nan_text : str
        How a float NaN is written: ``"nan"``, or ``""`` where an empty cell means "not
        computed" (it then reads back as ``None``).
    renamed : tuple of (str, str)
        ``(old, new)`` column names: files with the old header still read, under the new names.
    """

    name: str
    columns: tuple
    key: tuple = ()
    nan_text: str = "nan"
    renamed: tuple = ()

    def __post_init__(self):
        names = [c for c, _ in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r}: repeated column names")
        bad = [c for c, kind in self.columns if kind not in _TYPES]
        if bad:
            raise ValueError(f"table {self.name!r}: columns {bad} have a type other than str, int, float, bool")
        if not set(self.key) <= set(names):
            raise ValueError(f"table {self.name!r}: key {self.key} names columns it does not have")
        if self.nan_text not in ("nan", ""):
            raise ValueError(f"table {self.name!r}: nan_text must be 'nan' or '', got {self.nan_text!r}")

    @property
    def names(self) -> tuple:
        """Column names in file order."""
        return tuple(c for c, _ in self.columns)

    def _kind(self, column: str) -> type:
        for name, kind in self.columns:
            if name == column:
                return kind
        raise KeyError(f"table {self.name!r} has no column {column!r}")

    def _value(self, column: str, value):
        """One cell as its column's Python type (text is parsed, numbers are checked)."""
        kind = self._kind(column)
        if value is None:
            return None
        where = f"{self.name}.{column}"
        if isinstance(value, str):
            if value == "":
                return None
            if kind is str:
                return value
            if kind is bool:
                if value not in _BOOL_TEXT:
                    raise ValueError(f"{where}: {value!r} is neither 'True' nor 'False'")
                return _BOOL_TEXT[value]
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"{where}: {value!r} is not {kind.__name__} text") from None
        if kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{where}: expected a bool, got {type(value).__name__} {value!r}")
            return bool(value)
        if (kind is str or isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
                or (kind is int and not isinstance(value, numbers.Integral))):
            raise TypeError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return operator.index(value) if kind is int else float(value)

    def typed(self, row: Mapping) -> dict:
        """``row`` (csv text or values) with every cell as its column's type (see the module notes).

        Raises
        ------
        KeyError
            A key is not a column of the table.
        ValueError, TypeError
            A cell does not hold its column's type (``"yes"`` in a bool column, ``2.5`` in an
            int column, a number in a text column ...).
        """
        return {column: self._value(column, value) for column, value in row.items()}

    def text(self, row: Mapping) -> dict:
        """``row`` as the csv text of its cells (after :meth:`typed`)."""
        out = {}
        for column, value in self.typed(row).items():
            if value is None:
                out[column] = ""
            elif isinstance(value, float):
                out[column] = self.nan_text if math.isnan(value) else repr(value)
            else:
                out[column] = str(value)
        return out

    def row_key(self, row: Mapping) -> tuple:
        """The typed values of :attr:`key` in ``row``; ``None`` for a key column ``row`` lacks
        (a row written before the column was added to the key matches no new row)."""
        return tuple(self._value(column, row.get(column)) for column in self.key)

    def done_keys(self, path, *, is_done: Callable[[dict], bool] | None = None) -> set:
        """The :meth:`row_key` of each row of ``path`` that ``is_done`` accepts (every row when
        ``is_done`` is ``None``); empty when there is no file ``path``.

        The cells of a sweep whose rows are already measured: what
        :func:`~fmq_theory.harness.engine.run_cells` skips, and what a script asks before it
        makes a cell's inputs (a quantized checkpoint, a plan) again.
        """
        if not Path(path).is_file():
            return set()
        return {self.row_key(r) for r in self.read(path) if is_done is None or is_done(r)}

    def read(self, path) -> list[dict]:
        """Typed rows of the csv file ``path`` (its columns: any of the table's, in any order).

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        ValueError
            The header names a column the table does not have, or a cell does not parse.
        """
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            old = dict(self.renamed)
            header = [old.get(c, c) for c in reader.fieldnames or ()]
            unknown = [c for c in header if c not in self.names]
            if unknown:
                raise ValueError(f"{path}: columns {unknown} are not columns of the {self.name} table")
            rows = []
            for rec in reader:
                if None in rec:
                    raise ValueError(f"{path}: line {reader.line_num} has more cells than the header")
                rows.append(self.typed(dict(zip(header, rec.values()))))
            return rows

    def write(self, path, rows: Iterable[Mapping]) -> None:
        """Write ``rows`` (typed or text) under every column, atomically; a missing cell is empty."""
        texts = [self.text(row) for row in rows]

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.names)
                writer.writeheader()
                for text in texts:
                    writer.writerow({column: text.get(column, "") for column in self.names})

        write_atomic(Path(path), write)


def _columns(spec: str) -> tuple:
    """``"a:str b:int ..."`` -> ``(("a", str), ("b", int), ...)``."""
    kinds = {kind.__name__: kind for kind in _TYPES}
    return tuple((name, kinds[kind]) for name, kind in (item.split(":") for item in spec.split()))


#: The quantization sweep (``fmq experiment``): ``results/<dataset>.csv``; an empty cell is a
#: metric not computed for that cell (e.g. Inception FID outside ``--inception-cells``).
SWEEP = Table(
    name="sweep",
    columns=_columns(
        "dataset:str method:str bits:int granularity:str samples:int solver:str steps:int nfe:int "
        "cfg_scale:float seed:int feature_net:str fid:float fid_real_test_samples:int inception_net:str "
        "fid_inception:float psnr:float ssim:float switch_rate:float psnr_t0_paper:float "
        "ssim_box_t0_paper:float latent_down_mean_var:float latent_down_collapsed:int "
        "latent_mid_mean_var:float latent_mid_collapsed:int latent_images:int inversion_rel_sq:float "
        "inversion_images:int bits_per_weight:float weight_mse:float weight_w2:float n_weights:int "
        "checkpoint_sha256:str classifier_sha256:str inception_sha256:str device:str wall_s:float "
        "version:str"),
    key=("dataset", "method", "bits", "granularity", "samples", "solver", "steps", "cfg_scale", "seed",
         "fid_real_test_samples"),
    nan_text="",
)

#: Measured FID and sample change against certified, estimated and predicted bounds
#: (``fmq bound-check``, :mod:`fmq_theory.harness.bound_check`): ``results/bound_check_<dataset>.csv``.
#: One vocabulary: ``certified_*`` has no estimated input, ``estimated_*`` has one, ``predicted_*``
#: comes from the weights alone, ``measured_*`` is observed; ``ratio_*`` is a bound or prediction
#: over the measured value.  The naive chain's constants are named for what they are (``_lower``
#: estimates, ``_upper`` bound).  An empty cell is a column not computed for that cell (the
#: trajectory estimate outside its cells, a ratio whose measured change is inside the noise).
BOUND_CHECK = Table(
    name="bound_check",
    columns=_columns(
        "dataset:str method:str bits:int samples:int solver:str steps:int feature_net:str device:str "
        "weight_mse:float fid_fp:float fid_q:float measured_dfid:float dfid_low:float dfid_high:float "
        "inside_noise:bool estimated_naive_dfid:float certified_dfid:float certified_dfid_fits:float "
        "measured_sqrt_fid_change:float certified_sqrt_fid_change:float certified_sqrt_fid_change_fits:float "
        "predicted_dfid:float predicted_dfid_linear_rms:float predicted_dfid_actual:float dither_dfid:float "
        "switch_rate:float ratio_certified_dfid:float ratio_certified_dfid_fits:float "
        "ratio_certified_sqrt_fid:float ratio_certified_sqrt_fid_fits:float ratio_predicted:float "
        "ratio_predicted_actual:float ratio_dither:float ratio_estimated_naive:float "
        "measured_w2_paired:float measured_w2_paired_clipped:float certified_w2:float certified_w2_delta:float "
        "certified_w2_n:int certified_w2_range_sq:float certified_w2_floor:float "
        "ratio_certified_w2:float trajectory_samples:int estimated_w2_trajectory:float "
        "estimated_w2_trajectory_rms:float measured_w2_paired_trajectory:float "
        "ratio_estimated_w2_trajectory:float trajectory_per_sample_ratio_median:float "
        "lanczos_residual_max:float measured_step_mse:float fd_paired:float fd_between:float "
        "predicted_sample_msd:float predicted_sample_msd_mc:float predicted_sample_msd_actual:float "
        "measured_sample_msd:float dither_sample_msd:float predicted_feature_msd:float "
        "predicted_step_mse:float dominant_tensors:str lipschitz_x_lower:float "
        "lipschitz_theta_lower:float lip_features_upper:float pred_samples:int draws:int t_quantize:float "
        "t_measure:float t_trajectory:float t_predict:float t_dither:float wall_s:float"),
    key=("dataset", "method", "bits"),
    nan_text="",
)

#: Quantizing one tensor at a time (``scripts/sensitivity.py``):
#: ``results/sensitivity_<dataset>_<bits>b.csv``.
SENSITIVITY = Table(
    name="sensitivity",
    columns=_columns(
        "dataset:str method:str bits:int tensor:str n_weights:int mse:float max_abs_err:float "
        "top1pct_rms_err:float rms_w:float rel_velocity_err:float"),
    key=("dataset", "method", "bits", "tensor"),
)

#: The paper's 55.7M network trained and evaluated in one GPU run (``scripts/gpu_paper_arch.py``):
#: ``results/paper_arch_<dataset>.csv``.  ``protocol`` names how the FIDs of the row were
#: obtained: ``"paper"`` (Inception FID of the samples against the training set, images to
#: uint8 by torchmetrics' ``normalize=True`` truncation) or ``"ours"`` (against the test set,
#: rounded to uint8); ``method`` ``"none"`` is the full-precision model; ``dfid*`` (classifier;
#: every quantized cell) and ``dfid_inception*`` (the NFE check's 200-NFE row) are the change of
#: FID against the full-precision samples of the same noise and count at the cells' NFE, with its
#: 95% paired-bootstrap interval (:func:`fmq_theory.bounds.certify_fid`); an empty cell is a
#: metric not computed for that row.
PAPER_ARCH = Table(
    name="paper_arch",
    columns=_columns(
        "dataset:str method:str bits:int granularity:str protocol:str samples:int solver:str steps:int "
        "nfe:int seed:int epochs:float train_wall_s:float final_loss:float feature_net:str fid:float "
        "inception_net:str fid_inception:float real_samples:int dfid:float dfid_low:float dfid_high:float "
        "dfid_inception:float dfid_inception_low:float dfid_inception_high:float psnr:float ssim:float "
        "psnr_t0_paper:float ssim_box_t0_paper:float latent_in_mean_var:float latent_in_std_var:float "
        "latent_in_collapsed:int latent_mid_mean_var:float latent_mid_std_var:float latent_mid_collapsed:int "
        "latent_images:int "
        "bits_per_weight:float weight_mse:float n_weights:int n_parameters:int checkpoint_sha256:str "
        "device:str wall_s:float version:str"),
    key=("dataset", "method", "bits", "granularity", "protocol", "samples", "solver", "steps", "seed"),
    nan_text="",
)

#: The plan against its peers at equal honest bits per weight (``scripts/gpu_plan_eval.py``):
#: ``results/plan_<model>.csv``.  ``method`` is ``none`` (full precision, budget 32), ``plan``,
#: or a peer family of :data:`fmq_theory.harness.peers.FAMILIES` at its ``setting`` nearest the
#: budget.  ``dfid*`` are paired-bootstrap intervals of FID_q - FID_fp
#: (:func:`fmq_theory.bounds.certify_fid`); ``predicted_dfid*`` the sampled predictions of the
#: same change from other noise draws (:func:`fmq_theory.bounds.sampled_dfid`), ``*_bias`` their
#: bootstrap bias estimates (:attr:`fmq_theory.bounds.SampledDFID.bias`; empty in rows written before
#: 2026-12-06) and ``*_extrapolated`` their split-half extrapolations in 1/M
#: (:attr:`fmq_theory.bounds.SampledDFID.extrapolated`; empty in every committed row, all written before them);
#: ``*_paired`` the paired difference of the pairs' own FIDs with its interval and its extrapolation
#: (:attr:`fmq_theory.bounds.SampledDFID.paired`; empty in every committed row, all written before them);
#: ``plan_displacement*`` the plan's own additive prediction of E|x_q - x_fp|^2 per sample with
#: its interval, and ``plan_seconds`` its sensitivity and fitting time; an empty cell is a
#: metric not computed.
PLAN = Table(
    name="plan",
    columns=_columns(
        "model:str dataset:str architecture:str budget:float method:str setting:str bits_per_weight:float "
        "total_bits:int n_weights:int fp16_weights:int samples:int solver:str steps:int nfe:int seed:int "
        "feature_net:str fid:float fid_fp:float dfid:float dfid_low:float dfid_high:float "
        "inception_net:str fid_inception:float fid_inception_fp:float dfid_inception:float "
        "dfid_inception_low:float dfid_inception_high:float psnr:float ssim:float switch_rate:float "
        "weight_mse:float predicted_dfid:float predicted_dfid_low:float predicted_dfid_high:float "
        "predicted_dfid_bias:float predicted_dfid_extrapolated:float predicted_dfid_paired:float "
        "predicted_dfid_paired_low:float predicted_dfid_paired_high:float predicted_dfid_paired_extrapolated:float "
        "predicted_dfid_inception:float "
        "predicted_dfid_inception_low:float predicted_dfid_inception_high:float predicted_dfid_inception_bias:float "
        "predicted_dfid_inception_extrapolated:float predicted_dfid_inception_paired:float "
        "predicted_dfid_inception_paired_low:float predicted_dfid_inception_paired_high:float "
        "predicted_dfid_inception_paired_extrapolated:float "
        "plan_displacement:float plan_displacement_low:float plan_displacement_high:float plan_seconds:float "
        "fid_real_test_samples:int checkpoint_sha256:str classifier_sha256:str inception_sha256:str "
        "device:str wall_s:float version:str"),
    key=("model", "budget", "method", "samples", "solver", "steps", "seed", "fid_real_test_samples"),
    nan_text="",
)

#: The plan's choice for every tensor (:class:`fmq_theory.plan.TensorChoice`, in state-dict
#: order, which is network order): ``results/plan_choices_<model>_<budget>.csv``.
PLAN_CHOICES = Table(
    name="plan_choices",
    columns=_columns(
        "name:str method:str bits:int granularity:str storage:str n_weights:int nbytes:int "
        "bits_per_weight:float mse:float gain:float predicted:float"),
    key=("name",),
)

#: A plan sweep (``fmq plan CHECKPOINT --budget 2,2.5,3``,
#: :func:`fmq_theory.harness.plan_sweep.run_plan_sweep`): one row per budget, describing the plan
#: file ``output``: ``bit_floors``, ``families`` and ``groupings`` are the variants the plan sampled,
#: ``bit_floor``, ``family`` and ``grouping`` the one it kept.  ``predicted_*`` is the plan's first-order predicted E|dx|^2 per sample with
#: its interval at ``level`` (:class:`fmq_theory.plan.PredictedDelta`); ``data_bytes`` and
#: ``data_sha256`` are the size and SHA-256 of the file's tensor data alone (equal across runs
#: whenever the plan is), ``file_bytes`` and ``output_sha256`` those of the whole file (its header
#: also holds the output path and the plan's wall time);
#: ``sensitivity_s`` and ``fit_s`` are the wall times of the shared sensitivity estimate and
#: candidate fits on the worker that ran the cell, ``plan_s`` that of this budget's allocation.
PLAN_SWEEP = Table(
    name="plan_sweep",
    columns=_columns(
        "checkpoint:str checkpoint_sha256:str budget:float samples:int seed:int solver:str steps:int "
        "projections:int replicates:int batch_size:int bit_floors:str bit_floor:int families:str family:str "
        "groupings:str grouping:str bits_per_weight:float "
        "total_bytes:int n_weights:int predicted_delta:float predicted_low:float predicted_high:float level:float "
        "predicted_per_entry:float dual_bound:float data_bytes:int file_bytes:int output:str output_sha256:str "
        "data_sha256:str sensitivity_s:float fit_s:float plan_s:float version:str"),
    key=("checkpoint_sha256", "budget", "samples", "seed", "solver", "steps", "projections", "replicates",
         "batch_size", "bit_floors", "families", "groupings", "output"),
)

#: Every results table, by name.
TABLES = {table.name: table for table in (SWEEP, BOUND_CHECK, SENSITIVITY, PAPER_ARCH, PLAN, PLAN_CHOICES,
                                          PLAN_SWEEP)}
