"""The DiT velocity network: shapes, adaLN-zero start, checkpoints, and a smoke train + sample."""

import json

import numpy as np
import pytest
import torch

from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.checkpoints import load_trained_model, save_checkpoint
from fmq_theory.harness.models import architecture_of, build_model, config_from_dict
from fmq_theory.harness.models.dit import DiT, DiTConfig, sincos_position_embedding
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.train import TrainConfig, train

TINY = DiTConfig(hidden=32, depth=2, num_heads=2, patch=4)


def test_shapes_zero_start_and_size_budget():
    torch.manual_seed(0)
    m = DiT(TINY)
    x = torch.randn(3, 1, 28, 28)
    # adaLN-zero: every block and the output layer start at zero, so the network starts at v = 0
    assert torch.equal(m(x, torch.rand(3), torch.tensor([0, 5, 10])), torch.zeros_like(x))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = m(x, torch.tensor(0.3), None)
    assert out.shape == x.shape and out.abs().max() > 0
    # unpatchify inverts patchify: with a zero output weight, the output bias (one value per
    # pixel of a patch, row-major) tiles every 4 x 4 patch of the image
    with torch.no_grad():
        m.final_linear.weight.zero_()
        m.final_linear.bias.copy_(torch.arange(16.0))
        grid = m(x, torch.zeros(3), None)[0, 0]
    np.testing.assert_array_equal(grid.numpy(), np.tile(np.arange(16.0).reshape(4, 4), (7, 7)))
    # the committed default stays under 12 MB as fp32
    assert DiT(DiTConfig()).num_parameters() * 4 <= 12e6


def test_position_embedding_is_distinct_and_bounded():
    pe = sincos_position_embedding(16, 7)
    assert pe.shape == (49, 16) and pe.abs().max() <= 1
    assert torch.cdist(pe, pe).fill_diagonal_(1).min() > 1e-3  # every position differs


def test_config_round_trip_and_bad_config():
    assert DiTConfig.from_dict(json.loads(json.dumps(TINY.to_dict()))) == TINY
    assert architecture_of(TINY) == "dit" and config_from_dict("dit", TINY.to_dict()) == TINY
    assert type(build_model(TINY)) is DiT
    with pytest.raises(ValueError, match="patch"):
        DiTConfig(patch=3)
    with pytest.raises(ValueError, match="num_heads"):
        DiTConfig(hidden=30, num_heads=4)
    with pytest.raises(ValueError, match="unknown"):
        DiTConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="architecture"):
        config_from_dict("vit", {})
    with pytest.raises(TypeError, match="config"):
        architecture_of(object())
    with pytest.raises(ValueError, match="unconditional"):
        DiT(DiTConfig(hidden=32, depth=1, num_heads=2, num_classes=None))(
            torch.zeros(1, 1, 28, 28), torch.zeros(1), torch.zeros(1, dtype=torch.long))


def test_trains_saves_loads_and_samples(tmp_path):
    tcfg = TrainConfig(dataset="mnist", steps=25, batch_size=16, limit_train=256, warmup=5, lr=2e-3, amp=False)
    result = train(TINY, tcfg, progress=False)
    assert result.steps == 25 and np.isfinite(result.losses).all()
    assert result.losses[-5:].mean() < result.losses[:3].mean()
    save_checkpoint(tmp_path, result.ema_model, result.card(train_config=tcfg, device="cpu"))
    lm = load_trained_model(tmp_path)
    assert lm.card["architecture"] == "dit" and DiTConfig.from_dict(lm.card["dit_config"]) == TINY
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x, t, None), result.ema_model(x, t, None), rtol=0, atol=0)
    labels = balanced_labels(4, 10)
    res = sample(lm.model, make_noise(4, (1, 28, 28), seed=0), adapter=unet_adapter(lm.model, labels, 0.0),
                 solver="midpoint", steps=2, clip=(-1.0, 1.0))
    assert res.x.shape == (4, 1, 28, 28) and torch.isfinite(res.x).all() and res.nfe == 4


def test_committed_dit_loads():
    lm = load_trained_model("checkpoints/dit_fashion_mnist")
    assert lm.card["architecture"] == "dit" and lm.card["dataset"] == "fashion_mnist"
    assert lm.sha256 == lm.card["weights_sha256"] and lm.model.num_parameters() == lm.card["num_parameters"]
    assert (lm.path / "model.safetensors").stat().st_size <= 12e6
