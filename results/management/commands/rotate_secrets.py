"""Re-encrypt every stored secret with the first key of JOBS_SECRET_KEYS (key rotation).

1. put the new key first in JOBS_SECRET_KEYS, keep the old one after it, restart;
2. ``manage.py rotate_secrets``;
3. drop the old key, restart.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from jobs import secrets
from jobs.models import Job, Secret
from results.models import JobResult


class Command(BaseCommand):
    help = "Re-encrypt the secret store and the sealed run-time parameters with the first key of JOBS_SECRET_KEYS."

    def handle(self, *args, **options) -> None:
        failures: list[str] = []
        with transaction.atomic():
            stored = self.rotate_store(failures)
            sealed = self.rotate_results(failures)
            if failures:
                transaction.set_rollback(True)
        if failures:
            raise CommandError("nothing was rotated: " + "; ".join(failures), returncode=1)
        self.stdout.write(f"rotated {stored} secret(s) and the sealed parameters of {sealed} result(s)")

    def rotate_store(self, failures: list[str]) -> int:
        count = 0
        for secret in Secret.objects.select_for_update(of=("self",)).select_related("domain").order_by("pk"):
            try:
                Secret.objects.filter(pk=secret.pk).update(token=secrets.rotate(secret.token))
            except secrets.SecretError as exc:
                failures.append(f"secret {secret}: {exc}")
            else:
                count += 1
        return count

    def rotate_results(self, failures: list[str]) -> int:
        """Results keep sealed values of secret parameters (a retry runs with them again)."""
        jobs = [job.pk for job in Job.objects.only("pk", "params") if job.secret_param_names()]
        count = 0
        for result in JobResult.objects.filter(job_id__in=jobs).only("pk", "parameters").iterator():
            try:
                rotated = {name: secrets.seal_again(value) if secrets.is_sealed(value) else value
                           for name, value in (result.parameters or {}).items()}
            except secrets.SecretError as exc:
                failures.append(f"result #{result.pk}: {exc}")
                continue
            if rotated != result.parameters:
                JobResult.objects.filter(pk=result.pk).update(parameters=rotated)
                count += 1
        return count
