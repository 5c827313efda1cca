"""The Celery application shared by the web process, workers and beat."""
import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# The embedded default broker: kombu's filesystem transport, with atomic writes and claims.
TRANSPORT_ALIASES.setdefault("jobsfs", "jobs_project.broker:Transport")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobs_project.settings")

app = Celery("jobs_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes the database connection around every task unless
# this is set; reconnecting costs more than a short run. Our tasks call Django's
# close_old_connections() instead, which honours CONN_MAX_AGE and health checks.
app.conf.update(CELERY_DB_REUSE_MAX=1_000_000)
app.autodiscover_tasks()
