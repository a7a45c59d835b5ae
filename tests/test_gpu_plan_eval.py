"""Helpers of the GPU plan evaluation (scripts/gpu_plan_eval.py).

A stopped evaluation resumes with what it made (``resumed``).

On 2026-12-03 the second call of the 55.7M network's plan evaluation listed the same peer families in
another order; the whole saved assignment was dropped, the network was fitted and planned again
(~290 s of a 395 s call) and no peer was reached.  These tests pin what a saved assignment gives a
call of other peer families or budgets.
"""

from __future__ import annotations

import doctest
import types
from pathlib import Path

import pytest
import torch
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plan_eval():
    return load_script("gpu_plan_eval")


PLAN_KEY = {"with_plan": True, "plan_samples": 2000, "plan_bit_floors": [1, 2, 3],
            "plan_families": ["optimal", "minmax", "half_quadratic"]}


def _saved(**extra) -> dict:
    """The file the stopped call of 2026-12-03 left: two plans made, no peer yet."""
    return PLAN_KEY | {"budgets": [3.0, 2.2728], "families": ["hqq:g128", "hqq:g64", "gguf", "nf4", "rule:equal_mass"],
                       "labels": {"fp": [{"method": "none"}, [32.0]], "plan@3": [{"method": "plan"}, [3.0]],
                                  "plan@2.2728": [{"method": "plan"}, [2.2728]]},
                       "complete": False, "peers_done": []} | extra


def test_reordered_peer_families_keep_the_plans(plan_eval):
    labels, done = plan_eval.resumed(_saved(), plan_key=PLAN_KEY, budgets=[3.0, 2.2728],
                                     families=["hqq:g128", "nf4", "gguf", "rule:equal_mass", "hqq:g64"])
    assert labels == {"plan@3": [{"method": "plan"}, [3.0]], "plan@2.2728": [{"method": "plan"}, [2.2728]]}
    assert done == set()


def test_other_plan_settings_drop_the_plans_not_the_peers(plan_eval):
    saved = _saved(labels={"plan@3": [{"method": "plan"}, [3.0]], "hqq:g128/b3": [{"method": "hqq:g128"}, [3.0]]},
                   peers_done=["3 hqq:g128"])
    labels, done = plan_eval.resumed(saved, plan_key=PLAN_KEY | {"plan_samples": 500}, budgets=[3.0],
                                     families=["hqq:g128"])
    assert labels == {"hqq:g128/b3": [{"method": "hqq:g128"}, [3.0]]} and done == {"3 hqq:g128"}


def test_a_peer_is_kept_only_at_the_budgets_still_wanted_and_quantized(plan_eval):
    saved = _saved(labels={"gguf/Q2_K": [{"method": "gguf"}, [2.0, 2.5]], "nf4/g64": [{"method": "nf4"}, [4.0]]},
                   peers_done=["2 gguf", "2.5 gguf", "4 nf4"], budgets=[2.0, 2.5, 4.0])
    labels, done = plan_eval.resumed(saved, plan_key=PLAN_KEY, budgets=[2.5, 4.0], families=["gguf"])
    assert labels == {"gguf/Q2_K": [{"method": "gguf"}, [2.5]]} and done == {"2.5 gguf"}


def test_the_files_of_whole_peer_budgets_are_read(plan_eval):
    """Files written before ``peers_done`` counted whole budgets (``peer_budgets_done``)."""
    saved = _saved(labels={"gguf/Q2_K": [{"method": "gguf"}, [2.0]], "plan@2": [{"method": "plan"}, [2.0]]},
                   families=["gguf", "nf4"], peer_budgets_done=[2.0], budgets=[2.0])
    del saved["peers_done"]
    labels, done = plan_eval.resumed(saved, plan_key=PLAN_KEY, budgets=[2.0], families=["nf4", "gguf", "hqq:g64"])
    assert done == {"2 gguf", "2 nf4"}
    assert labels == {"gguf/Q2_K": [{"method": "gguf"}, [2.0]], "plan@2": [{"method": "plan"}, [2.0]]}


def test_nothing_saved_resumes_nothing(plan_eval):
    assert plan_eval.resumed({}, plan_key=PLAN_KEY, budgets=[3.0], families=["gguf"]) == ({}, set())


def test_the_docstring_example(plan_eval):
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(plan_eval.resumed, "resumed", globs={"resumed": plan_eval.resumed}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


def test_profiled_returns_the_result_and_prints_the_profile_only_when_asked(plan_eval, monkeypatch, capsys):
    monkeypatch.delenv("FMQ_PROFILE_PLAN", raising=False)
    assert plan_eval._profiled(lambda: sum(range(1000))) == 499500
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("FMQ_PROFILE_PLAN", "1")
    assert plan_eval._profiled(lambda: sorted(range(1000), key=lambda i: -i))[0] == 999
    out = capsys.readouterr().out
    assert "Ordered by: internal time" in out and "function calls" in out
    assert "was called by..." in out and "<lambda>" in out  # the callers of the costliest functions


class _FakeMeasure:
    """What :func:`evaluate_cell` reads of a measurement: a one-weight model whose 'samples' are its weight."""

    def __init__(self, work: Path, *, n_boot: int = 3):
        import torch
        from types import SimpleNamespace

        self.work, self.calls, self.inception = work, 0, None
        self.setup = SimpleNamespace(pairs=2, n_boot=n_boot, n_boot_inception=4)
        self.ctx = SimpleNamespace(model=torch.nn.Linear(1, 1, bias=False), noise=torch.zeros(2, 1), labels=None)
        self.pair_noise, self.pair_labels = torch.zeros(2, 1), None

    def base_row(self) -> dict:
        return {"model": "fake", "samples": 2, "device": "cpu"}

    def generate(self, model, noise, labels):
        self.calls += 1
        return noise + model.weight.detach().sum(), 1

    def classifier_metrics(self, u8, x, pairs_u8) -> dict:
        return {"fid": float(x.mean())}


def test_kept_cells_are_reused_only_for_the_same_weights_and_settings(plan_eval, tmp_path):
    """On 2026-12-05 a CPU run reused, under the same labels, the metrics a 64-sample dry run had kept for
    other weights: a kept cell now counts only under its weights' SHA-256 and the evaluation's settings."""
    import torch
    from safetensors.torch import save_file

    (tmp_path / "weights").mkdir()
    weights = tmp_path / "weights" / f"{plan_eval._safe('variant_optimal_f1_any@3.6206')}.safetensors"

    def evaluate(measure):
        return plan_eval.evaluate_cell(measure, label="variant_optimal_f1_any@3.6206", budget=3.6206, fields={})

    measure = _FakeMeasure(tmp_path)
    save_file({"weight": torch.full((1, 1), 0.25)}, str(weights))
    first = evaluate(measure)
    assert measure.calls == 2 and first["fid"] == 0.25
    assert evaluate(measure) == first and measure.calls == 2  # the same weights and settings: kept
    save_file({"weight": torch.full((1, 1), 0.5)}, str(weights))
    assert evaluate(measure)["fid"] == 0.5 and measure.calls == 4  # other weights: measured again
    other = _FakeMeasure(tmp_path, n_boot=5)
    assert evaluate(other)["fid"] == 0.5 and other.calls == 2  # other settings: measured again


def test_a_peer_whose_cell_is_done_is_not_quantized(plan_eval, tmp_path, monkeypatch):
    """Rows kept from an earlier lease (KEEP_ROWS) are not made again: of two families at two budgets,
    only the one cell not done is quantized."""
    quantized = []
    monkeypatch.setattr(plan_eval, "peer_at_budget",
                        lambda sd, *, family, budget, cache: quantized.append((budget, family)))
    measure = types.SimpleNamespace(work=tmp_path, ctx=types.SimpleNamespace(model=torch.nn.Linear(3, 2)),
                                    setup=types.SimpleNamespace(name="m"))
    plan_eval.prepare(measure, budgets=[2.0, 4.0], families=["nf4", "gguf"], with_plan=False, plan_samples=8,
                      plan_replicates=2, plan_bit_floors=(1,), plan_families=("optimal",), out_dir=tmp_path,
                      done=lambda budget, method: (budget, method) != (4.0, "gguf"))
    assert quantized == [(4.0, "gguf")]


def test_the_full_precision_samples_are_kept_and_read_again_for_the_same_sampler(plan_eval, tmp_path, monkeypatch):
    """A second measurement of the same model, noise and sampler reads the full-precision samples
    the first kept (bit for bit) instead of sampling them; another batch size samples again."""
    calls = []
    generate = plan_eval.Measure.generate

    def counted(self, model, noise, labels):
        calls.append(noise.shape[0])
        return generate(self, model, noise, labels)

    monkeypatch.setattr(plan_eval.Measure, "generate", counted)

    def measure(batch_size=8):
        setup = plan_eval.Setup(name="mnist", checkpoint=str(ROOT / plan_eval.MODELS["mnist"][1]), samples=8, pairs=4,
                                batch_size=batch_size, n_boot=4, n_boot_inception=4, inception=None, device="cpu",
                                work=str(tmp_path), real_images=64)
        return plan_eval.Measure(setup)

    first = measure()
    assert calls == [8, 4] and len(list((tmp_path / "mnist").glob("fp*_samples_*.pt"))) == 2
    again = measure()
    assert calls == [8, 4] and again.nfe == first.nfe
    torch.testing.assert_close(again.fp_x, first.fp_x, rtol=0, atol=0)
    torch.testing.assert_close(again.f_fp_pairs, first.f_fp_pairs, rtol=0, atol=0)
    measure(batch_size=4)
    assert calls == [8, 4, 8, 4]
