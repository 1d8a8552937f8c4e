"""Virtual clinical trials of accompanying therapies: spec, chunked (Dask) execution, survival statistics.

Public API: :func:`run_trial`, :class:`TrialSpec`, :func:`read_trial_spec`, :class:`TrialResult`.
"""

from chemomet.trial.runner import TrialResult, run_trial
from chemomet.trial.spec import DesignComparison, TrialSpec, parse_trial_spec, read_trial_spec

__all__ = ["DesignComparison", "TrialResult", "TrialSpec", "parse_trial_spec", "read_trial_spec", "run_trial"]
