"""Sphinx extension of the fmq_theory book: numpydoc's reference handling for module docstrings.

numpydoc makes the ``.. [1]`` entries of a *function or class* docstring's References section
count as referenced (it adds a LaTeX-only line citing each of them), so Sphinx does not warn
"Citation [...] is not referenced" when the text never cites them. Module docstrings keep
their References section as free text, so their entries do trigger that warning. This
extension does for module docstrings what numpydoc does for the others: after numpydoc has
made the labels unique, it appends a LaTeX-only paragraph citing every label the module
docstring defines. Nothing is shown in HTML.
"""

import re

_LABEL = re.compile(r"^\s*\.\. \[([^\]]+)\]", flags=re.M)


def _cite_module_references(app, what, name, obj, options, lines):
    if what != "module":
        return
    labels = _LABEL.findall("\n".join(lines))
    if labels:
        lines += ["", ".. only:: latex", "", "   " + ", ".join(f"[{label}]_" for label in labels), ""]


def setup(app):
    """Register the extension (Sphinx entry point); runs after numpydoc (priority 500)."""
    app.connect("autodoc-process-docstring", _cite_module_references, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
