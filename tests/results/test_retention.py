"""Retention (``core.purge_results``), ``core.send_email`` and the demo housekeeping job."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from jobs.definitions import import_jobs
from jobs.models import Job, Schedule
from jobs.registry import Cancelled
from results import actions
from results.dispatch import start_run
from results.models import JobLineResult, JobLogEntry, JobResult, Status
from tests.helpers import make_job, wait_for_status

REPO = Path(__file__).resolve().parent.parent.parent


class FakeLog:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def __getattr__(self, level: str):
        return lambda message: self.entries.append((level, str(message)))


class FakeContext:
    """The parts of the run context these actions use; ``cancel_after`` checks raise Cancelled."""

    def __init__(self, result_id: int | None = None, cancel_after: int | None = None) -> None:
        self.result_id = result_id
        self.log = FakeLog()
        self.checks = 0
        self.cancel_after = cancel_after

    def check_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise Cancelled()


def results_of(job: Job, count: int, *, days_old: float, status: str = Status.SUCCESS) -> list[JobResult]:
    """``count`` results of ``job`` created ``days_old`` days ago (the newest last), each with a line and a log."""
    made = []
    for index in range(count):
        result = JobResult.objects.create(job=job, status=status)
        created = timezone.now() - dt.timedelta(days=days_old, seconds=count - index)
        JobResult.objects.filter(id=result.id).update(created_at=created)
        JobLineResult.objects.create(result=result, line_no=10, status=status)
        JobLogEntry.objects.create(result=result, seq=1, message="hello", at=created)
        made.append(result)
    return made


def remaining(results: list[JobResult]) -> list[int]:
    return list(JobResult.objects.filter(id__in=[r.id for r in results]).order_by("id").values_list("id", flat=True))


@pytest.mark.django_db
def test_old_results_beyond_the_last_n_of_each_job_go_with_their_lines_and_log():
    job, other = make_job("busy"), make_job("other")
    old = results_of(job, 5, days_old=100)
    recent = results_of(job, 2, days_old=1)
    other_old = results_of(other, 3, days_old=100)
    message = actions.purge_results(FakeContext(), older_than_days=90, keep_last=4)
    # busy: 7 results, the newest 4 are kept (2 recent, 2 old); 3 old ones go. other: 3 <= 4, all kept.
    assert remaining(old) == [r.id for r in old[3:]]
    assert remaining(recent) == [r.id for r in recent]
    assert remaining(other_old) == [r.id for r in other_old]
    assert not JobLineResult.objects.filter(result_id__in=[r.id for r in old[:3]]).exists()
    assert not JobLogEntry.objects.filter(result_id__in=[r.id for r in old[:3]]).exists()
    assert message == "3 result(s) deleted, with 3 line result(s) and 3 log entries"


@pytest.mark.django_db
def test_recent_results_stay_however_many_there_are():
    job = make_job("recent")
    recent = results_of(job, 6, days_old=10)
    assert actions.purge_results(FakeContext(), older_than_days=90, keep_last=0).startswith("0 result(s) deleted")
    assert remaining(recent) == [r.id for r in recent]


@pytest.mark.django_db
def test_pending_and_running_results_and_the_purging_run_itself_are_never_deleted():
    job = make_job("unfinished", concurrency="parallel")
    pending = results_of(job, 1, days_old=400, status=Status.PENDING)
    running = results_of(job, 1, days_old=400, status=Status.RUNNING)
    finished = results_of(job, 3, days_old=400, status=Status.ERROR)
    own = finished[0]  # as if this finished result were the purging run's own
    actions.purge_results(FakeContext(result_id=own.id), older_than_days=0, keep_last=0)
    assert remaining(pending + running + finished) == sorted([pending[0].id, running[0].id, own.id])


@pytest.mark.django_db
def test_a_kept_retry_of_a_deleted_result_loses_only_its_link():
    job = make_job("retried")
    [failed] = results_of(job, 1, days_old=200, status=Status.ERROR)
    retry = JobResult.objects.create(job=job, status=Status.SUCCESS, retry_of=failed, attempt=2)
    actions.purge_results(FakeContext(), older_than_days=90, keep_last=1)
    retry.refresh_from_db()
    assert remaining([failed]) == [] and retry.retry_of_id is None


@pytest.mark.django_db
def test_deletes_go_in_batches_with_a_cancellation_check_between_them(monkeypatch):
    monkeypatch.setattr(actions, "PURGE_BATCH_SIZE", 3)
    job = make_job("batched")
    old = results_of(job, 10, days_old=100)
    ctx = FakeContext()
    assert actions.purge_results(ctx, older_than_days=30, keep_last=0).startswith("10 result(s) deleted")
    batches = [message for level, message in ctx.log.entries if level == "debug"]
    assert [message.split(" result")[0] for message in batches] == ["deleted 3", "deleted 3", "deleted 3", "deleted 1"]
    assert ctx.checks >= 5  # one per job, one before each batch and the empty look-up after the last
    assert remaining(old) == []


@pytest.mark.django_db
def test_a_kill_between_batches_keeps_what_was_deleted_and_stops(monkeypatch):
    monkeypatch.setattr(actions, "PURGE_BATCH_SIZE", 2)
    job = make_job("killed-purge")
    old = results_of(job, 7, days_old=100)
    with pytest.raises(Cancelled):
        actions.purge_results(FakeContext(cancel_after=3), older_than_days=30, keep_last=0)  # job, batch 1, batch 2
    assert remaining(old) == [r.id for r in old[4:]]  # the oldest go first


@pytest.mark.django_db
@pytest.mark.parametrize("arguments", [{"older_than_days": -1}, {"keep_last": -5}])
def test_negative_parameters_are_refused(arguments):
    with pytest.raises(ValueError, match="zero or more"):
        actions.purge_results(FakeContext(), **arguments)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_purge_job_runs_on_the_real_worker_and_keeps_its_own_result():
    target = make_job("to-purge")
    old = results_of(target, 4, days_old=120)
    purger = make_job("purger", (10, "core.purge_results", {"older_than_days": 90, "keep_last": 1}))
    result = wait_for_status(start_run(purger).id)
    assert result.status == Status.SUCCESS, result.message
    assert result.line_results.get().message == "3 result(s) deleted, with 3 line result(s) and 3 log entries"
    assert remaining(old) == [old[-1].id]
    assert JobResult.objects.filter(id=result.id).exists()
    assert result.log_entries.filter(message__startswith="3 result(s) deleted").exists()


# --- core.send_email -----------------------------------------------------------------------------------------------

def test_addresses_are_split_on_commas_and_validated():
    assert actions.parse_addresses(" a@example.com, b@example.org ,") == ["a@example.com", "b@example.org"]
    with pytest.raises(ValueError, match="'not-an-address' is not a valid e-mail address"):
        actions.parse_addresses("a@example.com, not-an-address")
    with pytest.raises(ValueError, match="at least one"):
        actions.parse_addresses(" , ")


@pytest.mark.django_db
def test_send_email_sends_a_plain_mail_to_every_address():
    ctx = FakeContext()
    returned = actions.send_email(ctx, to="a@example.com, b@example.org", subject="Backup done", body="All good.")
    [message] = mail.outbox
    assert (message.to, message.subject, message.body) == (["a@example.com", "b@example.org"], "Backup done",
                                                             "All good.")
    assert returned == "sent to 2 recipient(s)"
    assert ctx.log.entries == [("info", "mail 'Backup done' sent to a@example.com, b@example.org")]


@pytest.mark.django_db
def test_send_email_refuses_a_bad_address_or_a_subject_on_two_lines():
    with pytest.raises(ValueError, match="not a valid e-mail address"):
        actions.send_email(FakeContext(), to="nobody", subject="x", body="y")
    with pytest.raises(ValueError, match="one line"):
        actions.send_email(FakeContext(), to="a@example.com", subject="x\nBcc: victim@example.com", body="y")
    assert mail.outbox == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_bad_address_fails_the_line_with_its_reason():
    job = make_job("bad-mail", (10, "core.send_email", {"to": "ops@example.com, nope", "subject": "s", "body": "b"}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.ERROR
    assert "'nope' is not a valid e-mail address" in result.message


# --- the demo job --------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_demo_housekeeping_job_purges_every_night_at_half_past_three():
    import_jobs((REPO / "demo" / "jobs.yaml").read_text())
    job = Job.objects.get(identifier="housekeeping")
    schedule = job.schedules.get()
    assert (schedule.kind, schedule.cron, schedule.timezone) == (Schedule.CALENDAR, "30 3 * * *", "UTC")
    [line] = job.lines.all()
    assert line.action.name == "core.purge_results"
    assert line.validation_errors([]) == {}
    assert job.schedules.get().next_run_at.astimezone(dt.UTC).strftime("%H:%M") == "03:30"
