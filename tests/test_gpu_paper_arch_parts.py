"""``scripts/gpu_paper_arch.py``'s rows sampled in parts, run on the CPU.

On an H100 the paper network's 50,000-sample FIDs and the NFE check's 200-NFE arm each take
longer than one 10-minute command, so they are sampled in parts, each kept as it is done, and a
later command of the lease goes on from the first missing part.  The tests hold what that must
not change: the samples equal those of one call on all the noise (the parts are whole batches
of it), a command stopped mid-row keeps its finished parts and loses only the part in flight,
and a half-written file never counts as a part.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _scripts import load_script

from fmq_theory.flow.solvers import make_noise, sample
from fmq_theory.harness.models.paper_unet import PaperUNet, PaperUNetConfig, paper_adapter
from fmq_theory.harness.train import to_uint8
from fmq_theory.results.schema import PAPER_ARCH

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_paper_arch.py"


@pytest.fixture(scope="module")
def script():
    return load_script("gpu_paper_arch")


@pytest.fixture(scope="module")
def generate():
    """``generate(noise, steps)`` of a width-8 copy of the paper's network, batches of 4 draws."""
    torch.manual_seed(0)
    cfg = PaperUNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, groups=4, dropout=0.0)
    model = PaperUNet(cfg).eval()

    def run(noise, steps):
        res = sample(model, noise, adapter=paper_adapter(), solver="midpoint", steps=steps, clip=(-1.0, 1.0),
                     batch_size=4)
        return res.x, res.nfe
    return run


@pytest.mark.parametrize(("samples", "steps", "part_evals", "batch", "want"), [
    (50_000, 10, 250_000, 1000, 12_000),  # the 50k FIDs: 5 parts
    (5_000, 100, 250_000, 1000, 1_000),  # the 200-NFE arm: 5 parts
    (5_000, 10, 250_000, 1000, 5_000),  # a row of one part
    (5_000, 100, 10, 1000, 1_000),  # at least one batch a part
])
def test_part_samples(script, samples, steps, part_evals, batch, want):
    got = script.part_samples(samples=samples, steps=steps, part_evals=part_evals, batch_size=batch)
    assert got == want and (got % batch == 0 or got == samples)


def test_parts_equal_one_call_on_all_the_noise(script, generate, tmp_path):
    noise = make_noise(12, (1, 28, 28), seed=0)
    x, nfe = generate(noise, 2)
    u8, got_nfe, seconds = script.sample_in_parts(generate, noise, 2, stem=tmp_path / "row", part=8)
    assert got_nfe == nfe == 4 and seconds >= 0
    np.testing.assert_array_equal(u8["ours"], to_uint8(x).numpy())
    np.testing.assert_array_equal(u8["paper"], script.paper_uint8(x).numpy())
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        f"row.part{k:03d}.{s}" for k in range(2) for s in ("json", "ours.npy", "paper.npy")]
    script.remove_parts(tmp_path / "row")
    assert list(tmp_path.iterdir()) == []


def test_a_stopped_row_goes_on_from_its_first_missing_part(script, generate, tmp_path):
    noise = make_noise(12, (1, 28, 28), seed=1)
    whole, _ = generate(noise, 2)
    calls = []

    def stopped_after_one(z, steps):
        if calls:
            raise KeyboardInterrupt  # the command's time is up mid-row
        calls.append(z.shape[0])
        return generate(z, steps)

    with pytest.raises(KeyboardInterrupt):
        script.sample_in_parts(stopped_after_one, noise, 2, stem=tmp_path / "row", part=4)
    assert calls == [4] and (tmp_path / "row.part000.json").is_file()
    # a part whose write was cut short is not a part: no record, and a temporary file left by a kill is ignored
    (tmp_path / ".row.part001.ours.npy.999.x.tmp").write_bytes(b"\x93NUMPY cut short")

    later = []

    def counted(z, steps):
        later.append(z.shape[0])
        return generate(z, steps)

    u8, _, _ = script.sample_in_parts(counted, noise, 2, stem=tmp_path / "row", part=4)
    assert later == [4, 4]  # parts 1 and 2 only
    np.testing.assert_array_equal(u8["ours"], to_uint8(whole).numpy())


_COMMON = ["--device", "cpu", "--width", "8", "--res-blocks", "1", "--batch-size", "4"]


def _evaluate(run: Path, *kinds: str, check: bool = True) -> subprocess.CompletedProcess:
    """``gpu_paper_arch.py evaluate`` on ``run``'s width-8 network: 8 draws a row (24 for the large FIDs), 2 steps."""
    return subprocess.run([sys.executable, str(SCRIPT), "evaluate", *_COMMON, "--run", str(run), "--kinds", *kinds,
                           "--samples", "8", "--fid-samples", "24", "--nfe-samples", "8", "--steps", "2",
                           "--part-evals", "32", "--latent-images", "32", "--n-boot", "4",
                           "--inception", str(run / "none.pt")],
                          cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, check=check, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder holding a width-8 copy of the paper's network trained for two steps (nothing evaluated)."""
    run = tmp_path_factory.mktemp("paper_arch") / "run"
    subprocess.run([sys.executable, str(SCRIPT), "train", *_COMMON, "--run", str(run), "--epochs", repr(2 / 15_000),
                    "--minutes", "2"], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, check=True,
                   capture_output=True)
    return run


def _rows(run: Path) -> dict:
    return {(r["protocol"], r["samples"], r["steps"]): r for r in PAPER_ARCH.read(run / "paper_arch_mnist.csv")}


@pytest.mark.slow
def test_evaluate_samples_its_large_rows_in_parts_end_to_end(trained, tmp_path):
    """``evaluate`` on a width-8 network trained for two steps: the 24-draw full-precision rows and
    the NFE check's 200-NFE arm go through the parts (3 and 2 of them: at least a batch a part),
    and only the whole is kept; the 200-NFE arm, of the same noise as the reference, carries its
    paired change of FID with its interval."""
    run = shutil.copytree(trained, tmp_path / "run")
    out = _evaluate(run, "fp", "nfe")
    rows = _rows(run)
    assert set(rows) == {("ours", 8, 2), ("ours", 24, 2), ("paper", 24, 2), ("paper", 8, 2), ("paper", 8, 100)}
    assert all(r["fid"] is not None and np.isfinite(r["fid"]) for r in rows.values())
    assert rows["ours", 24, 2]["fid"] == rows["paper", 24, 2]["fid"]  # one sample set, kept once
    arm = rows["paper", 8, 100]
    assert arm["dfid"] is not None and np.isfinite([arm["dfid"], arm["dfid_low"], arm["dfid_high"]]).all()
    assert arm["dfid_low"] <= arm["dfid_high"]
    assert all(r["dfid"] is None for k, r in rows.items() if k != ("paper", 8, 100))  # the others are not paired
    assert out.stdout.count("fp_none_b32_n24_s2: part") == 3 and out.stdout.count("nfe_none_b32_n8_s100: part") == 2
    extra = json.loads((run / "kept" / "fp_none_b32_n24_s2.extra.json").read_text())
    assert (extra["parts"], extra["nfe"]) == (3, 4)
    assert not list((run / "kept").glob("*.part*"))
    assert np.load(run / "kept" / "fp_none_b32_n24_s2.ours.npy").shape == (24, 1, 28, 28)


@pytest.mark.slow
def test_a_carried_200_nfe_row_without_its_paired_change_is_measured_again_beside_its_reference(trained, tmp_path):
    """A lease's rows carried into a later one (results/pending/) come without their samples. The
    200-NFE arm measured there without the reference samples has no paired change: it is not done,
    ``--kinds nfe`` alone refuses to measure it (the reference is missing), and ``--kinds fp nfe``
    samples the reference again and gives the arm its paired change."""
    run = shutil.copytree(trained, tmp_path / "run")
    _evaluate(run, "fp", "nfe")
    measured = _rows(run)[("paper", 8, 100)]
    rows = PAPER_ARCH.read(run / "paper_arch_mnist.csv")  # the rows as a later lease holds them
    for r in rows:
        r.update({k: None for k in ("dfid", "dfid_low", "dfid_high", "dfid_inception", "dfid_inception_low",
                                     "dfid_inception_high")})
    shutil.rmtree(run / "kept")
    (run / "fp_samples.pt").unlink()
    PAPER_ARCH.write(run / "paper_arch_mnist.csv", rows)
    refused = _evaluate(run, "nfe", check=False)
    assert refused.returncode != 0 and "add fp" in refused.stderr
    out = _evaluate(run, "fp", "nfe")
    again = _rows(run)[("paper", 8, 100)]
    assert again["dfid"] is not None and again["dfid_low"] <= again["dfid_high"]
    # on the CPU sampling repeats bit for bit: the same samples, so the same change and interval
    assert (again["fid"], again["dfid"], again["dfid_low"], again["dfid_high"]) == (
        measured["fid"], measured["dfid"], measured["dfid_low"], measured["dfid_high"])
    assert "nfe_none_b32_n8_s100: part" in out.stdout  # sampled again: its samples were not carried


@pytest.mark.slow
def test_a_carried_reference_stands_when_only_unpaired_rows_are_asked_for(trained, tmp_path):
    """Rows carried into a later lease without their samples: ``--kinds fp`` with the reference's row
    among them measures the large full-precision FIDs only (no row is paired with the reference, so it
    is not sampled again), and the carried reference row is kept as it was."""
    run = shutil.copytree(trained, tmp_path / "run")
    _evaluate(run, "fp", "nfe")
    rows = PAPER_ARCH.read(run / "paper_arch_mnist.csv")
    carried = [r for r in rows if r["samples"] == 8 and r["steps"] == 2]  # the reference and the 20-NFE arm
    shutil.rmtree(run / "kept")
    (run / "fp_samples.pt").unlink()
    PAPER_ARCH.write(run / "paper_arch_mnist.csv", carried)
    out = _evaluate(run, "fp")
    after = _rows(run)
    assert set(after) == {("ours", 8, 2), ("paper", 8, 2), ("ours", 24, 2), ("paper", 24, 2)}
    assert [after[r["protocol"], 8, 2] for r in carried] == carried  # as carried, not measured again
    assert "fp_none_b32_n24_s2: part" in out.stdout and "fp_none_b32_n8_s2" not in out.stdout
    assert not (run / "fp_samples.pt").is_file()
