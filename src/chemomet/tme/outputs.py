"""Outputs of a TMEM analysis: JSON summary, AnnData with per-cell flags, atomic file writing.

Every file is written to a temporary name in the target folder and renamed into place, so a failure never
leaves a partial output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

from chemomet.fileio import atomic_write, check_output_path  # noqa: F401 (re-exported)
from chemomet.tme.scores import TmemResult
from chemomet.tme.table import TYPE_NAMES

if TYPE_CHECKING:
    import pandas as pd

UNS_KEY = "chemomet_tmem"


def summary_json(summary: dict) -> str:
    """The summary as JSON text (``None`` becomes ``null``; no NaN or infinity ever appears)."""
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(summary: dict, path: str | Path) -> None:
    """Write the summary as JSON, atomically."""
    text = summary_json(summary)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def cell_flags(result: TmemResult) -> pd.DataFrame:
    """Per-cell results, one row per input cell, in input order.

    Columns: ``chemomet_cell_type`` (category), ``tmem_member`` (in a contact triangle), ``tmem_doorway_id``
    (−1 if none), ``tmem_doorway_macrophage`` (the macrophage of a counted doorway), ``tmem_hpf`` (rank 1..k
    of the chosen field holding the cell, 0 if none), ``vessel_id`` (−1 if not endothelial).
    """
    import pandas as pd  # here: the command imports this module, and needs pandas only for these outputs

    t = result.table
    d = result.doorways
    hpf = np.zeros(t.n, dtype=np.int64)
    f = result.fields
    if f.counts.size:
        tree = cKDTree(t.xy_um)
        for rank, c in enumerate(
            f.centres_um[::-1]
        ):  # best field last so it wins (fields never overlap anyway)
            hpf[tree.query_ball_point(c, f.radius_um)] = f.counts.size - rank
    door_mac = np.zeros(t.n, dtype=bool)
    door_mac[d.triangles[:, 1]] = True
    return pd.DataFrame(
        {
            "chemomet_cell_type": pd.Categorical.from_codes(t.cell_type, list(TYPE_NAMES)),
            "tmem_member": d.member,
            "tmem_doorway_id": d.doorway_of_cell,
            "tmem_doorway_macrophage": door_mac,
            "tmem_hpf": hpf,
            "vessel_id": result.vessel_of_cell,
        }
    )


def _uns_safe(summary: dict) -> dict:
    out, undefined = {}, []
    for k, v in summary.items():
        if v is None:
            undefined.append(k)
        elif isinstance(v, dict):  # e.g. column_units: column names may hold "/", not allowed as HDF5 keys
            out[k] = json.dumps(v, ensure_ascii=False)
        elif isinstance(v, list):
            out[k] = (
                np.asarray(v, dtype=str) if all(isinstance(e, str) for e in v) and v else np.asarray(v, float)
            )
        else:
            out[k] = v
    out["undefined"] = np.asarray(undefined, dtype=str)
    return out


def to_anndata(result: TmemResult, base=None):
    """AnnData with the per-cell flags in ``obs`` and the summary in ``uns["chemomet_tmem"]``.

    Parameters
    ----------
    result : the analysis.
    base : the AnnData the cells were read from (rows in the same order); a copy is extended. When
        ``None`` a new object is built with the coordinates in ``obsm["spatial"]`` (µm) and no ``X``.

    Returns
    -------
    anndata.AnnData
        ``obs``: the columns of :func:`cell_flags`, ``radius_um`` (µm) and, when labels were read, the
        original class ``source_class``; indexed by the input's object ids (QuPath ``Object ID``, GeoJSON ``id``)
        when it had unique ones, else by row number; ``uns["chemomet_tmem"]``: the
        summary (units in the key names: µm, mm², per mm²), its undefined entries listed in ``undefined``, its
        mappings (``column_units``) as JSON text.

    Examples
    --------
    >>> from chemomet.tme import make_table, score_tissue
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> ad = to_anndata(score_tissue(t))
    >>> ad.obs["tmem_doorway_macrophage"].tolist(), int(ad.uns["chemomet_tmem"]["tmem_score"])
    ([False, True, False, False], 1)
    """
    import anndata
    import pandas as pd

    flags = cell_flags(result)
    t = result.table
    if t.meta.get("class_names") is not None and t.meta.get("class_index") is not None:
        names = np.asarray(t.meta["class_names"], dtype=str)
        flags["source_class"] = pd.Categorical.from_codes(np.asarray(t.meta["class_index"]), list(names))
    if base is None:
        obs = flags.copy()
        ids = t.meta.get("cell_ids")
        if ids is not None and len(set(ids)) == t.n:  # the input's object ids (QuPath 'Object ID', GeoJSON id)
            obs.index = pd.Index(np.asarray(ids, dtype=str), name="object_id")
        else:
            obs.index = pd.Index([str(i) for i in range(t.n)])
        ad = anndata.AnnData(obs=obs)
        ad.obsm["spatial"] = result.table.xy_um
    else:
        ad = base.copy()
        for c in flags.columns:
            ad.obs[c] = flags[c].to_numpy() if c != "chemomet_cell_type" else flags[c].values
    ad.obs["radius_um"] = result.table.radius_um
    ad.uns[UNS_KEY] = _uns_safe(result.summary())
    return ad


def write_anndata(result: TmemResult, path: str | Path, base=None) -> None:
    """Write :func:`to_anndata` to an ``.h5ad`` file, atomically.

    Parameters
    ----------
    result : the analysis (coordinates and radii in µm).
    path : the ``.h5ad`` file; written to a temporary name in its folder, then renamed into place.
    base : the AnnData the cells were read from, extended in a copy (see :func:`to_anndata`).

    Examples
    --------
    >>> from chemomet.tme import read_cells, score_tissue
    >>> write_anndata(score_tissue(read_cells("cells.csv")), "flagged.h5ad")  # doctest: +SKIP
    """
    ad = to_anndata(result, base)
    atomic_write(path, lambda tmp: ad.write_h5ad(tmp))
