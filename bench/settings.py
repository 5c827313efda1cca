"""The bench's settings: the application's own, plus django-celery-results for the peer column.

The peer is what a Django team would otherwise deploy: Celery with django-celery-results storing every
task's state (STARTED, then SUCCESS) in the same PostgreSQL database. It is installed for the bench only
(``bench/requirements.txt``), so the application never depends on it.
"""
from jobs_project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]  # noqa: F405
