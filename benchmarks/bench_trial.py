"""Benchmark: a two-arm virtual trial (NACT vs NACT + rebastinib) on Dask, 1 vs 2 workers.

    python benchmarks/bench_trial.py                    # 10^6 patients (500k per arm), 1 and 2 workers
    python benchmarks/bench_trial.py --n 200000         # a smaller trial
    python benchmarks/bench_trial.py --n 1000000 --workers 2   # only the 2-worker run

Each run is a fresh process: it screens, simulates in checkpointed chunks on a Dask LocalCluster of K
single-threaded worker processes, assembles the patient table and runs the full analysis (KM, log-rank,
Cox, RMST, pCR, TMEM change, 19 subgroup Cox fits, figures). Reported: wall time (total and simulation
phase), peak memory of the driver and of each worker (max RSS), parallel efficiency T1 / (2 T2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = {
    "name": "benchmark: NACT vs NACT + rebastinib",
    "seed": 1,
    "arms": [
        {"name": "NACT", "strategy": "nact"},
        {"name": "NACT + rebastinib", "strategy": "nact+rebastinib"},
    ],
    "accrual": {"duration_days": 1096},
    "follow_up": {"duration_days": 1826, "loss_rate_per_year": 0.02, "other_cause_death_rate_per_year": 0.005},
}


def machine() -> dict:
    """CPU model, cores, memory, library versions."""
    import dask
    import lifelines
    import numpy

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "dask": dask.__version__,
        "lifelines": lifelines.__version__,
        "load_average": os.getloadavg(),
    }


def one_run(n: int, workers: int, chunk_size: int) -> dict:
    """Run the trial once in this process (the driver) on a fresh LocalCluster; return timings and memory."""
    from chemomet.trial import parse_trial_spec, run_trial
    from chemomet.trial.execute import dask_client

    spec = parse_trial_spec({**SPEC, "patients_per_arm": n // 2, "execution": {"chunk_size": chunk_size}})
    with tempfile.TemporaryDirectory() as tmp, dask_client(workers=workers) as client:
        t0 = time.perf_counter()
        res = run_trial(spec, out=Path(tmp) / "run", client=client)
        wall = time.perf_counter() - t0

        def worker_rss():
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)

        def worker_cpu():
            import resource

            r = resource.getrusage(resource.RUSAGE_SELF)
            return r.ru_utime + r.ru_stime  # CPU seconds of this worker process

        workers_mib = sorted(client.run(worker_rss).values())
        cpu = sum(client.run(worker_cpu).values())
        size = sum(p.stat().st_size for p in (Path(tmp) / "run").rglob("*") if p.is_file()) / 2**20
    dmfs = res.summary["endpoints"]["dmfs"]["comparisons"][0]
    return {
        "patients": n,
        "workers": workers,
        "chunk_size": chunk_size,
        "chunks": res.summary["run"]["chunks"],
        "wall_s": round(wall, 2),
        "simulation_s": res.summary["run"]["simulation_seconds"],
        "analysis_and_io_s": round(wall - res.summary["run"]["simulation_seconds"], 2),
        "patients_per_s": round(n / res.summary["run"]["simulation_seconds"]),
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_peak_rss_mib": [round(x) for x in workers_mib],
        "worker_cpu_s": round(cpu, 1),
        "core_share": round(cpu / (workers * wall), 3),  # < 1: idle or taken by other processes
        "run_dir_mib": round(size),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "hazard_ratio_dmfs": dmfs["hazard_ratio"],
        "logrank_p_dmfs": dmfs["logrank_p"],
    }


def chunk_memory(chunk_size: int) -> dict:
    """Peak RSS of a fresh process that simulates one chunk of ``chunk_size`` patients (both arms)."""
    import numpy as np

    from chemomet.trial import parse_trial_spec
    from chemomet.trial.chunk import simulate_patients

    spec = parse_trial_spec({**SPEC, "patients_per_arm": chunk_size})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    pos = np.arange(chunk_size, dtype=np.int64)
    simulate_patients(spec, pos, pos)
    return {
        "chunk_size": chunk_size,
        "seconds": round(time.perf_counter() - t0, 2),
        "rss_after_imports_mib": round(base),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="patients in the trial (both arms)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask worker counts to run")
    ap.add_argument("--chunk-size", type=int, default=8192, help="patients per chunk")
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count, interleaved; the fastest counts")
    ap.add_argument(
        "--memory", type=int, nargs="*", default=[2048, 8192, 32768], help="chunk sizes for the memory check"
    )
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--one-chunk", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_run(args.n, args.workers[0], args.chunk_size)))
        return
    if args.one_chunk:
        print(json.dumps(chunk_memory(args.chunk_size)))
        return
    print(json.dumps({"machine": machine()}, indent=1))
    for cs in args.memory:  # memory of one task grows with the chunk size, not with the trial
        cmd = [sys.executable, __file__, "--one-chunk", "--chunk-size", str(cs)]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip(), flush=True)
    runs: dict[int, list[dict]] = {k: [] for k in args.workers}
    for _ in range(args.repeat):  # interleaved, so a busy spell on a shared machine hits both alike
        for k in args.workers:
            cmd = [sys.executable, __file__, "--one", "--n", str(args.n), "--workers", str(k)]
            cmd += ["--chunk-size", str(args.chunk_size)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[k].append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(runs[k][-1]), flush=True)
    best = {k: min(r, key=lambda x: x["simulation_s"]) for k, r in runs.items()}
    if 1 in best and 2 in best:
        sim = best[1]["simulation_s"] / (2 * best[2]["simulation_s"])
        tot = best[1]["wall_s"] / (2 * best[2]["wall_s"])
        print(
            json.dumps(
                {
                    "fastest_of": args.repeat,
                    "simulation_s": {k: b["simulation_s"] for k, b in best.items()},
                    "wall_s": {k: b["wall_s"] for k, b in best.items()},
                    "parallel_efficiency_simulation": round(sim, 3),
                    "parallel_efficiency_wall": round(tot, 3),
                    # CPU seconds of all workers, 1 vs 2: the extra work parallel execution costs
                    "work_ratio_cpu": round(best[1]["worker_cpu_s"] / best[2]["worker_cpu_s"], 3),
                }
            )
        )


if __name__ == "__main__":
    main()
