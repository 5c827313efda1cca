"""Settings for the test suite: the same as production settings, isolated.

The test database, broker folders and the Celery queue are separate from a
``make run`` on the same machine, so the two never take each other's messages.
"""
import os
from pathlib import Path

os.environ.setdefault("JOBS_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
os.environ.setdefault("JOBS_DEFAULT_QUEUE", "jobs-test")
os.environ.setdefault("JOBS_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("JOBS_WORKER_LOST_SECONDS", "4")
os.environ.setdefault("JOBS_KILL_GRACE_SECONDS", "1")
os.environ.setdefault("JOBS_ACTION_MODULES", "tests.actions")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
