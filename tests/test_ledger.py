"""The claims ledger: data shape, verdicts and their reproducing commands."""

import shlex
from pathlib import Path

import pytest

from fmq_theory.cli import build_parser
from fmq_theory.ledger import CHECKS, VERDICTS, ClaimCheck, build_ledger, verdict_table

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
