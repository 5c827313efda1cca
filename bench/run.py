#!/usr/bin/env python
"""``make bench``: Jobs against raw Celery, measured in the same run.

Uses PostgreSQL + Redis when they are reachable on 127.0.0.1 (or when
DATABASE_URL / CELERY_BROKER_URL are set), else the embedded default. Starts
its own worker (prefork, 2 processes) on a fresh database, runs the raw Celery
baseline and the Jobs figure of each measure side by side, prints a table and
writes ``bench/results.json``. ``--quick`` is a smoke run with small numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
QUEUE = "bench"
DRAIN_QUEUE = "bench-drain"  # consumed only while a drain is measured


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def configure() -> str:
    if not os.environ.get("DATABASE_URL") and reachable(5432) and reachable(6379):
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/jobs_bench"
        os.environ["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/2"
    os.environ["JOBS_VAR_DIR"] = str(REPO / "var" / "bench")
    os.environ["JOBS_ACTION_MODULES"] = "bench.actions"
    os.environ["JOBS_DEFAULT_QUEUE"] = QUEUE
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"  # the app's settings + the peer's results app
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    # Measured as deployed: DEBUG off (with DEBUG on, Django keeps and formats every query it runs).
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", f"bench-{secrets.token_urlsafe(40)}")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")  # the page measures use Django's test client over http
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        recreate_postgres_database(url)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(REPO / "var" / "bench" / f"jobs.sqlite3{suffix}").unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return "postgresql+redis" if url.startswith("postgres") else "sqlite+filesystem"


def recreate_postgres_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        # Write out what an earlier run (a million rows) left dirty: otherwise the checkpoint does it
        # during this run's measures and slows every commit.
        conn.execute("CHECKPOINT")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, reading it
        return False
    return state != "Z"


def wait(predicate, timeout: float = 60, step: float = 0.0005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError("benchmark step timed out")


class Worker:
    def __init__(self, concurrency: int = 2, queue: str = QUEUE, name: str = "bench") -> None:
        self.log = REPO / "var" / "bench" / f"worker-{name}.log"
        env = {**os.environ}
        from jobs_project.celery import app

        with app.connection_for_write() as conn:  # what an interrupted run left there
            conn.default_channel.queue_purge(DRAIN_QUEUE)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs_project", "worker", "-P", "prefork", "-c", str(concurrency),
             "-Q", queue, "-I", "bench.tasks", "-l", "warning", "-n", f"{name}@%h", "--purge", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=REPO, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,
        )
        wait(lambda: app.control.ping(timeout=0.5, destination=[f"{name}@{socket.gethostname()}"]), timeout=60,
             step=0.2)

    def pool_pids(self) -> list[int]:
        return [int(pid) for pid in Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
                .read_text().split()]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def make_job(identifier: str, action: str, parameters: dict | None = None, queue: str = ""):
    from jobs.models import Action, Job, JobLine

    Action.objects.sync_with_registry()
    job, _ = Job.objects.get_or_create(identifier=identifier, defaults={"name": identifier, "concurrency": "parallel",
                                                                          "time_limit": 3600, "queue": queue})
    JobLine.objects.get_or_create(job=job, line_no=10, defaults={"action": Action.objects.get(name=action),
                                                                 "parameters": parameters or {}})
    return job


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def measure_dispatch(n: int, tmp: Path) -> dict:
    from bench.tasks import raw_start
    from results.dispatch import start_run
    from results.models import JobLineResult

    job = make_job("bench-dispatch", "bench.noop")
    path = tmp / "raw-dispatch.txt"
    raw, jobs, floor = [], [], []
    durable = os.environ["DATABASE_URL"].startswith("postgres")
    for i in range(n):
        sent = time.time()
        raw_start.apply_async(args=[str(path)], queue=QUEUE)
        wait(lambda i=i: line_count(path) > i)
        raw.append(float(path.read_text().split()[-1]) - sent)
        sent = time.time()
        result = start_run(job)
        # The figure is the worker's own timestamp of the line's start, read once the run is over; polling
        # the database slowly keeps the driver from taking CPU and PostgreSQL time from the worker meanwhile.
        wait(lambda r=result: r.__class__.objects.filter(id=r.id, finished_at__isnull=False).exists(), step=0.02)
        line = JobLineResult.objects.filter(result_id=result.id).only("started_at").get()
        jobs.append(line.started_at.timestamp() - sent)
        if durable:
            floor.append(_floor_dispatch(job))
    figures = {
        "celery_p50_ms": pct(raw, 50) * 1000, "celery_p99_ms": pct(raw, 99) * 1000,
        "jobs_p50_ms": pct(jobs, 50) * 1000, "jobs_p99_ms": pct(jobs, 99) * 1000,
        "ratio_p50": pct(jobs, 50) / pct(raw, 50), "ratio_p99": pct(jobs, 99) / pct(raw, 99), "samples": n,
    }
    if floor:
        figures |= {"floor_p50_ms": pct(floor, 50) * 1000, "ratio_to_floor_p50": pct(jobs, 50) / pct(floor, 50)}
    return figures


def _floor_dispatch(job) -> float:
    """The floor's dispatch: its pending row committed, then published; until its claim (its ``started_at``)."""
    from bench.tasks import insert_pending, raw_durable
    from results.models import JobResult

    sent = time.time()
    result_id = insert_pending(job.id)
    raw_durable.apply_async(args=[result_id], queue=QUEUE)
    wait(lambda: JobResult.objects.filter(id=result_id, finished_at__isnull=False).exists(), step=0.02)
    return JobResult.objects.values_list("started_at", flat=True).get(id=result_id).timestamp() - sent


def measure_throughput(n: int, tmp: Path, rounds: int) -> dict:
    """Two figures, each the median of ``rounds`` rounds that alternate raw Celery and Jobs.

    *Through one worker*: ``n`` messages wait in a queue the worker does not consume yet; it is then
    told to consume it (``add_consumer``) and the rate is ``n`` over the time from the first start to
    the last end (for Jobs and the floor, from the first claim). *End to end*: one driver sends ``n``
    one by one while the worker runs them, so the sender's cost (for Jobs, the pending result's
    INSERT) shares the machine with the worker. *Floor* (PostgreSQL): raw Celery plus the durable
    writes a run needs, hand-written (``bench.tasks.raw_durable``), drained like Jobs. *Peer*
    (PostgreSQL): Celery + django-celery-results in the same database with ``task_track_started``
    (``bench.tasks.peer_noop``), on the same worker, drained like Jobs.
    """
    rates: dict[str, list[float]] = {"celery_per_s": [], "jobs_per_s": [], "celery_e2e_per_s": [],
                                      "jobs_e2e_per_s": []}
    floor = os.environ["DATABASE_URL"].startswith("postgres")
    if floor:
        rates["floor_per_s"] = []
        rates["peer_per_s"] = []
    for i in range(rounds):
        rates["celery_per_s"].append(_raw_rate(n, tmp / f"raw-drain-{i}.txt", drain=True))
        rates["jobs_per_s"].append(_jobs_rate(n, drain=True))
        if floor:
            rates["floor_per_s"].append(_floor_rate(n))
            rates["peer_per_s"].append(_peer_rate(n))
        rates["celery_e2e_per_s"].append(_raw_rate(n, tmp / f"raw-e2e-{i}.txt", drain=False))
        rates["jobs_e2e_per_s"].append(_jobs_rate(n, drain=False))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    if floor:
        medians["ratio_to_floor"] = medians["jobs_per_s"] / medians["floor_per_s"]
        medians["ratio_to_peer"] = medians["jobs_per_s"] / medians["peer_per_s"]
    return medians | {
        "ratio": medians["jobs_per_s"] / medians["celery_per_s"],
        "ratio_e2e": medians["jobs_e2e_per_s"] / medians["celery_e2e_per_s"],
        "rounds": {name: [round(v) for v in values] for name, values in rates.items()}, "tasks": n,
    }


def _draining(queue: str, is_done) -> None:
    """Let the worker consume ``queue`` until ``is_done()``, then stop it consuming there."""
    from jobs_project.celery import app

    worker = [f"bench@{socket.gethostname()}"]
    app.control.add_consumer(queue, destination=worker, reply=True)
    try:
        wait(is_done, timeout=600, step=0.05)
    finally:
        app.control.cancel_consumer(queue, destination=worker, reply=True)


def _raw_rate(n: int, path: Path, *, drain: bool) -> float:
    from bench.tasks import raw_start

    queue = DRAIN_QUEUE if drain else QUEUE
    sent = time.time()
    for _ in range(n):
        raw_start.apply_async(args=[str(path)], queue=queue)
    if drain:
        _draining(queue, lambda: line_count(path) >= n)
    else:
        wait(lambda: line_count(path) >= n, timeout=600, step=0.01)
    starts = [float(x) for x in path.read_text().split()]
    return n / (max(starts) - (min(starts) if drain else sent))


def _floor_rate(n: int) -> float:
    """Raw Celery plus hand-written durable writes (``bench.tasks.raw_durable``), drained like the others."""
    from bench.tasks import insert_pending, raw_durable
    from results.models import JobResult

    job = make_job("bench-floor", "bench.noop")
    ids = []
    for _ in range(n):
        ids.append(insert_pending(job.id))
        raw_durable.apply_async(args=[ids[-1]], queue=DRAIN_QUEUE)
    _draining(DRAIN_QUEUE, lambda: JobResult.objects.filter(id__in=ids, status="success").count() == n)
    return _drained_rate(ids)


def _peer_rate(n: int) -> float:
    """Celery + django-celery-results: from the first STARTED row stored to the last outcome stored."""
    from django.db.models import Max, Min
    from django_celery_results.models import TaskResult

    from bench.tasks import peer_noop

    ids = [peer_noop.apply_async(queue=DRAIN_QUEUE).id for _ in range(n)]
    _draining(DRAIN_QUEUE, lambda: TaskResult.objects.filter(task_id__in=ids, status="SUCCESS").count() == n)
    span = TaskResult.objects.filter(task_id__in=ids).aggregate(first=Min("date_created"), last=Max("date_done"))
    return n / (span["last"] - span["first"]).total_seconds()


JOBS_RUN_TABLES = ("results_jobresult", "results_joblineresult", "results_joblogentry")
PEER_TABLES = ("django_celery_results_taskresult",)


def measure_storage(n: int) -> dict:
    """Bytes on disk per one-line run, tables with their indexes and TOAST, for Jobs and the peer.

    Both sides start from empty tables and drain ``n`` runs. *After the drain* counts what the updates
    left behind (dead row versions) too; *live* is after ``VACUUM FULL``: what a run keeps costing.
    What the empty tables take already (each index's first pages) is not a run's: it is subtracted.
    """
    from django.db import connection

    def size(tables: tuple[str, ...]) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t",
                           [list(tables)])
            return int(cursor.fetchone()[0])

    def vacuum_full(tables: tuple[str, ...]) -> None:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM FULL {table}")

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(JOBS_RUN_TABLES + PEER_TABLES)} CASCADE")
    vacuum_full(JOBS_RUN_TABLES + PEER_TABLES)
    empty_jobs, empty_peer = size(JOBS_RUN_TABLES), size(PEER_TABLES)
    _jobs_rate(n, drain=True)
    _peer_rate(n)
    figures = {"runs": n, "jobs_bytes_after_drain": (size(JOBS_RUN_TABLES) - empty_jobs) / n,
               "peer_bytes_after_drain": (size(PEER_TABLES) - empty_peer) / n}
    vacuum_full(JOBS_RUN_TABLES + PEER_TABLES)
    figures |= {"jobs_bytes_live": (size(JOBS_RUN_TABLES) - empty_jobs) / n,
                "peer_bytes_live": (size(PEER_TABLES) - empty_peer) / n,
                "empty_tables_bytes": {"jobs": empty_jobs, "peer": empty_peer}}
    return figures | {"ratio_live": figures["jobs_bytes_live"] / figures["peer_bytes_live"],
                      "ratio_after_drain": figures["jobs_bytes_after_drain"] / figures["peer_bytes_after_drain"]}


def _drained_rate(ids: list[int], sent: float | None = None) -> float:
    """Results per second from the first claim (or from ``sent``) to the last end."""
    from django.db.models import Max, Min

    from results.models import JobResult

    span = JobResult.objects.filter(id__in=ids).aggregate(first=Min("started_at"), last=Max("finished_at"))
    first = span["first"].timestamp() if sent is None else sent
    return len(ids) / (span["last"].timestamp() - first)


def _jobs_rate(n: int, *, drain: bool) -> float:
    from results.dispatch import start_run
    from results.models import TERMINAL, JobResult

    job = make_job("bench-drain" if drain else "bench-throughput", "bench.noop", queue=DRAIN_QUEUE if drain else "")
    sent = time.time()
    ids = [start_run(job).id for _ in range(n)]

    def done() -> bool:
        return JobResult.objects.filter(id__in=ids, status__in=TERMINAL).count() == n

    if drain:
        _draining(DRAIN_QUEUE, done)
    else:
        wait(done, timeout=600, step=0.05)
    return _drained_rate(ids, None if drain else sent)


def measure_kills(n: int, tmp: Path) -> dict:
    from bench.tasks import raw_sleep
    from jobs_project.celery import app
    from results import states
    from results.dispatch import start_run
    from results.models import JobResult

    def killed(result_id: int) -> bool:
        return JobResult.objects.filter(id=result_id, status="killed").exists()

    figures: dict[str, list[float]] = {"celery_revoke": [], "cooperative": [], "python": [], "tree": []}
    forced = 0
    for i in range(n):
        pid_file = tmp / f"raw-{i}.pid"
        task = raw_sleep.apply_async(args=[str(pid_file)], queue=QUEUE)
        pid = int(wait(lambda p=pid_file: p.exists() and p.read_text()))
        t0 = time.time()
        app.control.revoke(task.id, terminate=True, signal="SIGKILL")
        wait(lambda p=pid: not alive(p), timeout=30)
        figures["celery_revoke"].append(time.time() - t0)

        result = start_run(make_job("bench-kill-coop", "core.sleep", {"seconds": 600}))
        wait(lambda r=result: JobResult.objects.filter(id=r.id, status="running").exists())
        time.sleep(0.05)
        t0 = time.time()
        states.request_kill(result.id, None)
        wait(lambda r=result: killed(r.id), timeout=30)
        figures["cooperative"].append(time.time() - t0)

        # A Python loop that never checks: interrupted in its thread (results.stopping), its pool process kept.
        pid_file = tmp / f"busy-{i}.pid"
        result = start_run(make_job(f"bench-kill-python-{i}", "bench.busy", {"pid_file": str(pid_file)}))
        pid = int(wait(lambda p=pid_file: p.exists() and p.read_text()))
        t0 = time.time()
        states.request_kill(result.id, None)
        wait(lambda r=result: killed(r.id), timeout=30)
        figures["python"].append(time.time() - t0)
        forced += not alive(pid)  # ended by force instead: the pool process is gone

        pids = tmp / f"tree-{i}.pids"
        script = tmp / f"tree-{i}.sh"
        script.write_text(f"sleep 600 & echo $! >> {pids}\nsh -c 'sleep 600 & echo $! >> {pids}; wait' &\n"
                          f"echo $! >> {pids}\nwait\n")
        result = start_run(make_job(f"bench-kill-tree-{i}", "core.shell", {"command": f"sh {script}"}))
        tree = wait(lambda p=pids: p.exists() and len(p.read_text().split()) == 3 and p.read_text().split())
        t0 = time.time()
        states.request_kill(result.id, None)
        wait(lambda r=result, t=tree: killed(r.id) and not any(alive(int(x)) for x in t), timeout=30)
        figures["tree"].append(time.time() - t0)
        time.sleep(0.5)  # let the pool replace the process ended by force
    return {f"{name}_s_p{q}": pct(values, q) for name, values in figures.items() for q in (50, 99)} | {
        "samples": n, "python_forced": forced}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_schedule_lateness(seconds: float, idle_schedules: int) -> dict:
    """Lateness (result created minus slot due) of 10 one-second interval jobs under a real beat."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Job, Schedule
    from results.models import JobResult

    def run_beat(tag: str) -> dict:
        jobs = []
        for n in range(10):
            job = make_job(f"bench-sched-{tag}-{n}", "bench.noop")
            Schedule.objects.create(job=job, kind="interval", every=1, every_unit="seconds")
            jobs.append(job)
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs_project", "beat", "-l", "warning",
             "-s", str(REPO / "var" / "bench" / f"beat-{tag}"), "--pidfile="],
            cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(3)  # start-up
        cpu0, wall0 = cpu_seconds(beat.pid), time.monotonic()
        since = timezone.now()
        time.sleep(seconds)
        cpu = (cpu_seconds(beat.pid) - cpu0) / (time.monotonic() - wall0)
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=20)
        Schedule.objects.filter(job__in=jobs).update(kind="disabled", next_run_at=None)
        late = [
            (created - slot).total_seconds()
            for created, slot in JobResult.objects.filter(job__in=jobs, scheduled_for__gte=since)
            .values_list("created_at", "scheduled_for")
        ]
        return {"fires": len(late), "p50_s": pct(late, 50), "p99_s": pct(late, 99), "beat_cpu_share": cpu}

    small = run_beat("ten")
    tomorrow = timezone.now() + timedelta(days=1)
    idle = Job.objects.bulk_create(Job(identifier=f"bench-idle-{n}", name=f"Idle {n}") for n in range(idle_schedules))
    Schedule.objects.bulk_create(Schedule(job=job, kind="calendar", cron="0 3 * * *", timezone="UTC",
                                          next_run_at=tomorrow) for job in idle)
    large = run_beat("many")
    return {"with_10": small, f"with_{idle_schedules}": large, "idle_schedules": idle_schedules,
            "note": "django-celery-beat checks its schedules every 5 s by default; the seeds' systems every minute"}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure_log_ingest(lines: int, worker: Worker) -> dict:
    """One run printing ``lines`` lines as fast as it can (``seq``), on the bench worker.

    Lines stored per second: from the line's start to the run's end (its last entries are written in the
    commit that ends it). Live lag: while it runs, every 50 ms, how old the newest stored entry is (its ``at``
    is when the worker read it): what the live log is behind the output. Memory: the largest resident size
    of the worker's pool processes during the run, above theirs before it.
    """
    from django.db import connection

    from results.dispatch import start_run
    from results.models import TERMINAL, JobLineResult, JobResult

    before = {pid: rss_bytes(pid) for pid in worker.pool_pids()}
    peak = dict(before)
    cpu_before = sum(cpu_seconds(pid) for pid in before)
    lags = []
    result = start_run(make_job("bench-log-ingest", "core.shell", {"command": f"seq 1 {lines}"}))
    newest_sql = "SELECT max(at) FROM results_joblogentry WHERE result_id = %s AND seq > %s"
    seen = 0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if JobResult.objects.filter(id=result.id, status__in=TERMINAL).exists():
            break
        with connection.cursor() as cursor:
            cursor.execute(newest_sql, [result.id, seen])
            newest = cursor.fetchone()[0]
            cursor.execute("SELECT coalesce(max(seq), 0) FROM results_joblogentry WHERE result_id = %s", [result.id])
            seen = cursor.fetchone()[0]
        if newest is not None and 2 < seen < lines:  # the command is printing: the log is this far behind
            lags.append(time.time() - newest.timestamp())
        for pid in peak:
            peak[pid] = max(peak[pid], rss_bytes(pid))
        time.sleep(0.05)
    worker_cpu = sum(cpu_seconds(pid) for pid in before) - cpu_before
    done = JobResult.objects.get(id=result.id)
    line = JobLineResult.objects.get(result_id=result.id)
    seconds = (done.finished_at - line.started_at).total_seconds()
    stored = done.log_entries.count()
    return {"lines": lines, "stored": stored, "status": done.status, "seconds": seconds,
            "lines_per_s": lines / seconds, "live_lag_s_p50": pct(lags, 50) if lags else None,
            "live_lag_s_max": max(lags) if lags else None, "lag_samples": len(lags),
            "rss_added_mb": max(peak[pid] - before[pid] for pid in peak) / 2**20,
            "worker_cpu_us_per_line": worker_cpu / lines * 1e6}


def transactions() -> int:
    """Transactions committed and rolled back in the bench's database so far, as PostgreSQL counts them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def measure_idle_tx(runs: int, seconds: float) -> dict:
    """Database transactions per second per running run, above the idle worker's own (PostgreSQL only).

    A worker of ``runs`` prefork processes is measured idle for ``seconds``, then with ``runs`` long
    cooperative runs (``core.sleep``) going, for as long; per run = (with runs - idle) / runs. Backends
    report their counts to ``pg_stat_database`` within about 10 s, so each window starts 12 s after the
    change it follows (a steady state, where the counts reported late at both ends cancel out).
    """
    from results import states
    from results.dispatch import start_run
    from results.models import JobResult

    queue, settle = "bench-idle", 12
    worker = Worker(concurrency=runs, queue=queue, name="bench-idle")
    try:
        time.sleep(settle)
        t0, x0 = time.monotonic(), transactions()
        time.sleep(seconds)
        idle = (transactions() - x0) / (time.monotonic() - t0)
        job = make_job("bench-idle-sleep", "core.sleep", {"seconds": 3600}, queue=queue)
        ids = [start_run(job).id for _ in range(runs)]
        wait(lambda: JobResult.objects.filter(id__in=ids, status="running").count() == runs, timeout=60, step=0.2)
        time.sleep(settle)
        t0, x0 = time.monotonic(), transactions()
        time.sleep(seconds)
        busy = (transactions() - x0) / (time.monotonic() - t0)
        still = JobResult.objects.filter(id__in=ids, status="running").count()
        for result_id in ids:
            states.request_kill(result_id, None)
        wait(lambda: JobResult.objects.filter(id__in=ids, status="killed").count() == runs, timeout=60, step=0.2)
    finally:
        worker.stop()
    return {"runs": runs, "seconds": seconds, "idle_worker_tx_per_s": idle, "with_runs_tx_per_s": busy,
            "runs_running_throughout": still, "tx_per_run_s": (busy - idle) / runs}


def fill_results(rows: int) -> tuple:
    """``rows`` results over two domains' jobs, inserted by the database itself."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from jobs.models import Domain, DomainMembership, Job

    acme, _ = Domain.objects.get_or_create(slug="acme", defaults={"name": "Acme"})
    other, _ = Domain.objects.get_or_create(slug="other", defaults={"name": "Other"})
    job_a = Job.objects.create(identifier="bench-list-a", name="List A", domain=acme)
    job_b = Job.objects.create(identifier="bench-list-b", name="List B", domain=other)
    series = ("generate_series(1, %s) AS x" if connection.vendor == "postgresql" else "cnt")
    prefix = "" if connection.vendor == "postgresql" else (
        "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < %s) ")
    now = "now()" if connection.vendor == "postgresql" else "datetime('now')"
    sql = (f"{prefix}INSERT INTO results_jobresult (job_id, status, message, created_at, started_at, finished_at, "
           "trigger, parameters, variables, queue, worker, lines_total, attempt) "
           f"SELECT CASE WHEN x %% 2 = 0 THEN {job_a.id} ELSE {job_b.id} END, "
           "CASE WHEN x %% 10 = 0 THEN 'error' ELSE 'success' END, 'done', "
           f"{now}, {now}, {now}, 'schedule', '{{}}', '{{}}', '', 'bench:1', 1, 1 FROM {series}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [rows])
    User = get_user_model()
    root = User.objects.create_superuser("bench-root", "root@example.com", "x")
    domain_admin = User.objects.create_user("bench-acme", "acme@example.com", "x", is_staff=True)
    DomainMembership.objects.create(user=domain_admin, domain=acme, role="admin")
    return root, domain_admin


def fill_log(lines: int) -> int:
    from django.db import connection

    from results.models import JobResult

    result = JobResult.objects.create(job=make_job("bench-log-tail", "bench.noop"), status="success")
    series = "generate_series(1, %s) AS x" if connection.vendor == "postgresql" else "cnt"
    prefix = "" if connection.vendor == "postgresql" else (
        "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < %s) ")
    now = "now()" if connection.vendor == "postgresql" else "datetime('now')"
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix}INSERT INTO results_joblogentry (result_id, seq, level, line_no, message, at) "
                       f"SELECT {result.id}, x, 'INFO', 10, 'log line number ' || x, {now} FROM {series}", [lines])
    return result.id


def time_get(client, url: str, repeat: int = 5) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    for _ in range(repeat):
        connection.queries_log.clear()  # full (it keeps 9,000), it would make the count below read 0
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {"ms_p50": statistics.median(timings), "ms_max": max(timings), "queries": len(queries)}


def measure_pages(rows: int, log_lines: int) -> dict:
    from django.db import connection
    from django.test import Client

    root, domain_admin = fill_results(rows)
    log_result = fill_log(log_lines)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does on its own after so many inserts
            cursor.execute("VACUUM ANALYZE results_jobresult, results_joblogentry, jobs_job")
    figures = {"rows": rows, "log_lines": log_lines}
    for label, user in (("system_admin", root), ("domain_admin", domain_admin)):
        client = Client()
        client.force_login(user)
        figures[f"result_list_{label}"] = time_get(client, "/admin/results/jobresult/")
        figures[f"operations_page_{label}"] = time_get(client, "/admin/operations/")
    client = Client()
    client.force_login(root)
    figures["log_tail_api"] = time_get(client, f"/api/results/{log_result}/log/?tail=500")
    figures["result_page"] = time_get(client, f"/admin/results/jobresult/{log_result}/change/")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run of every measure")
    parser.add_argument("--only", help="measures to run alone, comma-separated (dispatch, throughput, storage, "
                                       "kill, log_ingest, idle_tx); printed as JSON")
    args = parser.parse_args()
    backend = configure()
    quick = args.quick
    if args.only:
        print(json.dumps(measure_only(args.only.split(","), quick), indent=2, default=str))
        return
    report: dict = {
        "backend": backend, "quick": quick, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "worker": "celery prefork, 2 processes, prefetch 1, acks_late; same worker for both sides",
    }
    worker = Worker()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            report["dispatch_latency"] = measure_dispatch(20 if quick else 200, tmp_path)
            report["throughput"] = measure_throughput(100 if quick else 1000, tmp_path, 1 if quick else 3)
            if backend.startswith("postgresql"):
                report["storage"] = measure_storage(100 if quick else 5000)
            report["kill"] = measure_kills(2 if quick else 10, tmp_path)
            report["log_ingest"] = measure_log_ingest(20_000 if quick else 1_000_000, worker)
            report["schedule_lateness"] = measure_schedule_lateness(5 if quick else 20, 10_000)
    finally:
        worker.stop()
    if backend.startswith("postgresql"):
        report["idle_tx"] = measure_idle_tx(8, 20 if quick else 60)
    report["pages"] = measure_pages(20_000 if quick else 1_000_000, 20_000 if quick else 1_000_000)
    pages = report["pages"]
    report.update({
        "dispatch_latency_ratio_p50": report["dispatch_latency"]["ratio_p50"],
        "throughput_ratio": report["throughput"]["ratio"],
        "throughput_ratio_end_to_end": report["throughput"]["ratio_e2e"],
        **({"throughput_ratio_peer": report["throughput"]["ratio_to_peer"],
            "ratio_to_floor": report["throughput"]["ratio_to_floor"],
            "storage_ratio_peer": report["storage"]["ratio_live"]} if "storage" in report else {}),
        "kill_tree_s_p99": report["kill"]["tree_s_p99"],
        "kill_python_s_p99": report["kill"]["python_s_p99"],
        "kill_cooperative_s_p99": report["kill"]["cooperative_s_p99"],
        "celery_revoke_s_p99": report["kill"]["celery_revoke_s_p99"],
        "schedule_lateness_s_p99": max(v["p99_s"] for k, v in report["schedule_lateness"].items()
                                       if k.startswith("with_")),
        "result_list_1m_ms": max(pages["result_list_system_admin"]["ms_p50"],
                                 pages["result_list_domain_admin"]["ms_p50"]),
        "log_tail_1m_ms": pages["log_tail_api"]["ms_p50"],
        "operations_page_1m_ms": max(pages["operations_page_system_admin"]["ms_p50"],
                                     pages["operations_page_domain_admin"]["ms_p50"]),
        "log_ingest_lines_per_s": report["log_ingest"]["lines_per_s"],
        "idle_tx_per_run_s": report["idle_tx"]["tx_per_run_s"] if "idle_tx" in report else None,
    })
    out = REPO / "bench" / ("results-quick.json" if quick else "results.json")
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\nwritten to {out.relative_to(REPO)}")


def measure_only(names: list[str], quick: bool) -> dict:
    report: dict = {}
    with_worker = {"dispatch", "throughput", "storage", "log_ingest", "kill"}
    if with_worker.intersection(names):
        worker = Worker()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                if "dispatch" in names:
                    report["dispatch_latency"] = measure_dispatch(20 if quick else 200, Path(tmp))
                if "throughput" in names:
                    report["throughput"] = measure_throughput(100 if quick else 1000, Path(tmp), 1 if quick else 3)
            if "storage" in names:
                report["storage"] = measure_storage(100 if quick else 5000)
            if "log_ingest" in names:
                report["log_ingest"] = measure_log_ingest(20_000 if quick else 1_000_000, worker)
            if "kill" in names:
                with tempfile.TemporaryDirectory() as tmp:
                    report["kill"] = measure_kills(2 if quick else 10, Path(tmp))
        finally:
            worker.stop()
    if "idle_tx" in names:
        report["idle_tx"] = measure_idle_tx(8, 20 if quick else 60)
    return report


def print_table(r: dict) -> None:
    d, t, k, p, s = r["dispatch_latency"], r["throughput"], r["kill"], r["pages"], r["schedule_lateness"]
    rows = [
        ("dispatch latency p50", f"{d['jobs_p50_ms']:.1f} ms", f"{d['celery_p50_ms']:.1f} ms",
         f"{d['ratio_p50']:.2f}x"),
        ("dispatch latency p99", f"{d['jobs_p99_ms']:.1f} ms", f"{d['celery_p99_ms']:.1f} ms",
         f"{d['ratio_p99']:.2f}x"),
        *([("  floor: its row committed, then claimed", f"{d['floor_p50_ms']:.1f} ms",
            f"Jobs / floor {d['ratio_to_floor_p50']:.2f}x", "")] if "floor_p50_ms" in d else []),
        ("throughput through one worker", f"{t['jobs_per_s']:.0f}/s", f"{t['celery_per_s']:.0f}/s",
         f"{t['ratio']:.2f}x"),
        *([("  floor: raw Celery + the same writes", f"{t['floor_per_s']:.0f}/s",
            f"Jobs / floor {t['ratio_to_floor']:.2f}x", ""),
           ("  peer: Celery + django-celery-results", f"{t['peer_per_s']:.0f}/s",
            f"Jobs / peer {t['ratio_to_peer']:.2f}x", "")] if "floor_per_s" in t else []),
        *([("storage per run (live, with indexes)", f"{r['storage']['jobs_bytes_live']:.0f} B",
            f"peer {r['storage']['peer_bytes_live']:.0f} B", f"{r['storage']['ratio_live']:.2f}x")]
          if "storage" in r else []),
        ("throughput end to end (one sender)", f"{t['jobs_e2e_per_s']:.0f}/s", f"{t['celery_e2e_per_s']:.0f}/s",
         f"{t['ratio_e2e']:.2f}x"),
        ("kill cooperative p99", f"{k['cooperative_s_p99']:.3f} s", f"{k['celery_revoke_s_p99']:.3f} s (revoke)", ""),
        ("kill non-cooperative Python p99", f"{k['python_s_p99']:.3f} s", f"{k['celery_revoke_s_p99']:.3f} s", ""),
        ("kill shell tree p99", f"{k['tree_s_p99']:.3f} s", f"{k['celery_revoke_s_p99']:.3f} s", ""),
        ("log ingest", f"{r['log_ingest']['lines_per_s']:.0f} lines/s",
         f"+{r['log_ingest']['rss_added_mb']:.0f} MB RSS", ""),
        *([("transactions per running run", f"{r['idle_tx']['tx_per_run_s']:.2f}/s",
            f"{r['idle_tx']['runs']} runs", "")] if "idle_tx" in r else []),
        (f"result list, {p['rows']:,} rows (sysadmin)", f"{p['result_list_system_admin']['ms_p50']:.0f} ms",
         f"{p['result_list_system_admin']['queries']} queries", ""),
        (f"result list, {p['rows']:,} rows (domain admin)", f"{p['result_list_domain_admin']['ms_p50']:.0f} ms",
         f"{p['result_list_domain_admin']['queries']} queries", ""),
        (f"operations page, {p['rows']:,} rows (sysadmin)", f"{p['operations_page_system_admin']['ms_p50']:.0f} ms",
         f"{p['operations_page_system_admin']['queries']} queries", ""),
        (f"operations page, {p['rows']:,} rows (domain admin)",
         f"{p['operations_page_domain_admin']['ms_p50']:.0f} ms",
         f"{p['operations_page_domain_admin']['queries']} queries", ""),
        (f"log tail, {p['log_lines']:,} lines (API)", f"{p['log_tail_api']['ms_p50']:.0f} ms",
         f"{p['log_tail_api']['queries']} queries", ""),
        ("schedule lateness p99, 10 schedules", f"{s['with_10']['p99_s']:.3f} s",
         f"beat CPU {100 * s['with_10']['beat_cpu_share']:.1f}%", ""),
        (f"schedule lateness p99, {s['idle_schedules']:,} schedules",
         f"{s['with_' + str(s['idle_schedules'])]['p99_s']:.3f} s",
         f"beat CPU {100 * s['with_' + str(s['idle_schedules'])]['beat_cpu_share']:.1f}%", ""),
    ]
    print(f"\nJobs vs raw Celery on {r['backend']} ({r['when']}, {r['machine']['cpus']} cpus)")
    print(f"| {'measure':<40} | {'Jobs':>18} | {'raw Celery / detail':>22} | {'ratio':>6} |")
    print(f"|{'-' * 42}|{'-' * 20}|{'-' * 24}|{'-' * 8}|")
    for name, ours, theirs, ratio in rows:
        print(f"| {name:<40} | {ours:>18} | {theirs:>22} | {ratio:>6} |")


if __name__ == "__main__":
    main()
