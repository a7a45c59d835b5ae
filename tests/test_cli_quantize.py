"""Tests of ``fmq quantize`` end to end on a real (small, trained) torch checkpoint.

The fixture ``tests/data/digits_cnn.safetensors`` (about 120 KB) is a small CNN trained on
scikit-learn's 8x8 digits (1500 training images, 300 Adam steps, seed 0); it has 4-D conv
weights, 2-D linear weights, 1-D biases and BatchNorm statistics, and an int64 buffer
(``num_batches_tracked``) that must pass through untouched.  Regenerate it with::

    .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); \\
        import test_cli_quantize as t; t.train_digits_cnn('tests/data/digits_cnn.safetensors')"
"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fmq_theory.cli import main
from fmq_theory.io.quantized_file import load_quantized

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "digits_cnn.safetensors")


def digits_cnn() -> nn.Sequential:
    """The fixture's architecture (29,946 parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(32 * 4 * 4, 48), nn.ReLU(), nn.Linear(48, 10),
    )


def digits_split():
    """((x_train, y_train), (x_test, y_test)): the first 1500 digits and the other 297."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])


def accuracy(state_dict) -> float:
    """Test accuracy of :func:`digits_cnn` with the given weights (eval mode)."""
    model = digits_cnn()
    model.load_state_dict(state_dict)
    model.eval()
    _, (x, y) = digits_split()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_digits_cnn(path, *, steps: int = 300, seed: int = 0) -> None:
    """Train :func:`digits_cnn` with Adam (lr 3e-3, batch 128) and save it as safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = digits_cnn()
    (x, y), _ = digits_split()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.fspath(path))


# --------------------------------------------------------------------------- tests

def run_cli(*args):
    return main(["quantize", *map(str, args)])


def test_fixture_is_a_trained_model():
    assert accuracy(load_file(FIXTURE)) >= 0.9


@pytest.mark.parametrize("method, bits", [("equal_mass", 2), ("uniform_minmax", 4)])
def test_table_output_and_file(method, bits, tmp_path, capsys):
    out = tmp_path / "q.safetensors"
    assert run_cli(FIXTURE, "--method", method, "--bits", bits, "-o", out) == 0
    text = capsys.readouterr().out
    sd = load_file(FIXTURE)
    qsd = load_quantized(out)
    assert f"method={method}" in text and f"bits={bits}" in text and "granularity=channel" in text
    assert "fmq_theory " in text and f"{os.path.getsize(out)} bytes" in text
    for row in qsd.report:
        line = next(x for x in text.splitlines() if x.startswith(row.name + " "))
        assert f"{row.mse:.4e}" in line and f"{row.w2:.4e}" in line and f"{row.bits_per_weight:.4f}" in line
        # The report's MSE is that of the dequantized tensor, recomputed here in float64.
        restored = qsd.quantized[row.name].dequantize().double()
        assert row.mse == pytest.approx(float(((sd[row.name].double() - restored) ** 2).mean()), rel=1e-12)
        # Pooled W2 <= the per-channel coupling's cost sqrt(MSE) (equality per tensor).
        assert row.w2 <= math.sqrt(row.mse) * (1 + 1e-9)
    assert set(qsd.quantized) | set(qsd.passthrough) == set(sd)
    assert torch.equal(qsd.passthrough["1.num_batches_tracked"], sd["1.num_batches_tracked"])
    assert "kept as is: 1.num_batches_tracked (int64, 8 B)" in text
    # The quantized model still classifies (fp accuracy 0.93; measured 0.85 / 0.93).
    assert accuracy(qsd.state_dict()) >= 0.8


def test_json_totals_are_consistent(tmp_path, capsys):
    out = tmp_path / "q.safetensors"
    argv = [FIXTURE, "--method", "lloyd_max", "--bits", 3, "--granularity", "group:64", "-o", out]
    assert run_cli(*argv, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    summary = {**doc["result"], "parameters": doc["parameters"]}
    qsd = load_quantized(out)
    total = summary["total"]
    n = sum(q.n_weights for q in qsd.quantized.values())
    bits = sum(q.bits * q.n_weights + q.overhead_bits for q in qsd.quantized.values())
    assert summary["parameters"]["granularity"] == "group:64"
    assert total["n_weights"] == n and total["bits_per_weight"] == pytest.approx(bits / n, rel=1e-12)
    assert total["file_bytes"] == os.path.getsize(out)
    assert total["data_bytes"] + total["header_bytes"] == total["file_bytes"]
    packed = sum(-(-(q.bits * q.n_weights + q.overhead_bits) // 8) for q in qsd.quantized.values())
    assert total["data_bytes"] == packed + 8  # + the int64 num_batches_tracked
    assert total["fp32_bytes"] == 4 * n + 8
    assert total["compression_vs_fp32"] == pytest.approx(total["fp32_bytes"] / total["file_bytes"])
    mse = sum(r.mse * r.n_weights for r in qsd.report) / n
    assert total["mse"] == pytest.approx(mse, rel=1e-12)
    assert total["w2"] == pytest.approx(math.sqrt(sum(r.w2**2 * r.n_weights for r in qsd.report) / n), rel=1e-12)
    assert [r["name"] for r in summary["tensors"]] == [r.name for r in qsd.report]
    # a tensor with fewer than 64 weights is one group of all of them (the group size is capped)
    assert all(q.granularity == ("group", min(64, q.n_weights)) for q in qsd.quantized.values())


def test_pt_input_through_weights_only(tmp_path, capsys):
    torch.save({"model": load_file(FIXTURE), "epoch": 3}, tmp_path / "ckpt.pt")
    out = tmp_path / "q.safetensors"
    assert run_cli(tmp_path / "ckpt.pt", "--method", "normal_float", "--bits", 4, "-o", out) == 0
    assert set(load_quantized(out).quantized) == set(load_file(FIXTURE)) - {"1.num_batches_tracked"}
    torch.save({"ema": load_file(FIXTURE), "state_dict": {"x": torch.ones(3)}}, tmp_path / "two.pt")
    assert run_cli(tmp_path / "two.pt", "--method", "log2", "--bits", 3, "-o", out) == 2
    assert "choose one with key=" in capsys.readouterr().err
    assert run_cli(tmp_path / "two.pt", "--method", "log2", "--bits", 3, "--key", "ema", "-o", out) == 0
    assert "key=ema" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, argument",
    [
        (["--method", "magic", "--bits", "2"], "--method"),
        (["--method", "equal_mass", "--bits", "0"], "--bits"),
        (["--method", "equal_mass", "--bits", "9"], "--bits"),
        (["--method", "equal_mass", "--bits", "two"], "--bits"),
        (["--method", "equal_mass", "--bits", "2", "--granularity", "group:0"], "--granularity"),
        (["--method", "equal_mass", "--bits", "2", "--granularity", "row"], "--granularity"),
        (["--bits", "2"], "--method"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(args, argument, tmp_path, capsys):
    out = tmp_path / "q.safetensors"
    with pytest.raises(SystemExit) as exc:
        run_cli(FIXTURE, *args, "-o", out)
    assert exc.value.code == 2
    assert argument in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_bad_output_name_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(FIXTURE, "--method", "equal_mass", "--bits", "2", "-o", tmp_path / "q.pt")
    assert exc.value.code == 2 and "-o/--output" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_missing_and_corrupt_input_exit_2(tmp_path, capsys):
    out = tmp_path / "q.safetensors"
    assert run_cli(tmp_path / "nope.safetensors", "--method", "equal_mass", "--bits", 2, "-o", out) == 2
    assert "argument IN" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(open(FIXTURE, "rb").read()[:5000])
    assert run_cli(bad, "--method", "equal_mass", "--bits", 2, "-o", out) == 2
    assert str(bad) in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["bad.safetensors"]


def test_failure_while_quantizing_keeps_existing_output(tmp_path, capsys):
    sd = load_file(FIXTURE)
    sd["9.bias"][3] = float("nan")
    save_file(sd, tmp_path / "nan.safetensors")
    out = tmp_path / "q.safetensors"
    out.write_bytes(b"old result")
    assert run_cli(tmp_path / "nan.safetensors", "--method", "equal_mass", "--bits", 2, "-o", out) == 2
    assert "NaN" in capsys.readouterr().err
    assert out.read_bytes() == b"old result"
    assert sorted(os.listdir(tmp_path)) == ["nan.safetensors", "q.safetensors"]


def test_console_entry_point_with_progress_bar(tmp_path):
    out = tmp_path / "q.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "fmq_theory", "quantize", FIXTURE, "--method", "uniform_minmax",
         "--bits", "2", "-o", str(out)],
        capture_output=True, text=True, check=True,
    )
    assert "13/13" in proc.stderr  # tqdm over the 13 state-dict entries
    assert "compression vs fp32" in proc.stdout
    assert load_quantized(out).quantized["7.weight"].levels.shape == (48, 4)
