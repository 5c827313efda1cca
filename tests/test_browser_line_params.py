"""In a real headless Chromium: choosing a line's action shows its parameters as typed fields."""
from __future__ import annotations

import pytest

from jobs.models import Action, Job
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_line_editor_shows_typed_fields_and_saves_typed_values(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    Action.objects.sync_with_registry()
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/add/")
    page.fill("#id_identifier", "typed-line")
    page.fill("#id_name", "Typed line")
    page.fill("#id_lines-0-line_no", "10")
    page.select_option("#id_lines-0-action", label="core.http")

    row = page.locator("#lines-0")
    expect(row.locator('.typed-param[data-param="url"]')).to_be_visible()
    expect(row.locator('textarea[name="lines-0-parameters"]')).to_be_hidden()
    expect(row.locator('select.typed-param[data-param="method"] option')).to_have_count(7)
    expect(row.locator(".typed-params")).to_contain_text("${today}")
    row.locator('.typed-param[data-param="url"]').fill("https://example.invalid/${today}")
    row.locator('select.typed-param[data-param="method"]').select_option("POST")
    row.locator('.typed-param[data-param="timeout"]').fill("12.5")
    screenshot(page, "admin-line-typed-params.png")
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")

    line = Job.objects.get(identifier="typed-line").lines.get()
    assert line.parameters == {"url": "https://example.invalid/${today}", "method": "POST", "timeout": 12.5}
    assert page.js_errors == []


def test_a_missing_required_parameter_is_named_on_save(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    Action.objects.sync_with_registry()
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/add/")
    page.fill("#id_identifier", "missing-url")
    page.fill("#id_name", "Missing url")
    page.fill("#id_lines-0-line_no", "10")
    page.select_option("#id_lines-0-action", label="core.http")
    page.locator('#lines-0 .typed-param[data-param="url"]').evaluate("node => node.required = false")
    page.click('input[name="_continue"]')
    expect(page.locator("#lines-group .errorlist")).to_contain_text("url: this parameter is required")
    assert not Job.objects.filter(identifier="missing-url").exists()


def test_a_shell_command_line_says_how_variables_reach_it_and_refuses_them_in_the_command(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    Action.objects.sync_with_registry()
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/add/")
    page.fill("#id_identifier", "shell-line")
    page.fill("#id_name", "Shell line")
    page.fill("#id_lines-0-line_no", "10")
    page.select_option("#id_lines-0-action", label="core.shell")
    row = page.locator("#lines-0")
    expect(row.locator(".typed-params")).to_contain_text('command gets them as environment variables: '
                                                          '"$JOBS_DOMAIN"')
    row.locator('.typed-param[data-param="command"]').fill("echo '${today}'")
    page.click('input[name="_continue"]')
    expect(page.locator("#lines-group .errorlist")).to_contain_text(
        'command: ${today} would be read by the shell as code; write "$JOBS_TODAY" instead')
    assert not Job.objects.filter(identifier="shell-line").exists()
    assert page.js_errors == []
