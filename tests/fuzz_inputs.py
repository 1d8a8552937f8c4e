"""The fuzzing harness of the one-line-error promise (used by tests/test_fuzz_inputs.py).

Hypothesis strategies build malformed input files of five kinds: patient files (JSON and TOML), regimens (TOML),
trial specs (TOML) and cell tables (CSV). Each starts from a valid file and is damaged: fields set to wrong types
or extreme numbers (hundreds of digits, 1e308, nan, inf, negative), unicode and control characters, deep nesting,
fields dropped or unknown fields added; the serialised text is then sometimes truncated, spliced with random
bytes, prefixed with a BOM or replaced by junk.

Every file drives the command line in process (``chemomet.cli.main``) and the promise is checked: exit code 0 or
2; for 2, exactly one line on standard error (starting ``error:``, no control characters), nothing on standard
output and no output file; never a traceback (an exception escaping ``main``).

The trial kind replaces the simulation (``chemomet.trial.runner._dispatch``) by screening alone: a valid spec may
ask for 10 million patients, and the promise is about the input, which is read, validated, screened and given its
run folder (created, probed, locked) exactly as in a real run.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import shutil
import tempfile
import traceback
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from chemomet.cli import main
from chemomet.patient import PARAMETER_RULES

ROOT = Path(__file__).parents[1]
EXAMPLE_PATIENT = ROOT / "src" / "chemomet" / "data" / "examples" / "patient.toml"

PATIENT = {
    "id": "fuzz",
    "age": 47,
    "diameter_mm": 28.0,
    "grade": 3,
    "er": "positive",
    "pr": "positive",
    "her2": "negative",
    "ki67_percent": 35,
    "nodes_positive": 1,
    "tmem_score": 32,
    "tmem_convention": "10HPF",
    "ctc_count": 1,
    "morphology": ["alveolar", "solid"],
    "bsa_m2": 1.8,
    "nact_diameters": [{"day": 21, "diameter_mm": 25.0}],
    "parameters": {"mu": 1e-9},
}

REGIMEN = {
    "name": "fuzz regimen",
    "source": "fuzz",
    "phases": [
        {"drugs": [{"drug": "doxorubicin", "dose_mg_m2": 60.0}, {"drug": "cyclophosphamide", "dose_mg_m2": 600.0}],
         "cycles": 4, "interval_days": 21},
        {"drugs": [{"drug": "paclitaxel", "dose_mg_m2": 80.0}], "cycles": 12, "interval_days": 7},
    ],
}

SPEC = {
    "name": "fuzz trial",
    "seed": 7,
    "patients_per_arm": 40,
    "regimen": "ac-paclitaxel-weekly",
    "population": "default",
    "arms": [
        {"name": "NACT", "strategy": "nact"},
        {"name": "NACT + rebastinib", "strategy": "nact+rebastinib", "accompanying_dose_mg": 100,
         "accompanying_interval_h": 12},
    ],
    "eligibility": {"diameter_min_mm": 10, "diameter_max_mm": 100, "subtypes": ["TNBC", "HR+/HER2-"],
                    "tmem_high": False},
    "accrual": {"duration_days": 730},
    "follow_up": {"duration_days": 1826, "loss_rate_per_year": 0.02, "other_cause_death_rate_per_year": 0.005},
    "endpoints": {"primary": "dmfs", "include": ["dmfs", "pcr"]},
    "analysis": {"alpha": 0.05, "rmst_days": 1826, "landmarks_years": [3, 5], "subgroups": ["subtype"],
                 "event_grid_days": 14},
    "power": {"replicates": 0, "patients_per_arm": [20, 40]},
    "execution": {"chunk_size": 16},
}

CELLS_HEADER = ["x", "y", "cell_type", "radius"]
CELLS_ROWS = [
    [5.0, 5.0, "Tumor", 5.0], [15.0, 5.0, "Macrophage", 5.0], [25.0, 5.0, "Endothelial", 5.0],
    [10.0, 13.0, "Tumor", 5.0], [20.0, 13.0, "Macrophage", 5.0], [35.0, 5.0, "Stroma", 5.0],
    [60.0, 40.0, "Tumor", 6.0], [70.0, 40.0, "Macrophage", 4.0], [65.0, 48.0, "Endothelial", 5.0],
    [120.0, 90.0, "Tumor", 5.0], [140.0, 95.0, "Stroma", 5.0], [200.0, 150.0, "Endothelial", 5.0],
]

def _edges(lo: float, hi: float) -> list[float]:
    """Values at and just inside (and outside) the bounds of a valid range."""
    tiny = max(abs(lo), abs(hi), 1.0) * 1e-12
    return [lo, hi, lo + tiny, hi - tiny, lo - tiny, hi + tiny, (lo + hi) / 2, math.nextafter(lo, math.inf)]


PATIENT_EDGES = {
    ("age",): _edges(18, 100),
    ("diameter_mm",): [*_edges(0, 200), 5e-324, 1e-300, 0.1, 0.0999],
    ("ki67_percent",): _edges(0, 100),
    ("nodes_positive",): [0, 60, 61, -1],
    ("tmem_score",): _edges(0, 1000),
    ("tmem_score_after_nact",): _edges(0, 1000),
    ("ctc_count",): [0, 100000, 100001],
    ("bsa_m2",): _edges(1, 3),
    ("grade",): [1, 2, 3, None],
    ("nact_diameters", 0, "day"): [0, 1, 1e-9, 150, 10**4],
    ("nact_diameters", 0, "diameter_mm"): [*_edges(0, 200), 5e-324, 0.1, 0.0999],
    **{("parameters", name): _edges(lo, hi) for name, (lo, hi, _) in PARAMETER_RULES.items()},
}

REGIMEN_EDGES = {
    ("phases", 0, "cycles"): [1, 2, 40, 100, 1000, 10**6],
    ("phases", 0, "interval_days"): [1e-9, 0.5, 1, 7, 365, 10**4],
    ("phases", 1, "cycles"): [1, 52, 1000],
    ("phases", 1, "interval_days"): [1e-6, 1, 100],
    ("phases", 0, "drugs", 0, "dose_mg_m2"): [1e-300, 5e-324, 1e-9, 1, 1e4, 1e9, 1e300],
    ("phases", 1, "drugs", 0, "dose_mg_m2"): [1e-300, 1e-9, 1e6],
    ("phases", 1, "offset_days"): [-100, 0, 1e-9, 1e5],
}

SPEC_EDGES = {
    ("seed",): [0, 2**63 - 1, 2**63, -1],
    ("patients_per_arm",): [1, 2, 16, 17, 10**7, 10**7 + 1],
    ("accrual", "duration_days"): [0, 1e-9, 1, 36500, 1e9],
    ("follow_up", "duration_days"): [0, 1e-9, 1, 14610, 1e9],
    ("follow_up", "loss_rate_per_year"): [0, 1, 1 + 1e-12, 5e-324],
    ("follow_up", "other_cause_death_rate_per_year"): [0, 1, 5e-324],
    ("analysis", "rmst_days"): [1e-9, 1, 2556, 2557, 1e9],
    ("analysis", "alpha"): [5e-324, 1e-300, 1e-6, 0.4999999, 0.5],
    ("analysis", "event_grid_days"): [1, 60, 0.999, 60.001],
    ("analysis", "landmarks_years"): [[1e-9], [100], [0.5, 1e9], [0.01, 40], [math.inf]],
    ("eligibility", "diameter_min_mm"): [0, 100, 200],
    ("eligibility", "diameter_max_mm"): [1e-9, 0.1, 10, 200],
    ("eligibility",): [3, "all", [{"subtypes": ["TNBC"]}]],  # a section as the wrong type
    ("arms",): [{"name": "NACT", "strategy": "nact"}],  # [arms] written for [[arms]]
    ("eligibility", "tmem_high"): [True],
    ("eligibility", "subtypes"): [["TNBC"], ["HR-/HER2+"], []],
    ("power", "replicates"): [0, 1, 100000],
    ("power", "patients_per_arm"): [[2], [10**7], [2, 3, 4]],
    ("execution", "chunk_size"): [16, 15, 10**6],
    ("arms", 1, "accompanying_dose_mg"): [5e-324, 1e-9, 1e6],
    ("arms", 1, "accompanying_interval_h"): [1, 24, 1e-9, 1e6],
}

KINDS = ("patient-json", "patient-toml", "regimen", "trial-spec", "cells-csv")

# ------------------------------------------------------------------------------------------------------ values

SPECIAL_FLOATS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 0.0, -0.0, math.nan, math.inf, -math.inf,
                  1e-320, 2**53 + 1.0, -1.0, 1e16]
SPECIAL_TEXT = ["\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\u202eevil", "a\x00b", "\ud800", "\udfff", "x" * 5000,
                "positive\n", "10 mm", "1e999", "NaN", "", " ", "null", "true", "\u00a0", "😀" * 40, "\r\n",
                "../../etc/passwd", "/dev/zero", "-1", "١٢", "０", "$\\frac$", "cost $5 vs $10", "<script>", "%s%n"]


def _huge(k: int, sign: int) -> int:
    return sign * int("9" * k)


numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(),
    st.builds(_huge, st.integers(min_value=25, max_value=4300), st.sampled_from([1, -1])),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
)
texts = st.one_of(st.text(max_size=30), st.sampled_from(SPECIAL_TEXT))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)


def _nest(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


deep = st.builds(_nest, st.integers(min_value=1, max_value=120), scalars)
hostile = st.one_of(scalars, scalars, values, deep)


def _paths(doc, prefix=()) -> list[tuple]:
    """Every path to a value in a nested dict/list document."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


def _container(doc, path):
    for k in path[:-1]:
        doc = doc[k]
    return doc


@st.composite
def mutated(draw, base: dict, names: list[str], edges: dict | None = None):
    """A copy of ``base`` with up to four changes: a value replaced (by a hostile value, or by a valid extreme from
    ``edges``: path -> values), a field dropped, an unknown field added."""
    doc = copy.deepcopy(base)
    kinds = ["set", "set", "drop", "add"] + (["edge"] * 3 if edges else [])
    for op in draw(st.lists(st.sampled_from(kinds), max_size=4)):
        if op == "edge":
            path = draw(st.sampled_from(sorted(edges)))
            try:  # a copy: a list from ``edges`` put in the document would be mutated by later changes
                _container(doc, path)[path[-1]] = copy.deepcopy(draw(st.sampled_from(edges[path])))
            except (KeyError, IndexError, TypeError):
                pass
            continue
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        try:
            parent = _container(doc, path)
        except (KeyError, IndexError, TypeError):
            continue
        if op == "set":
            parent[path[-1]] = draw(hostile)
        elif op == "drop":
            parent.pop(path[-1]) if isinstance(parent, dict | list) else None
        elif isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=12)))] = draw(hostile)
    return doc


# -------------------------------------------------------------------------------------------------- serialising


def _toml_key(k) -> str:
    return json.dumps(str(k), ensure_ascii=False)


def _toml_value(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(x for x in (_toml_value(e) for e in v) if x is not None) + "]"
    if isinstance(v, dict):
        inner = ((k, _toml_value(e)) for k, e in v.items())
        return "{" + ", ".join(f"{_toml_key(k)} = {x}" for k, x in inner if x is not None) + "}"
    return json.dumps(str(v))


def to_toml(doc) -> str:
    """TOML text of a document (None values dropped; every table inline: still TOML, and any nesting)."""
    if not isinstance(doc, dict):
        return f"value = {_toml_value(doc)}\n"
    lines = [f"{_toml_key(k)} = {x}" for k, x in ((k, _toml_value(v)) for k, v in doc.items()) if x is not None]
    return "\n".join(lines) + "\n"


def to_json(doc) -> str:
    return json.dumps(doc, allow_nan=True)


def to_csv(rows: list[list], sep: str) -> str:
    out = []
    for row in rows:
        cells = []
        for c in row:
            text = "" if c is None else (repr(c) if isinstance(c, float) else str(c))
            cells.append(text)
        out.append(sep.join(cells))
    return "\n".join(out) + "\n"


@st.composite
def damaged_bytes(draw, text: str) -> bytes:
    """The text as UTF-8 (lone surrogates kept: not UTF-8), sometimes truncated, spliced, prefixed or replaced."""
    data = text.encode("utf-8", errors="surrogatepass")
    how = draw(st.sampled_from(["as is"] * 6 + ["truncate", "splice", "bom", "junk", "deep"]))
    if how == "truncate":
        data = data[: draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))]
    elif how == "splice":
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=12)) + data[at:]
    elif how == "bom":
        data = b"\xef\xbb\xbf" + data
    elif how == "junk":
        data = draw(st.binary(max_size=300))
    elif how == "deep":
        k = draw(st.sampled_from([33, 100, 1000, 100_000]))
        data = data + b"\nzz = " + b"[" * k + b"]" * k + b"\n"
    return data


# ---------------------------------------------------------------------------------------------------------- kinds


@dataclass
class Case:
    """One fuzz case: the input file's name and bytes, and how to call the command line on it."""

    name: str
    data: bytes
    argv: list[str]  # "{input}" and "{out}" are filled in with the case's paths
    outputs: list[str] = field(default_factory=list)  # output paths (relative to the output folder)


@st.composite
def patient_case(draw, suffix: str):
    doc = draw(mutated(PATIENT, list(PATIENT) + ["weight_kg", "tmem_score_after_nact", "subtype"], PATIENT_EDGES))
    text = to_json(doc) if suffix == ".json" else to_toml(doc)
    data = draw(damaged_bytes(text))
    plot = draw(st.integers(min_value=0, max_value=9)) == 0  # a plot costs time: one case in ten
    argv = ["simulate", "{input}", "--json", "--horizon-days", "3650"] + (["--plot", "{out}/plot.png"] if plot else [])
    return Case(f"patient{suffix}", data, argv, ["plot.png"] if plot else [])


@st.composite
def regimen_case(draw):
    doc = draw(mutated(REGIMEN, ["name", "source", "phases", "drugs", "drug", "cycles", "interval_days", "dose_mg",
                                 "dose_auc", "dose_mg_m2", "offset_days"], REGIMEN_EDGES))
    data = draw(damaged_bytes(to_toml(doc)))
    argv = ["simulate", str(EXAMPLE_PATIENT), "--regimen", "{input}", "--json", "--horizon-days", "3650"]
    return Case("regimen.toml", data, argv)


@st.composite
def spec_case(draw):
    doc = draw(mutated(SPEC, list(SPEC) + ["designs", "strategy", "tmem_high", "replicates"], SPEC_EDGES))
    data = draw(damaged_bytes(to_toml(doc)))
    argv = ["trial", "{input}", "--out", "{out}/run", "--json", "--no-progress"]
    return Case("spec.toml", data, argv, ["run"])


def _index(draw, seq) -> int | None:
    """A random index of ``seq``, or None when it is empty (``st.integers(0, -1)`` is an invalid strategy)."""
    return draw(st.integers(min_value=0, max_value=len(seq) - 1)) if seq else None


@st.composite
def cells_case(draw):
    rows = [list(CELLS_HEADER)] + copy.deepcopy(CELLS_ROWS)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        op = draw(st.sampled_from(["cell", "cell", "cell", "header", "drop row", "ragged", "add column"]))
        r = _index(draw, rows)  # every row may have been dropped or emptied by an earlier change
        if r is None:
            rows = [[]]
            r = 0
        if op == "cell" and (c := _index(draw, rows[r])) is not None:
            rows[r][c] = draw(scalars)
        elif op == "header" and (c := _index(draw, rows[0])) is not None:
            rows[0][c] = draw(texts)
        elif op == "drop row" and len(rows) > 1:
            rows.pop(r)
        elif op == "ragged":
            rows[r] = rows[r][: draw(st.integers(min_value=0, max_value=6))] + draw(st.lists(scalars, max_size=2))
        elif op == "add column":
            name = draw(texts)
            rows = [row + [name if i == 0 else draw(scalars)] for i, row in enumerate(rows)]
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    data = draw(damaged_bytes(to_csv(rows, sep)))
    argv = ["tmem", "{input}", "--json", "--out", "{out}/summary.json"]
    return Case("cells.csv", data, argv, ["summary.json"])


STRATEGIES = {
    "patient-json": patient_case(".json"),
    "patient-toml": patient_case(".toml"),
    "regimen": regimen_case(),
    "trial-spec": spec_case(),
    "cells-csv": cells_case(),
}

# --------------------------------------------------------------------------------------------------------- driver


@dataclass
class Outcome:
    """What one call of the command line did."""

    code: int | None
    out: str
    err: str
    crash: str | None = None


def call(argv: list[str]) -> Outcome:
    """Run ``chemomet.cli.main(argv)`` in process; standard output as strict UTF-8 (a real pipe), standard error as
    UTF-8 with backslash escapes (Python's default for it); an exception escaping ``main`` is a crash."""
    out_b, err_b = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_b, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_b, encoding="utf-8", errors="backslashreplace", write_through=True)
    code, crash = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # what would be a traceback
            crash = traceback.format_exc()
    out.flush()
    err.flush()
    return Outcome(code, out_b.getvalue().decode("utf-8", "replace"), err_b.getvalue().decode("utf-8", "replace"),
                   crash)


def _unsafe_chars(line: str) -> list[str]:
    return [c for c in line if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


def problems(outcome: Outcome, out_dir: Path) -> list[str]:
    """How an outcome breaks the promise (empty if it keeps it)."""
    if outcome.crash is not None:
        return ["traceback: " + outcome.crash.strip().splitlines()[-1]]
    found = []
    if outcome.code not in (0, 2):
        found.append(f"exit code {outcome.code}")
    if "Traceback" in outcome.err:
        found.append("a traceback on standard error")
    if outcome.code == 2:
        lines = [ln for ln in outcome.err.splitlines() if ln.strip()]
        if len(lines) != 1:
            found.append(f"{len(lines)} lines on standard error: {outcome.err[:300]!r}")
        elif not lines[0].startswith("error: "):
            found.append(f"the line does not start with 'error: ': {lines[0][:200]!r}")
        elif _unsafe_chars(lines[0]):
            found.append(f"control characters in the line: {_unsafe_chars(lines[0])[:5]!r}")
        if outcome.out:
            found.append(f"standard output on failure: {outcome.out[:100]!r}")
        left = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
        if left:
            found.append(f"output left behind: {left}")
    return found


def _fake_dispatch(spec, out, client, **kw):
    """Screening instead of the simulation (see the module docstring)."""
    from chemomet.trial.runner import TrialResult
    from chemomet.trial.screening import screen
    from chemomet.trial.spec import DesignComparison

    specs = spec.specs if isinstance(spec, DesignComparison) else [spec]
    for s in specs:
        if s.n_enrolled <= 5000:
            screen(s, s.make_population())
    return TrialResult({"name": spec.name}, out, {})


@dataclass
class Tally:
    """Counts of a fuzz run: cases, exit codes and the promise violations (kind, argv, problem, input bytes)."""

    cases: int = 0
    codes: Counter = field(default_factory=Counter)
    violations: list = field(default_factory=list)


def run_case(case: Case, base: Path, tally: Tally) -> None:
    """Write the case's input, call the command line, check the promise and count."""
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        src = work / case.name
        src.write_bytes(case.data)
        out_dir = work / "out"
        out_dir.mkdir()
        argv = [a.replace("{input}", str(src)).replace("{out}", str(out_dir)) for a in case.argv]
        outcome = call(argv)
        tally.cases += 1
        tally.codes[outcome.code] += 1
        for problem in problems(outcome, out_dir):
            tally.violations.append((case.name, case.argv, problem, case.data[:2000]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fuzz(kind: str, n: int, seed: int | None = None, base: Path | None = None) -> Tally:
    """Run ``n`` generated cases of one kind (fixed examples when ``seed`` is None: derandomized) and return the
    tally; violations are collected, not raised, so one run reports them all."""
    tally = Tally()
    base = Path(tempfile.mkdtemp(prefix=f"fuzz-{kind}-", dir=base))
    config = settings(
        max_examples=n,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )

    @config
    @given(case=STRATEGIES[kind])
    def one(case):
        run_case(case, base, tally)

    if seed is not None:
        one = hypothesis_seed(seed)(one)
    patch = mock.patch("chemomet.trial.runner._dispatch", _fake_dispatch) if kind == "trial-spec" else None
    with patch or contextlib.nullcontext():
        one()
    shutil.rmtree(base, ignore_errors=True)
    return tally
