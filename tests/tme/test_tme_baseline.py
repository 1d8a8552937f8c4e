"""The benchmark's 30-line baseline (benchmarks/bench_tme.py) counts the same doorways as chemomet.

The benchmark compares chemomet's speed with a straightforward script (pandas + ``cKDTree.query_pairs`` + a sparse
triangle count); the comparison only means something if both compute the same thing. This is a correctness test,
not a timing: on synthetic tissues and on random slides (uniform cells of very different sizes, so that many
pairs lie near the contact threshold and triangles abound) the baseline's doorways and contact triangles equal
chemomet's, through the same Parquet file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tme_helpers import tissue

from chemomet.tme import TmemParams, read_cells, score_tissue

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tme.py"


@pytest.fixture(scope="module")
def baseline():
    spec = importlib.util.spec_from_file_location("bench_tme", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.baseline_doorways


def _random_slide(seed: int, n: int = 4000) -> pd.DataFrame:
    """Uniform cells on a square sized for about one contact per cell side, radii 2–9 µm, random types."""
    rng = np.random.default_rng(seed)
    side = float(np.sqrt(n) * 11.0)
    labels = np.array(["Tumor", "Macrophage", "Endothelial", "Stroma"])
    return pd.DataFrame(
        {
            "x": rng.uniform(0, side, n),
            "y": rng.uniform(0, side, n),
            "radius": rng.uniform(2.0, 9.0, n),
            "cell_type": labels[rng.choice(4, n, p=[0.4, 0.2, 0.25, 0.15])],
        }
    )


def _check(baseline, df: pd.DataFrame, path: Path, tolerance: float = 1.0) -> int:
    df.to_parquet(path)
    doorways, triangles = baseline(path, tolerance)
    r = score_tissue(read_cells(path), TmemParams(tolerance_um=tolerance))
    assert (doorways, triangles) == (r.doorways.n, r.doorways.n_triangles)
    return doorways


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baseline_equals_chemomet_on_random_slides(baseline, tmp_path, seed):
    n = _check(baseline, _random_slide(seed), tmp_path / "random.parquet")
    assert n > 50  # the slide has many doorways: agreement is not 0 == 0


@pytest.mark.parametrize("tolerance", [0.0, 2.5])
def test_baseline_equals_chemomet_at_other_tolerances(baseline, tmp_path, tolerance):
    assert _check(baseline, _random_slide(7), tmp_path / "random.parquet", tolerance) > 50


@pytest.mark.parametrize("seed", [3, 11])
def test_baseline_equals_chemomet_on_synthetic_tissue(baseline, tmp_path, seed):
    st = tissue(8000, seed, doorway_density_per_mm2=40.0)
    n = _check(baseline, st.cells[["x", "y", "radius", "cell_type"]], tmp_path / "tissue.parquet")
    assert n == len(st.doorway_macrophages) > 0  # and both find the planted doorways
