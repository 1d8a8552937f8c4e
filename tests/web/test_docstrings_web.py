"""Every public function and class of the web app's modules (all of ``chemomet.web``, found by walking the package,
so a new module is covered without being listed) has a numpydoc docstring with Examples, and the examples run —
the checks of tests/test_docstrings.py."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import chemomet.web


def _public() -> dict[str, object]:
    out = {}
    for info in pkgutil.iter_modules(chemomet.web.__path__, "chemomet.web."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                    and getattr(obj, "__module__", None) == module.__name__):
                out[f"{module.__name__}.{name}"] = obj
    return dict(sorted(out.items()))


PUBLIC = _public()


def test_the_trial_page_module_is_covered():
    expected = {"chemomet.web.trials.load_spec", "chemomet.web.trials.TrialRun", "chemomet.web.jobs.Progress"}
    assert expected <= set(PUBLIC)


@pytest.mark.parametrize("qualname", sorted(PUBLIC))
def test_public_object_has_a_numpydoc_docstring_with_examples_that_run(qualname):
    obj = PUBLIC[qualname]
    doc = inspect.getdoc(obj) or ""
    assert len(doc.split()) >= 8, f"{qualname}: no real docstring"
    assert "Examples\n--------" in doc, f"{qualname}: no Examples section"
    module = importlib.import_module(obj.__module__)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(recurse=False).find(obj, qualname, module=module, globs={**vars(module)}):
        runner.run(test)
    assert runner.failures == 0, f"{qualname}: {runner.failures} failing example(s)"
