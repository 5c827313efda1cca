"""``make chaos``: break workers, Redis, PostgreSQL and beat on purpose; count what became of every run.

    .venv/bin/python -m chaos.run [--only NAME[,NAME]] [--beat-seconds S] [--keep]

Runs on the PostgreSQL and Redis of this machine (127.0.0.1:5432 as postgres,
127.0.0.1:6379), in its own database ``jobs_chaos`` (dropped and created again
at start, dropped at the end), Redis database 5 and its own queues (``chaos``,
``chaos-a``, ``chaos-b``), with real ``celery -A jobs_project worker`` and
``beat`` processes on short reaper settings. Each scenario prints a line per
fact it counted and ends with ``PASS name`` or ``FAIL name: why``; the last line
is ``chaos: N passed, M failed`` and the exit status is 1 on any failure.
Whatever happens, every process it started is stopped and PostgreSQL and
Redis are left running. Logs of the Celery processes: ``var/chaos/<scenario>/``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from . import procs

REPO = procs.REPO
VAR = REPO / "var" / "chaos"
DATABASE_NAME = "jobs_chaos"
BROKER_DB = 5
QUEUE = "chaos"
LOST_SECONDS, HEARTBEAT_SECONDS, REAPER_INTERVAL_SECONDS, REPUBLISH_AFTER_SECONDS = 4, 1, 1, 10
# From a worker's death to the end of its runs: the heartbeat goes stale, the next sweep ends them.
REAPER_BOUND_SECONDS = LOST_SECONDS + REAPER_INTERVAL_SECONDS + 2
ENV = {
    "DJANGO_SETTINGS_MODULE": "jobs_project.settings",
    # As deployed: DEBUG off, which needs a key (only the processes of this run use it).
    "DEBUG": "false",
    "SECRET_KEY": f"chaos-{secrets.token_urlsafe(40)}",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}",
    "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{BROKER_DB}",
    "JOBS_VAR_DIR": str(VAR),
    "JOBS_DEFAULT_QUEUE": QUEUE,
    "JOBS_ACTION_MODULES": "chaos.actions",
    "JOBS_WORKER_LOST_SECONDS": str(LOST_SECONDS),
    "JOBS_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
    "JOBS_REAPER_INTERVAL_SECONDS": str(REAPER_INTERVAL_SECONDS),
    "JOBS_REPUBLISH_AFTER_SECONDS": str(REPUBLISH_AFTER_SECONDS),
    "LOG_LEVEL": "WARNING",
}


class Failed(Exception):
    """The scenario could not go on (the reason is the message)."""


# --- Set-up ---------------------------------------------------------------------


def configure() -> None:
    """Our own database, created afresh, and our own Redis database, emptied."""
    import psycopg

    os.environ.update(ENV)
    with psycopg.connect(procs.PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    procs.flush_redis_db(BROKER_DB)
    import django

    django.setup()
    from django.core.management import call_command

    from jobs.models import Action

    call_command("migrate", verbosity=0)
    Action.objects.sync_with_registry()


def drop_database() -> None:
    import psycopg
    from django.db import connections

    with contextlib.suppress(Exception):  # Django may never have been set up
        connections.close_all()
    with psycopg.connect(procs.PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')


def db(fn: Callable, *args, timeout: float = 60, **kwargs):
    """Call ``fn``; on a broken database connection (PostgreSQL restarting) reconnect and call it again."""
    from django.db import InterfaceError, OperationalError, connection

    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            with contextlib.suppress(Exception):
                connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.2) -> object:
    """The first true value of ``predicate`` within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = db(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


def make_job(identifier: str, action: str, parameters: dict, **fields):
    from jobs.models import Action, Job, JobLine

    fields.setdefault("concurrency", Job.PARALLEL)
    job = Job.objects.create(identifier=identifier, name=identifier, **fields)
    JobLine.objects.create(job=job, line_no=10, action=Action.objects.get(name=action), parameters=parameters)
    return job


def rows(**filters) -> list[dict]:
    from results.models import JobResult

    return list(JobResult.objects.filter(**filters).order_by("id").values(
        "id", "job_id", "job__identifier", "job__idempotent", "status", "message", "trigger", "created_at",
        "started_at", "finished_at", "retry_of_id", "scheduled_for", "worker"))


def active_count(**filters) -> int:
    from results.models import ACTIVE, JobResult

    return JobResult.objects.filter(status__in=ACTIVE, **filters).count()


def wait_settled(timeout: float, **filters) -> float | None:
    """Seconds until no result (of ``filters``) is pending or running, and stays so; None on timeout.

    "Stays so" covers the moment between a lost run's end and the creation of its retry.
    """
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if db(active_count, **filters) == 0:
            time.sleep(1.5)
            if db(active_count, **filters) == 0:
                return time.monotonic() - started - 1.5
        time.sleep(0.2)
    return None


def summary(counter: Counter) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


def kind(row: dict) -> str:
    """The status, with the reason of an error in a word or two."""
    message = row["message"] or ""
    if row["status"] == "error" and message.startswith("Worker lost"):
        return "error (worker lost)"
    if row["status"] == "error" and message.startswith("The runner failed"):
        return "error (runner failed)"
    return row["status"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- One scenario's world ---------------------------------------------------------


@dataclass(frozen=True)
class Start:
    result_id: int
    worker: str
    pid: int
    at: float


class Scenario:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = VAR / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.starts_path = self.dir / "starts.txt"
        self.problems: list[str] = []

    def fact(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def check(self, ok: bool, why: str) -> bool:
        if not ok:
            self.problems.append(why)
            print(f"  !! {why}", flush=True)
        return ok

    def worker(self, name: str, queues: str = QUEUE, concurrency: int = 4) -> procs.Worker:
        return procs.Worker(name, queues, concurrency, ENV, self.dir).start()

    def beat(self, name: str) -> procs.Beat:
        return procs.Beat(name, ENV, self.dir).start()

    def starts(self) -> list[Start]:
        if not self.starts_path.exists():
            return []
        found = []
        for line in self.starts_path.read_text().splitlines():
            result_id, worker, pid, at = line.split()
            found.append(Start(int(result_id), worker, int(pid), float(at)))
        return found

    def starts_by_result(self) -> dict[int, list[Start]]:
        by_result: dict[int, list[Start]] = defaultdict(list)
        for start in self.starts():
            by_result[start.result_id].append(start)
        return by_result

    def mark(self, seconds: float = 0.0) -> dict:
        return {"path": str(self.starts_path), "seconds": seconds}


def ready(*processes: procs.CeleryProcess) -> None:
    for process in processes:
        process.wait_ready()


def started_twice(s: Scenario, ids) -> list[int]:
    by_result = s.starts_by_result()
    return sorted(result_id for result_id in ids if len(by_result.get(result_id, [])) > 1)


def check_none_twice(s: Scenario, ids) -> None:
    twice = started_twice(s, ids)
    s.fact(f"runs started twice: {len(twice)}")
    s.check(not twice, f"runs started twice: {twice[:20]}")


def check_none_stuck(s: Scenario, results, settled: float | None, since: str, within: int) -> None:
    """Every run reached a final status (``settled``: seconds until they all had, None if not)."""
    stuck = [row["id"] for row in results if row["status"] in ("pending", "running")]
    s.fact(f"runs still pending or running: {len(stuck)}"
           + (f" (all settled {settled:.1f} s after {since})" if settled is not None else ""))
    s.check(not stuck, f"{len(stuck)} runs still pending or running {within} s after {since}: {stuck[:20]}")


# --- Scenarios ----------------------------------------------------------------------


def worker_kill(s: Scenario) -> None:
    """SIGKILL a worker in the middle of 20 runs: each ends within the reaper's bound, none stays running."""
    from django.utils import timezone

    from results.dispatch import start_run

    idempotent = make_job("chaos-kill-idempotent", "chaos.mark", s.mark(4), idempotent=True, retries=1,
                          retry_delay=0)
    once = make_job("chaos-kill-once", "chaos.mark", s.mark(4), idempotent=False, retries=1, retry_delay=0)
    victim, survivor, beat = s.worker("w1"), s.worker("w2"), s.beat("beat")
    ready(victim, survivor, beat)
    # In pairs (I I O O ...): whichever messages w1 takes, it runs both kinds.
    ids = [start_run(idempotent if n % 4 < 2 else once).id for n in range(20)]
    s.fact("20 runs of 4 s queued (10 of an idempotent job, 10 of a non-idempotent one, both retries=1) "
           "for workers w1 and w2 (4 processes each) and a beat")
    def going_on_victim() -> set[int]:
        return {start.result_id for start in s.starts() if start.worker == "w1"}

    wait_until(lambda: len(going_on_victim()) >= 4, timeout=20, step=0.05)  # w1's 4 processes are busy
    time.sleep(1.5)  # in the middle of its runs, with heartbeats written
    on_victim = going_on_victim()
    killed_at = timezone.now()
    victim.kill()
    first_start = min((start.at for start in s.starts()), default=time.time())
    s.fact(f"SIGKILL w1 (its whole process group) {killed_at.timestamp() - first_start:.1f} s after the first "
           f"run started, with {len(on_victim)} runs going on it: {sorted(on_victim)}")
    if not s.check(bool(on_victim), "the kill hit no run: w1 had not started any"):
        return
    settled = wait_settled(90, job__in=[idempotent, once])
    results = {row["id"]: row for row in rows(job__in=[idempotent, once])}
    originals = [results[result_id] for result_id in ids]
    retries = [row for row in results.values() if row["retry_of_id"] is not None]
    lost = [row for row in originals if row["id"] in on_victim]
    lags = {row["id"]: (row["finished_at"] - killed_at).total_seconds() for row in lost if row["finished_at"]}
    s.fact(f"runs on the killed worker: {len(lost)}, ended {summary(Counter(kind(row) for row in lost))}, "
           f"{max(lags.values(), default=math.nan):.1f} s after the kill at the latest "
           f"(reaper's bound {REAPER_BOUND_SECONDS} s = lost after {LOST_SECONDS} s + sweep every "
           f"{REAPER_INTERVAL_SECONDS} s + 2 s)")
    for row in lost:
        s.check(kind(row) == "error (worker lost)",
                f"run #{row['id']} on the killed worker ended {row['status']}: {row['message'][:100]!r}")
    late = sorted(row["id"] for row in lost if lags.get(row["id"], math.inf) > REAPER_BOUND_SECONDS)
    s.check(not late, f"{len(late)} of the {len(lost)} runs on the killed worker ({', '.join(f'#{i}' for i in late)}) "
            f"ended beyond the reaper's bound of {REAPER_BOUND_SECONDS} s after the kill (the last "
            f"{max(lags.values(), default=math.inf):.1f} s after it)")
    lost_idempotent = [row for row in lost if row["job__idempotent"]]
    lost_once = [row for row in lost if not row["job__idempotent"]]
    retries_of = defaultdict(list)
    for row in retries:
        retries_of[row["retry_of_id"]].append(row)
    by_result = s.starts_by_result()
    retried = [retry for row in lost_idempotent for retry in retries_of[row["id"]]]
    s.fact(f"idempotent runs lost: {len(lost_idempotent)}, retried: "
           f"{sum(1 for row in lost_idempotent if retries_of[row['id']])}, retries ended "
           f"{summary(Counter(kind(retry) for retry in retried))}, on "
           f"{summary(Counter(start.worker for retry in retried for start in by_result.get(retry['id'], [])))}")
    for row in lost_idempotent:
        again = retries_of[row["id"]]
        s.check(len(again) == 1 and again[0]["status"] == "success",
                f"idempotent run #{row['id']} lost with the worker: retries {[(r['id'], r['status']) for r in again]}"
                ", expected one that succeeds")
    s.fact(f"non-idempotent runs lost: {len(lost_once)}, retried: "
           f"{sum(1 for row in lost_once if retries_of[row['id']])}, "
           f"said 'not retried': {sum(1 for row in lost_once if 'not retried' in row['message'])}")
    for row in lost_once:
        s.check(not retries_of[row["id"]], f"non-idempotent run #{row['id']} was retried after the worker loss")
        s.check("not retried" in row["message"], f"run #{row['id']}'s message does not say why it was not retried")
    others = [row for row in originals if row["id"] not in on_victim]
    s.fact(f"other runs: {len(others)}, ended {summary(Counter(kind(row) for row in others))}, on "
           f"{summary(Counter(start.worker for row in others for start in by_result.get(row['id'], [])))}")
    for row in others:
        s.check(row["status"] == "success", f"run #{row['id']} (never on the killed worker) ended {row['status']}")
    check_none_twice(s, results)
    check_none_stuck(s, results.values(), settled, "the kill", within=90)


def redis_restart(s: Scenario) -> None:
    """Restart Redis in the middle of a burst of 500 runs: all end, none lost, none started twice."""
    from results.dispatch import start_run

    once = make_job("chaos-burst-once", "chaos.mark", s.mark(0.05), idempotent=False)
    idempotent = make_job("chaos-burst-idempotent", "chaos.mark", s.mark(0.05), idempotent=True, retries=1,
                          retry_delay=0)
    w1, w2, beat = s.worker("w1"), s.worker("w2"), s.beat("beat")
    ready(w1, w2, beat)
    total, restart_after, down_seconds = 500, 200, 1.5
    progress = {"created": 0}
    outage: dict[str, float | str] = {}

    def restart_redis() -> None:
        try:
            while progress["created"] < restart_after:
                time.sleep(0.005)
            outage["down"] = time.monotonic()
            procs.stop_redis()
            time.sleep(down_seconds)
        except Exception as exc:
            outage["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                procs.start_redis()
            except Exception as exc:
                outage["error"] = f"{type(exc).__name__}: {exc}"
            outage["up"] = time.monotonic()

    restarter = threading.Thread(target=restart_redis, name="redis-restart", daemon=True)
    restarter.start()
    publish_errors: Counter = Counter()
    burst_started = time.monotonic()
    for number in range(total):
        try:
            start_run(once if number % 2 else idempotent)
        except Exception as exc:  # the result is committed; only its message failed to go out
            publish_errors[type(exc).__name__] += 1
        progress["created"] = number + 1
    burst_seconds = time.monotonic() - burst_started
    restarter.join(timeout=60)
    if not s.check("error" not in outage and "up" in outage, f"the Redis restart itself failed: {outage}"):
        return
    s.fact(f"{total} runs started in {burst_seconds:.1f} s (half of an idempotent job), 0.05 s each, on w1 and w2 "
           f"(4 processes each); Redis shut down (nosave) after {restart_after}, down "
           f"{outage['up'] - outage['down']:.1f} s, started again")
    s.fact(f"start_run calls whose message failed to publish (result kept for the reaper): "
           f"{sum(publish_errors.values())} {dict(publish_errors) or ''}".rstrip())
    settled = wait_settled(120, job__in=[once, idempotent])
    results = rows(job__in=[once, idempotent])
    originals = [row for row in results if row["retry_of_id"] is None]
    s.fact(f"results created: {len(originals)} of {total} (and {len(results) - len(originals)} retries)")
    s.check(len(originals) == total, f"{total - len(originals)} runs lost: no result for them")
    s.fact(f"final statuses: {summary(Counter(kind(row) for row in results))}")
    check_none_stuck(s, results, settled, "the burst", within=120)
    republished = set()
    for log in (w1.log(), w2.log()):
        for found in re.findall(r"published again the lost messages of pending results \[([\d, ]+)\]", log):
            republished.update(int(x) for x in found.split(","))
    s.fact(f"pending results whose message the reaper published again: {len(republished)}")
    by_result = s.starts_by_result()
    twice_once = started_twice(s, (row["id"] for row in results if not row["job__idempotent"]))
    twice_idempotent = started_twice(s, (row["id"] for row in results if row["job__idempotent"]))
    s.fact(f"non-idempotent runs started twice: {len(twice_once)}; idempotent runs started twice: "
           f"{len(twice_idempotent)}")
    s.check(not twice_once, f"non-idempotent runs started twice: {twice_once[:20]}")
    s.check(not twice_idempotent, f"runs started twice (one result, two starts): {twice_idempotent[:20]}")
    never = [row["id"] for row in results if row["status"] == "success" and not by_result.get(row["id"])]
    s.check(not never, f"runs ended success without ever starting: {never[:20]}")
    failed = [row for row in results if row["status"] not in ("success",)]
    s.check(not failed, f"{len(failed)} runs did not succeed: "
            f"{[(row['id'], row['status'], row['message'][:80]) for row in failed[:5]]}")
    after = [start_run(once).id for _ in range(20)]
    done = wait_until(lambda: all(row["status"] == "success" for row in rows(id__in=after)), timeout=30)
    s.fact(f"20 runs started after the restart: {summary(Counter(row['status'] for row in rows(id__in=after)))}")
    s.check(bool(done), "workers did not run new work after the Redis restart within 30 s")


def postgres_restart(s: Scenario) -> None:
    """Restart PostgreSQL while runs are going: workers and beat recover by themselves, no run stuck."""
    from django.utils import timezone

    from jobs.models import Schedule
    from results.dispatch import start_run

    once = make_job("chaos-pg-once", "chaos.mark", s.mark(3), idempotent=False)
    idempotent = make_job("chaos-pg-idempotent", "chaos.mark", s.mark(3), idempotent=True, retries=1,
                          retry_delay=0)
    tick = make_job("chaos-pg-tick", "chaos.mark", s.mark(0))
    schedule = Schedule.objects.create(job=tick, kind=Schedule.INTERVAL, every=1, every_unit="seconds")
    w1, w2, beat = s.worker("w1"), s.worker("w2"), s.beat("beat")
    ready(w1, w2, beat)
    before = [start_run(once if n % 2 else idempotent).id for n in range(16)]
    def going() -> int:
        return len(s.starts_by_result().keys() & set(before))

    wait_until(lambda: going() >= 6, timeout=20, step=0.05)
    going_at_restart = going()
    down_at = timezone.now()
    restart_started = time.monotonic()
    procs.restart_postgres()
    up_at = timezone.now()
    s.fact(f"16 runs of 3 s (half idempotent) on w1 and w2 (4 processes each), a beat firing a 1 s interval job; "
           f"PostgreSQL restarted with {going_at_restart} of them started, answering again after "
           f"{time.monotonic() - restart_started:.1f} s")
    def fires_since_up() -> int:
        return tick.results.filter(created_at__gt=up_at).count()

    wait_until(lambda: fires_since_up() >= 3, timeout=30)
    fired_after = db(fires_since_up)
    first_fire = db(lambda: tick.results.filter(created_at__gt=up_at).order_by("created_at").values_list(
        "created_at", flat=True).first())
    s.fact("beat: schedule fires after the restart: "
           + (f"{fired_after} (first {(first_fire - up_at).total_seconds():.1f} s after PostgreSQL was back)"
              if fired_after else "none within 30 s"))
    s.check(bool(fired_after), "beat fired no schedule within 30 s after PostgreSQL was back")
    db(lambda: Schedule.objects.filter(pk=schedule.pk).update(kind=Schedule.DISABLED, next_run_at=None))
    after = db(lambda: [start_run(once).id for _ in range(10)])
    settled = wait_settled(90, job__in=[once, idempotent, tick])
    results = {row["id"]: row for row in db(rows, job__in=[once, idempotent, tick])}
    in_flight = [results[result_id] for result_id in before]
    retries = [row for row in results.values() if row["retry_of_id"] is not None]
    s.fact(f"runs going or queued at the restart: {len(in_flight)}, ended "
           f"{summary(Counter(kind(row) for row in in_flight))}; their retries: "
           f"{summary(Counter(kind(row) for row in retries))}")
    runner_failed = [row for row in in_flight if kind(row) == "error (runner failed)"]
    if runner_failed:
        s.fact(f"observation: {len(runner_failed)} runs whose line had finished ended error because their worker's "
               f"database connection was cut: {runner_failed[0]['message'][:110]!r}")
    new_runs = [results[result_id] for result_id in after]
    s.fact(f"10 runs started once PostgreSQL was back: {summary(Counter(kind(row) for row in new_runs))}")
    s.check(all(row["status"] == "success" for row in new_runs), "runs started after the restart did not all succeed")
    ticks = [row for row in results.values() if row["job_id"] == tick.id]
    slots = Counter(row["scheduled_for"] for row in ticks)
    doubles = sorted(slot for slot, count in slots.items() if count > 1)
    s.fact(f"schedule fires in all: {len(ticks)}, slots fired twice: {len(doubles)}")
    s.check(not doubles, f"slots fired twice: {doubles[:5]}")
    check_none_stuck(s, results.values(), settled, "the last run was started", within=90)
    check_none_twice(s, results)
    for process in (w1, w2, beat):
        s.check(process.alive(), f"{process.name} exited after the PostgreSQL restart; see {process.log_path}")
    s.fact(f"processes alive after the restart: {', '.join(p.name for p in (w1, w2, beat) if p.alive())}; "
           f"restart window {down_at:%H:%M:%S}–{up_at:%H:%M:%S}")


def beat_ha(s: Scenario, seconds: int) -> None:
    """Three beat processes over 50 interval jobs (every second): zero double fires, zero misses."""
    from django.utils import timezone

    from jobs.models import Schedule

    count = 50
    worker = s.worker("w1", concurrency=4)
    beats = [s.beat(f"beat-{n}") for n in (1, 2, 3)]
    ready(worker, *beats)
    first_slot = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=5)
    last_slot = first_slot + dt.timedelta(seconds=seconds)
    jobs = []
    for n in range(count):
        job = make_job(f"chaos-beat-{n:02d}", "chaos.mark", s.mark(0))
        Schedule.objects.create(job=job, kind=Schedule.INTERVAL, every=1, every_unit="seconds",
                                starts_at=first_slot, ends_at=last_slot)
        jobs.append(job)
    expected = {first_slot + dt.timedelta(seconds=k) for k in range(seconds + 1)}
    s.fact(f"{count} jobs every 1 s from {first_slot:%H:%M:%S} to {last_slot:%H:%M:%S} ({len(expected)} slots each, "
           f"{count * len(expected)} fires expected), 3 beat processes, 1 worker (4 processes)")
    if not s.check(timezone.now() < first_slot, "the schedules were created after their first slot"):
        return
    from results.models import JobResult

    while timezone.now() < last_slot + dt.timedelta(seconds=3):
        time.sleep(min(30.0, max(0.1, (last_slot + dt.timedelta(seconds=3) - timezone.now()).total_seconds())))
        fired = JobResult.objects.filter(job__in=jobs).count()
        s.fact(f"... {fired} fires so far; beats alive: {sum(beat.alive() for beat in beats)} of 3")
    for beat in beats:
        s.check(beat.alive(), f"{beat.name} exited; see {beat.log_path}")
        beat.stop()
    results = rows(job__in=jobs)
    by_job: dict[int, list] = defaultdict(list)
    for row in results:
        by_job[row["job_id"]].append(row["scheduled_for"])
    doubles = missing = extra = 0
    examples: list[str] = []
    for job in jobs:
        slots = Counter(by_job[job.id])
        job_doubles = sum(n - 1 for n in slots.values() if n > 1)
        job_missing = sorted(expected - set(slots))
        job_extra = sorted(set(slots) - expected)
        doubles, missing, extra = doubles + job_doubles, missing + len(job_missing), extra + len(job_extra)
        if (job_doubles or job_missing or job_extra) and len(examples) < 5:
            examples.append(f"{job.identifier}: doubles {job_doubles}, missing "
                            f"{[f'{slot:%H:%M:%S}' for slot in job_missing[:5]]}, outside the plan {len(job_extra)}")
    late = sorted((row["created_at"] - row["scheduled_for"]).total_seconds() for row in results
                  if row["scheduled_for"] is not None)
    s.fact(f"fires: {len(results)} of {count * len(expected)} expected; double fires: {doubles}; misses: {missing}; "
           f"outside the plan: {extra}")
    if late:
        s.fact(f"lateness of a fire (result created - slot): p50 {statistics.median(late) * 1000:.0f} ms, "
               f"p99 {late[min(len(late) - 1, int(len(late) * 0.99))] * 1000:.0f} ms, max {late[-1] * 1000:.0f} ms")
    s.check(doubles == 0, f"{doubles} double fires: {examples}")
    s.check(missing == 0, f"{missing} missed slots: {examples}")
    s.check(extra == 0, f"{extra} fires outside the plan: {examples}")
    skipped = [row for row in results if row["status"] == "info" and "skipped" in row["message"]]
    s.check(not skipped, f"{len(skipped)} slots recorded as skipped: {skipped[0]['message'] if skipped else ''}")
    settled = wait_settled(90, job__in=jobs)
    statuses = Counter(kind(row) for row in rows(job__in=jobs))
    s.fact(f"runs of those fires: {summary(statuses)}"
           + (f" (all ended {settled:.1f} s after the last slot's check)" if settled is not None else ""))
    s.check(settled is not None, f"runs still pending or running 90 s after the last slot: {statuses}")
    check_none_twice(s, (row["id"] for row in results))


def queues(s: Scenario) -> None:
    """Two workers on different queues: a job routed to a queue runs only there; a kill reaches its worker."""
    from results import states
    from results.dispatch import start_run

    a_job = make_job("chaos-queue-a", "chaos.mark", s.mark(0.2), queue="chaos-a")
    b_job = make_job("chaos-queue-b", "chaos.mark", s.mark(0.2), queue="chaos-b")
    a_hold = make_job("chaos-queue-a-hold", "chaos.mark", s.mark(120), queue="chaos-a")
    b_spin = make_job("chaos-queue-b-spin", "chaos.spin", {"path": str(s.starts_path), "seconds": 120},
                      queue="chaos-b")
    wa = s.worker("wa", queues="chaos-a", concurrency=2)
    ready(wa)
    b_early = [start_run(b_job).id for _ in range(5)]
    a_early = [start_run(a_job).id for _ in range(5)]
    wait_until(lambda: all(row["status"] == "success" for row in rows(id__in=a_early)), timeout=30)
    time.sleep(1.0)
    early = {row["id"]: row for row in rows(id__in=a_early + b_early)}
    s.fact(f"only wa (queue chaos-a) running: chaos-a runs {summary(Counter(early[i]['status'] for i in a_early))}; "
           f"chaos-b runs {summary(Counter(early[i]['status'] for i in b_early))}")
    s.check(all(early[i]["status"] == "success" for i in a_early), "chaos-a runs did not all succeed on wa")
    s.check(all(early[i]["status"] == "pending" for i in b_early),
            "a chaos-b run was taken while no worker served chaos-b")
    wb = s.worker("wb", queues="chaos-b", concurrency=2)
    ready(wb)
    wait_until(lambda: all(row["status"] == "success" for row in rows(id__in=b_early)), timeout=30)
    a_ids = a_early + [start_run(a_job).id for _ in range(15)]
    b_ids = b_early + [start_run(b_job).id for _ in range(15)]
    wait_until(lambda: active_count(id__in=a_ids + b_ids) == 0, timeout=60)
    by_result = s.starts_by_result()
    ran_a = Counter(start.worker for i in a_ids for start in by_result.get(i, []))
    ran_b = Counter(start.worker for i in b_ids for start in by_result.get(i, []))
    statuses = Counter(row["status"] for row in rows(id__in=a_ids + b_ids))
    s.fact(f"chaos-a runs ran on: {summary(ran_a)}; chaos-b runs ran on: {summary(ran_b)}; ended {summary(statuses)}")
    s.check(set(ran_a) == {"wa"} and sum(ran_a.values()) == len(a_ids), f"chaos-a runs ran on {dict(ran_a)}")
    s.check(set(ran_b) == {"wb"} and sum(ran_b.values()) == len(b_ids), f"chaos-b runs ran on {dict(ran_b)}")
    s.check(statuses == Counter(success=len(a_ids) + len(b_ids)), f"routed runs ended {dict(statuses)}")
    wa_pool = set(wa.children())
    spin = start_run(b_spin)
    hold = start_run(a_hold)
    spin_start = wait_until(lambda: s.starts_by_result().get(spin.id), timeout=20)
    hold_start = wait_until(lambda: s.starts_by_result().get(hold.id), timeout=20)
    if not s.check(bool(spin_start and hold_start), "the long runs did not start"):
        return
    spin_pid, spin_worker = spin_start[0].pid, spin_start[0].worker
    in_wb_pool = spin_pid in wb.children()
    asked = time.monotonic()
    states.request_kill(spin.id, None)
    killed = wait_until(lambda: rows(id=spin.id, status="killed"), timeout=20, step=0.02)
    took = time.monotonic() - asked
    # Since lines are interrupted (results.stopping), the pool process stays and serves the next run (checked
    # below: a run on each queue after the kills); it is ended only when a line ignores the interrupt.
    kept = os.path.exists(f"/proc/{spin_pid}")
    s.fact(f"kill of a pure-Python run on {spin_worker} (pool process {spin_pid}, in wb's pool: {in_wb_pool}): "
           f"{'killed' if killed else 'not killed'} in {took:.2f} s; its pool process kept: {kept}")
    s.check(spin_worker == "wb" and in_wb_pool, f"the chaos-b run ran on {spin_worker}, not in wb's pool")
    s.check(bool(killed), "the kill did not stop the run on wb")
    hold_row = rows(id=hold.id)[0]
    s.fact(f"meanwhile wa's run: {hold_row['status']}; wa's pool unchanged: {set(wa.children()) == wa_pool}")
    s.check(hold_row["status"] == "running" and set(wa.children()) == wa_pool,
            "killing the chaos-b run disturbed worker wa")
    asked = time.monotonic()
    states.request_kill(hold.id, None)
    killed = wait_until(lambda: rows(id=hold.id, status="killed"), timeout=20, step=0.02)
    s.fact(f"kill of a cooperative run on {hold_start[0].worker}: {'killed' if killed else 'not killed'} in "
           f"{time.monotonic() - asked:.2f} s")
    s.check(bool(killed) and hold_start[0].worker == "wa", "the kill did not stop the chaos-a run on wa")
    follow = [start_run(b_job).id, start_run(a_job).id]
    wait_until(lambda: active_count(id__in=follow) == 0, timeout=30)
    statuses = Counter(row["status"] for row in rows(id__in=follow))
    s.fact(f"a run on each queue after the kills: {summary(statuses)}")
    s.check(statuses == Counter(success=2), "the workers did not run new work after the kills")


# --- Main -------------------------------------------------------------------------


SCENARIOS = ["worker-kill", "redis-restart", "postgres-restart", "beat-ha", "queues"]


def scenario_function(name: str, args: argparse.Namespace) -> tuple[Callable[[Scenario], None], str]:
    """The scenario's function (with its options bound) and what it shows, in one line."""
    function = {
        "worker-kill": worker_kill,
        "redis-restart": redis_restart,
        "postgres-restart": postgres_restart,
        "beat-ha": beat_ha,
        "queues": queues,
    }[name]
    about = (function.__doc__ or "").strip().splitlines()[0]
    if function is beat_ha:
        return (lambda s: beat_ha(s, args.beat_seconds)), about
    return function, about


def tidy_between_scenarios() -> None:
    """No schedule, run or message of one scenario leaks into the next."""
    from django.utils import timezone

    from jobs.models import Schedule
    from results.models import ACTIVE, JobResult

    procs.stop_all()
    for done in procs.ensure_services():
        print(f"  (cleanup: {done})", flush=True)
    db(lambda: Schedule.objects.update(kind=Schedule.DISABLED, next_run_at=None))
    db(lambda: JobResult.objects.filter(status__in=ACTIVE).update(
        status="killed", message="Ended by the chaos suite's cleanup.", finished_at=timezone.now()))
    procs.flush_redis_db(BROKER_DB)


def run_scenario(name: str, args: argparse.Namespace) -> bool:
    function, about = scenario_function(name, args)
    print(f"== {name}: {about}", flush=True)
    scenario = Scenario(name)
    started = time.monotonic()
    try:
        function(scenario)
    except Failed as exc:
        scenario.problems.append(str(exc))
    except Exception as exc:
        traceback.print_exc()
        scenario.problems.append(f"unexpected {type(exc).__name__}: {exc}")
    finally:
        try:
            tidy_between_scenarios()
        except Exception as exc:
            scenario.problems.append(f"cleanup failed: {type(exc).__name__}: {exc}")
    print(f"  took {time.monotonic() - started:.1f} s; logs in {scenario.dir.relative_to(REPO)}/", flush=True)
    if scenario.problems:
        why = "; ".join(scenario.problems)
        print(f"FAIL {name}: {why[:2000]}", flush=True)
        return False
    print(f"PASS {name}", flush=True)
    return True


def preflight() -> None:
    if os.geteuid() != 0:
        raise Failed("must run as root (it restarts PostgreSQL and Redis)")
    for tool in ("redis-cli", "redis-server", "pg_ctlcluster"):
        if shutil.which(tool) is None:
            raise Failed(f"{tool} not found")
    procs.pg_version()
    started = procs.ensure_services()
    if started:
        print(f"(before starting: {', '.join(started)})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[],
                        help=f"run only these scenarios (comma-separated, repeatable): {', '.join(SCENARIOS)}")
    parser.add_argument("--beat-seconds", type=int, default=180, help="length of the beat-ha scenario (s)")
    parser.add_argument("--keep", action="store_true", help="keep the jobs_chaos database at the end")
    args = parser.parse_args(argv)
    chosen = [name for item in args.only for name in item.split(",") if name] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose among {', '.join(SCENARIOS)}")

    def stop_on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop_on_term)
    passed = failed = 0
    began = time.monotonic()
    current = "set-up"
    try:
        try:
            preflight()
            configure()
        except Exception as exc:
            for name in chosen:
                print(f"FAIL {name}: set-up failed: {type(exc).__name__}: {exc}", flush=True)
            failed = len(chosen)
        else:
            for current in chosen:
                if run_scenario(current, args):
                    passed += 1
                else:
                    failed += 1
    except KeyboardInterrupt as exc:
        print(f"FAIL {current}: interrupted ({exc or 'SIGINT'})", flush=True)
        failed += 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        clean_up(keep=args.keep)
        print(f"(chaos suite ran {time.monotonic() - began:.0f} s)", flush=True)
        print(f"chaos: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def clean_up(keep: bool) -> None:
    """Every process stopped, both services running, our database and Redis database gone; never raises."""
    steps: list[tuple[str, Callable[[], object]]] = [
        ("stopping the Celery processes", procs.stop_all),
        ("starting the services again", lambda: [print(f"(cleanup: {done})", flush=True)
                                                 for done in procs.ensure_services()]),
        ("emptying Redis database 5", lambda: procs.flush_redis_db(BROKER_DB)),
    ]
    if not keep:
        steps.append((f"dropping the database {DATABASE_NAME}", drop_database))
    for what, step in steps:
        try:
            step()
        except BaseException as exc:  # a second Ctrl-C must not leave a service down
            print(f"(cleanup: {what} failed: {type(exc).__name__}: {exc})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
