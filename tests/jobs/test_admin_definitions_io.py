"""Admin: pre-flight checks and warnings on Run, export of selected jobs, import of a file, the Action window."""
from __future__ import annotations

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.admin import JobAdmin
from jobs.definitions import export_jobs
from jobs.models import Action, Domain, DomainMembership, Job
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


def test_the_run_page_shows_the_pre_flight_checks_and_the_idempotency_warning(client, admin_user, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]  # loopback is called only when listed
    job = make_job("preflight", (10, "core.http", {"url": "http://127.0.0.1:9/nothing", "timeout": 1}),
                   (20, "core.shell", {"command": "ls", "cwd": "/no/such/folder"}), (30, "core.sleep", {}))
    client.force_login(admin_user)
    page = client.get(reverse("admin:jobs_job_run", args=[job.pk])).content.decode()
    assert "Pre-flight checks" in page
    assert "127.0.0.1:9 is unreachable" in page
    assert "not marked idempotent" in page


def test_a_reachable_server_passes_its_pre_flight_check(client, admin_user, live_server, settings):
    settings.JOBS_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    job = make_job("reachable", (10, "core.http", {"url": f"{live_server.url}/admin/login/"}), idempotent=True)
    client.force_login(admin_user)
    page = client.get(reverse("admin:jobs_job_run", args=[job.pk])).content.decode()
    assert "✔ ready" in page and "not marked idempotent" not in page


def test_export_selected_jobs_gives_a_file_that_imports_back_unchanged(client, admin_user):
    make_job("first", (10, "core.sleep", {"seconds": 1}), module="ops")
    make_job("second", (10, "testing.echo", {"text": "hi"}))
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_job_changelist"), {
        "action": "export_yaml", "_selected_action": list(Job.objects.values_list("pk", flat=True))})
    assert response["Content-Disposition"] == 'attachment; filename="jobs.yaml"'
    document = yaml.safe_load(response.content)
    assert [job["identifier"] for job in document["jobs"]] == ["first", "second"]
    upload = SimpleUploadedFile("jobs.yaml", response.content, content_type="application/yaml")
    preview = client.post(reverse("admin:jobs_job_import"), {"file": upload})
    assert [change.outcome for change in preview.context["changes"]] == ["unchanged", "unchanged"]
    imported = client.post(reverse("admin:jobs_job_import"), {"apply": "Apply", "token": preview.context["token"]},
                           follow=True)
    assert "Imported. unchanged: first, second" in imported.content.decode()


def upload(client, text: str, **fields):
    file = SimpleUploadedFile("jobs.yaml", text.encode(), content_type="application/yaml")
    return client.post(reverse("admin:jobs_job_import"), {"file": file, **fields})


def test_import_shows_what_would_change_field_by_field_and_changes_nothing_until_applied(client, admin_user):
    make_job("kept", (10, "core.sleep", {"seconds": 1}), owner="Ops")
    make_job("edited", (10, "core.sleep", {"seconds": 1}), owner="Ops")
    text = export_jobs(Job.objects.order_by("identifier"))
    text = text.replace("identifier: edited\n  name: Edited", "identifier: edited\n  name: Renamed")
    text = text.replace("seconds: 1\n    module: ''\n    is_filter: false\n    filter_template: null\n"
                        "    filter_definition: {}\n- identifier: kept", "seconds: 2\n    module: ''\n    "
                        "is_filter: false\n    filter_template: null\n    filter_definition: {}\n- identifier: kept")
    text += "- identifier: brand-new\n  destructive: true\n"
    client.force_login(admin_user)
    preview = upload(client, text)
    changes = {change.name: change for change in preview.context["changes"]}
    assert (changes["brand-new"].outcome, changes["kept"].outcome, changes["edited"].outcome) == (
        "created", "unchanged", "changed")
    assert changes["edited"].shown_fields == [("name", '"Edited"', '"Renamed"'),
                                              ("line 10.parameters.seconds", "1", "2")]
    page = preview.content.decode()
    assert "<code>line 10.parameters.seconds</code>" in page and 'name="apply"' in page
    assert not Job.objects.filter(identifier="brand-new").exists()
    assert Job.objects.get(identifier="edited").name == "Edited"

    applied = client.post(reverse("admin:jobs_job_import"), {"apply": "Apply", "token": preview.context["token"]})
    assert applied.status_code == 302
    assert Job.objects.get(identifier="brand-new").destructive
    assert Job.objects.get(identifier="edited").lines.get().parameters == {"seconds": 2}
    again = client.post(reverse("admin:jobs_job_import"), {"apply": "Apply", "token": preview.context["token"]},
                        follow=True)
    assert "Nothing to apply: upload the file again." in again.content.decode()


def test_apply_checks_the_file_again(client, admin_user):
    acme = Domain.objects.create(name="Acme", slug="acme")
    client.force_login(admin_user)
    preview = upload(client, "jobs:\n  - {identifier: moved, domain: acme}\n")
    assert preview.context["changes"][0].outcome == "created"
    acme.delete()
    answer = client.post(reverse("admin:jobs_job_import"), {"apply": "Apply", "token": preview.context["token"]},
                         follow=True)
    assert "Job moved: unknown domain &#x27;acme&#x27; (nothing was imported)" in answer.content.decode()
    assert not Job.objects.exists()


def test_only_system_administrators_preview_or_apply(client, admin_user, django_user_model):
    acme = Domain.objects.create(name="Acme", slug="acme")
    boss = django_user_model.objects.create_user("boss", "boss@example.com", "pw", is_staff=True)
    DomainMembership.objects.create(user=boss, domain=acme, role="admin")
    client.force_login(admin_user)
    token = upload(client, "jobs:\n  - {identifier: sneaky, domain: acme}\n").context["token"]
    client.force_login(boss)
    session = client.session
    session[JobAdmin.IMPORT_SESSION_KEY] = {"token": token, "text": "jobs: [{identifier: sneaky}]",
                                            "update_existing": True}
    session.save()
    assert upload(client, "jobs: []").status_code == 403
    assert client.post(reverse("admin:jobs_job_import"), {"apply": "Apply", "token": token}).status_code == 403
    assert not Job.objects.exists()


def test_a_bad_file_imports_nothing_and_says_which_job_and_line(client, admin_user):
    text = "jobs:\n  - identifier: fine\n    lines: []\n  - identifier: broken\n    lines:\n" \
           "      - {line_no: 10, action: no.such_action}\n"
    client.force_login(admin_user)
    response = client.post(reverse("admin:jobs_job_import"), {"file": SimpleUploadedFile("x.yaml", text.encode())})
    assert response.status_code == 200
    assert "job broken, line 10: unknown action &#x27;no.such_action&#x27;" in response.content.decode()
    assert not Job.objects.exists()


def test_export_never_includes_jobs_of_other_domains(client, django_user_model):
    acme = Domain.objects.create(name="Acme", slug="acme")
    other = Domain.objects.create(name="Other", slug="other")
    ann = django_user_model.objects.create_user("ann", "ann@example.com", "pw", is_staff=True)
    DomainMembership.objects.create(user=ann, domain=acme, role="viewer")
    mine, theirs = make_job("mine", domain=acme), make_job("theirs", domain=other)
    client.force_login(ann)
    response = client.post(reverse("admin:jobs_job_changelist"), {
        "action": "export_yaml", "_selected_action": [mine.pk, theirs.pk]})
    assert [job["identifier"] for job in yaml.safe_load(response.content)["jobs"]] == ["mine"]
    assert client.get(reverse("admin:jobs_job_import")).status_code == 403


def test_the_action_window_lists_parameters_and_where_the_action_is_used(client, admin_user):
    make_job("uses-http", (10, "core.http", {"url": "http://example.invalid/"}))
    client.force_login(admin_user)
    action = Action.objects.get(name="core.http")
    page = client.get(reverse("admin:jobs_action_change", args=[action.pk])).content.decode()
    assert "<code>expected_status</code>" in page and "required" in page
    assert "uses-http" in page


def test_jobs_can_be_filtered_by_type(client, admin_user):
    make_job("nightly-import", job_type="integration")
    make_job("weekly-report", job_type="reporting")
    client.force_login(admin_user)
    page = client.get(reverse("admin:jobs_job_changelist"), {"job_type__exact": "reporting"}).content.decode()
    assert "weekly-report" in page and "nightly-import" not in page
