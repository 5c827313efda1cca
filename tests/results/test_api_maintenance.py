"""The API of quiet periods: /api/windows/ (maintenance windows) and /api/schedules/pause/ (pause all schedules)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs import maintenance
from jobs.maintenance import MaintenanceWindow
from jobs.models import DomainMembership
from tests.helpers import client_for, make_member

pytestmark = pytest.mark.django_db

WINDOWS, PAUSE = "/api/windows/", "/api/schedules/pause/"
ADMIN, OPERATOR, VIEWER = DomainMembership.ADMIN, DomainMembership.OPERATOR, DomainMembership.VIEWER


def window(name: str, domain=None, **fields) -> MaintenanceWindow:
    start = timezone.now() + dt.timedelta(days=1)
    return MaintenanceWindow.objects.create(name=name, domain=domain, kind=MaintenanceWindow.ONE_OFF,
                                            starts_at=start, ends_at=start + dt.timedelta(hours=2), **fields)


def one_off(name: str, domain: str | None, hours: int = 2) -> dict:
    start = timezone.now() + dt.timedelta(days=2)
    return {"name": name, "domain": domain, "kind": "once", "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=hours)).isoformat(), "timezone": "UTC"}


@pytest.fixture
def windows(acme, globex):
    return {"global": window("Global upgrade"), "acme": window("Acme backup", acme),
            "globex": window("Globex move", globex)}


def test_members_read_the_global_windows_and_their_domains(acme, windows):
    viewer = client_for(make_member("vic", (acme, VIEWER)))
    listed = viewer.get(WINDOWS)
    assert listed.status_code == 200
    assert [(row["name"], row["domain"]) for row in listed.json()] == [("Acme backup", "acme"),
                                                                        ("Global upgrade", None)]
    assert viewer.get(f"{WINDOWS}{windows['globex'].pk}/").status_code == 404
    assert viewer.get(f"{WINDOWS}{windows['acme'].pk}/").json()["when"] == windows["acme"].describe()


def test_a_domain_admin_adds_changes_and_deletes_their_domains_windows_only(acme, globex, windows):
    ann = client_for(make_member("ann", (acme, ADMIN)))
    created = ann.post(WINDOWS, one_off("Acme patch night", "acme"), format="json")
    assert created.status_code == 201, created.content
    made = MaintenanceWindow.objects.get(name="Acme patch night")
    assert made.domain == acme and made.created_by.username == "ann"

    assert ann.post(WINDOWS, one_off("Everyone", None), format="json").json() == {"errors": {"domain": [
        "Only a system administrator may make a global window; give your domain's slug."]}}
    left_out = {key: value for key, value in one_off("No domain given", "acme").items() if key != "domain"}
    assert ann.post(WINDOWS, left_out, format="json").status_code == 400  # not a global window by omission
    # Another domain reads as one that does not exist: the answer tells nothing of other domains.
    for slug in ("globex", "nowhere"):
        assert ann.post(WINDOWS, one_off("Theirs", slug), format="json").json() == {"errors": {"domain": [
            f"Object with slug={slug} does not exist."]}}
    assert ann.patch(f"{WINDOWS}{made.pk}/", {"domain": None}, format="json").status_code == 400

    assert ann.patch(f"{WINDOWS}{made.pk}/", {"note": "reboot"}, format="json").json()["note"] == "reboot"
    assert ann.delete(f"{WINDOWS}{windows['globex'].pk}/").status_code == 404
    assert ann.delete(f"{WINDOWS}{windows['global'].pk}/").status_code == 403  # read, not theirs to change
    assert ann.delete(f"{WINDOWS}{made.pk}/").status_code == 204
    assert not MaintenanceWindow.objects.filter(pk=made.pk).exists()
    assert MaintenanceWindow.objects.count() == 3


def test_operators_and_viewers_change_no_window(acme, windows):
    for role in (OPERATOR, VIEWER):
        client = client_for(make_member(f"m-{role}", (acme, role)))
        assert client.post(WINDOWS, one_off("Mine", "acme"), format="json").status_code == 403
        assert client.patch(f"{WINDOWS}{windows['acme'].pk}/", {"note": "x"}, format="json").status_code == 403
        assert client.delete(f"{WINDOWS}{windows['acme'].pk}/").status_code == 403
    assert MaintenanceWindow.objects.get(pk=windows["acme"].pk).note == ""


@pytest.mark.parametrize(("change", "errors"), [
    ({"hours": -1}, {"ends_at": ["must be after the start"]}),
    ({"kind": "weekly"}, {"weekdays": ["choose at least one day of the week (0 = Monday … 6 = Sunday)"]}),
    ({"timezone": "Mars/Olympus"}, None),
])
def test_a_bad_window_is_refused_naming_the_field(admin_user, change, errors):
    body = one_off("Bad", None, hours=change.get("hours", 2)) | {k: v for k, v in change.items() if k != "hours"}
    response = client_for(admin_user).post(WINDOWS, body, format="json")
    assert response.status_code == 400
    if errors is None:
        assert list(response.json()["errors"]) == ["timezone"]
    else:
        assert response.json() == {"errors": errors}
    assert not MaintenanceWindow.objects.exists()


def test_a_system_administrator_pauses_and_resumes_every_schedule(acme, admin_user):
    operator = client_for(make_member("otto", (acme, OPERATOR)))
    root = client_for(admin_user)
    assert operator.get(PAUSE).json() == {"paused": False}
    assert operator.post(PAUSE, {"reason": "mine"}, format="json").status_code == 403
    assert root.post(PAUSE, {}, format="json").json() == {"errors": {"reason": ["This field is required."]}}

    paused = root.post(PAUSE, {"reason": "database upgrade"}, format="json")
    assert paused.status_code == 201
    assert (paused.json()["reason"], paused.json()["paused_by"]) == ("database upgrade", admin_user.username)
    assert maintenance.suppression(None, timezone.now()) == (
        f"all schedules are paused (by {admin_user.username}: database upgrade)")
    assert operator.get(PAUSE).json()["paused"] is True
    assert root.post(PAUSE, {"reason": "again"}, format="json").status_code == 409
    assert operator.delete(PAUSE).status_code == 403

    assert root.delete(PAUSE).json() == {"paused": False}
    assert maintenance.suppression(None, timezone.now()) is None
    assert root.delete(PAUSE).status_code == 409


def test_staff_of_no_domain_do_not_see_the_schedules_state():
    outsider = client_for(make_member("sam", staff=True))
    assert outsider.get(PAUSE).status_code == 403
    assert outsider.get(WINDOWS).json() == []
