"""Fuzzing the one-line-error promise: malformed patient files (JSON, TOML), regimens, trial specs and cell tables
drive the command line in process; every case ends with exit code 0 or 2, and a 2 with exactly one clean line on
standard error, no standard output, no output file and no traceback (harness: tests/fuzz_inputs.py).

The default suite runs a fixed set of examples per kind (derandomized, no example database) in well under a
minute; ``pytest -m slow tests/test_fuzz_inputs.py`` runs 10,000 cases per kind (``CHEMOMET_FUZZ_CASES``
changes the number, ``CHEMOMET_FUZZ_SEED`` the seed) and prints the counts.
"""

from __future__ import annotations

import copy
import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests import fuzz_inputs
from tests.fuzz_inputs import KINDS, Case, Outcome, Tally, fuzz, problems, run_case

DEFAULT_CASES = {"patient-json": 100, "patient-toml": 100, "regimen": 200, "trial-spec": 100, "cells-csv": 200}
"""Cases per kind in the default suite (about 36 s together on an idle 2-core machine)."""


def _report(kind: str, tally: Tally) -> str:
    lines = [f"{kind}: {len(tally.violations)} violations in {tally.cases} cases"]
    for name, argv, problem, data in tally.violations[:10]:
        lines.append(f"  {name} {argv}: {problem}\n    input: {data[:300]!r}")
    return "\n".join(lines)


@pytest.mark.parametrize("kind", KINDS)
def test_fuzzed_inputs_keep_the_promise(kind, tmp_path):
    tally = fuzz(kind, DEFAULT_CASES[kind], base=tmp_path)
    assert tally.cases >= 0.9 * DEFAULT_CASES[kind]
    assert not tally.violations, _report(kind, tally)
    assert tally.codes[2] > 0 and tally.codes[0] > 0, tally.codes  # both the refusals and the runs are reached


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_fuzzed_inputs_long_run(kind, tmp_path):
    n = int(os.environ.get("CHEMOMET_FUZZ_CASES", "10000"))
    seed = int(os.environ.get("CHEMOMET_FUZZ_SEED", "2026"))
    tally = fuzz(kind, n, seed=seed, base=tmp_path)
    print(f"\n{kind}: {tally.cases} cases, exit codes {dict(tally.codes)}, {len(tally.violations)} violations")
    assert tally.cases >= 0.9 * n
    assert not tally.violations, _report(kind, tally)


# ------------------------------------------------------------------------------------------- the harness itself


def test_the_harness_sees_a_traceback(tmp_path):
    with mock.patch("chemomet.patient.read_patient", side_effect=RuntimeError("boom")):
        tally = fuzz("patient-json", 5, base=tmp_path)
    assert tally.cases == 5
    assert len(tally.violations) == 5 and all("RuntimeError: boom" in v[2] for v in tally.violations)


def test_the_harness_sees_every_broken_promise(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert problems(Outcome(2, "", "error: x.toml: age = 1 is invalid; allowed: 18 to 100\n"), out) == []
    assert problems(Outcome(0, "{}", "a warning\non two lines\n"), out) == []
    assert problems(Outcome(1, "", "error: x\n"), out) == ["exit code 1"]
    assert "2 lines" in problems(Outcome(2, "", "error: x\nmore\n"), out)[0]
    assert "control characters" in problems(Outcome(2, "", "error: x \x1b[31m\n"), out)[0]
    assert "standard output" in problems(Outcome(2, "partial", "error: x\n"), out)[0]
    (out / "plot.png").write_bytes(b"")
    assert "left behind" in problems(Outcome(2, "", "error: x\n"), out)[0]


def test_a_case_is_run_in_its_own_folder_and_cleaned_up(tmp_path):
    tally = Tally()
    run_case(Case("patient.json", b'{"age": 12}', ["simulate", "{input}", "--plot", "{out}/p.png"]), tmp_path, tally)
    assert tally.cases == 1 and dict(tally.codes) == {2: 1} and not tally.violations
    assert list(tmp_path.iterdir()) == []


def test_the_strategies_draw_the_same_cases_again_and_leave_their_tables_alone():
    """Generation only, two seeds per kind: every kind draws its cases without an error and leaves the tables it
    starts from as they were."""
    tables = ("PATIENT_EDGES", "REGIMEN_EDGES", "SPEC_EDGES", "PATIENT", "REGIMEN", "SPEC", "CELLS_ROWS")
    before = {name: copy.deepcopy(getattr(fuzz_inputs, name)) for name in tables}
    for kind in KINDS:
        for s in (2026, 2):
            @hypothesis_seed(s)
            @settings(max_examples=100, database=None, deadline=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=fuzz_inputs.STRATEGIES[kind])
            def draw_only(case):
                assert isinstance(case.data, bytes)

            draw_only()
    for name in tables:
        assert getattr(fuzz_inputs, name) == before[name], name


def _containers(doc) -> list:
    out = [doc] if isinstance(doc, dict | list) else []
    for v in doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else ():
        out += _containers(v)
    return out


def test_a_drawn_edge_value_is_a_copy():
    """A list drawn from ``SPEC_EDGES`` (e.g. ``landmarks_years = [0.5, 1e9]``) used to be put into the document
    itself; a later change to the document then mutated the table, the strategy drew differently on replay
    (hypothesis ``FlakyStrategyDefinition`` with seed 2026) and every later case changed."""
    shared = {id(v) for values in fuzz_inputs.SPEC_EDGES.values() for v in values if isinstance(v, dict | list)}

    @settings(max_examples=200, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=True)
    @given(doc=fuzz_inputs.mutated(fuzz_inputs.SPEC, list(fuzz_inputs.SPEC), fuzz_inputs.SPEC_EDGES))
    def no_shared_list(doc):
        assert not shared & {id(c) for c in _containers(doc)}

    no_shared_list()


@pytest.mark.parametrize("seq, ok", [([], False), ([1], True), ([[], []], True)])
def test_an_index_of_an_emptied_row_list_is_none(seq, ok):
    """``cells_case`` draws an index of a list that earlier changes may have emptied (``integers(0, -1)``)."""

    @settings(max_examples=5, database=None, phases=[Phase.generate])
    @given(st.data())
    def pick(data):
        i = fuzz_inputs._index(data.draw, seq)
        assert (i is not None) == ok and (i is None or 0 <= i < len(seq))

    pick()
