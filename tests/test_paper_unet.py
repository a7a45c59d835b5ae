"""The paper's network (flow_matching's image-example UNet) against data derived from the example.

Oracles, both derived once by instantiating facebookresearch/flow_matching @ 11568d3
``examples/image/models/{unet,nn,ema}.py`` outside this repository (provenance inside the
files):
- ``tests/data/paper_unet_keys.json``: the parameter count and the key -> shape -> dtype
  table of ``EMA(UNetModel(**mnist config))``'s state dict;
- ``tests/data/paper_unet_small_forward.safetensors``: a width-reduced example network
  (model_channels 16, channel_mult (2, 2), 1 residual block; weights rounded to float16),
  an input and the example's output on it.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from fmq_theory.flow.path import cond_ot_path
from fmq_theory.flow.solvers import make_noise, sample
from fmq_theory.harness.models.paper_unet import EMA, PAPER_MNIST, PaperUNet, PaperUNetConfig, paper_adapter
from fmq_theory.io.quantized_file import load_quantized

DATA = Path(__file__).parent / "data"
SMALL = PaperUNetConfig(model_channels=16, channel_mult=(2, 2), num_res_blocks=1)


def test_parameter_count_and_key_layout_equal_the_example():
    ref = json.loads((DATA / "paper_unet_keys.json").read_text())
    with torch.device("meta"):
        ema = EMA(PaperUNet(PAPER_MNIST))
    assert sum(p.numel() for p in ema.model.parameters()) == 55_667_201 == ref["n_parameters"]
    ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in ema.state_dict().items()]
    assert ours == ref["keys"]  # names, order, shapes and dtypes
    assert sum(1 for k, _, _ in ours if k.startswith("shadow_params.")) == len(list(ema.model.parameters()))


def test_forward_equals_the_example_on_a_small_copy():
    data = load_file(DATA / "paper_unet_small_forward.safetensors")
    x, t, y = data.pop("x"), data.pop("t"), data.pop("y")
    model = PaperUNet(SMALL).eval()
    model.load_state_dict({k: v.float() for k, v in data.items()}, strict=True)
    with torch.no_grad():
        got = model(x, t)
    torch.testing.assert_close(got, y, rtol=0, atol=1e-6)  # attention kernels differ in rounding only


def test_small_copy_trains_quantizes_and_samples_end_to_end(tmp_path):
    """A width-reduced copy in its EMA wrapper: a few flow-matching steps, saved as the
    example saves it ({"model": ema.state_dict(), "args": Namespace, ...}), quantized by
    ``fmq quantize`` (EMA entries included), loaded back and sampled."""
    torch.manual_seed(0)
    cfg = PaperUNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, groups=4, dropout=0.0)
    ema = EMA(PaperUNet(cfg))
    opt = torch.optim.Adam(ema.model.parameters(), lr=1e-3)
    data = torch.rand(16, 1, 8, 8) * 2 - 1
    losses = []
    for _ in range(6):
        x0 = torch.randn_like(data)
        ps = cond_ot_path(x0, data, torch.rand(16))
        loss = torch.mean((ema(ps.x_t, ps.t) - ps.target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update_ema()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))) and int(ema.num_updates) == 6
    ckpt = tmp_path / "checkpoint-0.pth"
    torch.save({"model": ema.state_dict(), "epoch": 0, "args": argparse.Namespace(lr=1e-3)}, ckpt)
    out = tmp_path / "q.safetensors"
    run = subprocess.run(
        [sys.executable, "-m", "fmq_theory", "quantize", str(ckpt), "--method", "equal_mass", "--bits", "4",
         "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    qsd = load_quantized(out)
    restored = qsd.state_dict()
    assert set(restored) == set(ema.state_dict())
    assert any(k.startswith("shadow_params.") for k in qsd.quantized) and "num_updates" not in qsd.quantized
    back = EMA(PaperUNet(cfg))
    back.load_state_dict(restored, strict=True)
    back.copy_to_model()
    noise = make_noise(4, (1, 8, 8), seed=0)
    q = sample(back.model, noise, adapter=paper_adapter(), solver="midpoint", steps=4).x
    ema.copy_to_model()
    fp = sample(ema.model, noise, adapter=paper_adapter(), solver="midpoint", steps=4).x
    assert q.shape == (4, 1, 8, 8) and torch.isfinite(q).all()
    assert 0 < float((q - fp).abs().max()) < float(fp.abs().max()) + 1  # quantized, and close
