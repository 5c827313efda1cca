"""In a real headless Chromium: the operations page, live, at 1400 and 800 px, for those who act and those who read.

A system administrator and an operator each watch a long job appear without a reload (a real worker runs
it), acknowledge a failure and kill the run from the page; a viewer sees the same rows with no button.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.models import DomainMembership, Schedule
from results.dispatch import start_run
from results.models import JobResult, Status
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import make_job, make_member, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDE, NARROW = {"width": 1400, "height": 900}, {"width": 800, "height": 900}
LONG = "for i in $(seq 1 120); do echo tick-$i; sleep 0.5; done"


def log_in_as(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base_url}/admin/operations/")  # "/" leads members here


def assert_fits(page) -> None:
    """Nothing scrolls sideways: not the page, not a section of it (no inner scrollbar hides a column)."""
    overflow = page.evaluate("""() => {
        const root = document.documentElement;
        const wide = [...document.querySelectorAll('.ops-section, .ops-table, #content')]
            .filter((node) => node.scrollWidth > node.clientWidth + 1).map((node) => node.id || node.className);
        return {page: root.scrollWidth - root.clientWidth, wide};
    }""")
    assert overflow == {"page": 0, "wide": []}, overflow


def assert_reachable(page, locator) -> None:
    """Within the window's width, where a person can click it without scrolling sideways."""
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"], box


def recent_outcomes(job) -> None:
    """A week of runs for the strip: a failure two days ago, a warning four days ago, successes."""
    now = timezone.now()
    for days, status in ((0, Status.SUCCESS), (2, Status.ERROR), (2, Status.SUCCESS), (4, Status.WARNING),
                         (5, Status.SUCCESS)):
        at = now - dt.timedelta(days=days)
        row = JobResult.objects.create(job=job, status=status, started_at=at, finished_at=at, message="earlier")
        JobResult.objects.filter(pk=row.pk).update(created_at=at)


@pytest.fixture
def operations_world(acme):
    long_job = make_job("long-export", (10, "core.shell", {"command": LONG}), domain=acme, name="Nightly export",
                        expected_runtime="about 1 second")
    failing = make_job("invoice-sync", (10, "core.shell", {"command": "exit 7"}), domain=acme, name="Invoice sync")
    Schedule.objects.create(job=failing, kind=Schedule.INTERVAL, every=15, every_unit="minutes")
    recent_outcomes(long_job)
    failure = JobResult.objects.create(job=failing, status=Status.ERROR, started_at=timezone.now(),
                                       finished_at=timezone.now(),
                                       message="Line 10 failed: command exited with status 7")
    report = make_job("weekly-report", domain=acme, name="Weekly report")
    warning = JobResult.objects.create(job=report, status=Status.WARNING, message="3 record(s) failed of 120",
                                       started_at=timezone.now() - dt.timedelta(hours=5),
                                       finished_at=timezone.now() - dt.timedelta(hours=5))
    return {"long": long_job, "failure": failure, "warning": warning}


@pytest.mark.worker
@pytest.mark.parametrize("role", ["system administrator", "operator"])
def test_watch_acknowledge_and_kill_from_the_operations_page(
    browser_page, celery_worker, live_server, admin_user, acme, operations_world, role,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(WIDE)
    if role == "operator":
        user = make_member("ann", (acme, DomainMembership.OPERATOR), staff=True)
        log_in_as(page, live_server.url, "ann", "pw")
    else:
        user = admin_user
        log_in_as(page, live_server.url, "root", "root-password")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#ops-running")).to_contain_text("Nothing is running.")
    expect(page.locator("#ops-upcoming")).to_contain_text("Every 15 minutes")

    # A run starts after the page was drawn: it appears by itself, running and then over its expected second.
    result = start_run(operations_world["long"], user=user)
    running_row = page.locator(f'#ops-running tr[data-result="{result.id}"]')
    expect(running_row.locator(".job-status-running")).to_be_visible(timeout=15_000)
    expect(page.locator(f'#ops-overdue tr[data-result="{result.id}"]')).to_contain_text("expected about 1 second",
                                                                                        timeout=10_000)

    # Acknowledge: the failure leaves the list, and who acknowledged it is shown.
    failure = operations_world["failure"]
    page.locator(f'#ops-attention tr[data-result="{failure.id}"] button', has_text="Acknowledge").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Result #{failure.id} acknowledged.")
    expect(page.locator(f'#ops-attention tr[data-result="{failure.id}"]')).to_have_count(0)
    expect(page.locator(f'#ops-acknowledged tr[data-result="{failure.id}"]')).to_contain_text(user.username)
    expect(page.locator(f'#ops-attention tr[data-result="{operations_world["warning"].id}"]')).to_be_visible()
    acknowledged = JobResult.objects.get(pk=failure.pk)
    assert acknowledged.acknowledged_by_id == user.pk and acknowledged.status == Status.ERROR

    assert_fits(page)
    expect(page.locator('#ops-strips .ops-strip[data-job="long-export"] .ops-day-failed')).to_have_count(1)
    if role == "system administrator":
        screenshot(page, "operations.png")
    page.set_viewport_size(NARROW)
    assert_fits(page)
    assert_reachable(page, running_row.locator("a.kill-button"))
    assert page.evaluate("window.__notReloaded") is True

    # Kill, through the kill confirmation everyone knows; then the page no longer lists the run.
    running_row.locator("a.kill-button").click()
    expect(page.locator("#content-main")).to_contain_text("may leave partial changes")
    page.click("#confirm-kill")
    expect(page.locator("#result-status")).to_have_text("killed", timeout=15_000)
    assert wait_for_status(result.id).status == Status.KILLED
    page.goto(f"{live_server.url}/admin/operations/")
    expect(page.locator("#ops-running")).to_contain_text("Nothing is running.")
    assert page.js_errors == []


def test_a_viewer_sees_the_runs_and_no_button(browser_page, live_server, acme, operations_world):  # noqa: F811
    from playwright.sync_api import expect

    make_member("vic", (acme, DomainMembership.VIEWER), staff=True)
    running = JobResult.objects.create(job=operations_world["long"], status=Status.RUNNING,
                                       started_at=timezone.now() - dt.timedelta(minutes=3))
    page = browser_page
    for size in (WIDE, NARROW):
        page.set_viewport_size(size)
        log_in_as(page, live_server.url, "vic", "pw") if size is WIDE else page.reload()
        expect(page.locator(f'#ops-running tr[data-result="{running.id}"]')).to_contain_text("Nightly export")
        expect(page.locator(f'#ops-attention tr[data-result="{operations_world["failure"].id}"]')).to_contain_text(
            "command exited with status 7")
        expect(page.locator(f'#ops-overdue tr[data-result="{running.id}"]')).to_have_count(1)
        expect(page.locator("#content-main .kill-button, #content-main form.ops-acknowledge")).to_have_count(0)
        assert_fits(page)
    assert page.js_errors == []
