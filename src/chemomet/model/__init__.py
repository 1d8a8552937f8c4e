"""The mechanistic core: pure numerical functions over arrays of patients (see docs/science.md).

The engine imports nothing above it: its inputs are :mod:`chemomet.model.parameters` (per-patient parameters,
settings), a :class:`~chemomet.regimens.Schedule` and the drug table; :mod:`chemomet.model.engine` simulates them.
The public :func:`chemomet.simulate` reads patients and resolves the population above it.
"""
