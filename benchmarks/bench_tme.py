"""Benchmark of the TMEM pipeline: time and peak memory at 10⁴–10⁷ cells, against a 30-line baseline in the same run.

Run: ``python benchmarks/bench_tme.py`` (stage table at 10⁴, 10⁵, 10⁶ cells, then chemomet against the baseline
at 10⁶; ``--sizes 10000,100000 --compare-sizes 100000`` for a quick run) or ``python benchmarks/bench_tme.py
--n 10000000`` (one size only: chemomet against the baseline, with the slide-scale bounds of 3 min and 4 GiB).

**Stage table** (``--sizes``). For each size a synthetic tissue (:func:`chemomet.tme.synthetic.generate_tissue`,
seed 2024) is written to Parquet, then a fresh Python process reads it and scores it (read → contact graph →
doorways → hot-spot fields → raster areas → scores), timing each stage; its peak resident memory (its own
``VmHWM``, imports included) is the memory figure. The same process also scores the table with the former
settings (Delaunay areas, doorway-centred fields). The naive baseline runs in the same child on the small sizes:
the same doorway stage with the contact graph computed by testing every pair
(:func:`chemomet.tme.contacts.contact_pairs_bruteforce`); it must give the same doorways and score.

**Against the 30-line baseline** (``--compare-sizes``, or ``--n``). :func:`baseline_doorways` is the
straightforward script a user would write (pandas, ``cKDTree.query_pairs`` at the largest contact distance, an
exact filter, a sparse matrix product for the triangles), with chemomet's definition: cells ``i``, ``j`` touch
when ``hypot(x_i − x_j, y_i − y_j) ≤ r_i + r_j + 1 µm``; a doorway is a macrophage in at least one
tumour–macrophage–endothelial contact triangle. The contender is the whole command, ``chemomet tmem
cells.parquet --out summary.json`` (read, unit checks, contacts, doorways, hot-spot fields, areas, vessels,
plausibility, JSON); a third process, ``doorways``, runs chemomet on the baseline's work only
(``read_cells`` + ``find_doorways``); a fourth, ``baseline0``, is the baseline with NumPy's huge-page advice off
(``NUMPY_MADVISE_HUGEPAGE=0``), as the command runs itself (:mod:`chemomet.tme.cli`), for the comparison on
equal terms (the command also has glibc's malloc keep freed memory, ``mallopt``; the baselines run with malloc's
defaults). Each runs in a fresh process from the same Parquet file, interleaved (each
in every position in turn), ``--repeats`` times (medians reported). Wall and CPU time (user + system, from
``os.wait4``) include interpreter start-up and imports; imports and compute are also timed apart inside each
process; the peak resident memory is the process's own high-water mark (``VmHWM``). The baseline's doorway and
triangle counts must equal chemomet's in every run (asserted). The machine and the load average before every run
are printed: on a shared machine the times move with the load. So is whether chemomet's modules come from cached
bytecode: in a source checkout with ``PYTHONDONTWRITEBYTECODE`` set, each fresh process compiles them again (about
0.1 s), which an installed package does not; ``--compile`` compiles them first, as ``pip install`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GiB = 1024**3


def baseline_doorways(path, tolerance_um: float = 1.0) -> tuple[int, int]:
    """The 30-line baseline: TMEM doorways of a generic-preset Parquet table (µm), as a user would script them.

    Returns ``(doorways, contact triangles)``: a doorway is a macrophage in at least one triangle of a tumour
    cell, a macrophage and an endothelial cell pairwise in contact, contact being
    ``hypot(x_i − x_j, y_i − y_j) ≤ r_i + r_j + tolerance_um`` (chemomet's definition, docs/tme.md).
    """
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    df = pd.read_parquet(path, columns=["x", "y", "radius", "cell_type"])
    kind = df["cell_type"].map({"Tumor": 0, "Macrophage": 1, "Endothelial": 2}).to_numpy()
    keep = ~np.isnan(kind)  # the three cell types of a doorway; every other label is left out
    x, y, r = (df[c].to_numpy()[keep] for c in ("x", "y", "radius"))
    kind = kind[keep].astype(int)
    reach = (2 * r.max() + tolerance_um) * (1 + 1e-9)  # the largest contact distance, with a hair of slack
    i, j = cKDTree(np.column_stack([x, y])).query_pairs(reach, output_type="ndarray").T
    touch = np.hypot(x[i] - x[j], y[i] - y[j]) <= r[i] + r[j] + tolerance_um
    i, j = i[touch], j[touch]
    n = x.size
    adj = sp.coo_matrix((np.ones(i.size, np.int64), (i, j)), shape=(n, n)).tocsr()
    adj = adj + adj.T

    def block(a, b):  # contacts between the cells of kind a (rows) and of kind b (columns)
        return adj[kind == a][:, kind == b]

    # (macrophage × tumour) @ (tumour × endothelial), kept where the macrophage touches the endothelial cell
    closed = (block(1, 0) @ block(0, 2)).multiply(block(1, 2)).tocsr()
    return int((closed.getnnz(axis=1) > 0).sum()), int(closed.sum())


def _detail_child(path: str, naive: bool, repeats: int) -> dict:
    import numpy as np

    from chemomet.tme import areas as areas_mod
    from chemomet.tme.contacts import contact_pairs, contact_pairs_bruteforce
    from chemomet.tme.doorways import find_doorways
    from chemomet.tme.fields import select_fields
    from chemomet.tme.readers import read_cells
    from chemomet.tme.scores import TmemParams, score_tissue

    rss_imports = _peak_rss_mib()
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
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def _peak_rss_mib() -> float:
    """Peak resident memory of this process, MiB: ``VmHWM`` of its own address space. (``ru_maxrss`` is not used
    for children: Linux carries the parent's resident size over ``fork``/``exec`` into it, so a child started by a
    parent holding a large tissue would report the parent's memory.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline_child(path: str, result: str) -> None:
    t0 = time.perf_counter()
    import numpy  # noqa: F401  (the baseline's imports, timed apart)
    import pandas  # noqa: F401
    import scipy.sparse  # noqa: F401
    import scipy.spatial  # noqa: F401

    t1 = time.perf_counter()
    doorways, triangles = baseline_doorways(path)
    out = {"n_doorways": doorways, "n_contact_triangles": triangles, "imports_s": t1 - t0}
    out["compute_s"] = time.perf_counter() - t1
    Path(result).write_text(json.dumps({**out, "peak_mib": _peak_rss_mib()}))


def _contender_child(path: str, result: str) -> None:
    t0 = time.perf_counter()
    import chemomet.tme.cli  # noqa: F401  (what the command imports, timed apart)
    from chemomet.cli import main

    t1 = time.perf_counter()
    try:
        main(["tmem", path, "--out", result])
    except SystemExit as err:
        if err.code not in (0, None):
            raise
    s = json.loads(Path(result).read_text())
    s.update(imports_s=t1 - t0, compute_s=time.perf_counter() - t1)
    s["peak_mib"] = _peak_rss_mib()
    Path(result).write_text(json.dumps(s))


def _doorways_child(path: str, result: str) -> None:
    t0 = time.perf_counter()
    from chemomet.tme import find_doorways, read_cells

    t1 = time.perf_counter()
    d = find_doorways(read_cells(path))
    out = {"n_doorways": d.n, "n_contact_triangles": d.n_triangles, "imports_s": t1 - t0}
    out["compute_s"] = time.perf_counter() - t1
    Path(result).write_text(json.dumps({**out, "peak_mib": _peak_rss_mib()}))


def _run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` in a fresh process (``env``: variables added to this one's); its wall time and CPU time (user
    + system, from ``os.wait4``)."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env} if env else None
    )
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-2000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "sys_s": ru.ru_stime, "load": load}


def _thp() -> str:
    """The kernel's transparent-huge-page settings (``enabled``, ``defrag``): with ``defrag`` at ``madvise``,
    NumPy's huge-page advice can cost system time on every fresh large array."""
    out = []
    for key in ("enabled", "defrag"):
        try:
            out.append(f"{key} {Path(f'/sys/kernel/mm/transparent_hugepage/{key}').read_text().strip()}")
        except OSError:
            out.append(f"{key} unknown")
    return "; ".join(out)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _bytecode_state() -> str:
    """Whether chemomet's modules are imported from cached bytecode: with ``PYTHONDONTWRITEBYTECODE`` set and no
    ``__pycache__`` in a source checkout, every fresh process compiles them again (about 0.1 s for those the command
    imports), while the libraries of site-packages were compiled when installed."""
    import importlib.util

    import chemomet.tme.cli as mod

    cached = Path(importlib.util.cache_from_source(mod.__file__)).exists()
    flag = "set" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "not set"
    return f"chemomet bytecode {'cached' if cached else 'NOT cached (compiled in every process)'}; " \
        f"PYTHONDONTWRITEBYTECODE {flag}"


def _compile_chemomet() -> None:
    """Compile chemomet's modules to their ``__pycache__`` (as ``pip install`` does for a wheel), so that the
    command, like the libraries, is imported from bytecode."""
    import compileall

    import chemomet

    compileall.compile_dir(str(Path(chemomet.__file__).parent), quiet=1)


def _generate_child(n: int, path: str) -> None:
    from chemomet.tme.synthetic import generate_tissue

    generate_tissue(n, seed=2024).cells.to_parquet(path)


def _write_tissue(n: int, folder: str) -> Path:
    """The synthetic tissue of ``n`` cells (seed 2024) as Parquet, made in a separate process (10⁷ cells take a
    few GiB to generate, which this process, the parent of the measured ones, should not hold)."""
    path = Path(folder) / f"cells_{n}.parquet"
    subprocess.run([sys.executable, __file__, "--generate", str(n), "--result", str(path)], check=True)
    return path


def _stage_table(sizes: list[int], naive_sizes: set[int], repeats: int, tmp: str) -> None:
    import numpy as np

    print(
        "\nstage table: pipeline = read Parquet + contact graph + doorways + 10 hot-spot HPF (0.2 mm²) + raster areas "
        "+ scores; time = best of repeats; memory = peak RSS of a fresh process (imports included);"
    )
    print(
        "stage = contact graph + doorways + fields; naive = the same stage with the O(n²) contact graph; "
        "former = score with Delaunay areas and doorway-centred fields, same process"
    )
    hdr = (
        f"{'cells':>9} {'total s':>8} {'read s':>7} {'score s':>8} {'former s':>9} {'stage s':>8} {'areas s':>8} "
        f"{'Delaunay s':>10} {'score':>6} {'former':>7} {'µs/cell':>8} {'peak MiB':>9} {'naive s':>8} "
        f"{'naive/stage':>12} {'load':>5}"
    )
    print(hdr)
    rows = []
    for n in sizes:
        path = _write_tissue(n, tmp)
        reps = repeats if n < 1_000_000 else min(repeats, 2)
        cmd = [sys.executable, __file__, "--child", str(path), "--repeats", str(reps)]
        if n in naive_sizes:
            cmd.append("--naive")
        load = os.getloadavg()[0]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        rows.append(res)
        stage = res["contacts_s"] + res["doorways_s"] + res["fields_s"]
        naive = res.get("naive_stage_s", float("nan"))
        print(
            f"{res['n']:>9} {res['total_s']:>8.3f} {res['read_s']:>7.3f} {res['score_s']:>8.3f} "
            f"{res['score_former_s']:>9.3f} {stage:>8.3f} {res['areas_s']:>8.3f} {res['areas_delaunay_s']:>10.3f} "
            f"{res['tmem_score']:>6} {res['tmem_score_former']:>7} {1e6 * res['total_s'] / res['n']:>8.2f} "
            f"{res['peak_rss_mib']:>9.0f} {naive:>8.2f} {naive / stage:>12.0f} {load:>5.1f}",
            flush=True,
        )
        path.unlink()
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


WHO = {
    "chemomet": ("--contender-child", None),  # the whole command
    "doorways": ("--doorways-child", None),  # chemomet doing only what the baseline does: read, doorways
    "baseline": ("--baseline-child", None),
    # the baseline with NumPy's huge-page advice off, as the command sets it for itself (chemomet.tme.cli): the
    # comparison on equal terms
    "baseline0": ("--baseline-child", {"NUMPY_MADVISE_HUGEPAGE": "0"}),
}


def _compare(n: int, repeats: int, tmp: str) -> dict:
    """chemomet's command (and its doorway count alone) against the 30-line baseline on the same file,
    interleaved, in fresh processes."""
    t0 = time.perf_counter()
    path = _write_tissue(n, tmp)
    gen_s = time.perf_counter() - t0
    runs: dict[str, list[dict]] = {who: [] for who in WHO}
    print(
        f"\n{n} cells (synthetic, seed 2024; generated and written in {gen_s:.1f} s; "
        f"{path.stat().st_size / 2**20:.0f} MiB Parquet)"
    )
    print(
        f"{'run':>4} {'who':>9} {'wall s':>8} {'CPU s':>8} {'sys s':>6} {'imports s':>10} {'compute s':>10} "
        f"{'peak MiB':>9} {'doorways':>9} {'triangles':>10} {'score':>6} {'load':>5}"
    )
    names = list(WHO)
    for k in range(repeats):
        for who in names[k % len(names) :] + names[: k % len(names)]:  # each in every position in turn
            result = Path(tmp) / f"{who}_{n}_{k}.json"
            flag, env = WHO[who]
            m = _run_measured([sys.executable, __file__, flag, str(path), "--result", str(result)], env)
            r = json.loads(result.read_text())
            m.update(
                doorways=r["n_doorways"],
                triangles=r["n_contact_triangles"],
                imports_s=r["imports_s"],
                compute_s=r["compute_s"],
                peak_mib=r["peak_mib"],
                score=r.get("tmem_score"),
            )
            runs[who].append(m)
            score = "" if m["score"] is None else m["score"]
            print(
                f"{k + 1:>4} {who:>9} {m['wall_s']:>8.2f} {m['cpu_s']:>8.2f} {m['sys_s']:>6.2f} "
                f"{m['imports_s']:>10.2f} {m['compute_s']:>10.2f} {m['peak_mib']:>9.0f} {m['doorways']:>9} "
                f"{m['triangles']:>10} {score:>6} {m['load']:>5.1f}",
                flush=True,
            )
        b = runs["baseline"][-1]
        for who in ("chemomet", "doorways", "baseline0"):
            c = runs[who][-1]
            assert (c["doorways"], c["triangles"]) == (b["doorways"], b["triangles"]), (
                f"the baseline disagrees with chemomet ({who}): {b['doorways']} vs {c['doorways']} doorways, "
                f"{b['triangles']} vs {c['triangles']} triangles"
            )
    path.unlink()
    keys = ("wall_s", "cpu_s", "sys_s", "imports_s", "compute_s", "peak_mib")
    med = {who: {key: statistics.median(r[key] for r in rs) for key in keys} for who, rs in runs.items()}
    b = med["baseline"]
    print(f"median of {repeats} (doorways equal, {runs['baseline'][0]['doorways']}, in every run):")
    for who in WHO:
        c = med[who]
        ratio = (
            ""
            if who == "baseline"
            else (
                f"; /baseline: wall x{c['wall_s'] / b['wall_s']:.2f}, CPU x{c['cpu_s'] / b['cpu_s']:.2f}, "
                f"compute x{c['compute_s'] / b['compute_s']:.2f}"
            )
        )
        print(
            f"  {who:>9}: {c['wall_s']:.2f} s wall, {c['cpu_s']:.2f} s CPU ({c['sys_s']:.2f} s system; "
            f"{c['imports_s']:.2f} s imports, {c['compute_s']:.2f} s compute), {c['peak_mib']:.0f} MiB{ratio}"
        )
    c = med["chemomet"]
    ok = c["wall_s"] <= b["wall_s"]
    print(f"target chemomet ≤ baseline (median wall, whole command) at {n} cells: {'met' if ok else 'NOT met'}")
    b0 = med["baseline0"]
    print(
        f"on equal terms (the baseline with NUMPY_MADVISE_HUGEPAGE=0, as the command runs): chemomet/baseline0 wall "
        f"x{c['wall_s'] / b0['wall_s']:.2f}, CPU x{c['cpu_s'] / b0['cpu_s']:.2f}"
    )
    if n >= 10_000_000:
        worst_wall = max(r["wall_s"] for r in runs["chemomet"])
        worst_mem = max(r["peak_mib"] for r in runs["chemomet"])
        ok = worst_wall <= 180 and worst_mem * 2**20 <= 4 * GiB
        print(
            f"target {n} cells in ≤ 3 min with ≤ 4 GiB (whole command): {'met' if ok else 'NOT met'} "
            f"(slowest run {worst_wall:.1f} s, largest peak {worst_mem:.0f} MiB)"
        )
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="sizes of the stage table ('' for none)")
    ap.add_argument("--naive-sizes", default="10000,30000")
    ap.add_argument("--compare-sizes", default="1000000", help="sizes compared with the 30-line baseline")
    ap.add_argument("--n", type=int, help="one size only: chemomet against the baseline (e.g. 10000000)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="baseline comparison: runs of each (median); stage table: best of N below 10⁶ cells (10⁶: of 2)",
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="compile chemomet's modules to bytecode first (as pip does on install; a source checkout with "
        "PYTHONDONTWRITEBYTECODE set otherwise compiles them in every process)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--baseline-child", help=argparse.SUPPRESS)
    ap.add_argument("--contender-child", help=argparse.SUPPRESS)
    ap.add_argument("--doorways-child", help=argparse.SUPPRESS)
    ap.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        _generate_child(args.generate, args.result)
        return
    if args.child:
        print(json.dumps(_detail_child(args.child, args.naive, args.repeats)))
        return
    if args.baseline_child:
        _baseline_child(args.baseline_child, args.result)
        return
    if args.contender_child:
        _contender_child(args.contender_child, args.result)
        return
    if args.doorways_child:
        _doorways_child(args.doorways_child, args.result)
        return

    import numpy as np
    import pandas as pd
    import scipy

    if args.n is not None:
        sizes, naive_sizes, compare = [], set(), [args.n]
    else:
        naive_sizes = {int(s) for s in args.naive_sizes.split(",") if s}
        sizes = sorted({int(s) for s in args.sizes.split(",") if s} | naive_sizes)
        compare = sorted({int(s) for s in args.compare_sizes.split(",") if s})
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    print(
        f"machine: {platform.platform()}; {os.cpu_count()} CPUs ({_cpu_name()}), {mem:.0f} GiB; Python "
        f"{platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, pandas {pd.__version__}"
    )
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"transparent huge pages: {_thp()}")
    if args.compile:
        _compile_chemomet()
    print(_bytecode_state())
    with tempfile.TemporaryDirectory() as tmp:
        if sizes:
            _stage_table(sizes, naive_sizes, args.repeats, tmp)
        if compare:
            print(
                "\nchemomet = the command `chemomet tmem cells.parquet --out summary.json`; doorways = chemomet "
                "doing only the baseline's work (read_cells + find_doorways); baseline = baseline_doorways() (pandas + "
                "cKDTree.query_pairs + sparse triangles, 30 lines); each in a fresh process (start-up and imports "
                "included), interleaved; CPU = user + system; peak = the process's VmHWM"
            )
            for n in compare:
                _compare(n, max(args.repeats, 1), tmp)
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
