"""The public tissue-analysis API is documented (numpydoc sections, an Examples section) and its examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import chemomet.tme as tme

PUBLIC = [name for name in tme.__all__ if callable(getattr(tme, name))]  # CONVENTIONS and PRESETS are data
MODULES = sorted(m.name for m in pkgutil.iter_modules(tme.__path__, "chemomet.tme."))


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_have_numpydoc_examples(name):
    doc = inspect.getdoc(getattr(tme, name)) or ""
    section = "Attributes" if inspect.isclass(getattr(tme, name)) else "Parameters"
    assert f"\n{section}\n{'-' * len(section)}\n" in doc, f"{name}: no {section} section"
    examples = doc.partition("\nExamples\n--------\n")[2]
    assert ">>> " in examples, f"{name}: no Examples section with a doctest"


@pytest.mark.parametrize("module", MODULES)
def test_doctests_pass(module):
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(mod, module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} doctest examples failed"
