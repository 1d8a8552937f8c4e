"""Griffe extension for the API reference: render Sphinx cross-reference roles readably.

chemomet's docstrings use reStructuredText roles (``:func:`simulate```, ``:class:`~chemomet.patient.Patient```),
which Markdown would print literally. Before the docstrings are parsed, this rewrites them to inline code
(``:class:`~a.b.C``` -> ```C```, ``:mod:`a.b``` -> ```a.b```), except in the type part of a numpy
``name : type`` line, which is shown verbatim in the "Type" column: there roles and backticks become plain text.
Plain code rather than links, so an object that is not on any API page never becomes a broken reference. Loaded
by mkdocs.yml (mkdocstrings, ``extensions``); this folder is excluded from the site (``exclude_docs``).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc|const|term|ref):`(~?)([^`]+)`")
_SECTIONS = {"parameters", "other parameters", "attributes", "returns", "yields", "receives", "raises", "warns"}
_ITEM = re.compile(r"^(\s*[\w*][\w*, ]*) : (.+)$")


def _target(match: re.Match) -> str:
    short, target = match.group(1), match.group(2).strip()
    if "<" in target and target.endswith(">"):  # :ref:`text <target>`
        target = target.split("<", 1)[0].strip()
    return target.rsplit(".", 1)[-1] if short else target


def rewrite(text: str) -> str:
    """The docstring ``text`` with its roles rewritten (see the module docstring)."""
    lines = text.splitlines()
    section, indent = None, 0
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt.strip() and set(nxt.strip()) == {"-"} and line.strip():
            section, indent = line.strip().lower(), len(line) - len(line.lstrip())
            continue
        item = _ITEM.match(line)
        if section in _SECTIONS and item and len(line) - len(line.lstrip()) == indent:
            kind = _ROLE.sub(_target, item.group(2)).replace("`", "")
            lines[i] = f"{item.group(1)} : {kind}"
        else:
            lines[i] = _ROLE.sub(lambda m: f"`{_target(m)}`", line)
    return "\n".join(lines)


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring (``~`` keeps the last component)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:  # noqa: D102
        docstring = obj.docstring
        if docstring is not None and "`" in docstring.value:
            docstring.value = rewrite(docstring.value)
