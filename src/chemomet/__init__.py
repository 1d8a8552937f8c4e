"""chemomet: neoadjuvant chemotherapy, the prometastatic microenvironment and accompanying therapies.

Public API: :func:`simulate`, :func:`assess`, :func:`predict`, :func:`nact_excess_risk`, :func:`run_trial`,
:class:`Patient`, :func:`read_patient`, :class:`Population`, :class:`Strategy`, :class:`Timing`, :class:`Regimen`,
:class:`Outcome`, :class:`TrialSpec`.
Names are imported on first use, so ``import chemomet`` (and ``chemomet --help``) stays fast.

Examples
--------
>>> import chemomet as cm
>>> cm.example_patient().subtype
'HR+/HER2-'
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chemomet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_PUBLIC = {
    "Assessment": "chemomet.assess",
    "AssessmentSettings": "chemomet.assess",
    "assess": "chemomet.assess",
    "nact_excess_risk": "chemomet.excess_risk",
    "ModelSettings": "chemomet.model.parameters",
    "PatientParameters": "chemomet.model.parameters",
    "Outcome": "chemomet.model.engine",
    "predict": "chemomet.assess.predict",
    "simulate": "chemomet.simulation",
    "Patient": "chemomet.patient",
    "example_patient": "chemomet.patient",
    "read_patient": "chemomet.patient",
    "Population": "chemomet.population",
    "Regimen": "chemomet.regimens",
    "Strategy": "chemomet.regimens",
    "Timing": "chemomet.regimens",
    "get_regimen": "chemomet.regimens",
    "load_drugs": "chemomet.regimens",
    "load_regimens": "chemomet.regimens",
    "read_drug_file": "chemomet.regimens",
    "TrialSpec": "chemomet.trial",
    "read_trial_spec": "chemomet.trial",
    "run_trial": "chemomet.trial",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'chemomet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
