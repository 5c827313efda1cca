"""Bad text on the command line and in definition files: exit 2 with a one-line reason, never a traceback.

A NUL cannot pass through argv, but a byte that is not UTF-8 can: Python reads it as a lone surrogate
(surrogateescape), which no database driver encodes. Before, runjob and export_jobs died with a
UnicodeEncodeError traceback, and import_jobs with a UnicodeDecodeError on a file that is not UTF-8.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.models import Job
from jobs.text import NUL_RULE, SURROGATE_RULE
from results.models import JobResult
from tests.conftest import REPO, database_url
from tests.helpers import make_job

pytestmark = pytest.mark.django_db(transaction=True)


def manage(*args: str | bytes, stdin: bytes | None = None) -> tuple[int, str]:
    """(exit code, stderr) of ``manage.py ARGS`` run as a shell would, with raw bytes in argv."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "jobs_project.settings_test", "DATABASE_URL": database_url()}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                          input=stdin, timeout=90)
    return done.returncode, done.stderr.decode("utf-8", "replace")


def refused(*args: str | bytes, stdin: bytes | None = None, one_line: bool = True) -> str:
    """The reason of a command that exits 2 without a traceback (YAML errors may quote the file below it)."""
    code, err = manage(*args, stdin=stdin)
    assert code == 2, err
    assert "Traceback" not in err, err
    assert not one_line or len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def job():
    return make_job("nightly", (10, "testing.echo", {}), params=[{"name": "note", "type": "str"}])


@pytest.mark.parametrize(("args", "named"), [
    ((b"night\xffly",), "IDENTIFIER"),
    (("nightly", "--user", b"r\xffoot"), "--user"),
    (("nightly", "--param", b"note=caf\xe9"), "parameter note"),
])
def test_runjob_with_bytes_that_are_not_utf8_exits_2_naming_the_argument(job, args, named):
    assert refused("runjob", *args) == f"CommandError: {named}: {SURROGATE_RULE}"
    assert not JobResult.objects.exists()


@pytest.mark.parametrize(("args", "named"), [((b"night\xffly",), "IDENTIFIER"), (("--module", b"\xff"), "--module")])
def test_export_jobs_with_bytes_that_are_not_utf8_exits_2_naming_the_argument(job, args, named):
    assert refused("export_jobs", *args) == f"CommandError: {named}: {SURROGATE_RULE}"


def test_killjob_with_bytes_that_are_not_a_number_exits_2():
    """argparse's own refusal: the usage, then the reason on the last line."""
    assert "error: argument result_id: invalid int value" in refused("killjob", b"1\xff", one_line=False)


def test_import_of_a_file_that_is_not_utf8_exits_2(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_bytes(b"jobs:\n  - identifier: caf\xe9\n")
    assert refused("import_jobs", str(path)) == (
        f"CommandError: {path}: not UTF-8 text (byte 26) (nothing was imported)")
    assert not Job.objects.exists()


def test_import_from_standard_input_that_is_not_utf8_exits_2():
    reason = refused("import_jobs", "-", stdin=b"jobs:\n  - identifier: caf\xe9\n", one_line=False)
    assert "nothing was imported" in reason
    assert not Job.objects.exists()


@pytest.mark.parametrize(("text", "reason"), [
    (b"jobs:\n  - identifier: a\x00b\n", "not valid YAML: unacceptable character #x0000"),
    (b'jobs:\n  - identifier: x\n    name: "a\\0b"\n', f"jobs[0].name: {NUL_RULE}"),
    (b'jobs:\n  - identifier: x\n    description: "a\\ud800b"\n', f"jobs[0].description: {SURROGATE_RULE}"),
    (b'jobs:\n  - identifier: x\n    lines:\n      - {line_no: 1, action: testing.echo, parameters: {"t\\udc80": 1}}\n',
     f"jobs[0].lines[0].parameters.t\ufffd: {SURROGATE_RULE}"),
])
def test_import_of_a_file_with_nul_or_lone_surrogates_exits_2_naming_where(tmp_path, text, reason):
    path = Path(tmp_path / "jobs.yaml")
    path.write_bytes(text)
    assert reason in refused("import_jobs", str(path), one_line=False)
    assert not Job.objects.exists()
