"""scripts/gpu_checkpoint_parts.sh: a training run's averaged network sent back in parts, kept, carried in
pieces and joined, byte for byte, and a corrupt piece refused (the GPU machine's transfer limits,
exercised here on a small file with small pieces)."""
import json
import subprocess
from pathlib import Path

import pytest

from fmq_theory._util import file_sha256

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_checkpoint_parts.sh"
PART = 16_000_000  # the script's part size


def _parts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def run(tmp_path):
    """A run folder whose model.safetensors spans two parts (random bytes; only the transfer is tested)."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * ((PART + 1000) // 256 + 1))
    (folder / "train.json").write_text(json.dumps({"model_sha256": file_sha256(folder / "model.safetensors")}))
    return folder


def test_send_keep_carry_join_round_trip(run, tmp_path):
    """Parts sent in two calls are complete once both are kept; the carried pieces (at most the given size)
    join on the far side to the same bytes, reported only when the last piece is in."""
    saved = tmp_path / "saved"
    for k, (first, last) in enumerate([("1", "1"), ("2", "4")]):
        out = tmp_path / f"out{k}"
        out.mkdir()
        sent = _parts("send", str(run), str(out), first, last)
        assert sent.returncode == 0 and f"of 2 ({(run / 'model.safetensors').stat().st_size} bytes)" in sent.stdout
        kept = _parts("keep", str(out), str(saved))
        assert kept.returncode == 0 and ("complete" if k else "1 parts, not complete") in kept.stdout
    carried = _parts("carry", str(saved), str(tmp_path / "pa"), "7000000")
    assert carried.returncode == 0
    pieces = sorted(tmp_path.glob("pa[0-9]*"))
    assert len(pieces) == 3 and all((p / f"model.piece{p.name[2:]}").stat().st_size <= 7_000_000 for p in pieces)
    for i, piece in enumerate(pieces, start=1):
        joined = _parts("join", str(piece), str(tmp_path / "far"))
        assert joined.returncode == 0 and (("joined" in joined.stdout) == (i == 3))
    assert (tmp_path / "far" / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()


def test_a_corrupt_piece_is_refused_and_nothing_is_written(run, tmp_path):
    """A piece altered in transit: the join fails with a message, and no model.safetensors appears."""
    out = tmp_path / "out"
    out.mkdir()
    assert _parts("send", str(run), str(out), "1", "2").returncode == 0
    assert _parts("keep", str(out), str(tmp_path / "saved")).returncode == 0
    assert _parts("carry", str(tmp_path / "saved"), str(tmp_path / "pa"), "9000000").returncode == 0
    piece = tmp_path / "pa2" / "model.piece2"
    data = bytearray(piece.read_bytes())
    data[0] ^= 1
    piece.write_bytes(bytes(data))
    _parts("join", str(tmp_path / "pa1"), str(tmp_path / "far"))
    joined = _parts("join", str(tmp_path / "pa2"), str(tmp_path / "far"))
    assert joined.returncode == 1 and "do not match" in joined.stderr
    assert not (tmp_path / "far" / "model.safetensors").exists()
