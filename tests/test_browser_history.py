"""The History window in a real headless Chromium: edit a job, compare its two versions, restore the first."""
from __future__ import annotations

import re

import pytest

from jobs import versions
from jobs.models import Job
from tests.browser_support import (  # noqa: F401  (browser_page, chromium_executable: fixtures)
    assert_no_csp_violations,
    browser_page,
    chromium_executable,
    screenshot,
)
from tests.helpers import log_in, make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_edit_a_job_compare_its_versions_and_restore_the_first(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("versioned-job", (10, "core.sleep", {"seconds": 0}), name="Original name")
    versions.record(job, admin_user, "created")
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    page.fill("#id_name", "Edited name")
    page.fill("#id_change_note", "renamed in the browser")
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")

    page.click("#job-versions")
    page.wait_for_url(re.compile(rf"/admin/jobs/job/{job.pk}/history/versions/$"))
    expect(page.locator("#version-list tbody tr")).to_have_count(2)
    expect(page.locator('#version-list tr[data-version="2"]')).to_contain_text("renamed in the browser")
    page.check("#compare-a-1")
    page.check("#compare-b-2")
    page.click("#compare-versions")
    page.wait_for_url(lambda url: "a=1" in url and "b=2" in url)
    expect(page.locator("#version-diff .diff-removed")).to_have_text(["-  name: Original name"])
    expect(page.locator("#version-diff .diff-added")).to_have_text(["+  name: Edited name"])
    screenshot(page, "admin-job-versions.png")

    page.click("#restore-version-1")
    expect(page.locator(".messagelist .success")).to_contain_text("Version 1 restored as version 3")
    assert Job.objects.get(pk=job.pk).name == "Original name"
    expect(page.locator('#version-list tr[data-version="3"]')).to_contain_text("restored version 1")
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    expect(page.locator("#id_name")).to_have_value("Original name")
    assert page.js_errors == []
    assert_no_csp_violations(page)
