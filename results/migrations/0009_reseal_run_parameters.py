"""Sealed run-time values get keys of their own (``jobs.secrets.SEALING``): values sealed before with the stored
secrets' keys are sealed again, so a retry of an older run still opens them."""
from django.db import migrations

from jobs import secrets


def reseal(apps, schema_editor) -> None:
    Job = apps.get_model("jobs", "Job")
    JobResult = apps.get_model("results", "JobResult")
    for job in Job.objects.only("pk", "params").iterator():
        names = {spec.get("name") for spec in job.params or [] if isinstance(spec, dict) and spec.get("type") == "secret"}
        if not names:
            continue
        for result in JobResult.objects.filter(job_id=job.pk).only("pk", "parameters").iterator():
            values = dict(result.parameters or {})
            changed = False
            for name in names & set(values):
                if secrets.is_sealed(values[name]):
                    try:
                        values[name] = secrets.sealed_with_stored_secrets_key(values[name])
                    except secrets.SecretError:
                        continue  # unreadable with today's keys: the run says so, as before
                    changed = True
            if changed:
                JobResult.objects.filter(pk=result.pk).update(parameters=values)


class Migration(migrations.Migration):
    dependencies = [("results", "0008_versions_result_job_version"), ("jobs", "0014_secret_system_only")]
    operations = [migrations.RunPython(reseal, migrations.RunPython.noop)]
