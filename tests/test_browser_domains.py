"""In a real headless Chromium: a domain administrator sees only their domain's jobs and results."""
from __future__ import annotations

import pytest

from jobs.models import Domain, DomainMembership
from results.models import JobResult
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_domain_administrator_sees_only_their_domains_jobs_and_results(
    browser_page, live_server, django_user_model,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    acme = Domain.objects.create(name="Acme", slug="acme")
    globex = Domain.objects.create(name="Globex", slug="globex")
    ann = django_user_model.objects.create_user("ann", "ann@example.com", "ann-password", is_staff=True)
    DomainMembership.objects.create(user=ann, domain=acme, role=DomainMembership.ADMIN)
    mine = make_job("acme-invoices", (10, "testing.echo", {}), domain=acme, name="Acme invoices")
    theirs = make_job("globex-payroll", (10, "testing.echo", {}), domain=globex, name="Globex payroll")
    make_job("global-cleanup", (10, "testing.echo", {}), name="Global cleanup")
    own_result = JobResult.objects.create(job=mine, domain=acme, status="success", message="acme done")
    other_result = JobResult.objects.create(job=theirs, domain=globex, status="error", message="globex failed")

    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "ann")
    page.fill("#id_password", "ann-password")
    page.click('input[type="submit"]')
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/jobs/job/")
    table = page.locator("#result_list")
    expect(table).to_contain_text("acme-invoices")
    expect(table).not_to_contain_text("globex-payroll")
    expect(table).not_to_contain_text("global-cleanup")
    expect(page.locator("#changelist-filter")).not_to_contain_text("Globex")
    screenshot(page, "admin-domain-admin-jobs.png")

    page.goto(f"{live_server.url}/admin/results/jobresult/")
    results = page.locator("#result_list")
    expect(results).to_contain_text("acme done")
    expect(results).not_to_contain_text("globex failed")

    response = page.goto(f"{live_server.url}/admin/results/jobresult/{other_result.id}/change/")
    assert response.status == 404
    response = page.goto(f"{live_server.url}/admin/jobs/job/{theirs.id}/change/")
    assert response.status == 404
    response = page.goto(f"{live_server.url}/api/results/{other_result.id}/")
    assert response.status == 404
    assert page.goto(f"{live_server.url}/api/results/{own_result.id}/").status == 200
