"""core.shell lines saved before variables became environment variables: ``${x}`` in ``command``
becomes ``"$JOBS_X"`` (``$JOBS_X`` inside double quotes). Inside single quotes it is left as it was,
and the line fails with a clear message when it runs (``jobs.code_params``)."""
import uuid

from django.db import migrations

from jobs.code_params import shell_env_form


def to_environment_variables(apps, schema_editor):
    JobLine = apps.get_model("jobs", "JobLine")
    Job = apps.get_model("jobs", "Job")
    changed_jobs = set()
    for line in JobLine.objects.filter(action__name="core.shell").iterator():
        command = (line.parameters or {}).get("command") if isinstance(line.parameters, dict) else None
        if not isinstance(command, str):
            continue
        converted = shell_env_form(command)
        if converted != command:
            line.parameters = {**line.parameters, "command": converted}
            line.save(update_fields=["parameters"])
            changed_jobs.add(line.job_id)
    Job.objects.filter(id__in=changed_jobs).update(revision=uuid.uuid4())  # workers reload their plans


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0009_author_domain_quotas"),
    ]

    operations = [
        migrations.RunPython(to_environment_variables, migrations.RunPython.noop),
    ]
