"""Patient assessment before (or during) NACT: :func:`assess`, its result :class:`Assessment` and the HTML report.

See docs/assessment.md for the method (virtual twins, importance sampling, decision rules); the result's JSON schema
is :meth:`Assessment.json_schema` (the models in :mod:`chemomet.assess.result`).
"""

import sys
import types

from chemomet.assess.assessment import assess, default_strategies
from chemomet.assess.result import Assessment
from chemomet.assess.settings import AssessmentSettings

__all__ = ["Assessment", "AssessmentSettings", "assess", "default_strategies"]


class _CallablePackage(types.ModuleType):
    """This package, callable as :func:`assess`.

    ``chemomet.assess`` is both the function (the package root exports it lazily) and this package; once any
    submodule has been imported, Python binds the name on ``chemomet`` to the package, so the package answers a
    call the way the function does and ``cm.assess(patient)`` works in either order.
    """

    def __call__(self, *args, **kwargs):
        return assess(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
