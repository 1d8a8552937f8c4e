"""Every public function and class has a numpydoc docstring with an Examples section, and the examples run.

"Public" is what a user reaches: the names the packages export (``__all__``) and the public functions and classes
of the modules the API reference documents. Examples marked ``# doctest: +SKIP`` (long runs) are shown, not run.
"""

import doctest
import importlib
import inspect

import pytest

PACKAGES = ("chemomet", "chemomet.assess", "chemomet.calibrate", "chemomet.trial", "chemomet.tme")
MODULES = (
    "chemomet.simulation",
    "chemomet.assess.predict",
    "chemomet.excess_risk",
    "chemomet.mechanisms",
    "chemomet.subgroups",
    "chemomet.mechanism_sensitivity",
    "chemomet.toxicity",
    "chemomet.streams",
    "chemomet.patient",
    "chemomet.population",
    "chemomet.regimens",
    "chemomet.errors",
    "chemomet.evidence",
    "chemomet.calibrate.crossval",
    "chemomet.calibrate.folds",
    "chemomet.calibrate.survival_metrics",
    "chemomet.calibrate.mechanism_inference",
    "chemomet.calibrate.mechanism_priors",
    "chemomet.calibrate.mechanism_summaries",
    "chemomet.calibrate.mechanism_likelihood",
    "chemomet.calibrate.mechanism_sampler",
    "chemomet.calibrate.mechanism_report",
    "chemomet.calibrate.chain",
    "chemomet.calibrate.treated_likelihood",
    "chemomet.calibrate.gbsg2_treatment",
    "chemomet.fileio",
    "chemomet.units",
    "chemomet.inputs",
    "chemomet.model.engine",
    "chemomet.model.parameters",
    "chemomet.model.nodes",
    "chemomet.mortality",
    "chemomet.calibrate.endocrine",
    "chemomet.calibrate.nodes",
    "chemomet.tme.geojson",
    "chemomet.tme.plot",
    "chemomet.trial.competing",
    "chemomet.trial.replication",
    "chemomet.trial.survival",
    "chemomet.trial.hazards",
    "chemomet.trial.multiplicity",
    "chemomet.trial.endpoints",
    "chemomet.trial.subgroups",
    "chemomet.trial.power",
    "chemomet.web.app",
    "chemomet.web.forms",
    "chemomet.web.jobs",
    "chemomet.web.security",
    "chemomet.web.server",
    "chemomet.web.store",
    "chemomet.web.tissue",
)


def _defined_here(module):
    return [
        (name, obj)
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", None) == module.__name__
    ]


def public_objects() -> dict[str, object]:
    """Qualified name -> object, for every public function and class."""
    out = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        for attr in package.__all__:
            obj = getattr(package, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    for name in MODULES:
        for attr, obj in _defined_here(importlib.import_module(name)):
            out[f"{name}.{attr}"] = obj
    return dict(sorted(out.items()))


PUBLIC = public_objects()


def test_the_public_api_is_large_and_found():
    assert len(PUBLIC) >= 60
    assert "chemomet.simulation.simulate" in PUBLIC and "chemomet.streams.draws_at" in PUBLIC


@pytest.mark.parametrize("qualname", sorted(PUBLIC))
def test_public_object_has_a_numpydoc_docstring_with_examples(qualname):
    doc = inspect.getdoc(PUBLIC[qualname]) or ""
    assert len(doc.split()) >= 8, f"{qualname}: no real docstring"
    assert "Examples\n--------" in doc, f"{qualname}: no Examples section"


@pytest.mark.parametrize("qualname", sorted(PUBLIC))
def test_examples_run(qualname):
    obj = PUBLIC[qualname]
    module = importlib.import_module(obj.__module__)
    finder = doctest.DocTestFinder(recurse=False)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    for test in finder.find(obj, qualname, module=module, globs={**vars(module)}):
        runner.run(test)
    assert runner.failures == 0, f"{qualname}: {runner.failures} failing example(s); run python -m doctest on it"
