"""Griffe extension for the API reference: read chemomet's docstrings as they are written.

Two conventions of the docstrings would render badly with the numpy parser as it is:

* reStructuredText roles (``:func:`simulate```, ``:class:`~chemomet.patient.Patient```), which Markdown would
  print literally, become inline code (``:class:`~a.b.C``` -> ```C```). Plain code rather than links, so an
  object that is not on any API page never becomes a broken reference.
* Items of the Parameters, Attributes and Raises sections are written ``name : description`` (the type is in
  the signature), where numpy style means ``name : type``: the description would land in the "Type" column,
  cut at the first line break. Such an item becomes ``name`` with the description indented below it, so the
  type comes from the annotation. A short item that does look like a type (at most four words, no full stop
  or semicolon: ``x : int``) is kept as a type, with roles and backticks removed.

Loaded by mkdocs.yml (mkdocstrings, ``extensions``); this folder is excluded from the site (``exclude_docs``).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc|const|term|ref):`(~?)([^`]+)`")
_TYPED = {"returns", "yields"}  # "name : type" is meant literally there
_DESCRIBED = {"parameters", "other parameters", "attributes", "raises", "warns", "receives"}
_ITEM = re.compile(r"^(\s*)([\w*][\w*, ]*) : (.+)$")


def _target(match: re.Match) -> str:
    short, target = match.group(1), match.group(2).strip()
    if "<" in target and target.endswith(">"):  # :ref:`text <target>`
        target = target.split("<", 1)[0].strip()
    return target.rsplit(".", 1)[-1] if short else target


def _code(text: str) -> str:
    return _ROLE.sub(lambda m: f"`{_target(m)}`", text)


def _plain(text: str) -> str:
    return _ROLE.sub(_target, text).replace("`", "")


def _is_type(text: str) -> bool:
    text = text.strip()
    return len(text.split()) <= 4 and not text.endswith(".") and ";" not in text


def rewrite(text: str) -> str:
    """The docstring ``text`` rewritten as described in the module docstring."""
    lines = text.splitlines()
    out: list[str] = []
    section, indent = None, 0
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and nxt.strip() and set(nxt.strip()) == {"-"}:
            section, indent = line.strip().lower(), len(line) - len(line.lstrip())
            out.append(line)
            continue
        item = _ITEM.match(line)
        if item and len(item.group(1)) == indent and section in _TYPED | _DESCRIBED:
            lead, name, rest = item.groups()
            if section in _TYPED or _is_type(rest):
                out.append(f"{lead}{name} : {_plain(rest)}")
            else:
                out.extend([f"{lead}{name}", f"{lead}    {_code(rest)}"])
            continue
        out.append(_code(line))
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Apply :func:`rewrite` to every docstring before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:  # noqa: D102
        docstring = obj.docstring
        if docstring is not None:
            docstring.value = rewrite(docstring.value)
