"""Theory-guided, data-free mixed-precision quantization: the plan, its pieces and inference.

``plan_quantization(model, budget_bits=...)`` estimates every weight's sensitivity from the
model's own sampling trajectories (:mod:`.sensitivity`), fits every option of every tensor
(:mod:`.candidates`, including the sensitivity-weighted exact codebooks of :mod:`.weighted`)
and chooses one per tensor by an exact multiple-choice knapsack (:mod:`.knapsack`) on the
additive predicted degradation (:mod:`.core`), once per bit floor; the floors' plans are
sampled from the same noise and the least displaced is kept (:mod:`.selection`).  With
``roundings=("nearest", "compensated")`` each variant is also sampled with the codes of every
linear and convolution weight rounded against its inputs' second moment over the same
trajectories (:mod:`.compensation`).  The whole
first-order form of a weight error, the cross-weight terms the additive model leaves out, is
:mod:`.first_order`, and an allocation priced by it, which does not beat the knapsack at two bits, is
:mod:`.whole_form`.  ``load_quantized_model`` runs the result with
its codes kept packed (:mod:`.runtime`).
"""

from fmq_theory.plan.candidates import Candidate, default_candidates
from fmq_theory.plan.compensation import compensated, input_moments
from fmq_theory.plan.core import (
    FittedCandidates,
    PredictedDelta,
    QuantizationPlan,
    TensorChoice,
    fit_candidates,
    fit_memory_bytes,
    load_fitted,
    load_plan,
    plan_quantization,
)
from fmq_theory.plan.first_order import FirstOrderDisplacement, first_order_displacement
from fmq_theory.plan.knapsack import KnapsackSolution, solve_mckp
from fmq_theory.plan.runtime import load_quantized_model, resident_bytes
from fmq_theory.plan.selection import VariantScore
from fmq_theory.plan.sensitivity import (
    PassMemory, SensitivityMemory, WeightSensitivity, pass_memory, sensitivity_memory, weight_sensitivity,
)
from fmq_theory.plan.weighted import weighted_codebook
from fmq_theory.plan.whole_form import CandidateSketch, WholeFormSolution, sketch_candidates, solve_whole_form

__all__ = [
    "Candidate",
    "CandidateSketch",
    "FirstOrderDisplacement",
    "FittedCandidates",
    "KnapsackSolution",
    "PassMemory",
    "PredictedDelta",
    "QuantizationPlan",
    "SensitivityMemory",
    "TensorChoice",
    "VariantScore",
    "WeightSensitivity",
    "WholeFormSolution",
    "compensated",
    "default_candidates",
    "fit_candidates",
    "fit_memory_bytes",
    "first_order_displacement",
    "input_moments",
    "load_fitted",
    "load_plan",
    "load_quantized_model",
    "pass_memory",
    "plan_quantization",
    "resident_bytes",
    "sensitivity_memory",
    "sketch_candidates",
    "solve_mckp",
    "solve_whole_form",
    "weight_sensitivity",
    "weighted_codebook",
]
