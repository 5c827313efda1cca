"""Keep ``Job.revision`` moving with every change a run would see (see ``jobs.plans``)."""
from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Action, FilterTemplate, Job, JobLine


@receiver(post_save, sender=Job)
def job_saved(sender, instance: Job, **kwargs) -> None:
    Job.objects.filter(pk=instance.pk).bump_revisions()
    instance.refresh_from_db(fields=["revision"])


@receiver([post_save, post_delete], sender=JobLine)
def line_changed(sender, instance: JobLine, **kwargs) -> None:
    if Job.objects.filter(pk=instance.job_id).bump_revisions() and JobLine.job.is_cached(instance):
        instance.job.refresh_from_db(fields=["revision"])  # the caller's job object sees its new revision


@receiver([post_save, post_delete], sender=FilterTemplate)
def filter_template_changed(sender, instance: FilterTemplate, **kwargs) -> None:
    Job.objects.filter(pk__in=JobLine.objects.filter(filter_template=instance).values("job_id")).bump_revisions()


@receiver(post_save, sender=Action)
def action_changed(sender, instance: Action, **kwargs) -> None:
    Job.objects.filter(pk__in=JobLine.objects.filter(action=instance).values("job_id")).bump_revisions()
