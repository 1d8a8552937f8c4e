"""The local web app of chemomet (``chemomet serve``): assess a patient in the browser, score a tissue, and keep an
append-only study record.

Needs the ``web`` extra (``pip install 'chemomet[web]'``); ``import chemomet`` never imports this package. See
docs/web.md. Modules: :mod:`~chemomet.web.app` (the app), :mod:`~chemomet.web.forms` (the patient form),
:mod:`~chemomet.web.store` (the study store), :mod:`~chemomet.web.jobs` (background assessments),
:mod:`~chemomet.web.security` (token, limits, headers), :mod:`~chemomet.web.tissue` (uploads),
:mod:`~chemomet.web.server` (the command).
"""
