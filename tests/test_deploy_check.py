"""``manage.py check --deploy`` passes, with no warning, under production settings."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def production_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT",
                          "SECURE_HSTS_SECONDS", "CSRF_TRUSTED_ORIGINS"}}
    env.update({
        "DJANGO_SETTINGS_MODULE": "jobs_project.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),  # 86 characters, many unique: what the check asks for
        "ALLOWED_HOSTS": "jobs.example.com",
        "JOBS_VAR_DIR": str(tmp_path / "var"),
    })
    return env


def test_check_deploy_reports_no_issue(tmp_path):
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env=production_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output and "?: (security." not in output, output


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    completed = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode != 0
    assert "SECRET_KEY" in completed.stdout + completed.stderr
