"""The operations page (results.operations): its sections, who may act, Acknowledge, and its fixed cost."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.maintenance import banner_context
from jobs.models import DomainMembership, Schedule
from results import states
from results.models import JobResult, Status
from tests.helpers import make_job, make_member

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture(autouse=True)
def _now() -> None:
    """Each test's own "now": the suite runs for minutes, and a run started 2 minutes ago must stay so."""
    global NOW
    NOW = timezone.now()


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def result(job, status: str, *, ago: dt.timedelta = dt.timedelta(minutes=1), **fields) -> JobResult:
    """A result of ``job`` created ``ago``; finished then when its status is terminal."""
    at = NOW - ago
    row = JobResult.objects.create(job=job, status=status, started_at=at, message=fields.pop("message", "it said"),
                                   finished_at=None if status in (Status.PENDING, Status.RUNNING) else at, **fields)
    JobResult.objects.filter(pk=row.pk).update(created_at=at)
    return row


def state_of(user) -> dict:
    response = client_of(user).get(reverse("operations:state"))
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def jobs(acme, globex):
    return {"acme": make_job("nightly", domain=acme, name="Nightly export", expected_runtime="about 5 minutes"),
            "globex": make_job("globex-sync", domain=globex, name="Globex sync")}


def test_each_section_shows_what_needs_the_operator(admin_user, jobs):
    nightly = jobs["acme"]
    late = result(nightly, Status.RUNNING, ago=dt.timedelta(minutes=7))
    on_time = result(nightly, Status.RUNNING, ago=dt.timedelta(minutes=2))
    waiting = result(nightly, Status.PENDING)
    failed = result(nightly, Status.ERROR, message="command exited with status 7")
    warned = result(nightly, Status.WARNING, ago=dt.timedelta(hours=3))
    result(nightly, Status.ERROR, ago=dt.timedelta(hours=25))  # older than the window
    seen = result(nightly, Status.ERROR, ago=dt.timedelta(hours=2))
    states.acknowledge(seen.pk, admin_user)
    result(nightly, Status.SUCCESS)
    Schedule.objects.create(job=nightly, kind=Schedule.INTERVAL, every=5, every_unit="minutes")

    state = state_of(admin_user)

    assert [row["id"] for row in state["running"]] == [waiting.pk, on_time.pk, late.pk]
    assert [row["id"] for row in state["overdue"]] == [late.pk]
    assert state["overdue"][0]["expected_seconds"] == 300
    assert [row["id"] for row in state["attention"]] == [failed.pk, warned.pk]
    assert state["attention_count"] == 2 and not state["attention_capped"]
    assert state["attention"][0]["message"] == "command exited with status 7"
    assert [(row["id"], row["acknowledged_by"]) for row in state["acknowledged"]] == [(seen.pk, "root")]
    assert [(row["job"], row["plan"]) for row in state["upcoming"]] == [("nightly", "Every 5 minutes")]
    assert all(row["kill_url"] for row in state["running"])
    assert all(row["acknowledge_url"] for row in state["attention"])


def test_the_strip_shows_each_days_worst_outcome(admin_user, jobs):
    nightly = jobs["acme"]
    today = timezone.localtime(NOW).replace(hour=12, minute=0, second=0, microsecond=0)
    ago = NOW - today if today < NOW else dt.timedelta(0)
    result(nightly, Status.SUCCESS, ago=ago)
    result(nightly, Status.ERROR, ago=ago + dt.timedelta(days=1))
    result(nightly, Status.SUCCESS, ago=ago + dt.timedelta(days=1))
    result(nightly, Status.WARNING, ago=ago + dt.timedelta(days=3))
    result(nightly, Status.KILLED, ago=ago + dt.timedelta(days=9))  # before the strip

    state = state_of(admin_user)

    assert len(state["days"]) == 7 and state["days"][-1] == timezone.localtime(NOW).date().isoformat()
    strips = {strip["identifier"]: strip["days"] for strip in state["strips"]}
    assert strips == {"nightly": ["none", "none", "none", "warning", "none", "failed", "ok"]}  # globex-sync never ran


def test_members_see_their_domains_and_act_only_as_operators(acme, jobs, member):
    acme_failure = result(jobs["acme"], Status.ERROR)
    acme_running = result(jobs["acme"], Status.RUNNING)
    result(jobs["globex"], Status.ERROR)
    result(jobs["globex"], Status.RUNNING)
    operator, viewer = member("ann", acme, DomainMembership.OPERATOR), member("vic", acme, DomainMembership.VIEWER)

    for user, acts in ((operator, True), (viewer, False)):
        state = state_of(user)
        assert [row["id"] for row in state["running"]] == [acme_running.pk]
        assert [row["id"] for row in state["attention"]] == [acme_failure.pk]
        assert bool(state["running"][0]["kill_url"]) is acts
        assert bool(state["attention"][0]["acknowledge_url"]) is acts


def test_acknowledge_stores_who_and_when_once(acme, jobs, member):
    failure = result(jobs["acme"], Status.ERROR)
    ann, bob = member("ann", acme, DomainMembership.OPERATOR), member("bob", acme, DomainMembership.ADMIN)
    url = reverse("operations:acknowledge", args=[failure.pk])

    first = client_of(ann).post(url, HTTP_ACCEPT="application/json")
    second = client_of(bob).post(url, HTTP_ACCEPT="application/json")

    assert first.status_code == 200 and first.json() == {"acknowledged": True,
                                                         "message": f"Result #{failure.pk} acknowledged."}
    assert second.status_code == 409 and "already acknowledged by ann at" in second.json()["message"]
    failure.refresh_from_db()
    assert failure.acknowledged_by == ann and NOW <= failure.acknowledged_at <= timezone.now()
    assert failure.status == Status.ERROR
    assert state_of(ann)["attention"] == []


def test_acknowledge_from_a_form_redirects_back_with_a_message(admin_user, jobs):
    failure = result(jobs["acme"], Status.WARNING)
    response = client_of(admin_user).post(reverse("operations:acknowledge", args=[failure.pk]), follow=True)
    assert response.redirect_chain == [(reverse("operations:page"), 302)]
    assert f"Result #{failure.pk} acknowledged." in response.content.decode()


@pytest.mark.parametrize("status", [Status.SUCCESS, Status.INFO, Status.KILLED, Status.RUNNING, Status.PENDING])
def test_only_failures_and_warnings_are_acknowledged(admin_user, jobs, status):
    other = result(jobs["acme"], status)
    response = client_of(admin_user).post(reverse("operations:acknowledge", args=[other.pk]),
                                          HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert response.json()["message"] == f"Result #{other.pk} is {status}: only failures and warnings are acknowledged."
    assert JobResult.objects.get(pk=other.pk).acknowledged_at is None


def test_the_state_change_is_one_conditional_update(admin_user, jobs):
    failure = result(jobs["acme"], Status.ERROR)
    assert states.acknowledge(failure.pk, admin_user) is True
    first = JobResult.objects.get(pk=failure.pk).acknowledged_at
    assert states.acknowledge(failure.pk, admin_user) is False
    assert JobResult.objects.get(pk=failure.pk).acknowledged_at == first


def test_the_root_leads_members_to_the_operations_page_and_other_staff_to_the_app_list(admin_user, acme, member):
    staff_only = make_member("sam", staff=True)
    assert client_of(admin_user).get("/")["Location"] == reverse("operations:page")
    assert client_of(member("ann", acme, DomainMembership.VIEWER)).get("/")["Location"] == reverse("operations:page")
    assert client_of(staff_only).get("/")["Location"] == reverse("admin:index")
    assert Client().get("/")["Location"] == f"{reverse('admin:login')}?next=/"
    index = client_of(admin_user).get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("operations:page")}"' in index and "Job results" in index  # the app list stays
    index = client_of(staff_only).get(reverse("admin:index")).content.decode()
    assert reverse("operations:page") not in index  # staff of no domain would be refused there: no button


def busy_world(jobs, rows: int, acknowledger) -> None:
    for n in range(rows):
        result(jobs["acme"], Status.RUNNING if n % 3 == 0 else Status.ERROR, ago=dt.timedelta(hours=n % 150))
        result(jobs["globex"], Status.SUCCESS, ago=dt.timedelta(hours=n % 150))
    states.acknowledge(JobResult.objects.filter(status=Status.ERROR).first().pk, acknowledger)
    for n in range(rows // 4):
        job = make_job(f"scheduled-{n}", domain=jobs["acme"].domain, expected_runtime="1 min")
        Schedule.objects.create(job=job, kind=Schedule.INTERVAL, every=n + 1, every_unit="hours")
        result(job, Status.WARNING)


def app_list_queries(user) -> int:
    """What the admin's own frame of a page (its app list: each_context; the pause banner) costs ``user``."""
    request = RequestFactory().get(reverse("operations:page"))
    request.user = user
    with CaptureQueriesContext(connection) as queries:
        admin.site.each_context(request)
        bool(banner_context(request)["schedule_pause"])
    return len(queries)


# The JSON: session, user, then (members only: is_member, their run domains) running, failures, their count,
# acknowledged, next runs, strips. The page adds the admin's frame (its app list), whatever that costs.
@pytest.mark.parametrize(("who", "state_queries"), [("root", 8), ("operator", 10)])
@pytest.mark.parametrize("rows", [2, 40])
def test_the_number_of_queries_does_not_grow_with_the_rows(admin_user, acme, jobs, member, django_assert_num_queries,
                                                          who, state_queries, rows):
    busy_world(jobs, rows, admin_user)
    user = admin_user if who == "root" else member("ann", acme, DomainMembership.OPERATOR)
    client = client_of(user)
    with django_assert_num_queries(state_queries):
        state = client.get(reverse("operations:state")).json()
    assert len(state["running"]) == (rows + 2) // 3 and len(state["upcoming"]) == min(rows // 4, 10)
    with django_assert_num_queries(state_queries + app_list_queries(user)):
        assert client.get(reverse("operations:page")).status_code == 200


def test_a_per_domain_run_of_a_global_job_is_its_domains_to_acknowledge(acme, globex, member):
    nightly = make_job("global-cleanup", name="Global cleanup")  # global: no domain
    failure = result(nightly, Status.ERROR, domain=acme)
    ann, gus = member("ann", acme, DomainMembership.OPERATOR), member("gus", globex, DomainMembership.OPERATOR)

    assert [row["id"] for row in state_of(ann)["attention"]] == [failure.pk]
    assert state_of(ann)["attention"][0]["acknowledge_url"]
    assert state_of(gus)["attention"] == []
    url = reverse("operations:acknowledge", args=[failure.pk])
    assert client_of(gus).post(url).status_code == 404
    assert client_of(ann).post(url).status_code == 302
    assert JobResult.objects.get(pk=failure.pk).acknowledged_by == ann
