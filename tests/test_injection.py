"""Issue 13, "values are data, never code": a person who may only run a job types a parameter that tries to make
the job run something its author did not write. Each attack runs on a real worker and must do nothing but fail
or print the value literally."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from jobs.definitions import import_jobs
from jobs.models import DomainMembership, Job
from results.dispatch import start_run
from results.models import JobLogEntry, JobResult, Status
from tests.conftest import WorkerProcess
from tests.helpers import client_for, make_job, make_member, wait_for_status

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def shell_attack(folder: Path) -> tuple[str, list[Path]]:
    """A value that tries every way into a shell command, and the files it would create."""
    markers = [folder / f"pwned{i}" for i in range(1, 7)]
    m1, m2, m3, m4, m5, m6 = markers
    value = f'x; touch {m1} $(touch {m2}) `touch {m3}` && touch {m4}\ntouch {m5} "; touch {m6}; "'
    return value, markers


@pytest.fixture
def hello_world(acme) -> Job:
    """The demo job hello-world exactly as demo/jobs.yaml defines it, in the domain Acme."""
    demo = yaml.safe_load((REPO / "demo" / "jobs.yaml").read_text())
    doc = next(job for job in demo["jobs"] if job["identifier"] == "hello-world")
    import_jobs(yaml.safe_dump({"jobs": [{**doc, "domain": "acme"}]}))
    return Job.objects.get(identifier="hello-world")


def assert_greeted_literally(result: JobResult, value: str, markers: list[Path]) -> None:
    result = wait_for_status(result.id)
    assert [marker.name for marker in markers if marker.exists()] == []
    assert result.status == Status.SUCCESS, result.message
    logged = list(JobLogEntry.objects.filter(result_id=result.id, line_no=10).order_by("seq")
                  .values_list("message", flat=True))
    greeting = f"Hello {value}, today is {result.variables['today']}"
    assert logged == [*greeting.split("\n"), "Line 10: success: command exited with status 0"]


@pytest.mark.usefixtures("celery_worker")
def test_an_operator_cannot_inject_a_command_through_the_admin_run_form(client, acme, hello_world, tmp_path):
    value, markers = shell_attack(tmp_path)
    client.force_login(make_member("otto", (acme, DomainMembership.OPERATOR), staff=True))
    response = client.post(reverse("admin:jobs_job_run", args=[hello_world.pk]),
                           {"csrfmiddlewaretoken": "from-the-page", "step": "confirm", "who": value})
    assert response.status_code == 302
    assert_greeted_literally(JobResult.objects.get(job=hello_world), value, markers)


@pytest.mark.usefixtures("celery_worker")
def test_an_operator_cannot_inject_a_command_through_the_api(operator, hello_world, tmp_path):
    value, markers = shell_attack(tmp_path)
    response = client_for(operator).post("/api/jobs/hello-world/run/", {"parameters": {"who": value}}, format="json")
    assert response.status_code == 202, response.content
    assert_greeted_literally(JobResult.objects.get(id=response.json()["id"]), value, markers)


@pytest.mark.usefixtures("celery_worker")
def test_an_operator_cannot_inject_a_command_through_runjob(operator, hello_world, tmp_path):
    value, markers = shell_attack(tmp_path)
    out = StringIO()
    call_command("runjob", "hello-world", "--user", "operator", "--param", f"who={value}", stdout=out)
    assert_greeted_literally(JobResult.objects.get(id=int(out.getvalue().split()[0])), value, markers)


@pytest.mark.usefixtures("celery_worker")
def test_a_line_stored_with_a_variable_in_its_shell_command_fails_instead_of_running(tmp_path):
    value, markers = shell_attack(tmp_path)
    job = make_job("old-hello", (10, "core.shell", {"command": "echo Hello ${param.who}"}),
                   params=[{"name": "who", "type": "str"}])  # saved before the rule: never validated
    result = wait_for_status(start_run(job, parameters={"who": value}).id)
    assert [marker.name for marker in markers if marker.exists()] == []
    assert result.line_results.get().message == (
        'Invalid parameters: command: ${param.who} would be read by the shell as code; write "$JOBS_PARAM_WHO" '
        "instead (variables reach the command as environment variables)")
    assert [marker for marker in markers if marker.exists()] == []


# core.management_command --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dump_worker(django_db_setup):
    """A worker whose system administrators allow dumpdata (the default list does not)."""
    worker = WorkerProcess("inject-dump", "inject-dump", env={"JOBS_MANAGEMENT_COMMANDS": "check,dumpdata"}).start()
    yield worker
    worker.stop()


@pytest.fixture
def dump_job(acme, dump_worker) -> Job:
    return make_job("dump-model", (10, "core.management_command", {"command": "dumpdata",
                                                                      "arguments": "${param.model} --indent 2"}),
                    domain=acme, queue="inject-dump", params=[{"name": "model", "type": "str"}])


def line_log(result: JobResult) -> list[str]:
    return list(JobLogEntry.objects.filter(result_id=result.id, line_no=10).values_list("message", flat=True))


def test_a_value_cannot_add_models_to_a_management_command(dump_job, admin_user):
    token = Token.objects.create(user=admin_user)
    result = wait_for_status(start_run(dump_job, parameters={"model": "auth.user authtoken.token"}).id)
    log = line_log(result)
    assert not any(token.key in message or "root@example.com" in message for message in log)
    assert "manage.py dumpdata 'auth.user authtoken.token' --indent 2" in log  # one argument, as typed
    assert result.status == Status.ERROR


def test_a_value_cannot_add_an_option_to_a_management_command(dump_job, tmp_path):
    output = tmp_path / "stolen.json"
    result = wait_for_status(start_run(dump_job, parameters={"model": f"--output={output}"}).id)
    assert not output.exists()
    assert result.status == Status.ERROR
    assert result.line_results.get().message == (
        f"Invalid parameters: arguments: the value of ${{param.model}} would start a new option "
        f"(--output={output}); write the option yourself, e.g. --output=${{param.model}}")


def test_the_author_still_decides_which_command_runs(dump_job):
    result = wait_for_status(start_run(dump_job, parameters={"model": "auth.group"}).id)
    assert result.status == Status.SUCCESS, result.message
    assert line_log(result)[0] == "manage.py dumpdata auth.group --indent 2"
