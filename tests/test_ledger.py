"""The claims ledger: data shape, verdicts and their reproducing commands."""

import shlex
from pathlib import Path

import pytest

from fmq_theory.cli import build_parser
from fmq_theory.ledger import (CHECKS, VERDICTS, ClaimCheck, build_ledger, empirical_cells, empirical_cells_in,
                               empirical_verdict, scale_table, verdict_table, verdicts_by_scale)
from fmq_theory.results.schema import PAPER_ARCH, SWEEP
from fmq_theory.vocab import PAPER_METHODS

ROOT = Path(__file__).resolve().parents[1]


def test_fast_checks_have_the_expected_verdicts():
    checks = build_ledger(ids=["1a", "1b", "1c", "2c", "4"])
    verdicts = {c.id: c.verdict for c in checks}
    # claim 4 is decided by the committed GPU sweeps in results/ (equal_mass is neither within
    # 2x of the full-precision FID nor the best of the paper's four quantizers at 2-3 bits)
    assert verdicts == {"1a": "holds", "1b": "holds", "1c": "fails", "2c": "holds", "4": "fails"}
    for c in checks:
        assert isinstance(c, ClaimCheck) and c.verdict in VERDICTS and c.evidence


def test_commands_parse():
    parser = build_parser()
    for c in build_ledger(ids=["1c", "4"]):
        if c.command.startswith("fmq "):
            parser.parse_args(shlex.split(c.command)[1:])


def _write_sweep(path, *, fid_em, ssim_em):
    rows = [("none", 32, 2.0, 1.0)] + [(m, b, 50.0, 0.5) for m in ("uniform_minmax", "piecewise_quantile", "log2",
                                                                    "lloyd_max") for b in (2, 3)]
    rows += [("equal_mass", b, fid_em, ssim_em) for b in (2, 3)]
    lines = ["method,bits,fid,ssim,psnr,samples"] + [f"{m},{b},{f},{s},20.0,10000" for m, b, f, s in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("fid_em, ssim_em, verdict", [
    (3.0, 0.95, "holds"),     # within 2 x FID_fp = 4, SSIM >= 0.9, best of the four
    (5.0, 0.95, "fails"),     # best of the four but FID above 2 x FID_fp
    (3.0, 0.80, "fails"),     # SSIM below 0.9
])
def test_claim_4_rule_on_synthetic_sweeps(tmp_path, monkeypatch, fid_em, ssim_em, verdict):
    from fmq_theory import ledger

    _write_sweep(tmp_path / "mnist.csv", fid_em=fid_em, ssim_em=ssim_em)
    monkeypatch.setattr(ledger, "RESULTS_DIR", tmp_path)
    check = build_ledger(ids=["4"])[0]
    assert check.verdict == verdict and "mnist b=2" in check.evidence


def test_claim_4_without_committed_results(tmp_path, monkeypatch):
    from fmq_theory import ledger

    monkeypatch.setattr(ledger, "RESULTS_DIR", tmp_path)
    assert build_ledger(ids=["4"])[0].verdict == "not computed here"


def test_unknown_claim_id():
    with pytest.raises(ValueError, match="claim id '9'"):
        build_ledger(ids=["9"])


@pytest.mark.slow
def test_full_ledger():
    """Every check, including the rho grid (about 30 s of CPU)."""
    checks = build_ledger()
    assert [c.id for c in checks] == list(CHECKS)
    by_id = {c.id: c for c in checks}
    assert by_id["2b"].verdict == "fails"
    assert by_id["3"].verdict in ("holds only when", "fails")
    assert by_id["2d"].verdict == "holds only when"
    for c in checks:
        if c.verdict == "holds only when":
            assert c.condition
        assert c.deciding and (ROOT / f"{c.page}.md").is_file()
        for text in (c.statement, c.condition, c.deciding):  # sentences and formulas, not code
            assert text.count("$") % 2 == 0 and "**" not in text and "W2^2" not in text, text
    # The README's verdict table is this ledger's (regenerate: fmq report --format markdown).
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- verdict table: begin -->\n")[1].split("<!-- verdict table: end -->")[0]
    table = verdict_table(checks, link=lambda text, page: f"[{text}]({page}.md)")
    assert block.strip().splitlines()[-len(table.splitlines()):] == table.splitlines()


def _paper_arch_rows(*, fid_em, ssim_em, fp_samples=(20000, 3000), methods=PAPER_METHODS):
    """Synthetic rows of the PAPER_ARCH table as scripts/gpu_paper_arch.py writes them (full
    precision under both protocols and at several sample counts, cells at 3000 samples)."""
    base = {"dataset": "mnist", "granularity": "channel", "solver": "midpoint", "steps": 10, "nfe": 20, "seed": 0,
            "epochs": 15.0, "n_parameters": 55_667_201, "feature_net": "classifier", "real_samples": 10000}
    rows = [base | {"method": "none", "bits": 32, "granularity": "none", "protocol": "paper", "samples": 20000,
                    "fid_inception": 5.0, "real_samples": 60000}]
    rows += [base | {"method": "none", "bits": 32, "granularity": "none", "protocol": "ours", "samples": n,
                     "fid": 1.0 + 1000 / n} for n in fp_samples]  # FID's bias falls with the sample count
    for m in methods:
        for b in (2, 3, 4, 8):
            em = m == "equal_mass"
            rows.append(base | {"method": m, "bits": b, "protocol": "ours", "samples": 3000,
                                "fid": fid_em if em else 40.0, "ssim": ssim_em if em else 0.5, "psnr": 20.0})
    return [PAPER_ARCH.typed(r) for r in rows]


def test_empirical_cells_pick_the_full_precision_row_of_equal_samples():
    rows = _paper_arch_rows(fid_em=2.5, ssim_em=0.95)
    cells = empirical_cells(rows, source="paper_arch_mnist.csv")
    assert [(c.dataset, c.bits) for c in cells] == [("mnist", 2), ("mnist", 3)]
    for c in cells:  # FID_fp = 1 + 1000/3000 from the 3000-sample row, not the 20000-sample one
        assert c.scale == "55.7M" and c.samples == c.fp_samples == 3000
        assert c.fid_fp == pytest.approx(1 + 1000 / 3000, rel=1e-15)
        assert c.keeps and c.best == "equal_mass" and c.holds  # 2.5 <= 2 * 1.333, SSIM 0.95
    # without a full-precision row at the cells' sample count: the largest, and it is recorded
    cells = empirical_cells(_paper_arch_rows(fid_em=2.5, ssim_em=0.95, fp_samples=(20000,)), source="x.csv")
    assert all(c.fp_samples == 20000 and c.fid_fp == pytest.approx(1.05, rel=1e-15) for c in cells)
    assert not any(c.holds for c in cells)  # 2.5 > 2 * 1.05
    # a bit width without all four quantizers is no cell
    assert empirical_cells(_paper_arch_rows(fid_em=3.0, ssim_em=0.95, methods=PAPER_METHODS[:3]),
                           source="x.csv") == ()


@pytest.mark.parametrize("fid_em, ssim_em, paper_verdict", [
    (2.5, 0.95, "holds"),
    (2.5, 0.80, "fails"),
])
def test_claim_4_cites_both_scales(tmp_path, monkeypatch, fid_em, ssim_em, paper_verdict):
    from fmq_theory import ledger

    _write_sweep(tmp_path / "mnist.csv", fid_em=5.0, ssim_em=0.95)  # 1.7M: fails (5 > 2 x 2)
    rows = SWEEP.read(tmp_path / "mnist.csv")
    SWEEP.write(tmp_path / "mnist.csv", [r | {"dataset": "mnist", "granularity": "channel",  # the model's size:
                                              "n_weights": 1_744_289 if r["method"] == "none" else 1}
                                         for r in rows])
    PAPER_ARCH.write(tmp_path / "paper_arch_mnist.csv", _paper_arch_rows(fid_em=fid_em, ssim_em=ssim_em))
    monkeypatch.setattr(ledger, "RESULTS_DIR", tmp_path)
    cells = empirical_cells_in(tmp_path)
    assert verdicts_by_scale(cells) == {"1.7M": "fails", "55.7M": paper_verdict}
    check = build_ledger(ids=["4"])[0]
    assert check.verdict == ("holds only when" if paper_verdict == "holds" else "fails")
    assert check.page == "notebooks/paper_setup"
    assert "results/mnist.csv" in check.evidence and "results/paper_arch_mnist.csv" in check.evidence
    assert f"1.7M: fails; 55.7M: {paper_verdict}" in check.evidence
    if paper_verdict == "holds":
        assert check.condition == "mnist b=2 (55.7M), mnist b=3 (55.7M)"
    table = scale_table(cells).splitlines()
    assert table[0].count("| 1.7M ") == table[0].count("| 55.7M ") == 4
    assert table[-1].startswith("| **verdict** |  | ✘ fails |")
    assert empirical_verdict([]) == "not computed here"
