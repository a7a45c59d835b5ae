"""The claims ledger: data shape, verdicts and their reproducing commands."""

import shlex

import pytest

from fmq_theory.cli import build_parser
from fmq_theory.ledger import CHECKS, VERDICTS, ClaimCheck, build_ledger


def test_fast_checks_have_the_expected_verdicts():
    checks = build_ledger(ids=["1a", "1b", "1c", "2c", "4"])
    verdicts = {c.id: c.verdict for c in checks}
    assert verdicts == {"1a": "holds", "1b": "holds", "1c": "fails", "2c": "holds", "4": "not computed here"}
    for c in checks:
        assert isinstance(c, ClaimCheck) and c.verdict in VERDICTS and c.evidence


def test_commands_parse():
    parser = build_parser()
    for c in build_ledger(ids=["1c", "4"]):
        if c.command.startswith("fmq "):
            parser.parse_args(shlex.split(c.command)[1:])


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
