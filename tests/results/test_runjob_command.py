"""The runjob management command: output, exit codes, parameters and users."""
from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jobs.models import Domain, DomainMembership
from results import states
from results.models import JobLogEntry, JobResult, Status, Trigger
from tests.conftest import database_url
from tests.helpers import make_job, wait_for_status

REPO = Path(__file__).resolve().parent.parent.parent
PARAMS = [
    {"name": "days", "type": "int", "default": 7},
    {"name": "region", "type": "choice", "choices": ["north", "south"], "required": True},
    {"name": "note", "type": "str"},
]

def runjob(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("runjob", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    """The reason of a runjob that must end with exit 2 and create no result."""
    before = JobResult.objects.count()
    with pytest.raises(CommandError) as info:
        runjob(*args)
    assert info.value.returncode == 2
    assert JobResult.objects.count() == before
    message = str(info.value)
    assert "\n" not in message
    return message


def exits(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a runjob that ends through sys.exit."""
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as info:
        call_command("runjob", *args, stdout=out, stderr=err)
    return info.value.code, out.getvalue(), err.getvalue()


def manage(*args: str, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test", "DATABASE_URL": database_url()}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=90, **popen)


@pytest.fixture
def acme(django_user_model):
    domain = Domain.objects.create(name="Acme", slug="acme")
    users = {}
    for role in ("admin", "operator", "viewer"):
        user = django_user_model.objects.create_user(f"acme-{role}", password="x")
        DomainMembership.objects.create(user=user, domain=domain, role=role)
        users[role] = user
    users["outsider"] = django_user_model.objects.create_user("outsider", password="x")
    return domain, users


# --- without a worker: what runjob checks and records ---------------------------------------------------------


@pytest.mark.django_db
def test_prints_the_id_of_a_new_pending_result():
    job = make_job("plain", (10, "testing.echo", {}))
    out, err = runjob("plain")
    result = JobResult.objects.get()
    assert out == f"{result.id}\n"
    assert err == ""
    assert (result.job, result.status, result.trigger, result.requested_by) == (
        job, Status.PENDING, Trigger.COMMAND, None)
    assert result.lines_total == 1


@pytest.mark.django_db
def test_params_are_checked_typed_and_stored():
    make_job("with-params", params=PARAMS)
    runjob("with-params", "--param", "region=south", "--param", "days=30", "--param", "note=a=b c")
    assert JobResult.objects.get().parameters == {"days": 30, "region": "south", "note": "a=b c"}


@pytest.mark.django_db
def test_defaults_fill_params_that_are_not_given():
    make_job("defaults", params=PARAMS)
    runjob("defaults", "--param", "region=north")
    assert JobResult.objects.get().parameters == {"days": 7, "region": "north", "note": None}


@pytest.mark.django_db
def test_the_last_of_a_repeated_param_wins():
    make_job("repeated", params=PARAMS)
    runjob("repeated", "--param", "region=north", "--param", "region=south")
    assert JobResult.objects.get().parameters["region"] == "south"


@pytest.mark.django_db
def test_unknown_job_is_exit_2():
    assert refused("no-such-job") == "unknown job 'no-such-job'"


@pytest.mark.django_db
def test_inactive_job_is_exit_2():
    make_job("sleepy", (10, "testing.echo", {}), active=False)
    assert "inactive" in refused("sleepy")


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "message"), [
    (["region=east"], "parameter region: must be one of: north, south"),
    (["region=north", "days=many"], "parameter days: must be a whole number"),
    (["region=north", "days=1.5"], "parameter days: must be a whole number"),
    ([], "parameter region: this parameter is required"),
    (["region=north", "colour=red"], "parameter colour: unknown parameter"),
])
def test_bad_param_is_exit_2_naming_the_parameter(params, message):
    make_job("checked", params=PARAMS)
    args = [arg for pair in params for arg in ("--param", pair)]
    assert refused("checked", *args) == message


@pytest.mark.django_db
def test_every_bad_param_is_named_on_one_line():
    make_job("checked", params=PARAMS)
    message = refused("checked", "--param", "days=x", "--param", "colour=red")
    assert "parameter days: must be a whole number" in message
    assert "parameter region: this parameter is required" in message
    assert "parameter colour: unknown parameter" in message


@pytest.mark.django_db
@pytest.mark.parametrize("pair", ["region", "=north", ""])
def test_a_param_without_name_and_value_is_exit_2(pair):
    make_job("checked", params=PARAMS)
    assert "write it as NAME=VALUE" in refused("checked", "--param", pair)


@pytest.mark.django_db
@pytest.mark.parametrize("timeout", ["0", "-3"])
def test_a_timeout_of_zero_or_less_is_exit_2(timeout):
    make_job("plain", (10, "testing.echo", {}))
    assert "--timeout" in refused("plain", "--wait", "--timeout", timeout)


@pytest.mark.django_db
def test_unknown_user_is_exit_2():
    make_job("plain", (10, "testing.echo", {}))
    assert refused("plain", "--user", "nobody") == "unknown or inactive user 'nobody'"


@pytest.mark.django_db
def test_inactive_user_is_exit_2(acme):
    domain, users = acme
    make_job("acme-job", (10, "testing.echo", {}), domain=domain)
    users["operator"].is_active = False
    users["operator"].save()
    assert refused("acme-job", "--user", "acme-operator") == "unknown or inactive user 'acme-operator'"


@pytest.mark.django_db
def test_a_viewer_may_not_run_and_it_is_exit_2(acme):
    domain, _ = acme
    make_job("acme-job", (10, "testing.echo", {}), domain=domain)
    assert refused("acme-job", "--user", "acme-viewer") == "user 'acme-viewer' may not run 'acme-job'"


@pytest.mark.django_db
def test_a_user_outside_the_domain_does_not_see_the_job(acme):
    domain, _ = acme
    make_job("acme-job", (10, "testing.echo", {}), domain=domain)
    assert refused("acme-job", "--user", "outsider") == "unknown job 'acme-job'"


@pytest.mark.django_db
def test_a_domain_member_does_not_see_global_jobs(acme):
    make_job("global-job", (10, "testing.echo", {}))
    assert refused("global-job", "--user", "acme-admin") == "unknown job 'global-job'"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["admin", "operator"])
def test_admins_and_operators_run_and_are_recorded(acme, role):
    domain, users = acme
    make_job("acme-job", (10, "testing.echo", {}), domain=domain)
    out, _ = runjob("acme-job", "--user", f"acme-{role}")
    result = JobResult.objects.get()
    assert out.strip() == str(result.id)
    assert result.requested_by == users[role]


@pytest.mark.django_db
def test_a_superuser_runs_global_jobs(admin_user):
    make_job("global-job", (10, "testing.echo", {}))
    runjob("global-job", "--user", admin_user.username)
    assert JobResult.objects.get().requested_by == admin_user


# --- with a real worker -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lines", "status"), [
    ([(10, "testing.echo", {})], Status.SUCCESS),
    ([(10, "testing.warn", {}), (20, "testing.echo", {})], Status.WARNING),
    ([], Status.INFO),
])
@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_wait_ends_with_exit_0_for_success_warning_and_info(lines, status):
    make_job("ok", *lines)
    out, _ = runjob("ok", "--wait", "--timeout", "30")
    result = JobResult.objects.get()
    assert out.splitlines() == [str(result.id), status]
    assert result.status == status


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_wait_on_an_error_is_exit_1_with_the_message_on_stderr():
    make_job("fails", (10, "testing.fail", {"message": "disk on fire"}))
    code, out, err = exits("fails", "--wait", "--timeout", "30")
    result = JobResult.objects.get()
    assert code == 1
    assert out.splitlines() == [str(result.id), "error"]
    assert "disk on fire" in err
    assert result.status == Status.ERROR


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_wait_timeout_is_exit_1_and_leaves_the_run_going():
    make_job("slow", (10, "core.sleep", {"seconds": 30}))
    code, out, err = exits("slow", "--wait", "--timeout", "0.5")
    result = JobResult.objects.get()
    try:
        assert code == 1
        assert out.splitlines()[0] == str(result.id)
        assert out.splitlines()[1] in (Status.PENDING, Status.RUNNING)
        assert f"timed out after 0.5 s waiting for result {result.id}" in err
        assert JobResult.objects.get().status in (Status.PENDING, Status.RUNNING)
    finally:
        states.request_kill(result.id, None)
        assert wait_for_status(result.id).status == Status.KILLED


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_params_reach_the_lines_through_variables():
    make_job("greets", (10, "testing.echo", {"text": "hello ${param.region} for ${param.days} days"}),
             params=PARAMS)
    runjob("greets", "--param", "region=north", "--wait")
    result = JobResult.objects.get()
    assert result.status == Status.SUCCESS
    assert result.variables["param.region"] == "north"
    assert JobLogEntry.objects.filter(result=result, line_no=10, message="hello north for 7 days").exists()


# --- as a real process --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_process_unknown_job_exit_2_with_a_one_line_reason():
    done = manage("runjob", "ghost")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == ["CommandError: unknown job 'ghost'"]


@pytest.mark.django_db(transaction=True)
def test_process_bad_param_exit_2_names_it_and_creates_no_result():
    make_job("checked", (10, "testing.echo", {}), params=PARAMS)
    done = manage("runjob", "checked", "--param", "region=north", "--param", "days=soon")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["CommandError: parameter days: must be a whole number"]
    assert not JobResult.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_process_wait_success_exit_0():
    make_job("ok", (10, "testing.echo", {}))
    done = manage("runjob", "ok", "--wait", "--timeout", "30")
    result = JobResult.objects.get()
    assert (done.returncode, done.stdout.splitlines()) == (0, [str(result.id), "success"])
    assert result.status == Status.SUCCESS and result.trigger == Trigger.COMMAND


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_process_wait_error_exit_1():
    make_job("fails", (10, "testing.fail", {}))
    done = manage("runjob", "fails", "--wait", "--timeout", "30")
    result = JobResult.objects.get()
    assert (done.returncode, done.stdout.splitlines()) == (1, [str(result.id), "error"])
    assert "it went wrong" in done.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_process_without_wait_exits_0_at_once():
    make_job("slow", (10, "core.sleep", {"seconds": 30}))
    done = manage("runjob", "slow")
    result = JobResult.objects.get()
    try:
        assert (done.returncode, done.stdout.splitlines()) == (0, [str(result.id)])
    finally:
        states.request_kill(result.id, None)
        wait_for_status(result.id)
