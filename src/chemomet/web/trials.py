"""The trial page: start a small virtual trial from a spec (a shipped example, an uploaded or pasted TOML), run it
in the background with :func:`chemomet.trial.run_trial`, follow its progress, cancel or resume it, and show its
results (the hazard ratios and p-values of every endpoint, the Kaplan–Meier and forest figures the runner wrote).

The web app runs trials in its own process (one at a time), so their size is capped
(:data:`MAX_PATIENTS_PER_ARM`, :data:`MAX_PATIENTS_IN_ALL`); larger trials, design comparisons and Dask clusters
are for ``chemomet trial``. A spec typed or uploaded here may not name files on the server (a population or
regimen ``.toml``): only the shipped examples, read from ``examples/trials/``, may, relative to their own folder.
Every error is the spec reader's one-line :class:`~chemomet.errors.InputError`, shown beside its field.

A run writes to its own folder beside the study store (``<store>.trials/<random>``); the figures are served from
there after their SHA-256 is checked against the study record.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from chemomet.errors import InputError

MAX_PATIENTS_PER_ARM = 5000
"""Largest ``patients_per_arm`` the web app runs (patients); about 10 s for two arms on one core."""

MAX_PATIENTS_IN_ALL = 40_000
"""Largest number of patients simulated by one web trial, all arms and power replicates together (patients)."""

DEFAULT_EXAMPLE = "nact_vs_rebastinib_allcomers"
"""The example the form proposes (file stem in ``examples/trials/``)."""

DEFAULT_PATIENTS_PER_ARM = 500
"""The size the form proposes (patients per arm): a few seconds."""

TARGET_CHUNKS = 20
"""Most chunks a web trial is cut into: the steps of its progress bar and the points where it can be cancelled.
Results do not depend on the chunk size."""

MIN_CHUNK_PATIENTS = 256
"""Fewest patients per chunk (unless the spec's own chunk size is smaller): each chunk costs a fixed ~0.2 s, so a
small trial runs in a few chunks."""

SPEC_LIMIT = 256 * 1024
"""Largest spec file or pasted text (bytes)."""

MAX_FORM_BYTES = 512 * 1024
"""Largest trial form post (bytes; 413 beyond): below the form parser's 1 MiB spooling threshold, so an uploaded
spec stays in memory and never reaches the disk."""

FIGURES = ("km_dmfs", "km_drfi", "km_os", "forest", "power", "replication")
"""Figures the runner may write (PNG), in the order the result page shows them."""

SHIPPED_POPULATIONS = ("default", "priors", "calibrated")
"""The populations a typed or uploaded spec may name (no population file)."""

_FIELDS = ("spec", "patients_per_arm", "study_id")
"""The form's fields an error can sit beside (``spec``: the example, file or text)."""


def examples_dir() -> Path | None:
    """The folder of the shipped example specs (``examples/trials/`` of the source tree), or None when chemomet
    is installed without it.

    Examples
    --------
    >>> folder = examples_dir()
    >>> folder is None or (folder / "nact_vs_rebastinib_allcomers.toml").is_file()
    True
    """
    import chemomet

    folder = Path(chemomet.__file__).resolve().parents[2] / "examples" / "trials"
    return folder if folder.is_dir() else None


def example_specs() -> dict[str, str]:
    """The shipped single-trial example specs the page offers: file stem -> trial name (design comparisons, which
    run several trials, are left to ``chemomet trial``).

    Examples
    --------
    >>> examples = example_specs()
    >>> not examples or "nact_vs_rebastinib_allcomers" in examples
    True
    """
    from chemomet.inputs import read_data

    folder = examples_dir()
    out: dict[str, str] = {}
    if folder is None:
        return out
    for path in sorted(folder.glob("*.toml")):
        try:
            table = read_data(path, "trial spec", where=path.name)
        except InputError:
            continue
        if isinstance(table, dict) and "designs" not in table and isinstance(table.get("name"), str):
            out[path.stem] = table["name"]
    return out


def parse_patients_per_arm(text: str | None) -> int | None:
    """The form's ``patients_per_arm``: None when empty (the spec's own size), else an integer from 1 to
    :data:`MAX_PATIENTS_PER_ARM`.

    Raises
    ------
    chemomet.errors.InputError
        One line, in the wording of the trial spec reader.

    Examples
    --------
    >>> parse_patients_per_arm(" 200 "), parse_patients_per_arm("")
    (200, None)
    >>> parse_patients_per_arm("6000")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: patients_per_arm = 6000 is invalid; allowed: an integer from 1 to 5000 in the web
    app (unit: patients; larger trials: chemomet trial)
    """
    text = (text or "").strip()
    if not text:
        return None
    allowed = (f"allowed: an integer from 1 to {MAX_PATIENTS_PER_ARM} in the web app (unit: patients; larger "
               "trials: chemomet trial)")
    try:
        n = int(text)
    except ValueError:
        raise InputError(f"patients_per_arm = {text[:40]!r} is invalid; {allowed}") from None
    if not 1 <= n <= MAX_PATIENTS_PER_ARM:
        raise InputError(f"patients_per_arm = {n} is invalid; {allowed}")
    return n


def _no_server_files(table: dict, where: str) -> None:
    """A typed or uploaded spec may not name a file on the server (population, regimen, design files)."""
    if "designs" in table:
        raise InputError(f"{where}: designs (a design comparison) is not run in the web app; allowed: one trial "
                         "spec (run comparisons with chemomet trial)")
    population = table.get("population", "default")
    if isinstance(population, str) and population not in SHIPPED_POPULATIONS:
        raise InputError(f"{where}: population = {population[:80]!r} is invalid in the web app; allowed: "
                         + ", ".join(f'"{p}"' for p in SHIPPED_POPULATIONS) + " (no population file)")
    regimens = [("regimen", table.get("regimen"))]
    if isinstance(table.get("arms"), list):
        regimens += [(f"arms.{i}.regimen", a.get("regimen"))
                     for i, a in enumerate(table["arms"]) if isinstance(a, dict)]
    for name, value in regimens:
        if isinstance(value, str) and (value.lower().endswith(".toml") or "/" in value or "\\" in value):
            raise InputError(f"{where}: {name} = {value[:80]!r} is invalid in the web app; allowed: a shipped "
                             "regimen key (no regimen file)")


def load_spec(*, example: str | None = None, text: str | None = None, filename: str | None = None,
              patients_per_arm: int | None = None):
    """Read and validate a trial spec for the web app: a shipped example (by file stem) or TOML text (uploaded as
    ``filename`` or pasted), with ``patients_per_arm`` replacing the spec's own size when given.

    Returns
    -------
    (TrialSpec, str, str)
        The validated spec, where it came from (``example:<stem>``, ``upload:<name>`` or ``pasted``) and the
        SHA-256 of the spec text.

    Raises
    ------
    chemomet.errors.InputError
        One line: the spec reader's message, or a web limit (size, files on the server, design comparisons).

    Examples
    --------
    >>> text = '''
    ... name = "demo"
    ... patients_per_arm = 100000
    ... [[arms]]
    ... name = "NACT"
    ... strategy = "nact"
    ... [[arms]]
    ... name = "NACT + rebastinib"
    ... strategy = "nact+rebastinib"
    ... '''
    >>> spec, source, digest = load_spec(text=text, patients_per_arm=50)
    >>> spec.patients_per_arm, source, len(digest)
    (50, 'pasted', 64)
    >>> load_spec(text=text)
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: pasted spec: patients_per_arm = 100000 is invalid; allowed: an integer from 1 to
    5000 in the web app (unit: patients; larger trials: chemomet trial)
    """
    from chemomet.inputs import parse_text
    from chemomet.trial.spec import parse_trial_spec
    from chemomet.web.tissue import safe_filename

    base = None
    if example:
        folder = examples_dir()
        known = example_specs()
        if folder is None or example not in known:
            raise InputError(f"example = {example[:80]!r} is invalid; allowed: one of {', '.join(known) or 'none'}")
        path = folder / f"{example}.toml"
        text, where, source, base = path.read_text(encoding="utf-8-sig"), path.name, f"example:{example}", folder
    elif filename:
        where = safe_filename(filename)
        source = f"upload:{where}"
        if Path(where).suffix.lower() != ".toml":
            raise InputError(f"trial spec {where!r}: suffix {Path(where).suffix!r} is invalid; allowed: a .toml file")
    else:
        where, source = "pasted spec", "pasted"
    if not isinstance(text, str) or not text.strip():
        raise InputError("trial spec: nothing given; allowed: an example, a .toml file, or its text pasted")
    if len(text.encode("utf-8")) > SPEC_LIMIT:
        raise InputError(f"{where}: larger than {SPEC_LIMIT} bytes; allowed: a trial spec file")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    table = parse_text(text.removeprefix("\ufeff"), ".toml", where, "a trial spec file in TOML")
    if not isinstance(table, dict):
        raise InputError(f"{where}: top level is not a table; allowed: a table of trial fields")
    if base is None:
        _no_server_files(table, where)
    elif "designs" in table:
        raise InputError(f"{where}: a design comparison is not run in the web app; allowed: one trial spec")
    if patients_per_arm is not None:
        table["patients_per_arm"] = patients_per_arm
    spec = parse_trial_spec(table, where, base)
    check_size(spec, where)
    return spec, source, digest


def check_size(spec, where: str = "trial spec") -> None:
    """Refuse a spec larger than the web app runs (:data:`MAX_PATIENTS_PER_ARM` per arm and replicate,
    :data:`MAX_PATIENTS_IN_ALL` in all).

    Raises
    ------
    chemomet.errors.InputError
        One line naming the size and the limit.

    Examples
    --------
    >>> from chemomet.trial.spec import TrialSpec
    >>> arms = [{"name": "A", "strategy": "nact"}, {"name": "B", "strategy": "nact+rebastinib"}]
    >>> check_size(TrialSpec(name="small", patients_per_arm=100, arms=arms))
    >>> check_size(TrialSpec(name="power", patients_per_arm=100, arms=arms,
    ...                      power={"replicates": 21, "patients_per_arm": [100, 1000]}))
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: trial spec: 42,000 patients simulated (21 replicates x 2 arms x 1,000) is invalid;
    allowed: at most 40,000 in the web app (larger trials: chemomet trial)
    """
    per_arm = spec.patients_per_replicate_arm
    if per_arm > MAX_PATIENTS_PER_ARM:
        raise InputError(f"{where}: patients_per_arm = {per_arm} is invalid; allowed: an integer from 1 to "
                         f"{MAX_PATIENTS_PER_ARM} in the web app (unit: patients; larger trials: chemomet trial)")
    if spec.n_enrolled > MAX_PATIENTS_IN_ALL:
        raise InputError(f"{where}: {spec.n_enrolled:,} patients simulated ({spec.n_replicates} replicates x "
                         f"{spec.n_arms} arms x {per_arm:,}) is invalid; allowed: at most {MAX_PATIENTS_IN_ALL:,} "
                         "in the web app (larger trials: chemomet trial)")


def chunk_size_for(spec) -> int:
    """Patients per chunk of a web trial: at most :data:`TARGET_CHUNKS` chunks (progress steps and cancel points)
    of at least :data:`MIN_CHUNK_PATIENTS`, and no more than the spec's own chunk size.

    Examples
    --------
    >>> from chemomet.trial.spec import TrialSpec
    >>> arms = [{"name": "A", "strategy": "nact"}, {"name": "B", "strategy": "nact+rebastinib"}]
    >>> chunk_size_for(TrialSpec(name="t", patients_per_arm=5000, arms=arms))  # 10,000 patients in 20 chunks
    500
    >>> chunk_size_for(TrialSpec(name="t", patients_per_arm=1000, arms=arms))  # 2,000 patients in 8 chunks
    256
    """
    size = max(MIN_CHUNK_PATIENTS, math.ceil(spec.n_enrolled / TARGET_CHUNKS))
    return int(min(size, spec.execution.chunk_size))


@dataclass
class TrialRun:
    """A trial started from the web app: what is needed to run it, and to resume it after a cancel.

    Attributes
    ----------
    spec : TrialSpec
        The validated spec (its size already set and checked).
    source : str
        Where the spec came from (``example:<stem>``, ``upload:<name>``, ``pasted``).
    spec_sha256 : str
        SHA-256 of the spec text.
    out : pathlib.Path
        The run folder (kept after a cancel, so a resume skips the chunks already done).
    study_id : str
        The user-given study id.
    chunk_size : int
        Patients per chunk (:func:`chunk_size_for`).

    Examples
    --------
    >>> from chemomet.trial.spec import TrialSpec
    >>> arms = [{"name": "A", "strategy": "nact"}, {"name": "B", "strategy": "nact+rebastinib"}]
    >>> run = TrialRun.new(TrialSpec(name="t", patients_per_arm=100, arms=arms), "pasted", "0" * 64, Path("/tmp/x"))
    >>> run.chunk_size, run.out.parent.name, len(run.out.name)
    (256, 'x', 24)
    """

    spec: object
    source: str
    spec_sha256: str
    out: Path
    study_id: str = ""
    chunk_size: int = MIN_CHUNK_PATIENTS
    attempts: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, spec, source: str, spec_sha256: str, runs: Path, study_id: str = "") -> TrialRun:
        """A run of ``spec`` in a fresh, randomly named folder under ``runs``."""
        return cls(spec, source, spec_sha256, Path(runs) / secrets.token_hex(12), study_id, chunk_size_for(spec))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def trial_task(run: TrialRun, store, plot_lock: threading.Lock, resume: bool = False):
    """The background task (for :class:`~chemomet.web.jobs.JobRunner`) that runs ``run`` with
    :func:`chemomet.trial.run_trial` in this process and records it in ``store``.

    Progress is reported chunk by chunk (a cancel stops the run after the chunk in progress and keeps its folder,
    so :func:`trial_task` with ``resume=True`` continues it). The analysis after the last chunk draws its figures
    with pyplot, which is not thread-safe: it runs holding ``plot_lock`` (shared with the tissue page's map).

    Returns
    -------
    callable
        ``task(progress) -> {"record_id": ..., "url": "/trials/<id>"}``.

    Examples
    --------
    >>> from chemomet.trial.spec import TrialSpec
    >>> arms = [{"name": "A", "strategy": "nact"}, {"name": "B", "strategy": "nact+rebastinib"}]
    >>> run = TrialRun.new(TrialSpec(name="t", patients_per_arm=10, arms=arms), "pasted", "0" * 64, Path("/tmp"))
    >>> callable(trial_task(run, None, threading.Lock()))
    True
    """

    def task(progress) -> dict:
        from chemomet.trial.runner import run_trial

        spec = run.spec
        n = spec.n_enrolled
        held = False

        def chunks(done: int, total: int) -> None:
            nonlocal held
            if held:
                return
            if done >= total:  # every chunk simulated: the runner now analyses and draws (pyplot)
                progress.set(total, total + 1, "analysing: survival statistics, subgroups, figures")
                plot_lock.acquire()
                held = True
                return
            patients = min(done * run.chunk_size, n)
            progress.set(done, total + 1, f"simulated {patients:,} of {n:,} patients (chunk {done} of {total})")

        progress("screening virtual patients" if not resume else "resuming: checking the chunks already done")
        run.attempts.append("resume" if resume else "start")
        try:
            result = run_trial(spec, out=run.out, resume=True, chunk_size=run.chunk_size, progress=chunks)
        finally:
            if held:
                plot_lock.release()
        summary = result.summary
        figures = {name: {"file": path.name, "sha256": _sha256(path)}
                   for name, path in result.files.items() if name in FIGURES and path.is_file()}
        rec = store.append(
            "trial",
            {"spec": spec.model_dump(mode="json"), "source": run.source, "spec_sha256": run.spec_sha256,
             "patients_per_arm": spec.patients_per_arm, "chunk_size": run.chunk_size, "run_dir": str(run.out),
             "attempts": list(run.attempts)},
            {"summary": summary, "figures": figures},
            study_id=run.study_id,
            subject=spec.name,
            summary=headline(summary),
        )
        return {"record_id": rec.id, "url": f"/trials/{rec.id}"}

    return task


def headline(summary: dict) -> str:
    """One line for the study list: the primary endpoint's first comparison (hazard ratio with its interval and
    the pre-specified p-value, or the difference for pCR and TMEM change).

    Examples
    --------
    >>> headline({"endpoints": {"dmfs": {"role": "primary", "kind": "time-to-event", "comparisons": [
    ...     {"arm": "B", "hazard_ratio": 0.8, "ci_lower": 0.7, "ci_upper": 0.95, "p": 0.012}]}}})
    'dmfs B: HR 0.80 (0.70-0.95), p = 0.012'
    >>> headline({"endpoints": {}})
    ''
    """
    endpoints = summary.get("endpoints") or {}
    ordered = sorted(endpoints.items(), key=lambda kv: kv[1].get("role") != "primary")
    for ep, res in ordered:
        for c in res.get("comparisons") or []:
            p = "" if c.get("p") is None else f", p = {c['p']:.2g}"
            if res.get("kind") == "time-to-event" and c.get("hazard_ratio") is not None:
                return (f"{ep} {c['arm']}: HR {c['hazard_ratio']:.2f} ({c['ci_lower']:.2f}-{c['ci_upper']:.2f})"
                        f"{p}")
            if c.get("difference") is not None:
                return f"{ep} {c['arm']}: difference {c['difference']:+.3f}{p}"
    return ""


def _num(x, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def result_rows(summary: dict) -> list[dict]:
    """The result page's table: one row per endpoint and experimental arm, with the effect, its 95% interval, the
    pre-specified test's p-value, the adjusted p-value and the verdict, formatted for display.

    Examples
    --------
    >>> rows = result_rows({"endpoints": {"pcr": {"kind": "binary", "role": "secondary", "prespecified_test":
    ...     "chi-square", "comparisons": [{"arm": "B", "versus": "A", "difference": 0.05, "lower": -0.01,
    ...     "upper": 0.11, "p": 0.1, "p_adjusted": 0.2, "significant": False}]}}})
    >>> rows[0]["effect"], rows[0]["interval"], rows[0]["p"], rows[0]["verdict"]
    ('pCR difference +0.050', '-0.010 to +0.110', '0.1', 'not significant')
    """
    rows = []
    for ep, res in (summary.get("endpoints") or {}).items():
        for c in res.get("comparisons") or []:
            kind = res.get("kind")
            if kind == "time-to-event":
                effect = f"HR {_num(c.get('hazard_ratio'), '.3f')}"
                interval = f"{_num(c.get('ci_lower'), '.3f')} to {_num(c.get('ci_upper'), '.3f')}"
                extra = (f"log-rank p = {_num(c.get('logrank_p'), '.3g')}; RMST difference "
                         f"{_num(c.get('rmst_difference_days'), '+.1f')} days")
            elif kind == "binary":
                effect = f"pCR difference {_num(c.get('difference'), '+.3f')}"
                interval = f"{_num(c.get('lower'), '+.3f')} to {_num(c.get('upper'), '+.3f')}"
                extra = ""
            else:
                effect = f"geometric-mean ratio {_num(c.get('ratio'), '.3f')}"
                interval = f"log ratio {_num(c.get('lower'), '+.3f')} to {_num(c.get('upper'), '+.3f')}"
                extra = ""
            sig = c.get("significant")
            rows.append({
                "endpoint": ep, "role": res.get("role", ""), "arm": c.get("arm", ""), "versus": c.get("versus", ""),
                "effect": effect, "interval": interval, "test": res.get("prespecified_test", ""),
                "p": _num(c.get("p"), ".3g"), "p_adjusted": _num(c.get("p_adjusted"), ".3g"),
                "verdict": "" if sig is None else ("significant" if sig else "not significant"),
                "extra": extra or (c.get("not_applicable") or ""),
            })
    return rows


def figure_path(inputs: dict, outputs: dict, name: str) -> Path | None:
    """The file of figure ``name`` of a trial record, when it is still in the run folder with the SHA-256 the
    record holds; None otherwise (unknown name, deleted or changed file).

    Examples
    --------
    >>> figure_path({"run_dir": "/nowhere"}, {"figures": {}}, "../../etc/passwd") is None
    True
    """
    entry = (outputs.get("figures") or {}).get(name)
    if name not in FIGURES or not isinstance(entry, dict):
        return None
    path = Path(inputs.get("run_dir", "")) / f"{name}.png"
    if entry.get("file") != path.name or not path.is_file():
        return None
    return path if _sha256(path) == entry.get("sha256") else None
