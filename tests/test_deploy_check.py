"""Safe when forgotten: ``manage.py check --deploy`` passes, with no warning, under the production defaults.

Every setting here is read in a fresh process, as a deployment would start it: with the
environment only (none of the test settings' defaults).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Set by the test settings or a developer's shell; a deployment that forgot them must be safe.
UNSET = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS", "CACHE_URL", "JOBS_PROXY_COUNT"}


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """DEBUG not set at all (its default), a long key, one host: what a deployment must give."""
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update({
        "DJANGO_SETTINGS_MODULE": "jobs_project.settings",
        "SECRET_KEY": secrets.token_urlsafe(64),  # 86 characters, many unique: what the check asks for
        "ALLOWED_HOSTS": "jobs.example.com",
        "JOBS_VAR_DIR": str(tmp_path / "var"),
        **overrides,
    })
    return env


def settings_of(env: dict[str, str], *names: str) -> dict:
    """The values of ``names`` in a fresh process started with ``env`` (missing ones: None)."""
    code = ("import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}, default=str))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def test_check_deploy_reports_no_issue(tmp_path):
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env=production_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output and "?: (security." not in output, output


def test_debug_is_off_unless_set(tmp_path):
    assert settings_of(production_env(tmp_path), "DEBUG") == {"DEBUG": False}
    assert settings_of(production_env(tmp_path, DEBUG="true"), "DEBUG") == {"DEBUG": True}


def test_without_debug_a_missing_secret_key_stops_every_command_with_how_to_set_it(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    completed = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off; e.g. SECRET_KEY=" in completed.stderr
    assert "dev-only" not in completed.stdout + completed.stderr


def test_the_proxy_header_is_trusted_and_hsts_preloaded_only_when_configured(tmp_path):
    defaults = settings_of(production_env(tmp_path), "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_PRELOAD",
                           "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE")
    assert defaults == {"SECURE_PROXY_SSL_HEADER": None, "SECURE_HSTS_PRELOAD": False,
                        "SECURE_HSTS_SECONDS": 31536000, "SESSION_COOKIE_SECURE": True}
    configured = settings_of(
        production_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https", SECURE_HSTS_PRELOAD="true"),
        "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_PRELOAD")
    assert configured == {"SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SECURE_HSTS_PRELOAD": True}


def test_a_malformed_proxy_header_is_refused_with_its_format(tmp_path):
    env = production_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    completed = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be 'HEADER,value'" in completed.stderr
