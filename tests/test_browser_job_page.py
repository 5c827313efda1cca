"""In a real headless Chromium: the job page for those who run it, and windows that fit the screen.

Every role (system administrator, domain administrator, operator, viewer) opens the job page, a result page,
the Run dialog and an action page at 1400 x 900 px with the admin's sidebar open and at 800 px wide: the page
never scrolls sideways (document.documentElement.scrollWidth <= clientWidth).
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.models import Action, Domain, DomainMembership, Schedule
from results.models import JobLineResult, JobLogEntry, JobResult
from tests.browser_support import (  # noqa: F401  (browser_page, chromium_executable: fixtures)
    ARTIFACTS,
    browser_page,
    chromium_executable,
    screenshot,
)
from tests.helpers import make_job, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_COMMAND = ("for region in north south east west; do echo \"exporting $region\"; "
                "/usr/local/bin/export-invoices --region=\"$region\" --format=csv --output=/var/exports/invoices-"
                "$region-$(date +%Y-%m-%d).csv --include-cancelled --include-credit-notes; done")


@pytest.fixture
def wide_job(django_user_model):
    """A job whose lines made the page 2,118 px wide: long parameters, a filter line, a calendar schedule."""
    acme = Domain.objects.create(name="Acme Corp", slug="acme")
    job = make_job(
        "nightly-invoice-export",
        (10, "core.shell", {"command": LONG_COMMAND, "cwd": "/var/exports/with/a/rather/long/working/directory"}),
        (20, "core.sleep", {"seconds": 1}),
        (30, "core.shell", {"command": "echo \"done at $JOBS_NOW for $JOBS_DOMAIN\" && ls -la /var/exports"}),
        name="Nightly invoice export", domain=acme, description="Exports the day's invoices for every region.",
        owner="Finance IT (finance-it@example.com)", expected_runtime="about 2 minutes",
        expected_result="Four CSV files under /var/exports, one per region.",
        troubleshooting="If a region fails, check the export host's disk space, then retry the run.",
    )
    Schedule.objects.create(job=job, kind=Schedule.CALENDAR, weekdays=[0, 1, 2, 3, 4, 5, 6], times=["02:30"])
    start = timezone.now() - dt.timedelta(hours=6)
    for n, status in enumerate(["success", "success", "error", "warning", "success", "killed"]):
        began = start + dt.timedelta(minutes=40 * n)
        result = JobResult.objects.create(
            job=job, domain=acme, status=status, started_at=began, finished_at=began + dt.timedelta(seconds=20 + 9 * n),
            message=f"run {n}: " + ("exported 4 regions" if status == "success" else "the export host refused the "
                                    "connection on port 22 (connection timed out after 30 seconds) " * 2))
        JobLineResult.objects.create(result=result, line_no=10, action="core.shell", status=status,
                                     message=result.message)
        JobLogEntry.objects.create(result=result, seq=1, level="INFO", message=f"log of run {n}", at=began)
    JobResult.objects.create(job=job, domain=acme, status="pending", message="waiting for a worker")
    users = {
        "root": django_user_model.objects.create_superuser("root", "root@example.com", "pw"),
        "admin": make_member("ann", (acme, DomainMembership.ADMIN), staff=True),
        "operator": make_member("otto", (acme, DomainMembership.OPERATOR), staff=True),
        "viewer": make_member("vic", (acme, DomainMembership.VIEWER), staff=True),
    }
    return job, users


def log_in_as(page, base_url: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click('input[type="submit"]')
    page.wait_for_url(f"{base_url}/admin/")


def sideways_overflow(page) -> int:
    """How many pixels the document is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


STICKING_OUT = """() => {
  const limit = document.documentElement.clientWidth;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  return [...document.querySelectorAll("body *")].filter((el) => el.getBoundingClientRect().right > limit + 1)
    .filter((el) => ![...el.children].some((child) => child.getBoundingClientRect().right > limit + 1))
    .slice(0, 4).map((el) => `${describe(el)} (right edge ${Math.round(el.getBoundingClientRect().right)})`);
}"""


def sticking_out(page) -> list[str]:
    """The innermost elements past the window's right edge: what to fix when a page is too wide."""
    return page.evaluate(STICKING_OUT)


@pytest.mark.parametrize("role", ["root", "admin", "operator", "viewer"])
def test_the_job_result_run_and_action_pages_fit_1400_and_800_px_for_every_role(
    role, browser_page, live_server, wide_job,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    job, users = wide_job
    page = browser_page
    log_in_as(page, live_server.url, users[role].username)
    result = job.results.filter(status="error").first()
    pages = {
        "job": f"/admin/jobs/job/{job.pk}/change/",
        "result": f"/admin/results/jobresult/{result.pk}/change/",
        "action": f"/admin/jobs/action/{Action.objects.get(name='core.shell').pk}/change/",
    }
    if role != "viewer":  # a viewer may not run: no Run dialog for them
        pages["run"] = f"/admin/jobs/job/{job.pk}/run/"
    too_wide = []
    for width in (1400, 800):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in pages.items():
            assert page.goto(live_server.url + url).status == 200, url
            if width == 1400:
                expect(page.locator("#nav-sidebar")).to_be_visible()  # measured with the sidebar open
            overflow = sideways_overflow(page)
            screenshot(page, f"fit-{name}-{role}-{width}.png")
            if overflow > 0:
                too_wide.append(f"{name} page at {width} px: {overflow} px too wide ({sticking_out(page)})")
    assert too_wide == [], f"{role}: " + "; ".join(too_wide)
    assert page.js_errors == []


def test_an_operator_sees_notes_results_and_chart_first_and_no_input_of_the_definition(
    browser_page, live_server, wide_job,  # noqa: F811
):
    from playwright.sync_api import expect

    job, _ = wide_job
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in_as(page, live_server.url, "otto")
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    expect(page.locator("#note-owner")).to_have_text("Finance IT (finance-it@example.com)")
    expect(page.locator("#run-job")).to_be_visible()
    # The operator's material is on the first screen, above the definition.
    assert page.locator("#operator-panel").bounding_box()["y"] < 900
    assert page.locator("#history-chart").bounding_box()["y"] < page.locator("#job-definition").bounding_box()["y"]
    chart = page.locator("#history-chart").bounding_box()
    assert chart["width"] >= 600
    expect(page.locator("#history-chart .y-tick")).to_contain_text(["0 s"])
    expect(page.locator("#history-legend")).to_contain_text("error (1)")
    # No input, select or text box of the job's definition: only the Results window's search and its buttons.
    definition_inputs = page.locator("#job-definition input, #job-definition select, #job-definition textarea")
    expect(definition_inputs).to_have_count(0)
    assert page.locator("#job_form").count() == 0
    expect(page.locator("#job-lines")).to_contain_text("export-invoices")
    screenshot(page, "job-page-operator.png")
    page.screenshot(path=str(ARTIFACTS / "job.png"))  # the README's (docs/job.png): the first screen


def test_the_results_window_searches_filters_pages_and_opens_a_log_popup(
    browser_page, live_server, wide_job,  # noqa: F811
):
    from playwright.sync_api import expect

    job, _ = wide_job
    started = timezone.now() - dt.timedelta(days=2)
    JobResult.objects.bulk_create(JobResult(job=job, domain=job.domain, status="success", message=f"older run {n}",
                                            started_at=started, finished_at=started) for n in range(30))
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in_as(page, live_server.url, "otto")
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    rows = page.locator("#job-results-table tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator("#results-paginator")).to_contain_text("Page 1 of 2 · 37 results")
    page.click("#results-next")
    expect(rows).to_have_count(17)

    page.select_option("#results-status", "error")
    page.click("#results-search button")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("refused the connection")
    page.fill("#results-q", "older run 7")
    page.select_option("#results-status", "")
    page.click("#results-search button")
    expect(rows).to_have_count(1)

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/?results_status=error")
    with page.expect_popup() as popup_info:
        rows.first.locator("a.result-popup").click()
    popup = popup_info.value
    expect(popup.locator("#job-log")).to_contain_text("log of run 2")
    popup.close()

    # A bar of the history chart opens its run's log too.
    bar = page.locator("#history-chart rect.bar-killed")
    expect(bar.locator("title")).to_contain_text("killed · started")
    with page.expect_popup() as popup_info:
        bar.click()
    expect(popup_info.value.locator("#job-log")).to_contain_text("log of run 5")


def test_kill_and_retry_from_the_results_window(browser_page, live_server, wide_job):  # noqa: F811
    from playwright.sync_api import expect

    job, _ = wide_job
    pending = job.results.get(status="pending")
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in_as(page, live_server.url, "otto")
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/?results_status=pending")
    page.locator(f'#job-results-table tr[data-result="{pending.pk}"] .kill-button').click()
    page.click('input[type="submit"]')  # the kill confirmation
    expect(page.locator(".messagelist")).to_contain_text(f"Result #{pending.pk} was killed before it started")
    pending.refresh_from_db()
    assert pending.status == "killed"

    failed = job.results.get(status="error")
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/?results_status=error")
    page.locator(f'#job-results-table tr[data-result="{failed.pk}"] .retry-button').click()
    expect(page.locator(".messagelist")).to_contain_text(f"Retry of #{failed.pk} queued")
    assert job.results.filter(retry_of=failed).count() == 1


def test_a_viewer_gets_neither_kill_nor_retry(browser_page, live_server, wide_job):  # noqa: F811
    from playwright.sync_api import expect

    job, _ = wide_job
    page = browser_page
    log_in_as(page, live_server.url, "vic")
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    expect(page.locator("#job-results-table tbody tr")).to_have_count(7)
    expect(page.locator("#job-results .kill-button, #job-results .retry-button, #run-job")).to_have_count(0)
