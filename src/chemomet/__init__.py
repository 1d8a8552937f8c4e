"""chemomet: neoadjuvant chemotherapy, the prometastatic microenvironment and accompanying therapies.

Public API: :func:`simulate`, :func:`assess`, :func:`nact_excess_risk`, :func:`run_trial`, :class:`Patient`,
:func:`read_patient`, :class:`Population`, :class:`Strategy`, :class:`Regimen`, :class:`Outcome`, :class:`TrialSpec`.
"""

from chemomet.assess import Assessment, AssessmentSettings, assess
from chemomet.model.decompose import nact_excess_risk
from chemomet.model.simulate import Outcome, simulate
from chemomet.patient import Patient, example_patient, read_patient
from chemomet.population import ModelSettings, PatientParameters, Population
from chemomet.regimens import Regimen, Strategy, get_regimen, load_drugs, load_regimens
from chemomet.trial import TrialSpec, read_trial_spec, run_trial

__version__ = "0.1.0"

__all__ = [
    "Assessment",
    "AssessmentSettings",
    "assess",
    "ModelSettings",
    "Outcome",
    "Patient",
    "PatientParameters",
    "Population",
    "Regimen",
    "Strategy",
    "TrialSpec",
    "example_patient",
    "nact_excess_risk",
    "get_regimen",
    "load_drugs",
    "load_regimens",
    "read_patient",
    "read_trial_spec",
    "run_trial",
    "simulate",
]
