"""Batch prediction: posterior DMFS for every patient of a cohort table, from one shared population of twins.

:func:`predict` (and ``chemomet predict COHORT.csv --out risks.parquet``) gives, per patient (row), the posterior
distant-metastasis-free survival at chosen horizons under each strategy, with a credible interval and the effective
sample size behind it: the quantities :func:`chemomet.assess.assess` gives for one patient, at a fraction of the
cost per patient.

Design (docs/assessment.md, "Batch prediction")
-----------------------------------------------
The single-patient assessment draws twins with the patient's covariates fixed and weighs them by the likelihood of
her measured biomarkers. Simulating twins is the cost; weighing them is cheap. So the batch shares the simulations:

1. **Cells.** A twin's parameters depend on the covariates only through ER, hormone-receptor and HER2 status,
   grade, age below 50, alveolar/trabecular morphology and the tumour diameter; its strategies through the regimen
   (HER2-positive: anti-HER2 therapy), the adjuvant endocrine drug (ER and age) and, during NACT, the day of the
   last measurement. Patients alike in all but the diameter share a *cell*: one pool of twins, simulated once
   under each strategy. A patient with an unknown HER2, PR (ER-negative) or grade uses every cell her unknowns can
   take, each with its population probability (the mixture :meth:`Population.draw_unknown` draws from), so they
   are integrated over exactly as in the assessment.
2. **Diameter.** Within a cell the diameter varies continuously. The pool's twins get log-diameters drawn from a
   mixture of normals (SD ``h = diameter_bandwidth``) centred on the cell's patients' log-diameters; patient ``i``
   weighs twin ``j`` by the kernel ``N(log d_i; log d_j, h²)`` divided by that proposal density. This is the
   posterior given a diameter measured with a log-normal error of SD ``h``; its difference from the exact
   diameter is of order ``h²`` times the curvature of the risk in log-diameter (below 0.001 in DMFS at the default
   ``h = 0.1``; see tests/test_predict.py). Every weight is at most the cell's number of patients, so each patient
   has at least about ``n_cell / n_patients`` effective twins from her own proposal component.
3. **Evidence.** Every biomarker likelihood (TMEM, CTC, nodes, Ki67, post-NACT TMEM) is a per-twin quantity
   combined with a per-patient value in a form that separates (negative binomial: ``c(x) + A_j + x B_j``), so the
   patients x twins log-weight matrix is a few outer products, chunked by patients sorted by diameter (each chunk
   only needs the twins within ``4 h`` of its diameters). Diameters during NACT (rare in cohorts) are computed per
   patient on the twins of her window.
4. **Summaries.** Posterior mean, central credible interval (``credible_level`` of the settings; weighted
   quantiles as :func:`chemomet.assess.forecast.weighted_quantiles`) and Kish's effective sample size, per patient.

The pool of a cell has ``clip(twins_per_patient x patients, min_twins_per_cell, max_twins_per_cell)`` twins
(patients counted by their probability of the cell; the population parameters of all cells are computed together,
one call per calibration-ensemble member). Twins
are drawn from their own random streams (one per cell, keyed by the cell's rank in the cohort), so a patient's
numbers are reproducible for the same table and seed, and move within Monte Carlo error with the rest of the
cohort. Fixed model parameters (a patient file's ``[parameters]``) are not accepted: they would give every patient
her own twins (use ``chemomet assess``).
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from scipy.special import gammaln, logsumexp
from scipy.stats import poisson

from chemomet.assess.assessment import default_strategies, standard_endocrine, standard_regimen
from chemomet.assess.evidence import (
    check_measurements,
    diameter_loglik,
    nact_strategy,
    primary_diameters,
    tmem_ratio_at_surgery,
)
from chemomet.assess.settings import AssessmentSettings, Treatment
from chemomet.assess.twins import N_UNIFORMS, Twins, member_ctc_count_model, shipped_ensemble
from chemomet.errors import InputError, printable
from chemomet.inputs import read_capped_bytes
from chemomet.model import dissemination as dis
from chemomet.model.nodes import expected_positive_nodes
from chemomet.model.parameters import PatientParameters
from chemomet.patient import Patient, patient_from_dict
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, Strategy, get_regimen
from chemomet.streams import child, draws_at, root_seed
from chemomet.units import DAYS_PER_YEAR

COLUMNS = tuple(name for name in Patient.model_fields if name != "parameters")
"""Columns a cohort table may hold: the fields of a patient file (same names, units and ranges), except the fixed
``parameters``. An empty cell is a field left out: an unmeasured biomarker is integrated over."""

_INTEGER_FIELDS = ("grade", "nodes_positive", "ctc_count")
_NUMBER_FIELDS = ("age", "diameter_mm", "ki67_percent", "tmem_score", "bsa_m2", "tmem_score_after_nact")

AGE_BAND_YEARS = 50.0
"""The twins' parameters depend on age only through ``age < 50`` (:meth:`Population.parameters`, the doubling-time
factor); tests/test_predict.py checks it, since the cells rely on it."""

MAX_FILE_BYTES = 2 * 1024**3
"""Largest cohort file read (bytes)."""

POOL_STREAM = 0x70726564
"""Sub-stream of the batch's twin pools (one child per cell below it)."""

EDGE = 4.0
"""A patient weighs only the twins within ``EDGE * h`` of her log-diameter (beyond: < 1e-4 of the kernel's mass)."""


@dataclass(frozen=True)
class _Cell:
    """One pool of twins: resolved covariates (er, pr, her2, grade, young, morphology) and the treatment key."""

    er: bool
    pr: bool
    her2: bool
    grade: int
    young: bool
    morphology: bool
    treatment: tuple


def _number(v):
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def _integer(v):
    v = _number(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip() == ""
    if isinstance(v, float | np.floating):
        return bool(np.isnan(v))
    return v is pd.NA or v is pd.NaT


def _row_dict(row: dict, number: int) -> dict:
    """The patient fields of one table row (empty cells left out), converted as a patient file would give them."""
    out = {}
    for name, v in row.items():
        if isinstance(v, list | tuple | np.ndarray):
            v = list(v)
        elif _missing(v):
            continue
        if name in _INTEGER_FIELDS:
            v = _integer(v)
        elif name in _NUMBER_FIELDS:
            v = _number(v)
        elif name == "morphology" and isinstance(v, str):
            v = [s.strip() for s in re.split(r"[;,|]", v) if s.strip()]
        elif name == "nact_diameters" and isinstance(v, str):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                raise InputError(
                    f"row {number}: nact_diameters = {printable(v)!r} is invalid; allowed: a JSON list of "
                    '{"day": ..., "diameter_mm": ...} (unit: days, mm)'
                ) from None
        elif name == "nact_diameters" and isinstance(v, list):
            v = [dict(m) if isinstance(m, dict) else m for m in v]
        elif name == "id":
            v = str(v)
        elif isinstance(v, np.generic):
            v = v.item()
        out[name] = v
    out.setdefault("id", str(number))
    return out


def read_cohort(path: str | Path) -> pd.DataFrame:
    """Read a cohort table (``.csv`` or ``.parquet``) whose columns are patient fields.

    CSV cells are read as text and converted as a patient file's values are; an empty cell is a field left out.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv`` (UTF-8, header row) or ``.parquet`` file, at most :data:`MAX_FILE_BYTES`.

    Returns
    -------
    pandas.DataFrame
        One row per patient, columns as in the file.

    Raises
    ------
    chemomet.errors.InputError
        One line naming the file: missing, not a regular file, too large, of another type, unreadable, or without
        rows.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "cohort.csv"
    >>> _ = path.write_text("id,age,diameter_mm,grade,er,pr,her2,ki67_percent\\np1,47,28,3,positive,positive,"
    ...                     "negative,35\\np2,62,20,,positive,,negative,\\n")
    >>> table = read_cohort(path)
    >>> table.shape, table["grade"].tolist()
    ((2, 8), ['3', nan])
    >>> read_cohort(path.with_suffix(".xlsx"))
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: .../cohort.xlsx: file type '.xlsx' is invalid; allowed: .csv or .parquet
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError(f"{path}: file type {path.suffix!r} is invalid; allowed: .csv or .parquet")
    data = io.BytesIO(read_capped_bytes(path, MAX_FILE_BYTES, "a cohort table (.csv or .parquet)"))
    try:
        if suffix == ".csv":
            frame = pd.read_csv(data, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        else:
            frame = pd.read_parquet(data)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; allowed: a CSV file in UTF-8") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: is empty; allowed: a table with a header row and one row per patient") from None
    except Exception as err:  # a malformed CSV or Parquet file: one line, no traceback
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot be read as a table ({reason}); allowed: a .csv or .parquet table") from None
    if len(frame) == 0:
        raise InputError(f"{path}: holds no rows; allowed: a table with one row per patient")
    return frame


def _check_columns(frame: pd.DataFrame, extra_columns: str) -> list[str]:
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise InputError(f"cohort: column {dup[0]!r} appears twice; allowed: each column once")
    unknown = [c for c in names if c not in COLUMNS]
    if unknown and extra_columns != "ignore":
        shown = ", ".join(repr(printable(c)) for c in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(
            f"cohort: column(s) {shown} unknown; allowed: patient fields {list(COLUMNS)} (or ignore other columns: "
            "extra_columns='ignore', --ignore-extra-columns)"
        )
    for need in ("age", "diameter_mm", "er"):
        if need not in names:
            raise InputError(f"cohort: column {need!r} is missing; allowed: a table with age, diameter_mm and er")
    return [c for c in names if c in COLUMNS]


def _patients(frame, extra_columns: str) -> list[Patient | InputError]:
    if isinstance(frame, str | Path):
        frame = read_cohort(frame)
    if isinstance(frame, pd.DataFrame):
        keep = _check_columns(frame, extra_columns)
        records = frame[keep].to_dict(orient="records")
        out: list[Patient | InputError] = []
        for i, rec in enumerate(records, start=1):
            try:
                out.append(patient_from_dict(_row_dict(rec, i), where=f"row {i}"))
            except InputError as err:
                out.append(err)
        return out
    items = list(frame)
    if not items:
        raise InputError("cohort: no patients; allowed: a table with one row per patient")
    out = []
    for i, p in enumerate(items, start=1):
        if isinstance(p, Patient):
            out.append(p)
        else:
            try:
                out.append(patient_from_dict(dict(p), where=f"row {i}"))
            except InputError as err:
                out.append(err)
            except (TypeError, ValueError):
                out.append(InputError(f"row {i}: is a {type(p).__name__}; allowed: a table of patient fields"))
    return out


# ---------------------------------------------------------------------------------------------- strategies
def _resolve_strategies(names, rep: Patient, regimen: str, treatment: Treatment) -> list[Strategy | None]:
    """The strategies of ``names`` for patients like ``rep`` (as :func:`assess` builds them: standard adjuvant
    endocrine therapy, accompanying drugs from the last measurement during NACT); None where a name does not
    apply (``early-surgery`` before NACT)."""
    by_name = {s.name: s for s in default_strategies(rep, regimen, treatment)}
    out = []
    for name in names:
        if name in by_name:
            out.append(by_name[name])
        elif name == "early-surgery":
            out.append(None)
        else:
            st = Strategy.parse(name, regimen)
            drug = standard_endocrine(rep, treatment)
            if drug is not None and st.endocrine is None and treatment.endocrine_years > 0:
                st = replace(st, endocrine=drug, endocrine_years=treatment.endocrine_years, label=st.name)
            out.append(st)
    return out


def _check_strategy_names(names) -> list[str]:
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise InputError("strategies = [] is invalid; allowed: at least one strategy name")
    for name in names:
        if not isinstance(name, str):
            raise InputError(f"strategy = {name!r} is invalid; allowed: a strategy name, e.g. nact or surgery-first")
        if name == "early-surgery":
            continue
        st = Strategy.parse(name, DEFAULT_REGIMEN)
        if st.kind not in ("surgery-first", "nact"):
            raise InputError(
                f"strategy = {name!r} is invalid; allowed: surgery-first, nact, nact+<drug>, nact-adaptive or "
                "early-surgery"
            )
    if len(set(names)) != len(names):
        raise InputError("strategies: a name is repeated; allowed: each strategy once")
    return names


def _check_horizons(horizons) -> list[float]:
    hs = [horizons] if isinstance(horizons, int | float) else list(horizons)
    ok = hs and all(isinstance(h, int | float) and not isinstance(h, bool) and 0 < h <= 40 for h in hs)
    if not ok:
        raise InputError(f"horizons_years = {horizons!r} is invalid; allowed: numbers from above 0 to 40 (unit: years)")
    return sorted(set(float(h) for h in hs))


# ---------------------------------------------------------------------------------------------- cells
def _unknown_mixture(p: Patient, reference: Population) -> list[tuple[dict, float]]:
    """The patient's resolved covariates with their population probabilities (unknown PR, HER2, grade)."""
    er = p.er == "positive"
    if "pr" in p.unknown_covariates:  # drawn as the population draws it (it matters through the PR-loss factor)
        q = Population.PR_POSITIVE_GIVEN_ER_POSITIVE if er else Population.PR_POSITIVE_GIVEN_ER_NEGATIVE
        prs = [(True, q), (False, 1.0 - q)]
    else:
        prs = [(p.pr == "positive", 1.0)]
    gp = np.asarray(reference.config["cohort"]["grade_probabilities"], float)
    gp = gp / gp.sum()
    grades = [(p.grade, 1.0)] if p.grade is not None else [(g + 1, float(gp[g])) for g in range(3)]
    out = []
    for pr, w_pr in prs:
        hr = er or pr
        if p.her2 is None:
            q = reference.her2_positive_probability(hr)
            her2s = [(True, q), (False, 1.0 - q)]
        else:
            her2s = [(p.her2 == "positive", 1.0)]
        for her2, w_h in her2s:
            for grade, w_g in grades:
                w = w_pr * w_h * w_g
                if w > 0:
                    out.append(({"er": er, "pr": pr, "her2": her2, "grade": int(grade)}, w))
    return out


def _draw_pools(specs, root, reference, members, h: float) -> list[tuple[Twins, np.ndarray, np.ndarray]]:
    """The twins of every cell, as :func:`chemomet.assess.twins.draw_twins` draws them but with the diameter from
    the cell's proposal; ``specs``: ``(cell, centres, counts, n)`` per cell. Returns per cell the twins sorted by
    log-diameter, their log-diameters and the proposal's log-density there. The population parameters are
    computed once per ensemble member for all cells together."""
    covs, zs, us, xs, logqs = [], [], [], [], []
    for k, (cell, centres, counts, n) in enumerate(specs):
        z, u = draws_at(child(root, k), np.arange(n), Population.N_EFFECTS + 1, N_UNIFORMS + 1)
        cdf = np.cumsum(counts) / counts.sum()
        which = np.minimum(np.searchsorted(cdf, u[:, 3], side="right"), centres.size - 1)
        x = centres[which] + h * z[:, -1]
        order = np.argsort(x, kind="stable")
        z, u, x = z[order], u[order], x[order]
        covs.append(
            pd.DataFrame(
                {
                    "age": np.full(n, AGE_BAND_YEARS - 10.0 if cell.young else AGE_BAND_YEARS + 10.0),
                    "diameter_mm": np.exp(x),
                    "grade": np.full(n, cell.grade),
                    "er": np.full(n, cell.er),
                    "pr": np.full(n, cell.pr),
                    "her2": np.full(n, cell.her2),
                    "alveolar_or_trabecular": np.full(n, cell.morphology),
                    "tmem_10hpf": np.full(n, np.nan),
                }
            )
        )
        # proposal density: the mixture of normals around the cell's (distinct) patient log-diameters
        logq = np.empty(n)
        logc = np.log(counts / counts.sum())
        for lo in range(0, n, 4096):
            d = (x[lo : lo + 4096, None] - centres[None, :]) / h
            logq[lo : lo + 4096] = logsumexp(logc[None, :] - 0.5 * d * d, axis=1)
        zs.append(z)
        us.append(u)
        xs.append(x)
        logqs.append(logq - math.log(h * math.sqrt(2 * math.pi)))
    cov = pd.concat(covs, ignore_index=True)
    z, u = np.concatenate(zs), np.concatenate(us)
    member = np.minimum((u[:, 2] * len(members)).astype(int), len(members) - 1)
    parts, index, scale = [], [], np.empty(len(cov))
    for m in range(len(members)):
        sel = np.flatnonzero(member == m)
        if sel.size == 0:
            continue
        pop = members[m]
        parts.append(pop.parameters(cov.iloc[sel].reset_index(drop=True), z[sel, : Population.N_EFFECTS], u[sel, :2]))
        index.append(sel)
        scale[sel] = reference.settings.colonisation_efficiency / pop.settings.colonisation_efficiency
    params = PatientParameters.concat(parts).take(np.argsort(np.concatenate(index), kind="stable"))
    k, b = member_ctc_count_model(members, member)
    out, lo = [], 0
    for x, logq, c in zip(xs, logqs, covs, strict=True):
        sl = slice(lo, lo + x.size)
        twins = Twins(params.take(sl), member[sl], scale[sl], z[sl, 0].copy(), c.iloc[:1], k[sl], b[sl])
        out.append((twins, x, logq))
        lo += x.size
    return out


def _nb_parts(mean: np.ndarray, k) -> tuple[np.ndarray, np.ndarray]:
    """Per-twin parts ``A = k log(k/(k+m))`` and ``B = log(m/(k+m))`` of the negative binomial log-pmf (``k``:
    one size, or one per twin)."""
    m = np.asarray(mean, float)
    with np.errstate(divide="ignore"):
        return k * np.log(k / (k + m)), np.log(m / (k + m))


def _nb_add(lw: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, k: float) -> None:
    """Add ``log NB(x_i; m_j, k)`` to the rows of ``lw`` (patients x twins) whose ``x`` is given (NaN: no term);
    twins enter through ``(A, B)`` of :func:`_nb_parts`."""
    has = np.flatnonzero(~np.isnan(x))
    if has.size == 0:
        return
    term = _nb_terms(x[has], a, b, k)
    if has.size == lw.shape[0]:
        lw += term
    else:
        lw[has] += term


def _nb_terms(xs: np.ndarray, a: np.ndarray, b: np.ndarray, k) -> np.ndarray:
    """``log NB(x_i; m_j, k)`` for counts ``xs`` (patients) and twins' parts ``(A, B)``: ``c(x) + A_j + x B_j``;
    ``k`` one size for all twins, or one per twin (then ``c`` is evaluated once per distinct count and twin)."""
    if np.ndim(k) == 0:
        c = (gammaln(xs + k) - gammaln(k) - gammaln(xs + 1.0))[:, None]
    else:
        distinct, inverse = np.unique(xs, return_inverse=True)
        c = (gammaln(distinct[:, None] + k[None, :]) - gammaln(k)[None, :])[inverse]
        c -= gammaln(xs + 1.0)[:, None]
    with np.errstate(invalid="ignore"):
        term = xs[:, None] * b[None, :]
    term[xs == 0.0] = 0.0  # xlogy: a count of 0 has probability (k/(k+m))^k, also at m = 0
    term += a[None, :]
    term += c
    return term


def _ctc_add(lw: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, k, background) -> None:
    """As :func:`_nb_add` for CTC counts with the assay's Poisson background: ``log Σ_j Pois(j; b) NB(x − j)``
    (:func:`chemomet.model.dissemination.ctc_count_logpmf`), each ``NB(x − j)`` from the same per-twin parts; with
    no background the one term ``j = 0`` is :func:`_nb_add`'s. ``k`` and ``background``: one value, or one per
    twin (each twin's ensemble member's count model)."""
    has = np.flatnonzero(~np.isnan(x))
    if has.size == 0:
        return
    xs = x[has]
    with_background = bool(np.any(np.asarray(background) > 0))
    shifts = range(min(dis.BACKGROUND_TERMS, int(xs.max()) + 1)) if with_background else range(1)
    total = np.full((xs.size, a.size), -np.inf)
    for j in shifts:
        xj = xs - j
        term = _nb_terms(np.maximum(xj, 0.0), a, b, k)
        if with_background:
            term += poisson.logpmf(j, background)
            term[xj < 0] = -np.inf
        np.logaddexp(total, term, out=total)
    lw[has] += total


@dataclass
class _Pool:
    twins: Twins
    x: np.ndarray  # log-diameter, sorted
    logq: np.ndarray
    values: dict  # (strategy index, horizon) -> per-twin DMFS
    parts: dict  # per-twin evidence parts
    order: dict = None  # (strategy index, horizon) -> argsort of values

    def __post_init__(self):
        self.order = {key: np.argsort(v, kind="stable") for key, v in self.values.items()}


def _evidence_parts(twins: Twins, reference: Population, obs, f20: float) -> dict:
    p, s = twins.params, reference.settings
    out = {}
    for conv, f in (("10HPF", 1.0), ("20HPF", f20)):
        out[f"tmem_{conv}"] = _nb_parts(p.T0 * f, obs.tmem_dispersion)
    lam = dis.expected_ctc(p.mu * np.exp(p.gamma * p.log_cells0), s) * twins.ctc_scale
    out["ctc"] = _nb_parts(lam, twins.ctc_dispersion)
    out["ctc_count_model"] = (twins.ctc_dispersion, twins.ctc_background)
    out["nodes"] = _nb_parts(expected_positive_nodes(p, s), s.node_count_dispersion)
    out["ki67_centre"] = np.log(obs.ki67_median_percent) - obs.ki67_growth_slope * twins.z_doubling
    return out


def _simulate_pool(twins: Twins, strategies, reference, horizons, sim_horizon_days) -> dict:
    from chemomet.simulation import simulate

    summary_years = {3.0, 5.0, 10.0, 15.0}
    grid_years = [h for h in horizons if h not in summary_years]
    grid = np.array([h * DAYS_PER_YEAR for h in grid_years]) if grid_years else None
    values = {}
    for k, st in enumerate(strategies):
        if st is None:
            continue
        out = simulate(twins.params, st, sim_horizon_days, population=reference, grid=grid)
        for h in horizons:
            if h in summary_years:
                values[k, h] = out.summary[f"dmfs_{h:g}y"].to_numpy(float)
            else:
                values[k, h] = out.trajectories["dmfs"][:, grid_years.index(h)]
    return values


def _weighted_quantiles(values: np.ndarray, w: np.ndarray, qs, order: np.ndarray | None = None) -> list[np.ndarray]:
    """Row-wise :func:`chemomet.assess.forecast.weighted_quantiles` of ``values`` (n,) under weights ``w`` (m, n)
    whose rows sum to 1; ``order``: ``argsort(values)`` when known."""
    order = np.argsort(values, kind="stable") if order is None else order
    v, ws = values[order], w[:, order]
    cum = np.cumsum(ws, axis=1)
    cum -= 0.5 * ws
    rows = np.arange(w.shape[0])
    out = []
    for q in qs:
        k = np.sum(cum < q, axis=1)
        k0, k1 = np.clip(k - 1, 0, v.size - 1), np.clip(k, 0, v.size - 1)
        c0, c1 = cum[rows, k0], cum[rows, k1]
        t = np.where(c1 > c0, (q - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
        out.append(v[k0] + np.clip(t, 0.0, 1.0) * (v[k1] - v[k0]))
    return out


def predict(
    frame,
    strategies=("surgery-first", "nact"),
    horizons_years=(5, 10),
    *,
    regimen: str | None = None,
    settings: AssessmentSettings | None = None,
    population: Population | None = None,
    ensemble: bool = True,
    twins_per_patient: int = 10,
    min_twins_per_cell: int = 1024,
    max_twins_per_cell: int = 65536,
    diameter_bandwidth: float = 0.1,
    extra_columns: str = "error",
    chunk_patients: int = 256,
    progress=None,
) -> pd.DataFrame:
    """Posterior DMFS of every patient of a cohort under each strategy, from one shared population of twins.

    The batch counterpart of :func:`chemomet.assess.assess` (its ``strategies[].dmfs_*`` numbers): twins are drawn
    once per *cell* of patients with the same discrete covariates and treatment, simulated once per strategy, and
    weighted per patient by a diameter kernel and the likelihood of her measured biomarkers (the design is in this
    module's docstring and docs/assessment.md, "Batch prediction"). Results agree with the single-patient
    assessment within Monte Carlo error (tests/test_predict.py).

    Parameters
    ----------
    frame : pandas.DataFrame, str, Path or list
        A table whose columns are patient-file fields (:data:`COLUMNS`; ``age``, ``diameter_mm`` and ``er``
        required; an empty cell is a field left out, so a missing biomarker is integrated over), a ``.csv`` or
        ``.parquet`` file of one (:func:`read_cohort`), or a list of :class:`~chemomet.patient.Patient` or dicts.
        ``morphology`` may be text separated by ``;``, ``nact_diameters`` JSON text.
    strategies : sequence of str, default ("surgery-first", "nact")
        Strategy names (``surgery-first``, ``nact``, ``nact+<drug>``, ``nact-adaptive``, ``early-surgery``), each
        with the patient's standard adjuvant endocrine therapy and regimen, as :func:`assess` builds them.
        ``early-surgery`` applies to patients during NACT only (NaN for the others).
    horizons_years : sequence of float, default (5, 10)
        Horizons (years from diagnosis, above 0 to 40).
    regimen : str, optional
        Regimen key for every patient; default: each patient's standard regimen
        (:func:`chemomet.assess.assessment.standard_regimen`).
    settings : AssessmentSettings, optional
        Seed, credible level, observation models and standard of care (default: ``data/assessment.toml``).
    population : Population, optional
        The reference population (default: the shipped calibration).
    ensemble : bool, default True
        Draw each twin's population parameters from the calibration ensemble (only with the default population).
    twins_per_patient, min_twins_per_cell, max_twins_per_cell : int
        Pool size of a cell: ``clip(twins_per_patient x patients in the cell, min, max)`` (twins; a patient with
        unknown covariates counts in each cell by its probability). The effective sample size per patient grows
        with the patients of similar diameter in her cell; see the ``ess`` column.
    diameter_bandwidth : float, default 0.1
        SD ``h`` of the diameter kernel (log scale, i.e. about 10%); smaller: less smoothing, fewer effective
        twins.
    extra_columns : {"error", "ignore"}, default "error"
        What to do with columns that are not patient fields.
    chunk_patients : int, default 256
        Patients weighed at once (memory: patients x twins in their diameter window).
    progress : callable, optional
        ``progress(step: str)``, called at the start of each step.

    Returns
    -------
    pandas.DataFrame
        One row per input row, in order: ``row`` (data row number, from 1; the header is not counted), ``id``,
        ``status`` (``"ok"`` or ``"error"``), ``error`` (the one-line reason, or None), ``ess`` (Kish's effective
        sample size of the patient's weights, twins), and per strategy ``S`` and horizon ``H``:
        ``S_dmfs_Hy`` (posterior mean probability), ``S_dmfs_Hy_lo`` and ``S_dmfs_Hy_hi`` (central credible
        interval). Settings used are in ``.attrs["settings"]``.

    Raises
    ------
    chemomet.errors.InputError
        For a bad file or table (missing required columns, unknown columns, no rows), strategy, horizon or setting.
        A bad row is not raised: it gets ``status = "error"`` and the others are scored.

    Examples
    --------
    >>> import pandas as pd
    >>> from chemomet.assess.predict import predict
    >>> cohort = pd.DataFrame({"age": [47, 62, 300], "diameter_mm": [28, 20, 25], "grade": [3, 2, 2],
    ...                        "er": ["positive", "negative", "positive"], "pr": ["positive", "negative", None],
    ...                        "her2": ["negative", None, "negative"], "ki67_percent": [35, None, 20]})
    >>> risks = predict(cohort, ["nact"], [10], min_twins_per_cell=256)  # small pools: a quick, rough example
    >>> risks[["row", "status"]].values.tolist()
    [[1, 'ok'], [2, 'ok'], [3, 'error']]
    >>> risks.loc[2, "error"]
    'row 3: age = 300 is invalid; allowed: a number from 18 to 100 (unit: years)'
    >>> bool(risks.loc[0, "nact_dmfs_10y_lo"] <= risks.loc[0, "nact_dmfs_10y"] <= risks.loc[0, "nact_dmfs_10y_hi"])
    True

    The same from the command line, with the default pools (about 6 CPU-seconds per 1,000 patients):

    >>> from chemomet.cli import main
    >>> main(["predict", "cohort.csv", "--out", "risks.parquet", "--horizons", "5,10"])  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    say = progress or (lambda step: None)
    names = _check_strategy_names(strategies)
    horizons = _check_horizons(horizons_years)
    if extra_columns not in ("error", "ignore"):
        raise InputError(f"extra_columns = {extra_columns!r} is invalid; allowed: 'error' or 'ignore'")
    for label, v, lo in (
        ("twins_per_patient", twins_per_patient, 1),
        ("min_twins_per_cell", min_twins_per_cell, 64),
        ("max_twins_per_cell", max_twins_per_cell, 64),
        ("chunk_patients", chunk_patients, 1),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise InputError(f"{label} = {v!r} is invalid; allowed: an integer >= {lo}")
    if max_twins_per_cell < min_twins_per_cell:
        raise InputError("max_twins_per_cell is below min_twins_per_cell; allowed: max >= min")
    h = float(diameter_bandwidth)
    if not 0.005 <= h <= 1.0:
        raise InputError(f"diameter_bandwidth = {diameter_bandwidth!r} is invalid; allowed: 0.005 to 1 (log scale)")
    if regimen is not None:
        get_regimen(regimen)
    settings = settings or AssessmentSettings.default()
    obs, treatment, level = settings.observation, settings.treatment, settings.sampling.credible_level
    default_population = population is None
    reference = population or Population()
    members = shipped_ensemble() if (ensemble and default_population) else (reference,)
    f20 = float(reference.config["microenvironment"]["tmem_20hpf_per_10hpf"])

    say("reading the patients")
    rows = _patients(frame, extra_columns)
    n_rows = len(rows)
    errors: dict[int, str] = {}
    patients: dict[int, Patient] = {}
    for i, p in enumerate(rows):
        if isinstance(p, InputError):
            errors[i] = str(p)
            continue
        reg = regimen or standard_regimen(p, treatment)
        try:
            check_measurements(p, reg)
        except InputError as err:
            errors[i] = f"row {i + 1}: {err}"
            continue
        if p.parameters:
            errors[i] = f"row {i + 1}: fixed parameters are not supported by predict; allowed: none (use assess)"
            continue
        patients[i] = p

    # treatment keys, groups (known covariates + treatment) and cells
    group_of: dict[int, tuple] = {}
    groups: dict[tuple, list[tuple[_Cell, float]]] = {}
    plans: dict[tuple, list] = {}
    cell_patients: dict[_Cell, list[int]] = {}
    for i, p in patients.items():
        reg = regimen or standard_regimen(p, treatment)
        now = p.nact_diameters[-1].day if p.nact_diameters else None
        tkey = (reg, standard_endocrine(p, treatment), now)
        if tkey not in plans:
            plans[tkey] = _resolve_strategies(names, p, reg, treatment)
        young = p.age < AGE_BAND_YEARS
        morph = bool({"alveolar", "trabecular"} & set(p.morphology))
        gkey = (p.er, p.pr, p.her2, p.grade, young, morph, tkey)
        if gkey not in groups:
            groups[gkey] = [
                (_Cell(**c, young=young, morphology=morph, treatment=tkey), w)
                for c, w in _unknown_mixture(p, reference)
            ]
        group_of[i] = gkey
        for cell, w in groups[gkey]:
            cell_patients.setdefault(cell, []).append((i, w))

    sim_days = max(horizons) * DAYS_PER_YEAR
    pools: dict[_Cell, _Pool] = {}
    root = child(root_seed(settings.sampling.seed), POOL_STREAM)
    cells = sorted(cell_patients, key=lambda c: (repr(c.treatment), c.er, c.pr, c.her2, c.grade, c.young, c.morphology))
    specs = []
    for cell in cells:
        ids = [i for i, _ in cell_patients[cell]]
        share = sum(w for _, w in cell_patients[cell])  # patients, counted by their probability of this cell
        n = int(np.clip(round(twins_per_patient * share), min_twins_per_cell, max_twins_per_cell))
        logd = np.round(np.log([patients[i].diameter_mm for i in ids]), 3)
        centres, counts = np.unique(logd, return_counts=True)
        specs.append((cell, centres, counts.astype(float), n))
    total_twins = sum(s[3] for s in specs)
    say(f"drawing {total_twins:,} virtual twins in {len(cells)} cells")
    drawn = _draw_pools(specs, root, reference, members, h)
    for k, ((cell, _, _, n), (twins, x, logq)) in enumerate(zip(specs, drawn, strict=True)):
        plan = plans[cell.treatment]
        say(
            f"cell {k + 1}/{len(cells)}: simulating {n:,} twins for {len(cell_patients[cell]):,} patients under "
            f"{sum(s is not None for s in plan)} strategies"
        )
        values = _simulate_pool(twins, plan, reference, horizons, sim_days)
        pools[cell] = _Pool(twins, x, logq, values, _evidence_parts(twins, reference, obs, f20))

    # weigh and summarise, group by group, in chunks of patients sorted by diameter
    say(f"weighing {total_twins:,} twins for {len(patients):,} patients")
    columns = [(k, name, hz) for k, name in enumerate(names) for hz in horizons]
    result = {f"{name}_dmfs_{hz:g}y{suffix}": np.full(n_rows, np.nan) for _, name, hz in columns
              for suffix in ("", "_lo", "_hi")}
    ess = np.full(n_rows, np.nan)
    qs = [(1 - level) / 2, (1 + level) / 2]
    by_group: dict[tuple, list[int]] = {}
    for i, g in group_of.items():
        by_group.setdefault(g, []).append(i)
    for gkey, members_i in by_group.items():
        mixture = groups[gkey]
        order = sorted(members_i, key=lambda i: patients[i].diameter_mm)
        for lo in range(0, len(order), chunk_patients):
            idx = order[lo : lo + chunk_patients]
            _score_chunk(
                [patients[i] for i in idx], np.array(idx), mixture, pools, plans[gkey[-1]], columns, horizons, qs,
                h, obs, reference, result, ess, errors,
            )

    out = pd.DataFrame(
        {
            "row": np.arange(1, n_rows + 1),
            "id": [p.id if isinstance(p, Patient) else None for p in rows],
            "status": ["error" if i in errors else "ok" for i in range(n_rows)],
            "error": [errors.get(i) for i in range(n_rows)],
            "ess": ess,
            **result,
        }
    )
    if isinstance(frame, pd.DataFrame) and "id" in frame.columns:  # the table's ids, also for bad rows
        out["id"] = [None if _missing(v) else str(v) for v in frame["id"]]
    out.attrs["settings"] = {
        "strategies": names,
        "horizons_years": horizons,
        "regimen": regimen,
        "seed": settings.sampling.seed,
        "credible_level": level,
        "ensemble_members": len(members),
        "cells": len(cells),
        "twins": total_twins,
        "twins_per_patient": twins_per_patient,
        "min_twins_per_cell": min_twins_per_cell,
        "max_twins_per_cell": max_twins_per_cell,
        "diameter_bandwidth": h,
        "elapsed_s": time.perf_counter() - t_start,
    }
    return out


def _score_chunk(chunk, rows, mixture, pools, plan, columns, horizons, qs, h, obs, reference, result, ess, errors):
    """Weigh the twins of the group's cells for a chunk of patients and write their summaries into ``result``."""
    x = np.log([p.diameter_mm for p in chunk])
    lo_x, hi_x = x.min() - EDGE * h, x.max() + EDGE * h

    def val(get):
        return np.array([np.nan if (v := get(p)) is None else float(v) for p in chunk])

    tmem = val(lambda p: p.tmem_score)
    tmem_after = val(lambda p: p.tmem_score_after_nact)
    ctc, nodes, ki67 = val(lambda p: p.ctc_count), val(lambda p: p.nodes_positive), val(lambda p: p.ki67_percent)
    conv20 = np.array([p.tmem_convention == "20HPF" for p in chunk])
    f20 = float(reference.config["microenvironment"]["tmem_20hpf_per_10hpf"])
    s = reference.settings
    logw_parts, values, windows = [], {c: [] for c in columns}, []
    for cell, w_cell in mixture:
        pool = pools[cell]
        a, b = np.searchsorted(pool.x, [lo_x, hi_x])
        sl = slice(a, b)
        windows.append((pool, sl))
        if b <= a:
            logw_parts.append(np.full((len(chunk), 0), -np.inf))
            for c in columns:
                values[c].append(np.empty(0))
            continue
        pt = pool.parts
        lw = x[:, None] - pool.x[None, sl]
        lw *= lw
        lw *= -0.5 / (h * h)
        lw += (math.log(w_cell) - math.log(pool.x.size)) - pool.logq[None, sl]
        k_t = obs.tmem_dispersion
        for conv, mask in (("10HPF", ~conv20), ("20HPF", conv20)):
            if not mask.any():
                continue
            a_t, b_t = pt[f"tmem_{conv}"]
            _nb_add(lw, np.where(mask, tmem, np.nan), a_t[sl], b_t[sl], k_t)
            if not np.isnan(tmem_after[mask]).all():
                f = 1.0 if conv == "10HPF" else f20
                ratio = tmem_ratio_at_surgery(
                    pool.twins.take(sl), nact_strategy(cell.treatment[0]), reference
                )
                a2, b2 = _nb_parts(pool.twins.params.T0[sl] * f * ratio, k_t)
                _nb_add(lw, np.where(mask, tmem_after, np.nan), a2, b2, k_t)
        k_c, b_c = pt["ctc_count_model"]
        _ctc_add(lw, ctc, pt["ctc"][0][sl], pt["ctc"][1][sl], k_c[sl], b_c[sl])
        _nb_add(lw, nodes, pt["nodes"][0][sl], pt["nodes"][1][sl], s.node_count_dispersion)
        has = np.flatnonzero(~np.isnan(ki67))
        if has.size:
            lx = np.log(np.maximum(ki67[has], 0.5))
            dz = (lx[:, None] - pt["ki67_centre"][None, sl]) / obs.ki67_residual_sdlog
            dz *= dz
            dz *= -0.5
            if has.size == lw.shape[0]:
                lw += dz
            else:
                lw[has] += dz
        for r, p in enumerate(chunk):
            if p.nact_diameters:
                days = np.array([m.day for m in p.nact_diameters])
                dm = np.array([m.diameter_mm for m in p.nact_diameters])
                model = primary_diameters(pool.twins.take(sl), nact_strategy(cell.treatment[0]), days, reference)
                lw[r] += diameter_loglik(dm, model, obs)
        logw_parts.append(lw)
        for c in columns:
            k, _, hz = c
            v = pool.values.get((k, hz))
            values[c].append(v[sl] if v is not None else np.full(b - a, np.nan))
    logw = np.concatenate(logw_parts, axis=1)
    top = np.max(logw, axis=1, initial=-np.inf)
    bad = ~np.isfinite(top)
    for r in np.flatnonzero(bad):
        errors[int(rows[r])] = (
            f"row {int(rows[r]) + 1}: measurements are impossible under the model: every virtual twin gives them "
            "probability 0; allowed: measurements the population can produce (check the CTC count and TMEM score)"
        )
    good = ~bad
    if not good.any():
        return
    w = np.exp(logw[good] - top[good, None])
    w /= w.sum(axis=1, keepdims=True)
    keep = np.flatnonzero(w.max(axis=0) > 1e-12)  # twins that weigh for no patient of the chunk
    single = len(windows) == 1 and keep.size == w.shape[1]
    w = w[:, keep] if not single else w
    where = rows[good]
    ess[where] = 1.0 / np.sum(w * w, axis=1)
    for c in columns:
        k, name, hz = c
        v = np.concatenate(values[c])
        v = v if single else v[keep]
        if plan[k] is None or not np.isfinite(v).all():
            continue
        order = None
        if single:  # the pool's order by value, restricted to the window: no sort
            pool, sl = windows[0]
            full = pool.order[c[0], hz]
            order = full[(full >= sl.start) & (full < sl.stop)] - sl.start
        key = f"{name}_dmfs_{hz:g}y"
        result[key][where] = w @ v
        lo_q, hi_q = _weighted_quantiles(v, w, qs, order)
        result[key + "_lo"][where] = lo_q
        result[key + "_hi"][where] = hi_q


# ---------------------------------------------------------------------------------------------- command line
def _command(
    cohort: Path = typer.Argument(..., help="Cohort table (.csv or .parquet): patient fields as columns."),
    out: Path = typer.Option(..., "--out", help="Write the risks (.parquet or .csv)."),
    strategy: list[str] = typer.Option(
        ["surgery-first", "nact"], "--strategy", "-s", help="Strategy; repeat for several."
    ),
    horizons: str = typer.Option("5,10", "--horizons", help="Horizons, comma-separated (years)."),
    regimen: str | None = typer.Option(
        None, "--regimen", "-r", help="Regimen key for everyone (default: each patient's standard regimen)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: data/assessment.toml)."),
    twins_per_patient: int = typer.Option(10, "--twins-per-patient", help="Pool twins per patient."),
    ignore_extra_columns: bool = typer.Option(
        False, "--ignore-extra-columns", help="Ignore columns that are not patient fields."
    ),
    show_progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress on standard error (default: when it is a terminal)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Posterior DMFS for every patient of a cohort table, from one shared population of virtual twins.

    Bad rows are reported on standard error, one line each with the row number, and get status "error" in the
    output; the others are scored.
    """
    from chemomet.fileio import atomic_write, check_output_path, json_safe

    check_output_path(out, (".parquet", ".csv"), "--out")
    try:
        hs = [float(v) for v in horizons.split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"--horizons = {horizons!r} is invalid; allowed: numbers separated by commas (unit: years)"
        ) from None
    settings = AssessmentSettings.default()
    if seed is not None:
        settings = settings.with_overrides({"sampling.seed": seed})
    show = sys.stderr.isatty() if show_progress is None else show_progress
    t0, c0 = time.perf_counter(), time.process_time()

    def progress(step: str) -> None:
        if show:
            typer.echo(f"  [{time.perf_counter() - t0:6.1f} s] {step}", err=True)

    table = read_cohort(cohort)
    risks = predict(
        table, strategy, hs, regimen=regimen, settings=settings, twins_per_patient=twins_per_patient,
        extra_columns="ignore" if ignore_extra_columns else "error", progress=progress,
    )
    bad = risks[risks["status"] == "error"]
    for msg in bad["error"]:
        typer.echo(f"error: {msg}", err=True)
    if len(bad) == len(risks):
        raise InputError(f"{cohort}: no row could be scored ({len(bad)} bad rows); allowed: valid patient rows")
    atomic_write(
        out, lambda tmp: risks.to_parquet(tmp) if out.suffix.lower() == ".parquet" else risks.to_csv(tmp, index=False)
    )
    summary = {
        "cohort": str(cohort),
        "out": str(out),
        "rows": len(risks),
        "scored": int((risks["status"] == "ok").sum()),
        "errors": [{"row": int(r), "error": e} for r, e in zip(bad["row"], bad["error"], strict=True)],
        "median_ess": float(risks["ess"].median()),
        "settings": risks.attrs["settings"],
        "cpu_s": time.process_time() - c0,
        "wall_s": time.perf_counter() - t0,
    }
    if json_:
        typer.echo(json.dumps(json_safe(summary), indent=2, allow_nan=False))
    else:
        typer.echo(
            f"{summary['scored']:,} of {summary['rows']:,} patients scored ({len(bad):,} bad rows); "
            f"median effective sample size {summary['median_ess']:.0f}; risks written to {out}"
        )
