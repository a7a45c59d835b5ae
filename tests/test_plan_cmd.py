"""``fmq plan`` end to end on a tiny UNet (seconds)."""

import argparse
import json
from dataclasses import asdict

import jsonschema
import numpy as np
import pytest
import torch
from _tiny_unet import save_tiny_unet
from safetensors.torch import load_file, save_file

from fmq_theory._util import available_memory_bytes, file_sha256
from fmq_theory.cli import build_parser, main
from fmq_theory.cli._output import SCHEMA
from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.models.paper_unet import EMA, PaperUNet, PaperUNetConfig
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.plan_sweep import load_plan_model
from fmq_theory.io.quantized_file import inspect_quantized
from fmq_theory.cli.plan_cmd import _pass_bytes, _plan_memory_bytes, _plan_noise
from fmq_theory.plan import (fit_candidates, fit_memory_bytes, load_plan, load_quantized_model, pass_memory,
                             sensitivity_memory, weight_sensitivity)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return folder, save_tiny_unet(folder)


def plan_tiny(folder, out, *extra) -> int:
    """``fmq plan`` on the tiny UNet at 3.0 bits/weight, with a few samples and replicates (seconds)."""
    return main(["plan", str(folder / "model.safetensors"), "--model-config", str(folder / "config.json"),
                 "--budget", "3.0", "-o", str(out), "--samples", "4", "--steps", "2", "--replicates", "4", *extra])


def test_plan_end_to_end(tiny, capsys):
    folder, model = tiny
    out = folder / "plan.safetensors"
    code = plan_tiny(folder, out)
    assert code == 0
    text = capsys.readouterr().out
    plan = load_plan(out)
    info = inspect_quantized(out)
    assert text.startswith("fmq_theory ") and "budget=3.0" in text
    assert "no training or test images were used" in text
    assert plan.bits_per_weight <= 3.0 and info.data_bytes == plan.total_bytes
    assert f"honest bits/weight {plan.bits_per_weight:.4f}" in text
    assert f"{info.file_bytes} bytes" in text
    for c in plan.choices:
        line = next(x for x in text.splitlines() if x.startswith(c.name + " "))
        assert f"{c.bits_per_weight:7.3f}" in line and f"{c.mse:10.3e}" in line and f"{c.predicted:10.3e}" in line
    assert {c.name for c in plan.choices} == set(model.state_dict())
    # the default bit floors 1,2,3 and both families: every feasible variant printed, the chosen one marked
    assert plan.settings["bit_floors"] == [1, 2, 3] and plan.settings["families"] == ["optimal", "minmax", "half_quadratic"]
    assert plan.variants
    for v in plan.variants:
        line = next(x for x in text.splitlines()
                    if x.strip().startswith(f"floor {v.floor:>2} bits {v.family:<14} {v.grouping:<6}:"))
        assert f"shift {v.sampled_shift:.4e}" in line and f"sampled {v.sampled_msd:.4e}" in line and line.endswith("<- chosen") == (
            (v.family, v.floor, v.grouping) == (plan.settings["family"], plan.settings["bit_floor"], plan.settings["grouping"]))


def test_one_bit_floor_samples_nothing(tiny, capsys):
    folder, _ = tiny
    out = folder / "plan_floor.safetensors"
    code = plan_tiny(folder, out, "--bit-floors", "2", "--families", "optimal", "--groupings", "any")
    assert code == 0
    text = capsys.readouterr().out
    plan = load_plan(out)
    assert "bit_floors=(2,)" in text and "variants by code family and bit floor" not in text and plan.variants == ()
    assert all(c.bits >= 2 for c in plan.choices)


def test_plan_json_has_the_one_schema(tiny, capsys):
    folder, _ = tiny
    out = folder / "plan_json.safetensors"
    code = plan_tiny(folder, out, "--format", "json")
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    plan = load_plan(out)
    assert doc["result"]["data_free"] is True and doc["result"]["bits_per_weight"] == plan.bits_per_weight
    assert doc["interval_level"] == plan.predicted_delta.level and len(doc["result"]["choices"]) == len(plan.choices)
    assert doc["result"]["variants"] == [asdict(v) for v in plan.variants]
    assert doc["result"]["bit_floor"] == plan.settings["bit_floor"]

@pytest.mark.parametrize("argv,match", [
    (["--budget", "-1"], "--budget"),
    (["--budget", "3", "--samples", "0"], "positive integer"),
    (["--budget", "3", "--bit-floors", "0,2"], "--bit-floors"),
    (["--budget", "3", "--bit-floors", "1,x"], "--bit-floors"),
])
def test_bad_arguments_exit_2(tiny, argv, match, capsys):
    folder, _ = tiny
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(folder / "model.safetensors"), "-o", str(folder / "x.safetensors"), *argv])
    assert exc.value.code == 2 and match in capsys.readouterr().err
    assert not (folder / "x.safetensors").exists()


def test_missing_model_config_is_named(tiny, capsys):
    folder, _ = tiny
    assert main(["plan", str(folder / "model.safetensors"), "--budget", "3", "-o", str(folder / "y.safetensors")]) == 2
    assert "--model-config" in capsys.readouterr().err
    assert not (folder / "y.safetensors").exists()


def test_families_at_the_command_line(tiny, capsys):
    """``--families``: the families' variants printed and saved (``optimal`` alone: no min-max); bad names refused."""
    folder, _ = tiny
    out = folder / "plan_families.safetensors"
    assert plan_tiny(folder, out, "--families", "optimal,minmax", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    plan = load_plan(out)
    assert plan.settings["families"] == ["optimal", "minmax"]
    assert {v["family"] for v in doc["result"]["variants"]} <= {"optimal", "minmax"}
    assert doc["result"]["family"] == plan.settings["family"]
    assert plan_tiny(folder, folder / "optimal.safetensors", "--families", "optimal") == 0
    capsys.readouterr()
    assert all(c.method not in ("uniform_minmax", "half_quadratic")
               for c in load_plan(folder / "optimal.safetensors").choices)
    with pytest.raises(SystemExit) as exc:
        plan_tiny(folder, folder / "bad.safetensors", "--families", "nope")
    assert exc.value.code == 2 and "--families" in capsys.readouterr().err


def test_groupings_at_the_command_line(tiny, capsys):
    """``--groupings any,groups,flat``: every grouping's variants printed and saved (the default: every
    granularity only); bad names refused."""
    folder, _ = tiny
    out = folder / "plan_groups.safetensors"
    assert plan_tiny(folder, out, "--groupings", "any,groups,flat", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    plan = load_plan(out)
    assert plan.settings["groupings"] == ["any", "groups", "flat"]
    assert doc["result"]["grouping"] == plan.settings["grouping"]
    assert {v["grouping"] for v in doc["result"]["variants"]} == {"any", "groups", "flat"}
    for bad in ("nope", "any,any", ""):
        with pytest.raises(SystemExit) as exc:
            plan_tiny(folder, folder / "bad.safetensors", "--groupings", bad)
        assert exc.value.code == 2 and "--groupings" in capsys.readouterr().err


def _paper_network_files(folder):
    """A width-reduced copy of the paper's network in its EMA wrapper (averages unlike the live weights),
    saved both ways a user may hold it: flow_matching's checkpoint file and a run folder of
    ``scripts/gpu_paper_arch.py train`` (model.safetensors + train.json)."""
    torch.manual_seed(0)
    cfg = PaperUNetConfig(model_channels=16, channel_mult=(2, 2), num_res_blocks=1)  # 32 groups, as the example
    ema = EMA(PaperUNet(cfg), decay=0.5)
    with torch.no_grad():
        for p in ema.model.parameters():
            p.normal_(std=0.05)
    ema.update_ema()
    pth = folder / "checkpoint-0.pth"
    torch.save({"model": ema.state_dict(), "epoch": 0, "args": argparse.Namespace(dataset="mnist")}, pth)
    run = folder / "run"
    run.mkdir()
    save_file(ema.averaged_state_dict(), str(run / "model.safetensors"))
    (run / "train.json").write_text(json.dumps({"config": cfg.to_dict(), "checkpoint_sha256": file_sha256(pth),
                                                "model_sha256": file_sha256(run / "model.safetensors")}))
    return ema, pth, run


def test_plan_of_the_papers_network_from_a_flow_matching_checkpoint_and_a_run_folder(tmp_path, capsys):
    """``fmq plan`` takes the paper's network as a user holds it: the example's ``.pth`` (EMA wrapper) and
    a run folder plan the EMA averages alike (the same plan, code for code), and the plan's file runs
    packed with the same samples as its dequantized weights."""
    ema, pth, run = _paper_network_files(tmp_path)
    argv = ["--budget", "3.0", "--samples", "4", "--steps", "2", "--replicates", "4", "--bit-floors", "2",
            "--families", "optimal", "--groupings", "any"]
    assert main(["plan", str(pth), "-o", str(tmp_path / "from_pth.safetensors"), *argv]) == 0
    assert main(["plan", str(run), "-o", str(tmp_path / "from_run.safetensors"), *argv]) == 0
    assert "no training or test images were used" in capsys.readouterr().out
    a, b = load_plan(tmp_path / "from_pth.safetensors"), load_plan(tmp_path / "from_run.safetensors")
    assert a.choices == b.choices and a.bits_per_weight == b.bits_per_weight <= 3.0
    assert {c.name for c in a.choices} == set(ema.averaged_state_dict())
    for name, t in a.state_dict().items():
        torch.testing.assert_close(t, b.state_dict()[name], rtol=0, atol=0)
    model = load_plan_model(str(run))
    dequantized = load_plan_model(str(run))
    dequantized.load_state_dict(a.state_dict(), strict=True)
    packed = load_quantized_model(load_plan_model(str(pth)), a)
    noise = make_noise(2, (1, 28, 28), seed=3)
    with torch.no_grad():
        x_packed = sample(packed, noise, adapter=unet_adapter(packed), solver="midpoint", steps=2).x
        x_deq = sample(dequantized, noise, adapter=unet_adapter(dequantized), solver="midpoint", steps=2).x
        x_fp = sample(model, noise, adapter=unet_adapter(model), solver="midpoint", steps=2).x
    assert torch.equal(x_packed, x_deq) and not torch.equal(x_packed, x_fp)


def test_a_file_that_is_no_flow_matching_checkpoint_names_model_config(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"")
    save_file({"layer.weight": torch.zeros(2, 2)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match="--model-config.*not a flow_matching"):
        load_plan_model(str(tmp_path / "w.safetensors"))


def test_fit_memory_bytes_bounds_what_the_fit_keeps(tiny):
    """The lower bound is the fit's own codes and kept copies (within the few codes of padded groups and the
    options dropped for a non-finite error), and below everything the fit keeps of its options."""
    _, model = tiny
    noise = make_noise(4, (model.config.in_channels, 8, 8), seed=0)
    sens = weight_sensitivity(model, noise, adapter=unet_adapter(model, torch.tensor([0, 1, 2, 0])), steps=2,
                              replicates=4, batch_size=1)
    fitted = fit_candidates(model, sensitivity=sens, progress=False)

    def arrays(f):
        if torch.is_tensor(f.stored):
            return [f.stored.numpy()], [f.stored.numpy()]
        q = f.stored
        return [q.codes], [q.codes, np.asarray(q.levels), *map(np.asarray, q.stored.values())]

    codes = sum(a.nbytes for fits in fitted.fitted for f in fits for a in arrays(f)[0])
    everything = sum(a.nbytes for fits in fitted.fitted for f in fits for a in arrays(f)[1])
    bound = fit_memory_bytes(model)
    assert 0.95 * bound <= codes <= 1.05 * bound and bound < everything


def test_a_fit_larger_than_the_memory_is_refused_before_any_work(tiny, monkeypatch, capsys):
    """On a machine with too little memory ``fmq plan`` names CHECKPOINT at once and writes nothing,
    rather than being killed for memory part of the way (as the paper's network was on 23 GB)."""
    folder, _ = tiny
    monkeypatch.setattr("fmq_theory.cli.plan_cmd.available_memory_bytes", lambda: 1024)
    for budget in ("3", "2,3"):
        out = folder / f"small_{budget.replace(',', '_')}.safetensors"
        assert main(["plan", str(folder / "model.safetensors"), "--model-config", str(folder / "config.json"),
                     "--budget", budget, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert "argument CHECKPOINT" in err and "GiB available" in err and "fit_memory_bytes" in err
        assert "sensitivity_memory" in err
        assert not out.exists() and not out.with_suffix(".csv").exists()


def test_low_memory_writes_the_same_plan_and_is_offered_when_only_it_fits(tiny, monkeypatch, capsys):
    """``--low-memory`` keeps the options' prices only: the file holds the same tensors, bit for bit; with
    less memory than the codes need but enough for one tensor's options, the refusal names the flag."""
    folder, _ = tiny
    model = load_plan_model(str(folder / "model.safetensors"), str(folder / "config.json"))
    full, lean = folder / "full.safetensors", folder / "lean.safetensors"
    assert plan_tiny(folder, full) == 0 and plan_tiny(folder, lean, "--low-memory") == 0
    a, b = load_file(str(full)), load_file(str(lean))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    monkeypatch.setattr("fmq_theory.cli.plan_cmd._pass_bytes", lambda *args, **kwargs: 0)  # the codes' question alone
    need = _plan_memory_bytes(model, replicates=4, keep_codes=False)
    assert need < _plan_memory_bytes(model, replicates=4, keep_codes=True)
    monkeypatch.setattr("fmq_theory.cli.plan_cmd.available_memory_bytes", lambda: need)
    out = folder / "refused.safetensors"
    assert plan_tiny(folder, out) == 2
    assert "give --low-memory" in capsys.readouterr().err and not out.exists()
    assert plan_tiny(folder, out, "--low-memory") == 0
    assert main(["plan", str(folder / "model.safetensors"), "--model-config", str(folder / "config.json"),
                 "--budget", "2,3", "-o", str(folder / "sweep.safetensors"), "--low-memory"]) == 2
    assert "argument --low-memory" in capsys.readouterr().err


def test_the_refusal_counts_the_sensitivity_estimate(tiny, monkeypatch, capsys):
    """Memory for the fit's codes alone is not enough: the estimate of ``--replicates`` replicates
    (8 + 4 R bytes a parameter) is held beside them, so the plan is refused, naming both."""
    folder, _ = tiny
    model = load_plan_model(str(folder / "model.safetensors"), str(folder / "config.json"))
    sens = sensitivity_memory(model, replicates=4)
    assert _plan_memory_bytes(model, replicates=4, keep_codes=True) == max(
        sens.sums, sens.estimate + fit_memory_bytes(model))
    monkeypatch.setattr("fmq_theory.cli.plan_cmd.available_memory_bytes", lambda: fit_memory_bytes(model))
    out = folder / "refused_for_the_estimate.safetensors"
    assert plan_tiny(folder, out) == 2
    err = capsys.readouterr().err
    assert "sensitivity_memory" in err and "4 replicates" in err and not out.exists()


def test_a_sensitivity_pass_too_large_is_refused_naming_the_batch_size(tiny, monkeypatch, capsys):
    """The pass holds its activations beside the sums (:func:`fmq_theory.plan.pass_memory`): with memory
    for the pass at batch 1 but not at 16, ``fmq plan`` names ``--batch-size`` before any work, and the
    activations it counts are those pass_memory measures for the plan's own noise."""
    folder, _ = tiny
    model = load_plan_model(str(folder / "model.safetensors"), str(folder / "config.json"))
    argv = ["plan", str(folder / "model.safetensors"), "--model-config", str(folder / "config.json"), "--budget", "3",
            "-o", str(folder / "too_large.safetensors"), "--samples", "64", "--steps", "2", "--replicates", "4"]
    args = build_parser().parse_args(argv)
    noise = make_noise(64, (1, model.config.image_size, model.config.image_size), seed=args.seed)
    labels = balanced_labels(64, model.config.num_classes)
    m = pass_memory(model, noise, adapter=unet_adapter(model, labels), solver=args.solver, steps=2, replicates=4,
                    batch_size=16)
    plan_noise, adapter = _plan_noise(model, args)  # the plan's own, made by the command

    def at_batch(b):
        return _pass_bytes(model, args, noise=plan_noise, adapter=adapter, batch_size=b)

    assert at_batch(16) == m.activations + m.gradients > at_batch(1)
    at = {b: _plan_memory_bytes(model, replicates=4, keep_codes=True, pass_bytes=at_batch(b)) for b in (1, 16)}
    assert at[1] < at[16]
    monkeypatch.setattr("fmq_theory.cli.plan_cmd.available_memory_bytes", lambda: at[16] - 1)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "argument --batch-size" in err and "pass_memory" in err and not (folder / "too_large.safetensors").exists()
    monkeypatch.setattr("fmq_theory.cli.plan_cmd.available_memory_bytes", lambda: at[16])
    assert main(argv) == 0


def test_available_memory_is_read_from_meminfo(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n")
    assert available_memory_bytes(str(tmp_path / "meminfo")) == 1024000
    (tmp_path / "other").write_text("MemTotal:       24000000 kB\n")
    assert available_memory_bytes(str(tmp_path / "other")) is None
    assert available_memory_bytes(str(tmp_path / "absent")) is None


def test_roundings_at_the_command_line(tiny, capsys):
    """``--roundings compensated``: the same choices at the same bytes as ``nearest`` (one floor and family),
    the codes of the linear and convolution weights rounded against their inputs; the report says so."""
    folder, _ = tiny
    plain, comp = folder / "plain.safetensors", folder / "comp.safetensors"
    one = ("--bit-floors", "2", "--families", "minmax")
    assert plan_tiny(folder, plain, *one) == 0
    capsys.readouterr()
    assert plan_tiny(folder, comp, *one, "--roundings", "compensated") == 0
    assert "codes: error-compensating rounding" in capsys.readouterr().out
    a, b = load_plan(plain), load_plan(comp)
    assert (a.settings["rounding"], b.settings["rounding"]) == ("nearest", "compensated")
    assert a.total_bytes == b.total_bytes
    assert [(c.name, c.method, c.bits, c.granularity, c.nbytes) for c in a.choices] == [
        (c.name, c.method, c.bits, c.granularity, c.nbytes) for c in b.choices]
    differ = [n for n, qt in b.quantized.quantized.items() if not np.array_equal(qt.codes, a.quantized.quantized[n].codes)]
    assert differ and all(n.endswith(".weight") for n in differ)
    assert main(["plan", str(folder / "model.safetensors"), "--model-config", str(folder / "config.json"),
                 "--budget", "2,3", "-o", str(folder / "sweep.safetensors"), "--roundings", "nearest,compensated"]) == 2
    assert "argument --roundings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plan_tiny(folder, comp, "--roundings", "nearest,nearest")
    assert "--roundings" in capsys.readouterr().err
