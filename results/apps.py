from django.apps import AppConfig


class ResultsConfig(AppConfig):
    name = "results"
    verbose_name = "Results"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs import executions

        from . import signals  # noqa: F401  (connects the worker start-up sweep)
        from .job_page import ResultsForJobs

        executions.register(ResultsForJobs())  # what the job admin shows of runs, and how it starts them
