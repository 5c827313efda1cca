"""Guessing is cut short: admin log-ins (django-axes) and API tokens (jobs_project.throttling) lock out.

The counts live in the database (axes) and in the shared cache (tokens), so every web process
counts together: the last test makes its guesses in another process.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import REPO, database_url

ATTACKER, OTHER = "192.0.2.66", "192.0.2.7"  # documentation addresses (RFC 5737): only ever a REMOTE_ADDR here
WRONG_TOKEN = "Token 0123456789abcdef0123456789abcdef01234567"


def token_rate() -> int:
    """How many wrong tokens one address may send per window (the configured default)."""
    return int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["failed_token"].split("/")[0])


def log_in(client, password: str, address: str = ATTACKER):
    return client.post("/admin/login/?next=/admin/", {"username": "root", "password": password},
                       REMOTE_ADDR=address)


@pytest.mark.django_db
def test_wrong_passwords_lock_the_admin_log_in_even_for_the_right_one(client, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = log_in(client, "guess")
        assert response.status_code == 200 and "Please enter the correct username and password" in response.text

    locked = log_in(client, "guess")
    assert locked.status_code == 429
    assert "Too many failed log-in attempts for “root”" in locked.text and "log-in is locked" in locked.text
    assert log_in(client, "root-password").status_code == 429  # the right password is not even checked now
    assert "_auth_user_id" not in client.session
    # Only that name from that address: the real administrator elsewhere still gets in.
    assert log_in(client, "root-password", address=OTHER).status_code == 302


@pytest.mark.django_db
def test_a_successful_log_in_starts_the_count_again(client, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "typo").status_code == 200
    assert log_in(client, "root-password").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "typo").status_code == 200
    assert log_in(client, "root-password").status_code == 302


@pytest.mark.django_db
def test_wrong_api_tokens_are_answered_429_then_even_the_right_token(admin_user):
    client = APIClient(REMOTE_ADDR=ATTACKER)
    right = f"Token {Token.objects.create(user=admin_user).key}"
    for _ in range(token_rate()):
        assert client.get("/api/jobs/", HTTP_AUTHORIZATION=WRONG_TOKEN).status_code == 403  # "Invalid token."

    throttled = client.get("/api/jobs/", HTTP_AUTHORIZATION=right)
    assert throttled.status_code == 429
    assert throttled.json()["errors"]["detail"][0].startswith("Too many wrong API tokens from this address")
    assert int(throttled["Retry-After"]) > 0
    # A forged X-Forwarded-For does not make a new address (no proxy is trusted unless JOBS_PROXY_COUNT says so).
    assert client.get("/api/jobs/", HTTP_AUTHORIZATION=right, HTTP_X_FORWARDED_FOR=OTHER).status_code == 429
    # Another address is not held up, and requests without a token are not counted.
    assert APIClient(REMOTE_ADDR=OTHER).get("/api/jobs/", HTTP_AUTHORIZATION=right).status_code == 200


@pytest.mark.django_db
def test_right_tokens_are_not_counted(admin_user):
    client = APIClient(REMOTE_ADDR=ATTACKER)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    for _ in range(token_rate() + 2):
        assert client.get("/api/jobs/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_wrong_tokens_guessed_in_another_process_count_here(admin_user):
    guesses = (
        "import django; django.setup()\n"
        "from rest_framework.test import APIClient\n"
        f"client = APIClient(REMOTE_ADDR={ATTACKER!r})\n"
        f"codes = [client.get('/api/jobs/', HTTP_AUTHORIZATION={WRONG_TOKEN!r}) for _ in range({token_rate()})]\n"
        "print([response.status_code for response in codes])\n"
    )
    env = {"DJANGO_SETTINGS_MODULE": "jobs_project.settings_test", "DATABASE_URL": database_url()}
    completed = subprocess.run([sys.executable, "-c", guesses], cwd=REPO, capture_output=True, text=True, timeout=120,
                               env={**os.environ, **env})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str([403] * token_rate())

    right = f"Token {Token.objects.create(user=admin_user).key}"
    assert APIClient(REMOTE_ADDR=ATTACKER).get("/api/jobs/", HTTP_AUTHORIZATION=right).status_code == 429
