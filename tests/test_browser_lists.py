"""In a real headless Chromium: the job list and the result list fit the screen, for every role.

At 1400 x 900 with the admin's sidebar open, and at 800 px wide, neither the page nor the list's own table
scrolls sideways, and the row's status, Run and Kill are on screen. The job list is live: status, log
icon, a new run and the Kill button change without a reload; its status icons toggle several at once.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.models import Domain, DomainMembership, Job, Schedule
from results.models import JobLogEntry, JobResult, Status
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import make_job, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1400, 800)
ROLES = ("superuser", DomainMembership.ADMIN, DomainMembership.OPERATOR, DomainMembership.VIEWER)
LONG = "Reconciles every supplier invoice of the month against the purchase orders and the bank statements"


def busy_domain() -> tuple[Domain, list[JobResult]]:
    """Jobs with long names, descriptions, plans and messages: what makes a list too wide."""
    acme = Domain.objects.create(name="Acme Corporation International", slug="acme")
    live = []
    for index in range(4):
        job = make_job(f"acme-supplier-invoice-reconciliation-{index}", (10, "core.sleep", {"seconds": 0}),
                       domain=acme, name=f"Supplier invoice reconciliation with the bank, part {index}",
                       description=LONG, concurrency=Job.PARALLEL)
        Schedule.objects.create(job=job, kind=Schedule.CALENDAR, cron="0 8-18 * * 1-5", timezone="Europe/Madrid")
        now = timezone.now()
        JobResult.objects.create(job=job, domain=acme, status=Status.ERROR, started_at=now - dt.timedelta(minutes=5),
                                 finished_at=now, message="Line 10 failed: " + "the supplier's file was empty; " * 6)
        live.append(JobResult.objects.create(job=job, domain=acme, status=Status.RUNNING, started_at=now))
    return acme, live


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base_url}/admin/")


def user_for(role: str, acme: Domain, django_user_model) -> str:
    if role == "superuser":
        django_user_model.objects.create_superuser("root", "root@example.com", "pw")
        return "root"
    make_member(f"user-{role}", (acme, role), staff=True)
    return f"user-{role}"


FIT = """() => {
  const root = document.documentElement;
  const results = document.querySelector("#changelist .results");
  const right = (selector) => Math.max(0, ...Array.from(document.querySelectorAll(selector),
    (element) => element.getBoundingClientRect().right));
  return {page: [root.scrollWidth, root.clientWidth],
          table: results ? [results.scrollWidth, results.clientWidth] : null,
          rightmost: Math.max(right("#result_list .kill-button"), right("#result_list .run-link"),
                              right("#result_list .job-status")),
          sidebar: document.querySelector("#nav-sidebar") ?
            getComputedStyle(document.querySelector("#nav-sidebar")).display !== "none" &&
            document.querySelector("#nav-sidebar").getBoundingClientRect().width > 100 : false};
}"""


def assert_fits(page, what: str, width: int) -> dict:
    measured = page.evaluate(FIT)
    scroll_width, client_width = measured["page"]
    assert scroll_width <= client_width, f"{what} at {width} px scrolls sideways: {scroll_width} > {client_width}"
    inner_width, inner_client = measured["table"]
    assert inner_width <= inner_client, f"{what} at {width} px: the table scrolls inside ({inner_width} > " \
                                        f"{inner_client}), hiding its right-hand columns"
    assert measured["rightmost"] <= client_width, f"{what} at {width} px: a status, Run or Kill is off-screen"
    return measured


@pytest.mark.parametrize("role", ROLES)
def test_both_lists_fit_1400_with_the_sidebar_and_800_for_every_role(
    browser_page, live_server, django_user_model, role,  # noqa: F811
):
    from playwright.sync_api import expect

    acme, live = busy_domain()
    username = user_for(role, acme, django_user_model)
    runs = role != DomainMembership.VIEWER
    page = browser_page
    log_in(page, live_server.url, username, "pw")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/admin/jobs/job/")
        expect(page.locator("#result_list .job-description").first).to_contain_text("Reconciles every supplier")
        expect(page.locator("#result_list .kill-button")).to_have_count(4 if runs else 0)
        expect(page.locator("#result_list .run-link")).to_have_count(4 if runs else 0)
        screenshot(page, f"lists-jobs-{role}-{width}.png")
        measured = assert_fits(page, f"the job list ({role})", width)
        if width == 1400:
            assert measured["sidebar"], "the admin's sidebar is open at 1400 px"

        page.goto(f"{live_server.url}/admin/results/jobresult/")
        expect(page.locator("#result_list tbody tr")).to_have_count(8)
        expect(page.locator("#result_list .kill-button")).to_have_count(4 if runs else 0)
        screenshot(page, f"lists-results-{role}-{width}.png")
        assert_fits(page, f"the result list ({role})", width)
    assert JobResult.objects.filter(pk__in=[result.pk for result in live], status=Status.RUNNING).count() == 4


def test_the_job_list_follows_runs_live_and_its_kill_kills(browser_page, live_server, django_user_model):  # noqa: F811
    """Status, log icon, a new run and the row's Kill change without a reload; Kill goes to its confirmation."""
    from playwright.sync_api import expect

    acme = Domain.objects.create(name="Acme", slug="acme")
    job = make_job("nightly-export", (10, "core.sleep", {"seconds": 0}), domain=acme, concurrency=Job.PARALLEL)
    first = JobResult.objects.create(job=job, domain=acme, status=Status.SUCCESS, started_at=timezone.now(),
                                     finished_at=timezone.now())
    make_member("otto", (acme, DomainMembership.OPERATOR), staff=True)
    page = browser_page
    log_in(page, live_server.url, "otto", "pw")
    page.goto(f"{live_server.url}/admin/jobs/job/")
    page.evaluate("window.__notReloaded = true")
    cell = page.locator('#result_list .last-run[data-job="nightly-export"]')
    expect(cell.locator(".job-status-ok")).to_be_visible()
    expect(page.locator("#result_list .kill-button")).to_have_count(0)

    second = JobResult.objects.create(job=job, domain=acme, status=Status.RUNNING, started_at=timezone.now())
    expect(cell.locator(".job-status-running")).to_be_visible(timeout=10_000)
    expect(cell).to_have_attribute("data-result", str(second.pk))
    kill = page.locator("#result_list .kill-button")
    expect(kill).to_have_count(1, timeout=10_000)
    JobLogEntry.objects.create(result=second, seq=1, level="INFO", message="exporting", at=timezone.now())
    expect(cell.locator("a.log-icon.log-unread")).to_be_visible(timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "lists-jobs-live-running.png")

    kill.click()
    page.wait_for_url(f"**/admin/results/jobresult/{second.pk}/kill/")
    page.click("#confirm-kill")
    page.wait_for_url(f"**/admin/results/jobresult/{second.pk}/change/")
    assert JobResult.objects.get(pk=second.pk).kill_requested_at is not None
    assert JobResult.objects.get(pk=first.pk).status == Status.SUCCESS


def test_status_icons_toggle_several_statuses_at_once(browser_page, live_server, admin_user):  # noqa: F811
    from playwright.sync_api import expect

    for status in (Status.SUCCESS, Status.ERROR, Status.KILLED, Status.WARNING):
        JobResult.objects.create(job=make_job(f"{status}-job"), status=status)
    make_job("never-job")
    page = browser_page
    log_in(page, live_server.url, "root", "root-password")
    page.goto(f"{live_server.url}/admin/jobs/job/")
    toggles = page.locator("#changelist-filter .status-toggles")
    toggles.locator('a[data-status="error"]').click()
    toggles.locator('a[data-status="killed"]').click()
    toggles.locator('a[data-status="never"]').click()
    table = page.locator("#result_list")
    expect(table).to_contain_text("error-job")
    for shown in ("killed-job", "never-job"):
        expect(table).to_contain_text(shown)
    for hidden in ("success-job", "warning-job"):
        expect(table).not_to_contain_text(hidden)
    expect(toggles.locator('a[aria-pressed="true"]')).to_have_count(3)
    toggles.locator('a[data-status="error"]').click()  # off again
    expect(table).not_to_contain_text("error-job")
    expect(table).to_contain_text("killed-job")
