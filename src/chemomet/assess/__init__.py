"""Patient assessment before (or during) NACT: :func:`assess` and its HTML report.

See docs/assessment.md for the method (virtual twins, importance sampling, decision rules) and the JSON schema.
"""

from chemomet.assess.assessment import Assessment, assess, default_strategies
from chemomet.assess.settings import AssessmentSettings

__all__ = ["Assessment", "AssessmentSettings", "assess", "default_strategies"]
