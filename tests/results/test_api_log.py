"""GET /api/results/<id>/log/?after=N: the entries after N, oldest first, and whether the log is complete."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import Domain, DomainMembership
from results import states
from results.models import JobLogEntry, JobResult, Status
from tests.helpers import client_for, make_job, make_member, wait_for_status

pytestmark = pytest.mark.django_db


def log_url(result_id: int, query: str = "") -> str:
    return f"/api/results/{result_id}/log/" + (f"?{query}" if query else "")


@pytest.fixture
def viewer(acme):
    return make_member("viewer", (acme, DomainMembership.VIEWER))


@pytest.fixture
def client(viewer) -> APIClient:
    return client_for(viewer)


@pytest.fixture
def job(acme):
    return make_job("acme-log", (10, "testing.echo", {}), domain=acme)


def add_entries(result: JobResult, seqs, line_no: int | None = 10) -> None:
    start = timezone.now()
    for seq in seqs:
        JobLogEntry.objects.create(result=result, seq=seq, level="INFO", line_no=line_no, message=f"entry {seq}",
                                   at=start + dt.timedelta(milliseconds=seq))


@pytest.fixture
def finished(job):
    """A finished result with entries 1..5, stored out of order."""
    result = JobResult.objects.create(job=job, status=Status.SUCCESS, finished_at=timezone.now())
    add_entries(result, [3, 1, 5, 2, 4])
    return result


def get_log(client, result_id: int, query: str = "") -> dict:
    response = client.get(log_url(result_id, query))
    assert response.status_code == 200, response.content
    return response.json()


def seqs(data: dict) -> list[int]:
    return [entry["seq"] for entry in data["entries"]]


def test_entries_have_the_contract_fields(client, job):
    result = JobResult.objects.create(job=job, status=Status.SUCCESS)
    at = timezone.now()
    JobLogEntry.objects.create(result=result, seq=1, level="WARNING", line_no=20, message="disk almost full", at=at)
    JobLogEntry.objects.create(result=result, seq=2, level="INFO", line_no=None, message="done", at=at)
    data = get_log(client, result.id)
    assert data["finished"] is True
    first, second = data["entries"]
    assert set(first) == {"seq", "at", "level", "line_no", "message"}
    assert (first["seq"], first["level"], first["line_no"], first["message"]) == (1, "WARNING", 20, "disk almost full")
    assert dt.datetime.fromisoformat(first["at"]) == at
    assert second["line_no"] is None


def test_without_after_all_entries_come_oldest_first(client, finished):
    data = get_log(client, finished.id)
    assert seqs(data) == [1, 2, 3, 4, 5]
    assert [entry["message"] for entry in data["entries"]] == [f"entry {n}" for n in range(1, 6)]
    assert data["finished"] is True


def test_after_returns_only_later_entries_in_order(client, finished):
    assert seqs(get_log(client, finished.id, "after=2")) == [3, 4, 5]


def test_after_the_last_entry_returns_nothing(client, finished):
    data = get_log(client, finished.id, "after=5")
    assert data == {**data, "entries": [], "finished": True}
    assert get_log(client, finished.id, "after=1000")["entries"] == []


def test_after_works_across_gaps_in_seq(client, job):
    result = JobResult.objects.create(job=job, status=Status.RUNNING)
    add_entries(result, [1, 2, 7, 9])
    assert seqs(get_log(client, result.id, "after=2")) == [7, 9]


def test_entries_of_other_results_are_not_included(client, job, finished):
    other = JobResult.objects.create(job=job, status=Status.SUCCESS)
    add_entries(other, [1, 2, 3, 4, 5, 6, 7])
    assert seqs(get_log(client, finished.id, "after=4")) == [5]


def test_limit_pages_through_the_log_and_finished_waits_for_the_last_page(client, finished):
    first = get_log(client, finished.id, "after=0&limit=2")
    assert seqs(first) == [1, 2]
    assert first["finished"] is False  # the run has ended but entries remain to be read
    second = get_log(client, finished.id, "after=2&limit=2")
    assert seqs(second) == [3, 4] and second["finished"] is False
    last = get_log(client, finished.id, "after=4&limit=2")
    assert seqs(last) == [5] and last["finished"] is True


def test_limit_equal_to_the_remaining_entries_is_the_last_page(client, finished):
    data = get_log(client, finished.id, "after=3&limit=2")
    assert seqs(data) == [4, 5] and data["finished"] is True


def test_tail_returns_the_last_n_entries_oldest_first(client, finished):
    data = get_log(client, finished.id, "tail=2")
    assert seqs(data) == [4, 5]
    assert data["finished"] is True


def test_tail_larger_than_the_log_returns_everything(client, finished):
    assert seqs(get_log(client, finished.id, "tail=50")) == [1, 2, 3, 4, 5]


def test_tail_of_a_running_result_is_not_finished(client, job):
    result = JobResult.objects.create(job=job, status=Status.PENDING)
    assert states.claim(result.id, "test:1")
    add_entries(result, [1, 2, 3])
    data = get_log(client, result.id, "tail=1")
    assert seqs(data) == [3] and data["finished"] is False


@pytest.mark.parametrize("after", ["x", "-1", "1.5", "1e3"])
def test_bad_after_answers_400_naming_after(client, finished, after):
    response = client.get(log_url(finished.id, f"after={after}"))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["after"]
    assert isinstance(errors["after"], list) and errors["after"][0]


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=5001", "limit"),
                                              ("tail=-1", "tail"), ("tail=many", "tail"), ("tail=5001", "tail")])
def test_bad_limit_or_tail_answers_400_naming_it(client, finished, query, field):
    response = client.get(log_url(finished.id, query))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_empty_after_means_from_the_start(client, finished):
    assert seqs(get_log(client, finished.id, "after=")) == [1, 2, 3, 4, 5]


def test_huge_after_is_an_empty_page_not_a_server_error(client, finished):
    assert get_log(client, finished.id, f"after={10**30}")["entries"] == []


def test_finished_is_false_while_pending_and_while_running(client, job):
    result = JobResult.objects.create(job=job, status=Status.PENDING)
    assert get_log(client, result.id)["finished"] is False
    assert states.claim(result.id, "test:1")
    add_entries(result, [1, 2])
    data = get_log(client, result.id)
    assert seqs(data) == [1, 2]
    assert data["finished"] is False
    assert states.finish(result.id, Status.SUCCESS, "done")
    assert get_log(client, result.id, "after=2")["finished"] is True


@pytest.mark.parametrize("status", [Status.ERROR, Status.KILLED, Status.WARNING, Status.INFO])
def test_every_terminal_status_is_finished(client, job, status):
    result = JobResult.objects.create(job=job, status=status)
    assert get_log(client, result.id)["finished"] is True


def test_result_of_another_domain_answers_404(finished):
    globex = Domain.objects.create(name="Globex", slug="globex")
    outsider = APIClient()
    outsider.force_login(make_member("outsider", (globex, DomainMembership.ADMIN)))
    response = outsider.get(log_url(finished.id))
    assert response.status_code == 404
    assert "entry 1" not in response.content.decode()


def test_result_of_a_global_job_answers_404_to_a_domain_member(client):
    result = JobResult.objects.create(job=make_job("global-cleanup"), status=Status.SUCCESS)
    add_entries(result, [1])
    assert client.get(log_url(result.id)).status_code == 404


def test_unknown_result_answers_404(client):
    assert client.get(log_url(987654)).status_code == 404


def test_anonymous_caller_is_refused(finished):
    response = APIClient().get(log_url(finished.id))
    assert response.status_code in (401, 403)
    assert "entries" not in response.json()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_reading_the_log_of_a_real_run_incrementally(celery_worker, acme):
    operator = make_member("operator", (acme, DomainMembership.OPERATOR))
    api = APIClient()
    api.force_login(operator)
    make_job("chatty", (10, "testing.echo", {"text": "first", "repeat": 3}), (20, "core.sleep", {"seconds": 0.8}),
             (30, "testing.echo", {"text": "last"}), domain=acme)
    response = api.post("/api/jobs/chatty/run/", {"parameters": {}}, format="json")
    assert response.status_code == 202
    result_id = response.json()["id"]

    entries, after, polls, unfinished = [], 0, 0, 0
    deadline = time.monotonic() + 30
    while True:
        data = get_log(api, result_id, f"after={after}&limit=2")
        polls += 1
        assert len(data["entries"]) <= 2
        entries += data["entries"]
        if data["entries"]:
            after = data["entries"][-1]["seq"]
        if data["finished"]:
            break
        unfinished += 1
        assert time.monotonic() < deadline, "the log never finished"
        time.sleep(0.05)

    result = wait_for_status(result_id, timeout=1)
    assert result.status == Status.SUCCESS, result.message
    assert unfinished > 0  # it was read while the run was going
    got = [entry["seq"] for entry in entries]
    assert got == list(range(1, len(got) + 1))  # every entry once, in order, none skipped
    assert got == list(result.log_entries.order_by("seq").values_list("seq", flat=True))
    messages = [entry["message"] for entry in entries]
    assert [m for m in messages if m in ("first", "last")] == ["first", "first", "first", "last"]
    assert {entry["line_no"] for entry in entries if entry["message"] == "first"} == {10}
    assert get_log(api, result_id, f"after={after}") == {"entries": [], "finished": True, "status": "success"}
