"""``fmq cite``: BibTeX for this package and for the paper it checks.

The package entry carries the installed version; its URL is the placeholder of
``CITATION.cff`` until the owner fills in the repository's address (both are checked to
agree by ``tests/test_cite.py``).
"""

from __future__ import annotations

import sys

from fmq_theory import __version__

#: Repository URL, as in CITATION.cff (a placeholder until the owner fills it in).
REPOSITORY_URL = "https://github.com/OWNER/fmq_theory"
#: Release date of this version, as in CITATION.cff.
RELEASE_DATE = "2026-12-01"
#: Title of the software, as in CITATION.cff.
TITLE = ("fmq_theory: checked mathematics and measured evidence for optimal-transport weight "
         "quantization of flow-matching models")

PAPER_BIBTEX = """@misc{varam2025lowbit,
  author        = {Varam, Dara and Abuhani, Diaa A. and Zualkernan, Imran and AlDamani, Raghad and Khalil, Lujain},
  title         = {Low-Bit, High-Fidelity: Optimal Transport Quantization for Flow Matching},
  year          = {2025},
  month         = nov,
  eprint        = {2511.11418},
  archiveprefix = {arXiv},
  primaryclass  = {cs.LG},
  doi           = {10.48550/arXiv.2511.11418},
  url           = {https://arxiv.org/abs/2511.11418}
}"""


def package_bibtex() -> str:
    """The BibTeX ``@software`` entry of the installed version of this package."""
    year, month, _ = RELEASE_DATE.split("-")
    title = TITLE.replace("_", r"\_")
    return (f"@software{{fmq_theory_{__version__.replace('.', '_')},\n"
            f"  author  = {{{{fmq\\_theory developers}}}},\n"
            f"  title   = {{{{{title}}}}},\n"
            f"  version = {{{__version__}}},\n"
            f"  year    = {{{year}}},\n"
            f"  month   = {{{int(month)}}},\n"
            f"  url     = {{{REPOSITORY_URL}}},\n"
            f"  note    = {{Checks arXiv:2511.11418; cite each number with the `fmq' command line that printed it}}\n"
            "}")


def _cite(args) -> int:
    parts = {"package": [package_bibtex()], "paper": [PAPER_BIBTEX],
             "both": [package_bibtex(), PAPER_BIBTEX]}[args.which]
    sys.stdout.write("\n\n".join(parts) + "\n")
    return 0


def register(subparsers) -> None:
    """Add the ``cite`` sub-command."""
    p = subparsers.add_parser("cite", help="BibTeX for this package and for the paper it checks",
                              description="Print BibTeX entries: this package (with the installed "
                                          "version) and arXiv 2511.11418.")
    p.add_argument("--which", choices=("both", "package", "paper"), default="both",
                   help="which entries to print (default both)")
    p.set_defaults(func=_cite)
