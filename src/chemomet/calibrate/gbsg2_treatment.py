"""How GBSG2's patients were treated, as the model can represent it (shared by the validation and the outcome
likelihood of :mod:`chemomet.calibrate.treated_likelihood`)."""

from __future__ import annotations

import tomllib

from chemomet.regimens import parse_regimens

__all__ = ["CMF_PROXY_REGIMEN", "CMF_PROXY_TOML", "GBSG2_TAMOXIFEN_YEARS"]

CMF_PROXY_TOML = """\
[cmf-proxy-ac4]
name = "AC x4 q3w, standing in for CMF (GBSG-2: C 500, M 40, F 600 mg/m2 days 1 and 8 q28d, 3 or 6 cycles)"
source = "methotrexate and fluorouracil are not in data/drugs.toml; EBCTCG 2012 (Lancet 379:432) found standard \
4AC and standard CMF equivalent (breast cancer mortality RR 0.98), and s_met is calibrated on AC x4 vs none"
[[cmf-proxy-ac4.phases]]
drugs = [{drug = "doxorubicin", dose_mg_m2 = 60.0}, {drug = "cyclophosphamide", dose_mg_m2 = 600.0}]
cycles = 4
interval_days = 21
"""
"""The CMF proxy regimen as a regimen file (layout of ``data/regimens.toml``)."""

CMF_PROXY_REGIMEN = next(iter(parse_regimens(tomllib.loads(CMF_PROXY_TOML), where="CMF proxy").values()))
"""The regimen GBSG2 patients are simulated with: AC ×4 every 3 weeks (the EBCTCG calibration regimen).

GBSG-2 gave 3 or 6 cycles of CMF (cyclophosphamide 500, methotrexate 40, fluorouracil 600 mg/m² on days 1 and 8
every 28 days; Schumacher 1994), which the model cannot represent: methotrexate and fluorouracil are not in its
drug table. AC ×4 is the closest regimen it has: the kill on micrometastases ``s_met`` is calibrated on AC ×4 vs
no chemotherapy (EBCTCG 2012), and the same overview found standard CMF and standard 4AC equivalent."""

GBSG2_TAMOXIFEN_YEARS = 2.0
"""Tamoxifen in GBSG-2: 30 mg/day for 2 years after surgery, for patients with ``horTh`` (Schumacher 1994)."""
