"""Issue 13: a declared run-time parameter may carry a ``pattern`` the whole value must match, on every run.

Checked on Run in the admin, through the API and ``runjob``; compiled when the job is saved (a clear error
for an invalid one); carried by definition files. RE2 matches in linear time, so no pattern can hang a run.
"""
from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from jobs import params
from jobs.definitions import export_jobs, import_jobs
from jobs.models import Job
from results.models import JobResult
from tests.helpers import client_for, make_job

pytestmark = pytest.mark.django_db

WHO = {"name": "who", "type": "str", "required": True, "pattern": "[a-z][a-z0-9_]{0,30}"}
RULE = "must match the pattern [a-z][a-z0-9_]{0,30}"


@pytest.fixture
def job(acme):
    return make_job("greet", (10, "testing.echo", {"text": "hello ${param.who}"}), domain=acme, params=[WHO])


def test_a_value_must_match_the_whole_pattern():
    assert params.clean_values([WHO], {"who": "ann_2"}) == {"who": "ann_2"}
    for value in ("ann; rm -rf /", "Ann", "ann\n", "x" * 40):
        with pytest.raises(ValidationError) as info:
            params.clean_values([WHO], {"who": value})
        assert info.value.message_dict == {"who": [RULE]}


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "who", "pattern": "(unclosed"}, "parameter 'who': pattern is not a valid regular expression (missing )"),
    ({"name": "who", "pattern": r"(a)\1"}, "parameter 'who': pattern is not a valid regular expression"),
    ({"name": "days", "type": "int", "pattern": "[0-9]+"}, "parameter 'days': a pattern applies to str and email "
                                                           "parameters only"),
    ({"name": "who", "pattern": "a" * 501}, "parameter 'who': pattern must be at most 500 characters"),
    ({"name": "who", "pattern": ["a"]}, "parameter 'who': pattern must be a non-empty regular expression"),
    ({"name": "who", "pattern": "[a-z]+", "default": "Bob"}, "parameter 'who': the default must match the pattern"),
], ids=["unclosed", "backreference", "not-text", "too-long", "not-a-string", "default"])
def test_a_bad_pattern_is_refused_when_the_job_is_saved(acme, spec, message):
    job = Job(identifier="bad", name="Bad", domain=acme, params=[spec])
    with pytest.raises(ValidationError) as info:
        job.full_clean()
    assert any(message in problem for problem in info.value.message_dict["params"]), info.value.message_dict


def test_a_catastrophic_pattern_cannot_hang_a_run():
    """(a+)+$ takes exponential time in a backtracking engine; RE2 answers at once."""
    spec = {"name": "who", "type": "str", "pattern": "(a+)+"}
    started = time.monotonic()
    with pytest.raises(params.ParameterError):
        params.coerce(spec, "a" * 5000 + "!")
    assert time.monotonic() - started < 1


def test_a_value_longer_than_the_limit_is_refused_before_matching():
    with pytest.raises(params.ParameterError, match="must be at most 10000 characters"):
        params.coerce({"name": "who", "type": "str", "pattern": ".*"}, "a" * 10_001)


def test_admin_run_names_the_parameter_and_the_pattern(client, admin_user, job):
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_job_run", args=[job.pk]), {"who": "x; reboot"})
    assert response.status_code == 200
    assert response.context["form"].errors["who"] == [RULE]
    assert RULE in response.content.decode()
    response = client.post(reverse("admin:jobs_job_run", args=[job.pk]), {"step": "confirm", "who": "x; reboot"})
    assert response.context["form"].errors["who"] == [RULE]
    assert not JobResult.objects.exists()


def test_api_run_answers_400_naming_the_parameter(operator, job):
    response = client_for(operator).post(f"/api/jobs/{job.identifier}/run/", {"parameters": {"who": "$(id)"}},
                                         format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"parameters.who": [RULE]}}
    assert not JobResult.objects.exists()


def test_runjob_exits_2_naming_the_parameter(job):
    with pytest.raises(CommandError) as info:
        call_command("runjob", job.identifier, "--param", "who=`id`")
    assert info.value.returncode == 2
    assert "who" in str(info.value) and RULE in str(info.value)
    assert not JobResult.objects.exists()


def test_a_matching_value_runs(operator, job):
    response = client_for(operator).post(f"/api/jobs/{job.identifier}/run/", {"parameters": {"who": "ann"}},
                                         format="json")
    assert response.status_code == 202
    assert JobResult.objects.get().parameters == {"who": "ann"}


def test_definition_files_carry_the_pattern(job):
    text = export_jobs(Job.objects.filter(pk=job.pk))
    assert "pattern:" in text
    job.delete()
    import_jobs(text)
    assert Job.objects.get(identifier="greet").params == [{**WHO}]
