"""UNet velocity network and its safetensors checkpoints."""

import json

import pytest
import torch

from fmq_theory.harness.checkpoints import load_trained_model, save_checkpoint, update_card
from fmq_theory.harness.models.unet import UNet, UNetConfig

TINY = UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                  attention_resolutions=(14,), groups=4, dropout=0.0)


def test_shapes_and_default_size_budget():
    m = UNet(TINY)
    x = torch.randn(3, 1, 28, 28)
    assert m(x, torch.rand(3), torch.tensor([0, 5, 10])).shape == x.shape
    assert m(x, torch.tensor(0.3), None).shape == x.shape  # scalar t, null label
    # the committed default must stay under 12 MB as fp32 (3M parameters)
    assert UNet(UNetConfig()).num_parameters() * 4 <= 12e6


def test_config_round_trip_and_bad_config():
    assert UNetConfig.from_dict(json.loads(json.dumps(TINY.to_dict()))) == TINY
    with pytest.raises(ValueError, match="image_size"):
        UNetConfig(image_size=30, channel_mult=(1, 2, 2))
    with pytest.raises(ValueError, match="groups"):
        UNetConfig(base_channels=12, groups=8)
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="unconditional"):
        UNet(UNetConfig(base_channels=8, groups=4, channel_mult=(1, 2), num_classes=None))(
            torch.zeros(1, 1, 28, 28), torch.zeros(1), torch.zeros(1, dtype=torch.long))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    m = UNet(TINY).eval()
    save_checkpoint(tmp_path, m, {"dataset": "mnist", "steps": 0})
    lm = load_trained_model(tmp_path)
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x, t, None), m(x, t, None), rtol=0, atol=0)
    assert lm.card["weights_sha256"] == lm.sha256
    assert lm.card["num_parameters"] == m.num_parameters()
    card = update_card(tmp_path, fp_fid=[{"fid": 1.0}])
    assert card["fp_fid"] == [{"fid": 1.0}] and (tmp_path / "MODEL_CARD.md").is_file()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_trained_model(tmp_path / "missing")


def test_committed_checkpoints_load():
    for ds in ("mnist", "fashion_mnist"):
        lm = load_trained_model(f"checkpoints/{ds}")
        assert lm.card["dataset"] == ds and lm.sha256 == lm.card["weights_sha256"]
        assert (lm.path / "model.safetensors").stat().st_size <= 12e6
