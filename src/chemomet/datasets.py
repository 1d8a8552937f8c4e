"""Loaders for the real cohorts used in calibration (docs/science.md §4).

The data are not vendored: they are loaded through scikit-survival (GPL-3), an optional extra
(``pip install chemomet[data]``) imported lazily, so chemomet itself stays permissively licensed.

Both loaders return a :class:`Cohort`: a covariate table in the layout of
:meth:`chemomet.population.Population.parameters` (``age`` years, ``diameter_mm`` mm, ``grade`` 1-3, ``er``,
``pr``, ``her2`` booleans, ``alveolar_or_trabecular``, ``tmem_10hpf`` NaN) plus event times in days and event
indicators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from chemomet.errors import InputError

_MISSING = "scikit-survival is needed to load the calibration cohorts: pip install chemomet[data]"


@dataclass(frozen=True)
class Cohort:
    """A survival cohort.

    name: data set name; covariates: one row per patient (see module docstring); time_days: follow-up time
    (days); event: True when the event was observed; endpoint: what the event is; notes: caveats of the mapping.
    """

    name: str
    covariates: pd.DataFrame
    time_days: np.ndarray
    event: np.ndarray
    endpoint: str
    notes: str = ""

    @property
    def n(self) -> int:
        """Number of patients."""
        return len(self.covariates)


def _sksurv_datasets():
    try:
        from sksurv import datasets
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise InputError(_MISSING) from err
    return datasets


def load_transbig() -> Cohort:
    """TRANSBIG (GSE7390, Desmedt 2007): 198 node-negative patients without adjuvant systemic therapy.

    Loaded with ``sksurv.datasets.load_breast_cancer()`` (the ``breast_cancer_GSE7390-metastasis`` data):
    time to distant metastasis ``t.tdm`` (days) and event ``e.tdm``. Tumour size (cm) becomes ``diameter_mm``;
    grade (well/intermediate/poorly differentiated) becomes 1/2/3, the 2 unknown grades are set to 2. HER2 is
    not in the data: it is set negative (so ER-negative patients take the triple-negative growth prior), and
    PR is set equal to ER. Every patient is node-negative (the cohort's selection), so ``nodes_positive`` is 0.
    """
    X, y = _sksurv_datasets().load_breast_cancer()
    grade_map = {"well differentiated": 1, "intermediate": 2, "poorly differentiated": 3}
    grade = X["grade"].astype(str).map(grade_map).fillna(2).astype(int).to_numpy()
    er = (X["er"].astype(str) == "positive").to_numpy()
    n = len(X)
    cov = pd.DataFrame(
        {
            "age": X["age"].to_numpy(float),
            "diameter_mm": 10.0 * X["size"].to_numpy(float),
            "grade": grade,
            "er": er,
            "pr": er.copy(),
            "her2": np.zeros(n, bool),
            "alveolar_or_trabecular": np.zeros(n, bool),
            "tmem_10hpf": np.full(n, np.nan),
            "nodes_positive": np.zeros(n, int),
        }
    )
    return Cohort(
        name="TRANSBIG (GSE7390)",
        covariates=cov,
        time_days=np.asarray(y["t.tdm"], float),
        event=np.asarray(y["e.tdm"], bool),
        endpoint="distant metastasis",
        notes="untreated node-negative; HER2 unknown (set negative); 2 unknown grades set to 2",
    )


def load_gbsg2() -> Cohort:
    """GBSG2 (German Breast Cancer Study Group 2): 686 node-positive patients, recurrence-free survival.

    Loaded with ``sksurv.datasets.load_gbsg2()``. ``tsize`` (mm) is the diameter, ``tgrade`` I/II/III the grade,
    ER/PR positive when ``estrec``/``progrec`` ≥ 10 fmol/mg, HER2 unknown (set negative). The endpoint is any
    recurrence or death (not distant metastasis), and patients had surgery, radiotherapy, chemotherapy
    (CMF, by design) and in part tamoxifen (``horTh``), with ``pnodes`` positive nodes: a treated cohort.
    """
    X, y = _sksurv_datasets().load_gbsg2()
    grade = X["tgrade"].astype(str).map({"I": 1, "II": 2, "III": 3}).astype(int).to_numpy()
    er = X["estrec"].to_numpy(float) >= 10.0
    pr = X["progrec"].to_numpy(float) >= 10.0
    n = len(X)
    cov = pd.DataFrame(
        {
            "age": X["age"].to_numpy(float),
            "diameter_mm": X["tsize"].to_numpy(float),
            "grade": grade,
            "er": er,
            "pr": pr,
            "her2": np.zeros(n, bool),
            "alveolar_or_trabecular": np.zeros(n, bool),
            "tmem_10hpf": np.full(n, np.nan),
            "nodes_positive": X["pnodes"].to_numpy(int),
            "hormone_therapy": (X["horTh"].astype(str) == "yes").to_numpy(),
        }
    )
    return Cohort(
        name="GBSG2",
        covariates=cov,
        time_days=np.asarray(y["time"], float),
        event=np.asarray(y["cens"], bool),
        endpoint="recurrence-free survival (any recurrence or death)",
        notes="node-positive, treated (CMF chemotherapy, partly tamoxifen); HER2 unknown (set negative)",
    )
