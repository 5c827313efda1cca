"""states.claim: pending -> running in one statement that also reads what the runner needs."""
from __future__ import annotations

import pytest

from jobs.models import Domain, Job
from results import states
from results.dispatch import start_run
from results.models import JobResult, Status
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def unpublished(monkeypatch):
    monkeypatch.setattr("results.dispatch.publish", lambda result, countdown=None: None)


def test_the_claim_reads_the_job_revision_domain_run_as_parameters_and_note(django_user_model):
    domain = Domain.objects.create(slug="acme", name="Acme")
    ann = django_user_model.objects.create_user("ann")
    job = make_job("claimed", (10, "testing.echo", {}), domain=domain, params=[{"name": "days", "type": "int"}])
    result = start_run(job, parameters={"days": "4"}, note="caught up", user=ann)
    claim = states.claim(result.id, "host:1")
    assert claim == states.Claim(result_id=result.id, job_id=job.id,
                                 job_revision=Job.objects.get(pk=job.pk).revision, domain_slug="acme",
                                 domain_id=domain.id, run_as_id=ann.id, parameters={"days": 4}, message="caught up")
    result.refresh_from_db()
    assert (result.status, result.worker) == (Status.RUNNING, "host:1")
    assert result.started_at == result.heartbeat_at is not None


def test_a_global_job_has_no_domain_slug():
    claim = states.claim(start_run(make_job("global", (10, "testing.echo", {}))).id, "host:1")
    assert claim is not None and claim.domain_slug is None and claim.parameters == {}
    assert claim.domain_id is None and claim.run_as_id is None  # started by nobody (a schedule): runs as nobody


def test_only_the_first_claim_wins():
    result = start_run(make_job("twice", (10, "testing.echo", {})))
    assert states.claim(result.id, "host:1") is not None
    assert states.claim(result.id, "host:2") is None
    assert JobResult.objects.get(id=result.id).worker == "host:1"


def test_a_killed_pending_result_is_never_claimed():
    result = start_run(make_job("killed-first", (10, "testing.echo", {})))
    states.request_kill(result.id, None)
    assert states.claim(result.id, "host:1") is None
    assert JobResult.objects.get(id=result.id).status == Status.KILLED


def test_a_deleted_result_is_not_claimed():
    assert states.claim(987654, "host:1") is None
