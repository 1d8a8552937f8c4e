"""Patient assessment before (or during) NACT: :func:`assess`, its result :class:`Assessment` and the HTML report.

See docs/assessment.md for the method (virtual twins, importance sampling, decision rules); the result's JSON schema
is :meth:`Assessment.json_schema` (the models in :mod:`chemomet.assess.result`).
"""

from chemomet.assess.assessment import assess, default_strategies
from chemomet.assess.result import Assessment
from chemomet.assess.settings import AssessmentSettings

__all__ = ["Assessment", "AssessmentSettings", "assess", "default_strategies"]
