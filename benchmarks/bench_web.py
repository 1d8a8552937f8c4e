"""Load benchmark of the web app: N concurrent assessment submissions to an in-process server on loopback.

    python benchmarks/bench_web.py                      # 8 concurrent assessments, 2 assessment workers
    python benchmarks/bench_web.py --n 16 --workers 4   # more load
    python benchmarks/bench_web.py --json               # also one JSON object with every number
    python benchmarks/bench_web.py --no-kill            # skip the killed-server phase

The server is the real app (:func:`chemomet.web.app.create_app`) under uvicorn in a thread of this process, on a
fresh study store, with the smallest valid assessment settings (1,000 twins, 256 simulated, 64 trajectories, no
drivers: a couple of CPU-seconds each; ``--twins`` raises the twin count), so the run takes seconds to minutes on
two cores. One assessment first warms imports and caches (reported, not counted). Then N client threads, released
together, each POST the patient form (a different age each) and poll the job's status until it is done.

Reported: latency of each submission from its POST to its job done (median, p95, max) and of the POST alone (the
form's validation and the redirect), wall time of the whole burst, CPU time of this process over the burst
(server and clients; CPU / wall = cores kept busy), throughput, the machine and its load average before and after.
Checked: no submission lost (every job done), every record in the store (one per submission, the ids the jobs
returned) and the store's hash chain intact. A benchmark, not a test: nothing here asserts a time.

Then (unless ``--no-kill``) a killed server: ``chemomet serve`` is started as a process of its own on a second store
file with the same settings (at most N/2 workers, so that some wait), N assessments are submitted, and once half of
them are done (``--kill-after``) and others still running, the process is killed with SIGKILL (no shutdown).
Checked on the store file as the kill left it: every assessment done before the kill is there, its outputs byte for
byte as the server gave them out, and the hash chain verifies. Then the server is started again on the same file and
port: it serves the study list with every completed record, their pages and JSON, reports the killed server's jobs
as unknown, and records a new assessment that extends the verified chain. Exit status 1 when anything is lost or
differs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

PATIENT = {"id": "bench", "age": "47", "diameter_mm": "28", "grade": "3", "er": "positive", "pr": "positive",
           "her2": "negative", "ki67_percent": "35", "tmem_score": "32", "tmem_convention": "10HPF",
           "ctc_count": "1", "morphology": ["alveolar", "solid"]}
"""The example patient's values, as the form posts them; each submission changes the age and the id."""


def machine() -> dict:
    """CPU model, cores, memory, platform and library versions (as benchmarks/bench_trial.py reports them)."""
    import numpy
    import starlette
    import uvicorn

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": numpy.__version__, "starlette": starlette.__version__,
            "uvicorn": uvicorn.__version__}


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app under uvicorn in a thread, on loopback (no access log, as ``chemomet serve``)."""

    def __init__(self, app, port: int):
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict, bytes]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        headers = {"Host": f"127.0.0.1:{port}"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        con.request(method, path, body=body, headers=headers)
        r = con.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        con.close()


def _form(i: int, study_id: str, prefix: str = "bench") -> bytes:
    form = {**PATIENT, "id": f"{prefix}-{i}", "age": str(40 + i % 40), "study_id": study_id}
    return urllib.parse.urlencode(form, doseq=True).encode()


def submit_and_wait(port: int, i: int, study_id: str, poll_s: float = 0.1, timeout_s: float = 1800) -> dict:
    """POST one patient form, follow its job to the end; returns the timings, the job's state and its record id."""
    body = _form(i, study_id)
    t0 = time.perf_counter()
    status, headers, text = _request(port, "POST", "/assess", body)
    t_post = time.perf_counter() - t0
    if status != 303:
        return {"i": i, "state": f"HTTP {status}", "post_s": t_post, "latency_s": None, "record_id": None,
                "error": text[:200].decode("utf-8", "replace")}
    job = headers["location"]
    deadline = time.monotonic() + timeout_s
    state = {"state": "unknown"}
    while time.monotonic() < deadline:
        code, _, raw = _request(port, "GET", job + "/status")
        state = json.loads(raw) if code in (200, 404) else {"state": f"HTTP {code}"}
        if state.get("state") in ("done", "failed", "cancelled", "unknown"):
            break
        time.sleep(poll_s)
    latency = time.perf_counter() - t0
    return {"i": i, "state": state.get("state"), "post_s": t_post, "latency_s": latency,
            "record_id": (state.get("result") or {}).get("record_id"), "error": state.get("error")}


def _pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank, as latency reports use)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def run(n: int, workers: int, twins: int, store: Path) -> dict:
    """Start the server, warm it, send ``n`` submissions at once and check the store; returns every number."""
    from chemomet.web.app import create_app
    from chemomet.web.store import StudyStore

    overrides = {"sampling.n_twins": twins, "sampling.n_simulated": 256, "sampling.n_trajectories": 64,
                 "sampling.n_drivers": 0}
    app = create_app(store, settings_overrides=overrides, workers=workers)
    study_id = f"BENCH-{int(time.time())}"
    out: dict = {"n": n, "workers": workers, "settings": overrides, "machine": machine(),
                 "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    with Server(app, _free_port()) as server:
        t0 = time.perf_counter()
        warm = submit_and_wait(server.port, 0, "BENCH-WARMUP")
        out["warmup_s"] = round(time.perf_counter() - t0, 2)
        if warm["state"] != "done":
            raise SystemExit(f"warm-up assessment did not finish: {warm}")
        results: list[dict] = [{} for _ in range(n)]
        barrier = threading.Barrier(n + 1)

        def client(k: int) -> None:
            barrier.wait()
            results[k] = submit_and_wait(server.port, k + 1, study_id)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        cpu0, rusage0 = time.process_time(), os.times()
        barrier.wait()
        w0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - w0
        cpu = time.process_time() - cpu0
        rusage1 = os.times()
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    done = [r for r in results if r.get("state") == "done"]
    lat = [r["latency_s"] for r in done]
    posts = [r["post_s"] for r in results]
    stored = StudyStore(store).records(study_id)
    ids = sorted(r["record_id"] for r in done)
    out.update({
        "completed": len(done),
        "lost_or_failed": [r for r in results if r.get("state") != "done"],
        "latency_s": {"median": round(statistics.median(lat), 2), "p95": round(_pct(lat, 95), 2),
                      "min": round(min(lat), 2), "max": round(max(lat), 2)} if lat else None,
        "post_s": {"median": round(statistics.median(posts), 4), "p95": round(_pct(posts, 95), 4)},
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_user_s": round(rusage1.user - rusage0.user, 2),
        "cpu_system_s": round(rusage1.system - rusage0.system, 2),
        "cores_busy": round(cpu / wall, 2) if wall else None,
        "throughput_per_min": round(60 * len(done) / wall, 1) if wall else None,
        "records_in_store": len(stored),
        "record_ids_match": sorted(r.id for r in stored) == ids,
        "chain_verified_records": StudyStore(store).verify(),
    })
    return out


class ServeProcess:
    """``chemomet serve`` in a process of its own, on loopback (its stderr appended to ``log``)."""

    def __init__(self, port: int, store: Path, workers: int, overrides: dict, log: Path):
        settings = [a for key, value in overrides.items() for a in ("--set", f"{key}={value}")]
        env = {k: v for k, v in os.environ.items() if k != "CHEMOMET_TOKEN"}
        self.port = port
        with open(log, "a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from chemomet.cli import main; main()", "serve", "--port", str(port),
                 "--store", str(store), "--workers", str(workers), *settings],
                stdout=subprocess.DEVNULL, stderr=err, env=env)

    def wait_listening(self, timeout_s: float = 120) -> float:
        """Seconds until it serves the study list."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise SystemExit(f"chemomet serve exited with status {self.proc.returncode}")
            try:
                if _request(self.port, "GET", "/studies")[0] == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("chemomet serve did not answer")

    def kill(self) -> int:
        """SIGKILL (no shutdown); returns the exit status."""
        os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=60)


def kill_and_restart(n: int, workers: int, twins: int, store: Path, kill_after: int, log: Path) -> dict:
    """Submit ``n`` assessments to a ``chemomet serve`` process, SIGKILL it once ``kill_after`` are done and others
    still run, check the store, restart on the same file; returns what was found (``problems`` lists any loss)."""
    from chemomet.web.store import StudyStore

    overrides = {"sampling.n_twins": twins, "sampling.n_simulated": 256, "sampling.n_trajectories": 64,
                 "sampling.n_drivers": 0}
    study_id = f"KILL-{int(time.time())}"
    port = _free_port()
    out: dict = {"n": n, "workers": workers, "kill_after": kill_after, "store": str(store), "problems": []}
    problems = out["problems"]
    server = ServeProcess(port, store, workers, overrides, log)
    try:
        out["start_s"] = round(server.wait_listening(), 2)
        jobs = {}
        for i in range(1, n + 1):
            code, headers, text = _request(port, "POST", "/assess", _form(i, study_id, "kill"))
            if code != 303:
                raise SystemExit(f"submission {i}: HTTP {code}: {text[:200]!r}")
            jobs[i] = headers["location"]
        t0 = time.perf_counter()
        while True:
            states = {i: json.loads(_request(port, "GET", job + "/status")[2]) for i, job in jobs.items()}
            count = {k: sum(s["state"] == k for s in states.values()) for k in ("queued", "running", "done")}
            if any(s["state"] in ("failed", "cancelled", "unknown") for s in states.values()):
                raise SystemExit(f"an assessment did not complete: {states}")
            if count["done"] >= kill_after and count["running"]:
                break
            if count["done"] == n or time.perf_counter() - t0 > 1800:
                raise SystemExit(f"no moment with {kill_after} done and others running: {count}")
            time.sleep(0.05)
        done = {i: s["result"] for i, s in states.items() if s["state"] == "done"}
        # what the server gave out for each completed assessment, read just before the kill
        served = {i: hashlib.sha256(_request(port, "GET", r["url"] + "/assessment.json")[2]).hexdigest()
                  for i, r in done.items()}
        out["at_kill"] = {**count, "after_s": round(time.perf_counter() - t0, 2)}
        out["exit_status"] = server.kill()
    finally:
        server.stop()

    def intact(st: StudyStore) -> list[str]:
        bad = []
        for i, r in done.items():
            rec = st.get(r["record_id"])
            if rec is None:
                bad.append(f"assessment {i} (record {r['record_id']}) missing")
            elif (rec.kind, rec.subject, rec.study_id) != ("assessment", f"kill-{i}", study_id):
                bad.append(f"record {rec.id} is not assessment {i}: {rec.kind} {rec.subject} {rec.study_id}")
            elif hashlib.sha256(rec.outputs_json.encode()).hexdigest() != served[i]:
                bad.append(f"record {rec.id}: outputs differ from what the server gave out")
        return bad

    st = StudyStore(store)
    try:
        out["chain_verified_after_kill"] = st.verify()
    except ValueError as err:
        problems.append(f"after the kill: {err}")
    after_kill = st.records(study_id)
    out["records_after_kill"] = len(after_kill)
    out["completed_before_kill"] = len(done)
    bad = intact(st)
    out["completed_intact"] = len(done) - len(bad)
    problems += bad
    if not all(json.loads(r.outputs_json).get("recommendation") for r in after_kill):
        problems.append("a record without its recommendation")

    server = ServeProcess(port, store, workers, overrides, log)
    try:
        out["restart_s"] = round(server.wait_listening(), 2)
        code, _, page = _request(port, "GET", "/studies")
        shown = [i for i, r in done.items() if f'id="record-{r["record_id"]}"'.encode() in page]
        out["completed_in_study_list"] = len(shown)
        if code != 200 or len(shown) != len(done):
            problems.append(f"study list after restart: HTTP {code}, {len(shown)}/{len(done)} completed shown")
        pages = 0
        for i, r in done.items():
            ok_page = _request(port, "GET", r["url"])[0] == 200
            code, _, body = _request(port, "GET", r["url"] + "/assessment.json")
            if ok_page and code == 200 and hashlib.sha256(body).hexdigest() == served[i]:
                pages += 1
            else:
                problems.append(f"assessment {i}: its page or JSON differs after restart")
        out["completed_pages_served"] = pages
        unknown = sum(json.loads(_request(port, "GET", job + "/status")[2]).get("state") == "unknown"
                      for job in jobs.values())
        out["old_jobs_unknown"] = unknown
        new = submit_and_wait(port, n + 1, study_id)
        out["new_assessment_after_restart"] = {"state": new["state"], "record_id": new["record_id"],
                                               "latency_s": round(new["latency_s"] or 0, 2)}
        if new["state"] != "done":
            problems.append(f"the restarted server did not complete a new assessment: {new}")
    finally:
        server.stop()
    st = StudyStore(store)
    try:
        out["chain_verified_final"] = st.verify()
    except ValueError as err:
        problems.append(f"after the restart: {err}")
    problems += [f"after the restart: {b}" for b in intact(st)]
    return out


def main() -> None:
    """Parse the options, run the benchmark, print the report (and the JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="concurrent submissions (default 8)")
    ap.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 16),
                    help="assessments the server runs at once (default: the cores, at most 16)")
    ap.add_argument("--twins", type=int, default=1000, help="sampling.n_twins (default 1000, the smallest valid)")
    ap.add_argument("--store", type=Path, help="study store file (default: a fresh temporary one)")
    ap.add_argument("--json", action="store_true", help="also print one JSON object with every number")
    ap.add_argument("--no-kill", action="store_true", help="skip the killed-server phase")
    ap.add_argument("--kill-after", type=int, help="assessments done before the kill (default: half of --n)")
    args = ap.parse_args()
    kill_after = args.kill_after or max(1, args.n // 2)
    if not args.no_kill and not 1 <= kill_after < args.n:
        ap.error(f"--kill-after = {kill_after} is invalid; allowed: 1 to --n - 1 ({args.n - 1})")
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or Path(tmp) / "bench.sqlite"
        res = run(args.n, args.workers, args.twins, store)
        report(res)
        killed = None
        if not args.no_kill:
            kill_store = store.with_name(store.stem + "-kill.sqlite")
            # at most n/2 workers, so that the assessments finish in waves and one is running when the kill comes
            killed = kill_and_restart(args.n, min(args.workers, max(1, args.n // 2)), args.twins, kill_store,
                                      kill_after, Path(tmp) / "serve.log")
            report_kill(killed)
    if args.json:
        print(json.dumps({**res, "killed_server": killed}))
    if res["lost_or_failed"] or res["records_in_store"] != res["n"] or not res["record_ids_match"]:
        sys.exit(1)
    if killed is not None and killed["problems"]:
        sys.exit(1)


def report(res: dict) -> None:
    """Print the burst's numbers."""
    m = res["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['platform']}; Python {m['python']}, "
          f"NumPy {m['numpy']}, Starlette {m['starlette']}, uvicorn {m['uvicorn']}")
    print(f"load average (1, 5, 15 min): before {res['load_average_before']}, after {res['load_average_after']}")
    s = res["settings"]
    print(f"{res['n']} concurrent assessments, {res['workers']} server workers, {s['sampling.n_twins']:,} twins, "
          f"{s['sampling.n_simulated']} simulated, {s['sampling.n_trajectories']} trajectories, no drivers; "
          f"warm-up assessment {res['warmup_s']} s (not counted)")
    lat = res["latency_s"]
    if lat:
        print(f"latency submit -> done: median {lat['median']} s, p95 {lat['p95']} s (min {lat['min']}, "
              f"max {lat['max']}); POST alone: median {1000 * res['post_s']['median']:.1f} ms, "
              f"p95 {1000 * res['post_s']['p95']:.1f} ms")
    print(f"burst: wall {res['wall_s']} s, CPU {res['cpu_s']} s (user {res['cpu_user_s']}, system "
          f"{res['cpu_system_s']}; {res['cores_busy']} cores busy), {res['throughput_per_min']} assessments/min")
    lost = res["lost_or_failed"]
    print(f"completed {res['completed']}/{res['n']}" + (f"; NOT completed: {lost}" if lost else "; none lost")
          + f"; records in the store {res['records_in_store']}/{res['n']}, ids match the jobs: "
          f"{res['record_ids_match']}; hash chain verified over {res['chain_verified_records']} records")


def report_kill(k: dict) -> None:
    """Print what the killed-server phase checked."""
    at = k["at_kill"]
    print(f"killed server: chemomet serve as its own process ({k['workers']} workers), started in {k['start_s']} s; "
          f"{k['n']} assessments submitted; SIGKILL after {at['after_s']} s with {at['done']} done, "
          f"{at['running']} running, {at['queued']} queued (exit status {k['exit_status']})")
    print(f"  store after the kill: {k['records_after_kill']} records of this run, hash chain verified over "
          f"{k.get('chain_verified_after_kill', 'FAILED')}; completed before the kill and intact (outputs byte "
          f"for byte as served): {k['completed_intact']}/{k['completed_before_kill']}")
    new = k.get("new_assessment_after_restart") or {}
    print(f"  restarted on the same store in {k.get('restart_s')} s: study list shows "
          f"{k.get('completed_in_study_list')}/{k['completed_before_kill']} completed, their pages and JSON "
          f"{k.get('completed_pages_served')}/{k['completed_before_kill']}; the killed server's jobs unknown: "
          f"{k.get('old_jobs_unknown')}/{k['n']}; a new assessment {new.get('state')} as record "
          f"{new.get('record_id')} in {new.get('latency_s')} s; hash chain verified over "
          f"{k.get('chain_verified_final', 'FAILED')} records")
    print("  " + ("NOTHING LOST" if not k["problems"] else "LOST OR CHANGED: " + "; ".join(k["problems"])))


if __name__ == "__main__":
    main()
