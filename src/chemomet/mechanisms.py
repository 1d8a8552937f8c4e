"""Prometastatic mechanisms as switchable, sourced modules (docs/science.md §2.16).

``data/mechanisms.toml`` describes each mechanism the engine can carry — doorway-mediated intravasation (on in
the shipped model), chemotherapy-primed colonisation, mobilisation of tumour cells, and treatment-changing drug
toxicity — with its parameters' priors, sources and "off" state. :func:`load_mechanisms` reads it through a
validated model; :func:`mechanism_settings` turns a population's ``[mechanisms]`` table into the
:class:`Mechanisms` the engine consumes (all new mechanisms off unless named, so the default model is unchanged);
:func:`drug_mechanism_table` says which drug acts on which mechanism, in which direction and on what evidence.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from chemomet.errors import InputError, printable, shown_value, validation_error
from chemomet.regimens import load_drugs, load_targets


def _data_text(name: str) -> str:
    return resources.files("chemomet.data").joinpath(name).read_text(encoding="utf-8")


KNOWN = ("doorway", "priming", "mobilisation", "drug_toxicity")
"""The mechanisms the engine implements (keys of ``data/mechanisms.toml``)."""

RULES: dict[str, tuple[str, str | None]] = {
    "median": ("a number from lower to upper", None),
    "sdlog": ("a number from 0 to 5", None),
    "lower": ("a number >= 0", None),
    "upper": ("a number >= lower", None),
    "default": ("true or false", None),
    "direction": ('"raises", "lowers" or "either"', None),
    "evidence": ('"clinical", "preclinical" or "assumption"', None),
    "title": ("a text", None),
    "acts_on": ("a text naming the model quantity", None),
    "source": ("a text naming the source", None),
    "unit": ("a text naming the unit", None),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterPrior(_Strict):
    """Prior of one mechanism parameter: log-normal with ``median`` and ``sdlog``, kept in ``[lower, upper]``.

    Attributes
    ----------
    median : float
        Prior median (in ``unit``).
    sdlog : float
        Standard deviation of the natural log (dimensionless, 0 to 5; 0: a fixed value).
    lower, upper : float
        Physical bounds of the value (in ``unit``).
    unit : str
        The unit.
    source : str
        Where the prior comes from.
    evidence : {"clinical", "preclinical", "assumption"}, optional
        Evidence level (a mobilising target's own).
    per_patient : bool, default False
        True when the value varies between patients (its per-patient prior lives in ``data/population.toml``).

    Examples
    --------
    >>> prior = ParameterPrior(median=1.0, sdlog=0.7, lower=0.0, upper=20.0, unit="-", source="assumption")
    >>> round(prior.at(1.6449), 2)  # the 95th percentile
    3.16
    """

    lower: float = Field(ge=0)
    upper: float
    median: float
    sdlog: float = Field(ge=0, le=5)
    unit: str
    source: str = Field(min_length=1)
    evidence: Literal["clinical", "preclinical", "assumption"] | None = None
    per_patient: bool = False

    @field_validator("upper")
    @classmethod
    def _above_lower(cls, v: float, info: ValidationInfo) -> float:
        lower = info.data.get("lower")
        if lower is not None and v < lower:
            raise ValueError(f"a number >= lower, {lower:g}")
        return v

    @field_validator("median")
    @classmethod
    def _within_bounds(cls, v: float, info: ValidationInfo) -> float:
        lower, upper = info.data.get("lower"), info.data.get("upper")
        if lower is not None and upper is not None and not lower <= v <= upper:
            raise ValueError(f"a number from lower to upper, {lower:g} to {upper:g}")
        return v

    def at(self, z: float = 0.0) -> float:
        """The value at the standard-normal quantile ``z`` of the prior (0: the median), clipped to the bounds."""
        return float(np.clip(self.median * np.exp(self.sdlog * z), self.lower, self.upper))


class MechanismSpec(_Strict):
    """One mechanism of ``data/mechanisms.toml``: what it acts on, its priors, sources and off state.

    Attributes
    ----------
    title, acts_on, off_state, source : str
        Name, the model quantity it changes, what "off" means, and its evidence in the team's words.
    default : bool
        Whether the shipped model runs with it.
    direction : {"raises", "lowers", "either"}
        How it moves metastasis risk when switched on.
    evidence : {"clinical", "preclinical", "assumption"}
        Level of evidence for the mechanism itself.
    modules : list of str
        Source modules that implement it.
    parameters : dict[str, ParameterPrior]
        Its parameters' priors.
    targets : dict[str, ParameterPrior]
        Accompanying-drug targets that act on it (mobilisation: release per unit target inhibition).

    Examples
    --------
    >>> load_mechanisms()["priming"].parameters["take_increase"].median
    1.0
    """

    title: str
    default: bool
    direction: Literal["raises", "lowers", "either"]
    evidence: Literal["clinical", "preclinical", "assumption"]
    acts_on: str
    modules: list[str] = Field(default_factory=list)
    off_state: str
    source: str = Field(min_length=1)
    parameters: dict[str, ParameterPrior] = Field(default_factory=dict)
    targets: dict[str, ParameterPrior] = Field(default_factory=dict)


def parse_mechanisms(table: dict, where: str = "mechanisms", targets: dict[str, str] | None = None):
    """Validate a ``{name: {...}}`` table of mechanisms (the layout of ``data/mechanisms.toml``).

    Parameters
    ----------
    table : dict
        Mechanism name -> its fields; every name of :data:`KNOWN` must be present and no other.
    where : str, default "mechanisms"
        Where the table came from (the prefix of any error message).
    targets : dict[str, str], optional
        Known accompanying-drug targets (default: :func:`chemomet.regimens.load_targets`).

    Returns
    -------
    dict[str, MechanismSpec]

    Raises
    ------
    InputError
        One line naming the first bad field, its value and what is allowed.

    Examples
    --------
    >>> import tomllib
    >>> table = tomllib.loads(_data_text("mechanisms.toml"))
    >>> sorted(parse_mechanisms(table))
    ['doorway', 'drug_toxicity', 'mobilisation', 'priming']
    >>> table["priming"]["parameters"]["take_increase"]["median"] = -1.0
    >>> parse_mechanisms(table)
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: mechanisms: priming: parameters.take_increase.median = -1.0 is invalid; allowed: a
    number from lower to upper, 0 to 20
    """
    targets = load_targets() if targets is None else targets
    names = set(table) if isinstance(table, dict) else set()
    if not isinstance(table, dict) or names != set(KNOWN):
        shown = sorted(names) if isinstance(table, dict) else shown_value(table)
        raise InputError(f"{where}: mechanisms {shown} are invalid; allowed: exactly {list(KNOWN)}")
    out = {}
    for name in KNOWN:
        spec = table[name]
        if not isinstance(spec, dict):
            raise InputError(f"{where}: {name} = {shown_value(spec)} is invalid; allowed: a table of mechanism fields")
        try:
            out[name] = MechanismSpec(**spec)
        except ValidationError as err:
            raise validation_error(err, f"{where}: {name}", RULES, reasons=True) from None
        for target in out[name].targets:
            if target not in targets:
                raise InputError(
                    f"{where}: {name}.targets.{printable(target)} is invalid; allowed: one of {sorted(targets)}"
                )
    return out


@cache
def load_mechanisms() -> dict[str, MechanismSpec]:
    """The shipped mechanisms (``data/mechanisms.toml``), validated.

    Examples
    --------
    >>> specs = load_mechanisms()
    >>> [name for name, spec in specs.items() if spec.default]
    ['doorway']
    >>> specs["mobilisation"].targets["CXCR4"].evidence
    'clinical'
    """
    return parse_mechanisms(tomllib.loads(_data_text("mechanisms.toml")), "mechanisms.toml")


@dataclass(frozen=True)
class Mechanisms:
    """The mechanisms a simulation carries and their strengths (population-level; the engine's input).

    The defaults are the shipped model: the doorway mechanism on, everything else off (the numbers are then
    bit-identical to a model without this switch). Build it with :func:`mechanism_settings`.

    Attributes
    ----------
    doorway : bool, default True
        Doorway-mediated intravasation; False sets every patient's ``ε`` to 0.
    priming_take_increase : float, default 0.0
        ``π``: colonies founded from the first chemotherapy dose until ``priming_days_after_last_dose`` after the
        last one are multiplied by ``1 + π`` (dimensionless; 0: off).
    priming_days_after_last_dose : float, default 0.0
        How long the priming outlasts the last dose (days).
    mobilisation_per_stress : float, default 0.0
        Release added per unit chemotherapy stress ``D(t)`` (dimensionless; 0: off).
    mobilisation_per_inhibition : tuple of (str, float), default ()
        ``(target, ν)``: release added per unit inhibition ``I(t)`` of the target by an accompanying drug.
    drug_toxicity : bool, default False
        Draw each patient's treatment-changing drug toxicity (``data/drugs.toml``) and change her schedule.

    Examples
    --------
    >>> Mechanisms().is_default
    True
    >>> m = Mechanisms(mobilisation_per_inhibition=(("CXCR4", 1.0),))
    >>> m.mobilisation, m.release_per_inhibition("CXCR4"), m.release_per_inhibition("TIE2")
    (True, 1.0, 0.0)
    """

    doorway: bool = True
    priming_take_increase: float = 0.0
    priming_days_after_last_dose: float = 0.0
    mobilisation_per_stress: float = 0.0
    mobilisation_per_inhibition: tuple[tuple[str, float], ...] = ()
    drug_toxicity: bool = False

    @property
    def priming(self) -> bool:
        """Whether chemotherapy-primed colonisation is on."""
        return self.priming_take_increase > 0

    @property
    def mobilisation(self) -> bool:
        """Whether mobilisation is on (by chemotherapy or by any target)."""
        return self.mobilisation_per_stress > 0 or any(v > 0 for _, v in self.mobilisation_per_inhibition)

    @property
    def is_default(self) -> bool:
        """True for the shipped model: doorway on, every other mechanism off."""
        return self == Mechanisms()

    def release_per_inhibition(self, target: str | None) -> float:
        """``ν`` of a target (dimensionless; 0 when it does not mobilise)."""
        return float(sum(v for t, v in self.mobilisation_per_inhibition if t == target))

    def without_new(self) -> Mechanisms:
        """The same doorway setting with priming and mobilisation off (the excess-risk decomposition's first step).

        Examples
        --------
        >>> Mechanisms(priming_take_increase=1.0, priming_days_after_last_dose=14.0).without_new().is_default
        True
        """
        return Mechanisms(doorway=self.doorway, drug_toxicity=self.drug_toxicity)


def _value(where: str, name: str, prior: ParameterPrior, given) -> float:
    if given is None:
        return prior.median
    if isinstance(given, bool) or not isinstance(given, int | float) or not prior.lower <= given <= prior.upper:
        raise InputError(
            f"{where}: {name} = {shown_value(given)} is invalid; allowed: a number from {prior.lower:g} to "
            f"{prior.upper:g} (unit: {prior.unit})"
        )
    return float(given)


def mechanism_settings(table: dict | None, specs: dict[str, MechanismSpec] | None = None) -> Mechanisms:
    """The :class:`Mechanisms` of a population's ``[mechanisms]`` table.

    Each key names a mechanism of :data:`KNOWN`; its value is ``true`` / ``false`` (on at the prior medians / off),
    or a table of parameter values (on, with those values; the rest at their prior medians). Mechanisms not named
    keep their default (only the doorway mechanism is on).

    Parameters
    ----------
    table : dict or None
        E.g. ``{"priming": True, "mobilisation": {"CXCR4": 2.0}}``; None or empty: the shipped model.
    specs : dict[str, MechanismSpec], optional
        The mechanisms (default: :func:`load_mechanisms`).

    Returns
    -------
    Mechanisms

    Raises
    ------
    InputError
        For an unknown mechanism or parameter, or a value outside its bounds (one line, with the unit).

    Examples
    --------
    >>> mechanism_settings(None).is_default
    True
    >>> m = mechanism_settings({"priming": True, "mobilisation": {"CXCR4": 2.0}})
    >>> m.priming_take_increase, m.priming_days_after_last_dose, m.release_per_inhibition("CXCR4")
    (1.0, 14.0, 2.0)
    >>> mechanism_settings({"priming": {"take_increase": -1}})
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: mechanisms: priming.take_increase = -1 is invalid; allowed: a number from 0 to 20
    (unit: dimensionless (founding multiplied by 1 + value))
    """
    specs = load_mechanisms() if specs is None else specs
    table = table or {}
    where = "mechanisms"
    if not isinstance(table, dict):
        raise InputError(f"{where} = {shown_value(table)} is invalid; allowed: a table of mechanism names")
    on: dict[str, dict] = {}
    for name, value in table.items():
        if name not in specs:
            raise InputError(f"{where}: {printable(name)} is not a known mechanism; allowed: one of {list(specs)}")
        if isinstance(value, bool):
            given = {} if value else None
        elif isinstance(value, dict):
            given = value
        else:
            raise InputError(
                f"{where}: {name} = {shown_value(value)} is invalid; allowed: true, false or a table of parameter "
                "values"
            )
        spec = specs[name]
        if given is not None:
            known = {**spec.parameters, **spec.targets}
            for key in given:
                if key not in known:
                    raise InputError(
                        f"{where}: {name}.{printable(key)} is not a parameter of {name}; allowed: one of "
                        f"{sorted(known)}"
                    )
            on[name] = {k: _value(where, f"{name}.{k}", p, given.get(k)) for k, p in known.items()}
        elif name == "doorway":
            on["doorway_off"] = {}
    priming = on.get("priming", {})
    mob = on.get("mobilisation")
    return Mechanisms(
        doorway="doorway_off" not in on,
        priming_take_increase=priming.get("take_increase", 0.0),
        priming_days_after_last_dose=priming.get("days_after_last_dose", 0.0),
        mobilisation_per_stress=0.0 if mob is None else mob["per_unit_stress"],
        mobilisation_per_inhibition=()
        if mob is None
        else tuple((t, mob[t]) for t in specs["mobilisation"].targets),
        drug_toxicity="drug_toxicity" in on,
    )


def drug_mechanism_table(drugs=None, specs: dict[str, MechanismSpec] | None = None) -> list[dict]:
    """Which accompanying drug acts on which mechanism, in which direction, and on what evidence.

    A drug acts through its target: on the doorway mechanism as ``data/targets.toml`` says (it only lowers
    doorway-mediated founding), on mobilisation when its target is a mobilising target of ``data/mechanisms.toml``
    (it raises release), and on the schedule when it has a treatment-changing toxicity (``data/drugs.toml``).

    Parameters
    ----------
    drugs : dict[str, Drug], optional
        The drug table (default: :func:`chemomet.regimens.load_drugs`).
    specs : dict[str, MechanismSpec], optional
        The mechanisms (default: :func:`load_mechanisms`).

    Returns
    -------
    list of dict
        One row per (drug, mechanism): ``drug``, ``target``, ``mechanism``, ``effect`` ("lowers" / "raises" /
        "changes the schedule"), ``evidence``, ``source``.

    Examples
    --------
    >>> rows = drug_mechanism_table()
    >>> [(r["drug"], r["mechanism"], r["effect"]) for r in rows if r["drug"] == "plerixafor"]
    [('plerixafor', 'doorway', 'lowers'), ('plerixafor', 'mobilisation', 'raises')]
    >>> [r["mechanism"] for r in rows if r["drug"] == "pexidartinib"]
    ['doorway', 'drug_toxicity']
    """
    drugs = load_drugs() if drugs is None else drugs
    specs = load_mechanisms() if specs is None else specs
    targets = tomllib.loads(_data_text("targets.toml"))
    rows = []
    for name, d in drugs.items():
        if d.role != "accompanying":
            continue
        shipped = targets.get(d.target, {})
        rows.append({
            "drug": name, "target": d.target, "mechanism": "doorway", "effect": "lowers",
            "evidence": shipped.get("evidence", "assumption"),
            "source": shipped.get("source", f"target {d.target}: {d.acts_on}"),
        })
        if d.target in specs["mobilisation"].targets:
            prior = specs["mobilisation"].targets[d.target]
            rows.append({
                "drug": name, "target": d.target, "mechanism": "mobilisation", "effect": "raises",
                "evidence": prior.evidence or specs["mobilisation"].evidence, "source": prior.source,
            })
        if d.toxicity is not None:
            rows.append({
                "drug": name, "target": d.target, "mechanism": "drug_toxicity", "effect": "changes the schedule",
                "evidence": d.toxicity.evidence, "source": d.toxicity.source,
            })
    return rows


OPTION_HELP = (
    "Prometastatic mechanisms to switch on: a comma-separated list (priming, mobilisation, drug_toxicity, all; off: "
    "the shipped model) at their prior medians, or a .toml file with a [mechanisms] table of strengths."
)
"""Help text of the ``--mechanisms`` option of the command line (:func:`mechanisms_from_option`)."""

STANDARD_SETTINGS: dict[str, dict] = {
    "off": {},
    "priming": {"priming": True},
    "mobilisation": {"mobilisation": True},
    "drug_toxicity": {"drug_toxicity": True},
    "all": {"priming": True, "mobilisation": True, "drug_toxicity": True},
}
"""The mechanism settings subgroup and sensitivity analyses compare: ``off`` (the shipped model, doorway mechanism
only), each further mechanism on at its prior medians, and ``all`` of them on (tables for
:func:`mechanism_settings`)."""


def mechanisms_from_option(value: str | None, where: str = "--mechanisms") -> dict:
    """The ``[mechanisms]`` table a command-line option names.

    ``value`` is a comma-separated list of mechanism names switched on at their prior medians
    (``priming,mobilisation``; ``all`` for every further mechanism; ``off`` or ``none`` for the shipped model), or a
    ``.toml`` file holding a ``[mechanisms]`` table (or the table's keys at top level) with strengths, e.g.
    ``[mechanisms.mobilisation]`` ``CXCR4 = 2.0``. The table is validated by :func:`mechanism_settings`.

    Parameters
    ----------
    value : str or None
        The option's text; None or empty: the shipped model.
    where : str, default "--mechanisms"
        The option's name (the prefix of any error message).

    Returns
    -------
    dict
        The validated table (mechanism name -> ``True`` or a table of parameter values).

    Raises
    ------
    InputError
        One line naming the option, the value and what is allowed (an unknown name, a bad file or strength).

    Examples
    --------
    >>> mechanisms_from_option("priming,mobilisation")
    {'priming': True, 'mobilisation': True}
    >>> mechanisms_from_option("off")
    {}
    >>> sorted(mechanisms_from_option("all"))
    ['drug_toxicity', 'mobilisation', 'priming']
    >>> mechanisms_from_option("priming,inflammation")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --mechanisms = 'priming,inflammation' is invalid: 'inflammation' is not a known
    mechanism; allowed: a comma-separated list of ['doorway', 'priming', 'mobilisation', 'drug_toxicity'], 'all',
    'off', or a .toml file with a [mechanisms] table
    """
    from pathlib import Path

    from chemomet.inputs import read_data

    text = "" if value is None else str(value).strip()
    if text.lower() in ("", "off", "none"):
        return {}
    if text.lower().endswith(".toml"):
        data = read_data(Path(text), "mechanisms", where=f"{where} = {printable(text)!r}")
        table = data.get("mechanisms", data) if isinstance(data, dict) else data
        try:
            mechanism_settings(table)
        except InputError as err:
            raise InputError(f"{where} = {printable(text)!r}: {err}") from None
        return dict(table)
    names = [n.strip() for n in text.split(",") if n.strip()]
    out: dict = {}
    for name in names:
        if name == "all":
            out.update(STANDARD_SETTINGS["all"])
        elif name in KNOWN:
            out[name] = True
        else:
            raise InputError(
                f"{where} = {printable(text)!r} is invalid: {printable(name)!r} is not a known mechanism; allowed: a "
                f"comma-separated list of {list(KNOWN)}, 'all', 'off', or a .toml file with a [mechanisms] table"
            )
    mechanism_settings(out)
    return out


def harm_routes(mechanisms: Mechanisms, drugs=None) -> dict[str, list[str]]:
    """Per accompanying drug, the mechanisms switched on in ``mechanisms`` by which it can *raise* risk.

    A drug can harm through mobilisation when its target releases cells (``ν_target > 0``) and through
    ``drug_toxicity`` when that mechanism is on and the drug carries a treatment-changing toxicity with a
    probability above 0. With neither, the model has no route by which the drug can harm.

    Parameters
    ----------
    mechanisms : Mechanisms
        The mechanisms carried.
    drugs : dict[str, Drug], optional
        The drug table (default: :func:`chemomet.regimens.load_drugs`).

    Returns
    -------
    dict[str, list of str]
        Drug name -> mechanism names (empty: no route to harm), for every accompanying drug.

    Examples
    --------
    >>> harm_routes(Mechanisms())["plerixafor"]
    []
    >>> routes = harm_routes(mechanism_settings({"mobilisation": True, "drug_toxicity": True}))
    >>> routes["plerixafor"], routes["pexidartinib"], routes["rebastinib"]
    (['mobilisation'], ['drug_toxicity'], [])
    """
    drugs = load_drugs() if drugs is None else drugs
    out = {}
    for name, d in drugs.items():
        if d.role != "accompanying":
            continue
        routes = []
        if mechanisms.release_per_inhibition(d.target) > 0:
            routes.append("mobilisation")
        if mechanisms.drug_toxicity and d.toxicity is not None and d.toxicity.probability > 0:
            routes.append("drug_toxicity")
        out[name] = routes
    return out


def describe_mechanisms(mechanisms: Mechanisms, table: dict | None = None) -> dict:
    """What a result records about the mechanisms it was computed with: which are on, their strengths and each
    accompanying drug's routes to harm (:func:`harm_routes`).

    Parameters
    ----------
    mechanisms : Mechanisms
        The mechanisms carried.
    table : dict, optional
        The ``[mechanisms]`` table they came from (recorded as given).

    Returns
    -------
    dict
        ``on`` (list of mechanism names), ``strengths`` (parameter -> value: ``priming_take_increase`` and
        ``mobilisation_per_stress`` dimensionless, ``priming_days_after_last_dose`` in days,
        ``mobilisation_per_inhibition`` target -> dimensionless), ``harm_routes`` and ``table``.

    Examples
    --------
    >>> d = describe_mechanisms(mechanism_settings({"priming": True}), {"priming": True})
    >>> d["on"], d["strengths"]["priming_take_increase"], d["strengths"]["priming_days_after_last_dose"]
    (['doorway', 'priming'], 1.0, 14.0)
    >>> describe_mechanisms(Mechanisms())["on"]
    ['doorway']
    """
    on = [name for name, flag in (
        ("doorway", mechanisms.doorway), ("priming", mechanisms.priming),
        ("mobilisation", mechanisms.mobilisation), ("drug_toxicity", mechanisms.drug_toxicity),
    ) if flag]
    return {
        "on": on,
        "strengths": {
            "priming_take_increase": mechanisms.priming_take_increase,
            "priming_days_after_last_dose": mechanisms.priming_days_after_last_dose,
            "mobilisation_per_stress": mechanisms.mobilisation_per_stress,
            "mobilisation_per_inhibition": dict(mechanisms.mobilisation_per_inhibition),
        },
        "harm_routes": harm_routes(mechanisms),
        "table": dict(table or {}),
    }
