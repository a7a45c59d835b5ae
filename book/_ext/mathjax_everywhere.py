"""Sphinx extension of the fmq_theory book: load MathJax on every page.

Sphinx adds MathJax only to pages whose *content* has math, but the navigation sidebar of the
book theme shows every page title, and some titles contain math (e.g. the proofs pages); on a
page without math of its own those titles would stay raw TeX. With the "always" asset policy
MathJax is loaded everywhere (it is served from the book itself, so this costs no network).
"""


def setup(app):
    """Register the extension (Sphinx entry point)."""
    app.set_html_assets_policy("always")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
