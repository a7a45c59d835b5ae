"""End to end on the CPU: train a tiny model on real MNIST, quantize, sample, measure, resume."""

import math

import numpy as np
import pytest
import torch

from fmq_theory.flow.solvers import sample
from fmq_theory.harness.checkpoints import save_checkpoint
from fmq_theory.harness.context import load_context
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.models.unet import UNetConfig
from fmq_theory.harness.sweep import SweepConfig, run_sweep
from fmq_theory.harness.train import TrainConfig, to_uint8, train
from fmq_theory.results.plots import plot_all
from fmq_theory.results.schema import SWEEP
from fmq_theory.results.slopes import fit_slope, noise_floor


@pytest.mark.slow
def test_train_quantize_sample_measure_resume(tmp_path):
    ucfg = UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                      attention_resolutions=(14,), groups=4, dropout=0.0)
    tcfg = TrainConfig(dataset="mnist", steps=30, batch_size=16, limit_train=512, warmup=5,
                       lr=2e-3, amp=False)
    result = train(ucfg, tcfg, progress=False)
    assert result.steps == 30 and np.isfinite(result.losses).all()
    # the flow-matching loss starts near E|x1 - x0|^2 (about 1 + E x1^2 > 1.5) and must drop
    assert result.losses[-10:].mean() < result.losses[:3].mean()
    ck = tmp_path / "ck"
    save_checkpoint(ck, result.ema_model, result.card(train_config=tcfg,
                                                      device="cpu"))
    cfg = SweepConfig(dataset="mnist", checkpoint=str(ck), methods=("equal_mass",),
                      bits=(2, 8), samples=24, steps=2, batch_size=24, latent_images=24,
                      inversion_images=8, inception_cells="none:32", real_images=500)
    out = tmp_path / "mnist.csv"
    assert len(run_sweep(cfg, out=out, progress=False, grid_dir=tmp_path / "g").written) == 3
    rows = SWEEP.read(out)
    fp = rows[0]
    assert fp["method"] == "none" and fp["bits"] == 32 and math.isinf(float(fp["psnr"]))
    for r in rows:
        assert r["samples"] == 24 and r["nfe"] == 4 and r["fid_real_test_samples"] == 500 and r["feature_net"].startswith("classifier")
        assert float(r["fid"]) > 0 and r["checkpoint_sha256"] == rows[0]["checkpoint_sha256"]
    q = {(r["method"], int(r["bits"])): r for r in rows[1:]}
    # same noise: 8-bit samples are much closer to full precision than 2-bit ones
    assert float(q["equal_mass", 8]["psnr"]) > float(q["equal_mass", 2]["psnr"])
    assert float(q["equal_mass", 8]["weight_mse"]) < float(q["equal_mass", 2]["weight_mse"])
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == [
        "mnist_equal_mass_2.npy", "mnist_equal_mass_8.npy", "mnist_none_32.npy"]
    # resumable: nothing is recomputed; a lost row is recomputed alone
    assert run_sweep(cfg, out=out, progress=False).written == ()
    SWEEP.write(out, rows[:-1])
    assert len(run_sweep(cfg, out=out, progress=False).written) == 1
    assert len(SWEEP.read(out)) == 3
    figures = plot_all(results_dir=tmp_path, out_dir=tmp_path / "fig")
    assert [p.name for p in figures] == ["degradation_mnist.png", "w2_vs_fid_mnist.png"]
    assert all(p.stat().st_size > 0 for p in figures)


def test_slope_fit_recovers_a_power_law():
    rows = [{"method": "none", "bits": "32", "fid": "2.0"}]
    rows += [{"method": "m", "bits": str(b), "fid": str(2.0 + 1000 * 4.0 ** -b)} for b in range(2, 8)]
    rows += [{"method": "m", "bits": "8", "fid": "2.001"}, {"method": "n", "bits": "8", "fid": "2.003"},
             {"method": "o", "bits": "8", "fid": "9.0"}]
    assert noise_floor(rows) == pytest.approx(2 * 0.003)  # twice the median of |dFID| at 8 bits
    fit = fit_slope(rows, method="m")
    # exact 2^(-2b) data above the floor: OLS slope -2 to rounding, interval collapses on it
    assert fit.slope == pytest.approx(-2.0, abs=1e-9)
    assert fit.ci_low == pytest.approx(-2.0, abs=1e-6) and fit.ci_high == pytest.approx(-2.0, abs=1e-6)
    assert list(fit.bits) == [2, 3, 4, 5, 6, 7]


def test_context_sample_features_are_the_classifiers_of_the_uint8_samples():
    ctx = load_context(dataset="mnist", samples=6, seed=0, device="cpu", real_images=40)
    f = ctx.sample_features(ctx.model, steps=2, batch_size=4)
    x = sample(ctx.model, ctx.noise, adapter=unet_adapter(ctx.model, ctx.labels, 0.0), solver="midpoint", steps=2,
               clip=(-1.0, 1.0), batch_size=6).x
    expect = ctx.classifier.features(to_uint8(x))
    assert f.dtype == torch.float64 and f.shape == (6, ctx.real_features.shape[1])
    np.testing.assert_allclose(f.numpy(), expect, rtol=0, atol=1e-5)  # batches of 4 against one of 6
    # the features are of the samples the real images' features compare with: same net, same scale
    assert to_uint8(torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]
