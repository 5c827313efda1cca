from django.urls import path

from . import api, api_maintenance

app_name = "api"
urlpatterns = [
    path("jobs/", api.JobListView.as_view(), name="jobs"),
    path("jobs/<str:identifier>/run/", api.JobRunView.as_view(), name="job-run"),
    path("results/<int:result_id>/", api.ResultView.as_view(), name="result"),
    path("results/<int:result_id>/kill/", api.ResultKillView.as_view(), name="result-kill"),
    path("jobs/<str:identifier>/backfill/", api.JobBackfillView.as_view(), name="job-backfill"),
    path("backfills/<int:backfill_id>/", api.BackfillView.as_view(), name="backfill"),
    path("backfills/<int:backfill_id>/kill/", api.BackfillKillView.as_view(), name="backfill-kill"),
    path("planned/<int:planned_id>/cancel/", api.PlannedRunCancelView.as_view(), name="planned-cancel"),
    path("results/<int:result_id>/log/", api.ResultLogView.as_view(), name="result-log"),
    path("windows/", api_maintenance.WindowListView.as_view(), name="windows"),
    path("windows/<int:window_id>/", api_maintenance.WindowView.as_view(), name="window"),
    path("schedules/pause/", api_maintenance.PauseView.as_view(), name="schedules-pause"),
]
