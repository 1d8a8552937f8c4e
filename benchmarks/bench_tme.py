"""Benchmark of the TMEM pipeline: time and peak memory at 10⁴, 10⁵, 10⁶ cells, with a naive O(n²) baseline.

Run: ``python benchmarks/bench_tme.py`` (``--sizes 10000,100000`` for a quick run; ``--naive-sizes`` chooses
where the brute-force baseline runs; it is O(n²), so keep it to the small sizes).

For each size a synthetic tissue (:func:`chemomet.tme.synthetic.generate_tissue`) is written to Parquet,
then a fresh Python process reads it and scores it (read → contact graph → doorways → hot-spot fields → raster
areas → scores), timing each stage; its peak resident memory (``ru_maxrss``, imports included) is the memory
figure. The same process also scores the table with the former settings (Delaunay areas, doorway-centred
fields), so the two timings are comparable.
The naive baseline runs in the same child on the small sizes: the same doorway stage with the contact graph
computed by testing every pair (:func:`chemomet.tme.contacts.contact_pairs_bruteforce`); it must give the same
doorways and score.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(path: str, naive: bool, repeats: int) -> dict:
    import resource

    import numpy as np

    from chemomet.tme import areas as areas_mod
    from chemomet.tme.contacts import contact_pairs, contact_pairs_bruteforce
    from chemomet.tme.doorways import find_doorways
    from chemomet.tme.fields import select_fields
    from chemomet.tme.readers import read_cells
    from chemomet.tme.scores import TmemParams, score_tissue

    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best: dict = {}
    for _ in range(repeats):
        t = {}
        t0 = time.perf_counter()
        table = read_cells(path)
        t["read_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = score_tissue(table, TmemParams())
        t["score_s"] = time.perf_counter() - t1
        t["total_s"] = t["read_s"] + t["score_s"]
        t2 = time.perf_counter()
        former = score_tissue(table, TmemParams(area_method="delaunay", field_centres="doorway"))
        t["score_former_s"] = time.perf_counter() - t2
        if not best or t["total_s"] < best["total_s"]:
            best = t
    summary = result.summary()
    # stage breakdown (one more pass, stage by stage)
    st = {}
    sub = np.flatnonzero(table.cell_type != 0)
    t0 = time.perf_counter()
    p = contact_pairs(table.x_um[sub], table.y_um[sub], table.radius_um[sub], 1.0)
    st["contacts_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = find_doorways(table, 1.0, pairs=sub[p])
    st["doorways_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    select_fields(d.xy_um, 10, 0.2)
    st["fields_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    areas_mod.tissue_areas(table.x_um, table.y_um, table.cell_type)
    st["areas_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    areas_mod.tissue_areas(table.x_um, table.y_um, table.cell_type, method="delaunay")
    st["areas_delaunay_s"] = time.perf_counter() - t0
    out = {"n": table.n, **best, **st, "n_doorways": summary["n_doorways"]}
    out.update(tmem_score=summary["tmem_score"], tmem_score_former=former.tmem_score, rss_imports_mib=rss_imports)
    if naive:
        t0 = time.perf_counter()
        pn = contact_pairs_bruteforce(table.x_um[sub], table.y_um[sub], table.radius_um[sub], 1.0, block=512)
        dn = find_doorways(table, 1.0, pairs=sub[pn])
        fn = select_fields(dn.xy_um, 10, 0.2)
        out["naive_stage_s"] = time.perf_counter() - t0
        assert np.array_equal(pn, p) and dn.n == d.n and fn.total == summary["tmem_score"]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--naive-sizes", default="10000,30000")
    ap.add_argument("--repeats", type=int, default=3, help="best of N for sizes below 10⁶ (10⁶: best of 2)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.naive, args.repeats)))
        return

    import numpy as np
    import scipy

    from chemomet.tme.synthetic import generate_tissue

    naive_sizes = {int(s) for s in args.naive_sizes.split(",") if s}
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | naive_sizes)
    print(
        f"machine: {platform.platform()}; {os.cpu_count()} CPUs ({_cpu_name()}); "
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}"
    )
    print(
        "pipeline = read Parquet + contact graph + doorways + 10 hot-spot HPF (0.2 mm²) + raster areas + scores; "
        "time = best of repeats; memory = peak RSS of a fresh process (imports included);"
    )
    print(
        "stage = contact graph + doorways + fields; naive = the same stage with the O(n²) contact graph; "
        "former = score with Delaunay areas and doorway-centred fields, same process"
    )
    hdr = (
        f"{'cells':>9} {'total s':>8} {'read s':>7} {'score s':>8} {'former s':>9} {'stage s':>8} {'areas s':>8} "
        f"{'Delaunay s':>10} {'score':>6} {'former':>7} {'µs/cell':>8} {'peak MiB':>9} {'naive s':>8} "
        f"{'naive/stage':>12}"
    )
    print(hdr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            st = generate_tissue(n, seed=2024)
            path = Path(tmp) / f"cells_{n}.parquet"
            st.cells.to_parquet(path)
            del st
            reps = args.repeats if n < 1_000_000 else min(args.repeats, 2)
            cmd = [sys.executable, __file__, "--child", str(path), "--repeats", str(reps)]
            if n in naive_sizes:
                cmd.append("--naive")
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            rows.append(res)
            stage = res["contacts_s"] + res["doorways_s"] + res["fields_s"]
            naive = res.get("naive_stage_s", float("nan"))
            print(
                f"{res['n']:>9} {res['total_s']:>8.3f} {res['read_s']:>7.3f} {res['score_s']:>8.3f} "
                f"{res['score_former_s']:>9.3f} {stage:>8.3f} {res['areas_s']:>8.3f} {res['areas_delaunay_s']:>10.3f} "
                f"{res['tmem_score']:>6} {res['tmem_score_former']:>7} {1e6 * res['total_s'] / res['n']:>8.2f} "
                f"{res['peak_rss_mib']:>9.0f} {naive:>8.2f} {naive / stage:>12.0f}",
                flush=True,
            )
    big = [r for r in rows if r["n"] in (10_000, 100_000, 1_000_000)]
    for a, b in zip(big, big[1:], strict=False):
        k = b["n"] / a["n"]
        nlogn = k * np.log(b["n"]) / np.log(a["n"])
        print(
            f"growth {a['n']} -> {b['n']}: time x{b['total_s'] / a['total_s']:.1f} "
            f"(O(n) x{k:.0f}, O(n log n) x{nlogn:.1f}, O(n²) x{k * k:.0f})"
        )
    small = [r for r in rows if "naive_stage_s" in r]
    for a, b in zip(small, small[1:], strict=False):
        print(
            f"naive stage {a['n']} -> {b['n']}: x{b['naive_stage_s'] / a['naive_stage_s']:.1f} "
            f"(O(n²) x{(b['n'] / a['n']) ** 2:.0f})"
        )
    if rows and rows[-1]["n"] >= 1_000_000:
        r = rows[-1]
        ok = r["total_s"] <= 20 and r["peak_rss_mib"] <= 2048
        print(
            f"target 10⁶ cells in ≤ 20 s with ≤ 2 GiB: {'met' if ok else 'NOT met'} "
            f"({r['total_s']:.1f} s, {r['peak_rss_mib']:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
