"""Tests of fmq_theory.io.float_checkpoint: any state dict loaded safely, safetensors or
weights-only torch pickles, and every bad file refused with a message naming it."""

import argparse
import os
import pickle

import pytest
import torch
from safetensors.torch import load_file

from fmq_theory.io.float_checkpoint import load_state_dict_file
from fmq_theory.io.quantized_file import save_quantized
from fmq_theory.quantizers import quantize

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "digits_cnn.safetensors")


def test_load_state_dict_file_safetensors_and_weights_only_pickles(tmp_path):
    sd = load_file(FIXTURE)
    loaded = load_state_dict_file(FIXTURE)
    assert list(loaded) == list(sd) and all(torch.equal(loaded[k], sd[k]) for k in sd)
    with pytest.raises(ValueError, match="key='model'"):
        load_state_dict_file(FIXTURE, key="model")
    for suffix in (".pt", ".pth", ".bin"):
        torch.save(sd, tmp_path / f"raw{suffix}")
        assert all(torch.equal(load_state_dict_file(tmp_path / f"raw{suffix}")[k], sd[k]) for k in sd)
    torch.save({"model": sd, "optimizer": {"lr": 0.1}, "epoch": 3}, tmp_path / "train.pt")
    assert set(load_state_dict_file(tmp_path / "train.pt")) == set(sd)
    torch.save({"state_dict": sd, "ema": {"a": torch.ones(2)}}, tmp_path / "both.pt")
    with pytest.raises(ValueError, match="several state dicts"):
        load_state_dict_file(tmp_path / "both.pt")
    assert set(load_state_dict_file(tmp_path / "both.pt", key="ema")) == {"a"}
    with pytest.raises(ValueError, match="key='nope'"):
        load_state_dict_file(tmp_path / "both.pt", key="nope")
    torch.save({"epoch": 3}, tmp_path / "none.pt")
    with pytest.raises(ValueError, match="neither a dict of tensors"):
        load_state_dict_file(tmp_path / "none.pt")
    torch.save([torch.ones(1)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list"):
        load_state_dict_file(tmp_path / "list.pt")


class _Exploit:
    """Unpickling this would run a shell command (it must never be unpickled)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch_save", "plain_pickle"])
def test_malicious_pickle_is_refused_and_not_run(writer, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"weight": torch.ones(2), "hook": _Exploit(marker)}
    if writer == "torch_save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle)
    with pytest.raises(ValueError, match="refuses to unpickle") as err:
        load_state_dict_file(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_corrupt_missing_and_unknown_files(tmp_path):
    good = tmp_path / "good.safetensors"
    good.write_bytes(open(FIXTURE, "rb").read())
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(good.read_bytes()[:-1000])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    torch.save(load_file(FIXTURE), tmp_path / "ok.pt")
    cut_pt = tmp_path / "cut.pt"
    cut_pt.write_bytes((tmp_path / "ok.pt").read_bytes()[:2000])
    for bad in (truncated, garbage, cut_pt):
        with pytest.raises(ValueError, match=str(bad)):
            load_state_dict_file(bad)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_state_dict_file(tmp_path / "missing.safetensors")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="suffix '.npz'"):
        load_state_dict_file(tmp_path / "w.npz")
    with pytest.raises(IsADirectoryError, match="is a directory, not a file"):
        load_state_dict_file(tmp_path)
    save_quantized(tmp_path / "q.safetensors", {"w": quantize(torch.ones(2, 8), method="uniform_minmax", bits=2)})
    with pytest.raises(ValueError, match="load_quantized"):
        load_state_dict_file(tmp_path / "q.safetensors")


def test_training_arguments_are_read_as_plain_namespaces(tmp_path):
    """flow_matching's checkpoints keep an argparse.Namespace under "args": it loads by default
    (as a SimpleNamespace, by setting its __dict__), and passing no safe globals refuses it."""
    path = tmp_path / "checkpoint-0.pth"
    torch.save({"model": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=1e-4, dataset="mnist")}, path)
    assert list(load_state_dict_file(path)) == ["w"]
    with pytest.raises(ValueError, match="weights_only"):
        load_state_dict_file(path, safe_globals=())
