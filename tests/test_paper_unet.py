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
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fmq_theory._util import file_sha256

from fmq_theory.flow.path import cond_ot_path
from fmq_theory.flow.solvers import make_noise, sample
from fmq_theory.harness.checkpoints import load_trained_model, load_training_run, save_checkpoint
from fmq_theory.harness.models.paper_unet import (EMA, PAPER_MNIST, PaperUNet, PaperUNetConfig, paper_adapter,
                                                  paper_unet_from_state_dict)
from fmq_theory.harness.sweep import SweepConfig, run_sweep
from fmq_theory.io.quantized_file import load_quantized
from fmq_theory.results.schema import SWEEP

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


def test_config_is_read_from_the_example_key_table():
    """The example's own key -> shape table (the oracle) gives back the paper's configuration."""
    ref = json.loads((DATA / "paper_unet_keys.json").read_text())
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    with torch.device("meta"):
        sd = {k: torch.empty(shape, dtype=dtypes[dtype]) for k, shape, dtype in ref["keys"]}
        model = paper_unet_from_state_dict(sd)
        assert model.config == PAPER_MNIST and model.num_parameters() == 55_667_201
        bare = paper_unet_from_state_dict({k.removeprefix("model."): v for k, v in sd.items()
                                           if k.startswith("model.")})
    assert bare.config == PAPER_MNIST


def test_a_class_conditional_or_foreign_state_dict_is_refused():
    sd = EMA(PaperUNet(SMALL)).model.state_dict()
    with pytest.raises(ValueError, match="class-conditional"):
        paper_unet_from_state_dict(sd | {"label_emb.weight": torch.zeros(10, 64)})
    with pytest.raises(ValueError, match="not a flow_matching image-example UNet"):
        paper_unet_from_state_dict({"layer.weight": torch.zeros(2, 2)})


def test_a_flow_matching_checkpoint_runs_through_the_harness(tmp_path):
    """``fmq experiment --checkpoint FILE.pth``'s library path on a width-reduced copy: the
    example's checkpoint file (EMA wrapper, argparse args) is loaded with the EMA averages,
    quantized, sampled from the same noise and measured (classifier FID, PSNR/SSIM, the
    paper's t=0 metrics and latent stability on the paper's probes)."""
    torch.manual_seed(0)
    ema = EMA(PaperUNet(SMALL), decay=0.5)
    with torch.no_grad():
        for p in ema.model.parameters():
            p.normal_(std=0.05)
    ema.update_ema()  # the averages now differ from the model's weights
    ckpt = tmp_path / "checkpoint-0.pth"
    torch.save({"model": ema.state_dict(), "epoch": 0, "args": argparse.Namespace(dataset="mnist")}, ckpt)
    loaded = load_trained_model(ckpt)
    assert loaded.sha256 == file_sha256(ckpt) and loaded.card["architecture"] == "paper_unet"
    for got, shadow in zip(loaded.model.parameters(), ema.shadow_params):
        torch.testing.assert_close(got, shadow, rtol=0, atol=0)  # the EMA averages, not the model
    cfg = SweepConfig(dataset="mnist", checkpoint=str(ckpt), methods=("equal_mass",), bits=(4,), samples=8,
                      steps=1, batch_size=8, latent_images=8, inversion_images=2, real_images=200,
                      autocast=False)
    out = tmp_path / "mnist.csv"
    assert len(run_sweep(cfg, out=out, progress=False).written) == 2
    rows = {r["method"]: r for r in SWEEP.read(out)}
    q, fp = rows["equal_mass"], rows["none"]
    assert fp["checkpoint_sha256"] == q["checkpoint_sha256"] == file_sha256(ckpt)
    assert fp["n_weights"] == loaded.model.num_parameters() and q["n_weights"] <= fp["n_weights"]
    assert q["nfe"] == 2 and 0 < q["bits_per_weight"] < 32 and q["weight_mse"] > 0
    for r in rows.values():
        assert all(math.isfinite(r[k]) for k in ("fid", "latent_down_mean_var", "latent_mid_mean_var"))
    assert math.isinf(fp["psnr"]) and math.isfinite(q["psnr"])


def test_a_checkpoint_folder_of_the_paper_network_round_trips(tmp_path):
    """The paper's network is an architecture of the harness: saved as a checkpoint folder and
    rebuilt from its card, with the same outputs."""
    cfg = PaperUNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, groups=4)
    assert PaperUNetConfig.from_dict(cfg.to_dict()) == cfg
    torch.manual_seed(0)
    model = PaperUNet(cfg).eval()
    with torch.no_grad():  # away from the zero-initialised output layers, so outputs are not all zero
        for p in model.parameters():
            p.normal_(std=0.1)
    save_checkpoint(tmp_path / "ck", model, {"dataset": "mnist"})
    loaded = load_trained_model(tmp_path / "ck")
    assert loaded.card["architecture"] == "paper_unet" and loaded.model.config == cfg
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([0.1, 0.9])
    with torch.no_grad():
        want = model(x, t)
        assert float(want.abs().max()) > 0
        torch.testing.assert_close(loaded.model(x, t), want, rtol=0, atol=0)


def _trained_run(folder: Path, *, with_model_file: bool) -> EMA:
    """A width-reduced EMA wrapper whose averages differ from its live weights, saved as a run folder
    (``scripts/gpu_paper_arch.py train``'s layout): ema.safetensors, optionally model.safetensors, train.json."""
    torch.manual_seed(1)
    cfg = PaperUNetConfig(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, groups=4, dropout=0.0)
    ema = EMA(PaperUNet(cfg))
    for _ in range(3):
        with torch.no_grad():
            for p in ema.model.parameters():
                p.add_(torch.randn_like(p))
        ema.update_ema()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(ema.state_dict(), str(folder / "ema.safetensors"))
    record = {"config": cfg.to_dict(), "checkpoint_sha256": file_sha256(folder / "ema.safetensors")}
    if with_model_file:
        save_file(ema.averaged_state_dict(), str(folder / "model.safetensors"))
        record["model_sha256"] = file_sha256(folder / "model.safetensors")
    (folder / "train.json").write_text(json.dumps(record))
    return ema


def test_averaged_state_dict_is_what_copy_to_model_leaves_and_changes_nothing(tmp_path):
    """The averaged state dict equals the network's after ``copy_to_model``, bit for bit, and the live
    weights are untouched by taking it."""
    ema = _trained_run(tmp_path, with_model_file=False)
    live = {k: v.clone() for k, v in ema.model.state_dict().items()}
    averaged = ema.averaged_state_dict()
    assert all(torch.equal(v, ema.model.state_dict()[k]) for k, v in live.items())
    assert any(not torch.equal(averaged[k], live[k]) for k in live)
    ema.copy_to_model()
    assert set(averaged) == set(live)
    assert all(torch.equal(averaged[k], v) for k, v in ema.model.state_dict().items())


def test_a_training_run_loads_the_same_network_from_either_file(tmp_path):
    """``load_training_run`` gives the same velocities, bit for bit, from model.safetensors and from
    ema.safetensors, and carries the record's checkpoint SHA-256 as the rows' identity."""
    _trained_run(tmp_path / "both", with_model_file=True)
    ema_only = tmp_path / "ema_only"
    ema_only.mkdir()
    for name in ("ema.safetensors", "train.json"):
        (ema_only / name).write_bytes((tmp_path / "both" / name).read_bytes())
    a, b = load_training_run(tmp_path / "both"), load_training_run(ema_only)
    record = json.loads((tmp_path / "both" / "train.json").read_text())
    assert a.sha256 == b.sha256 == record["checkpoint_sha256"]
    x, t = torch.randn(3, 1, 8, 8), torch.rand(3)
    with torch.no_grad():
        assert torch.equal(a.model(x, t), b.model(x, t))


def test_a_training_run_refuses_a_corrupt_file_or_record(tmp_path):
    """A weights file that differs from its recorded SHA-256, a record without it or without the training's
    identity, or a folder without a record or weights is refused with a message naming what is wrong."""
    with pytest.raises(FileNotFoundError, match="train.json"):
        load_training_run(tmp_path)
    _trained_run(tmp_path, with_model_file=True)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="differs from the SHA-256"):
        load_training_run(tmp_path)
    record = json.loads((tmp_path / "train.json").read_text())
    del record["model_sha256"]
    (tmp_path / "train.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="no model_sha256"):
        load_training_run(tmp_path)
    record["model_sha256"] = file_sha256(tmp_path / "model.safetensors")
    del record["checkpoint_sha256"]  # the training's identity, which every result row carries
    (tmp_path / "train.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="no checkpoint_sha256 .the training's identity"):
        load_training_run(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "ema.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="neither"):
        load_training_run(tmp_path)
