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
# Production-like: DEBUG off, with a key of its own (never used outside the tests), served over plain http.
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-only-key-not-secret-5b1f0c7e2d9a4e8f")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
