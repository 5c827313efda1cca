"""``make run``'s login line: the port from PORT (default 8000) and where the password is kept."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    return tmp_path


def login_line() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue().strip()


@pytest.mark.parametrize(("port", "shown"), [(None, "8000"), ("8123", "8123")])
def test_the_login_line_names_the_port_and_the_password_file(var_dir, monkeypatch, port, shown):
    if port is None:
        monkeypatch.delenv("PORT", raising=False)
    else:
        monkeypatch.setenv("PORT", port)
    line = login_line()
    password = (var_dir / "admin-password.txt").read_text()
    assert line == (f"Admin login: http://127.0.0.1:{shown}/admin/  user: admin  password: {password}  "
                    f"(kept in {var_dir / 'admin-password.txt'})")
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert login_line() == line  # the same password every time


@pytest.mark.parametrize("port", ["abc", "0", "70000", "80; rm -rf /"])
def test_a_port_that_is_not_one_is_refused_by_name(var_dir, monkeypatch, port):
    monkeypatch.setenv("PORT", port)
    with pytest.raises(CommandError, match=r"^PORT: must be a number from 1 to 65535"):
        login_line()
    assert not (var_dir / "admin-password.txt").exists()


@pytest.mark.parametrize("port", ["abc", "0", "70000", "$(id)"])
def test_run_script_refuses_a_bad_port_before_starting_anything(port):
    done = subprocess.run(["bash", "scripts/run.sh"], cwd=REPO, env={"PATH": "/usr/bin:/bin", "PORT": port},
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert done.stderr.strip() == f"PORT: must be a number from 1 to 65535, not '{port}'"
    assert "Jobs is up" not in done.stdout
