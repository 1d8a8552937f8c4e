"""Shared fixtures of the trial tests: small specs, one local run, one 2-worker Dask LocalCluster."""

from __future__ import annotations

import copy

import pytest

from chemomet.trial import parse_trial_spec, run_trial

BASE = {
    "name": "test trial",
    "seed": 11,
    "patients_per_arm": 700,
    "arms": [
        {"name": "NACT", "strategy": "nact"},
        {"name": "NACT + rebastinib", "strategy": "nact+rebastinib"},
    ],
    "accrual": {"duration_days": 730},
    # death from other causes: by age from the life table (the default; a constant rate is tested on its own)
    "follow_up": {"duration_days": 1826, "loss_rate_per_year": 0.03},
    "analysis": {"event_grid_days": 14},
    "execution": {"chunk_size": 256},
}


def make_spec(**changes):
    """The base test spec with top-level keys replaced (dict values are merged one level deep)."""
    table = copy.deepcopy(BASE)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(table.get(k), dict):
            table[k] = {**table[k], **v}
        else:
            table[k] = v
    return parse_trial_spec(table)


def write_toml(path, table: dict) -> None:
    """Write a (flat or one-level nested) spec dict as TOML; arms as [[arms]]."""
    lines = []
    for k, v in table.items():
        if not isinstance(v, dict | list) or (isinstance(v, list) and not any(isinstance(x, dict) for x in v)):
            lines.append(f"{k} = {_val(v)}")
    for k, v in table.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {_val(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"[[{k}]]")
                lines += [f"{kk} = {_val(vv)}" for kk, vv in item.items()]
    path.write_text("\n".join(lines) + "\n")


def _val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    return repr(v)


@pytest.fixture(scope="session")
def local_run(tmp_path_factory):
    """The base trial run in this process (chunk size 256)."""
    out = tmp_path_factory.mktemp("local_run")
    return run_trial(make_spec(), out=out, figures=True)


@pytest.fixture(scope="session")
def dask2():
    """A Dask LocalCluster with 2 single-threaded worker processes, for the whole session."""
    from chemomet.trial.execute import dask_client

    with dask_client(workers=2) as client:
        yield client
