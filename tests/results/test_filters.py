"""Filter lines select records for the following lines, paged by primary key: none skipped, none twice."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Action, FilterTemplate, JobLine
from results.dispatch import start_run
from results.models import Status
from tests.helpers import make_job, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.usefixtures("celery_worker")]


def filter_job(identifier: str, definition: dict, *lines):
    template = FilterTemplate.objects.create(name=f"{identifier} users", model="auth.User",
                                             definition={"is_staff": False})
    job = make_job(identifier, *lines)
    JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=template,
                           filter_definition=definition)
    return job


def test_a_line_that_changes_the_matching_set_still_sees_every_record_once(tmp_path):
    User = get_user_model()
    User.objects.bulk_create(User(username=f"user{n:05d}", is_active=True) for n in range(3000))
    User.objects.bulk_create(User(username=f"staff{n}", is_active=True, is_staff=True) for n in range(5))
    trace = tmp_path / "seen.txt"
    job = filter_job("deactivate", {"is_active": True, "username__startswith": "user"},
                     (10, "testing.deactivate_users", {"batch": 250, "trace": str(trace)}))
    result = wait_for_status(start_run(job).id, timeout=60)
    assert result.status == Status.SUCCESS, result.message
    seen = [int(pk) for pk in trace.read_text().split()]
    expected = list(User.objects.filter(username__startswith="user").order_by("pk").values_list("pk", flat=True))
    assert seen == expected  # every record exactly once, in key order
    assert not User.objects.filter(username__startswith="user", is_active=True).exists()
    assert User.objects.filter(is_staff=True, is_active=True).count() == 5  # the template's base definition held
    lines = {line.line_no: line for line in result.line_results.all()}
    assert lines[5].message == "3000 record(s) selected."
    assert lines[10].records_processed == 3000 and result.answers()["data_changed"] is True


def test_a_filter_that_matches_nothing_ends_the_run_as_info_without_running_the_next_lines(tmp_path):
    trace = tmp_path / "seen.txt"
    job = filter_job("nobody", {"username": "no-such-user"}, (10, "testing.deactivate_users", {"trace": str(trace)}))
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.INFO
    assert "matched no records" in result.message
    assert list(result.line_results.values_list("line_no", flat=True)) == [5]
    assert not trace.exists()


def test_context_variables_work_in_filter_definitions():
    User = get_user_model()
    User.objects.create(username="someone-old", last_login=None)
    job = filter_job("by-variable", {"username": "${param.who}"}, (10, "testing.echo", {}))
    job.params = [{"name": "who", "type": "str", "default": "someone-old"}]
    job.save()
    result = wait_for_status(start_run(job).id)
    assert result.status == Status.SUCCESS
    assert result.line_results.get(line_no=5).message == "1 record(s) selected."
    assert Action.objects.filter(name="testing.echo").exists()
