"""manage.py rotate_secrets: re-encrypt with the first key of JOBS_SECRET_KEYS, then the old key can go."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from jobs import secrets
from jobs.models import Secret
from results.models import JobResult
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


def test_rotation_re_encrypts_the_store_and_sealed_parameters_so_the_old_key_can_be_dropped(acme, settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.JOBS_SECRET_KEYS = [old]
    secret = Secret(name="api_token", domain=acme)
    secret.set_value("stored-value")
    secret.save()
    job = make_job("acme-job", domain=acme, params=[{"name": "pw", "type": "secret"}])
    result = JobResult.objects.create(job=job, parameters=job.clean_run_parameters({"pw": "typed-value"}))
    plain = JobResult.objects.create(job=make_job("plain", domain=acme), parameters={"n": 1})

    settings.JOBS_SECRET_KEYS = [new, old]
    call_command("rotate_secrets")
    assert "rotated 1 secret(s) and the sealed parameters of 1 result(s)" in capsys.readouterr().out

    settings.JOBS_SECRET_KEYS = [new]
    assert Secret.objects.get(pk=secret.pk).reveal() == "stored-value"
    assert secrets.unseal(JobResult.objects.get(pk=result.pk).parameters["pw"]) == "typed-value"
    assert JobResult.objects.get(pk=plain.pk).parameters == {"n": 1}


def test_without_the_key_that_encrypted_them_nothing_is_rotated(acme, settings):
    settings.JOBS_SECRET_KEYS = [Fernet.generate_key().decode()]
    secret = Secret(name="api_token", domain=acme)
    secret.set_value("stored-value")
    secret.save()
    settings.JOBS_SECRET_KEYS = [Fernet.generate_key().decode()]  # the old key was dropped too early
    with pytest.raises(CommandError, match="nothing was rotated: secret api_token \\(acme\\): cannot be decrypted"):
        call_command("rotate_secrets")
    assert Secret.objects.get(pk=secret.pk).token == secret.token
