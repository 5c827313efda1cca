"""In a real headless Chromium: the job's edit form without raw JSON (issue 15, item 5).

The parameter table and the report editor (fill, save, reload: values kept), the schedule fields of the chosen
kind only (the seven weekdays within 1400 px), lines reordered by drag-and-drop and by the keyboard's buttons,
new lines numbered 10, 20, ..., and a line's filter fields shown only when it is a filter.
"""
from __future__ import annotations

import pytest

from jobs.models import DomainMembership, FilterTemplate, Job, JobLine
from tests.browser_support import browser_page, chromium_executable, screenshot  # noqa: F401  (fixtures)
from tests.helpers import log_in, make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_job(page, live_server, job: Job, width: int = 1400) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")


def save_and_continue(page) -> None:
    from playwright.sync_api import expect

    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")


def open_report_section(page) -> None:
    summary = page.locator("summary", has_text="E-mail report")
    if summary.count():
        summary.click()


def test_parameters_typed_in_the_table_and_the_report_are_saved_and_shown_again(
    browser_page, live_server, admin_user,  # noqa: F811  (browser_page: the imported fixture)
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("table-params", (10, "testing.echo", {}), params=[{"name": "days", "type": "int", "default": 7}])
    open_job(page, live_server, job)
    editor = page.locator(".param-editor")
    expect(page.locator("#id_params")).to_be_hidden()  # the raw JSON is "Advanced", out of the way
    expect(editor.locator('input[name="params-0-name"]')).to_have_value("days")
    expect(editor.locator('input[name="params-0-default"]')).to_have_value("7")

    editor.locator(".param-add").click()
    editor.locator('input[name="params-1-name"]').fill("mode")
    editor.locator('select[name="params-1-type"]').select_option("choice")
    editor.locator('input[name="params-1-choices"]').fill("dry, apply")
    editor.locator('input[name="params-1-default"]').fill("dry")
    editor.locator('input[name="params-1-required"]').check()
    editor.locator('input[name="params-1-help"]').fill("Dry run first.")
    editor.locator(".param-add").click()
    editor.locator('input[name="params-2-name"]').fill("who")
    editor.locator('input[name="params-2-pattern"]').fill("[a-z]+")
    editor.locator(".param-add").click()  # a row left empty is no parameter
    editor.locator('input[name="params-0-default"]').fill("14")

    open_report_section(page)
    expect(page.locator(".report-recipients-row")).to_be_hidden()  # "Never": nobody to name
    page.select_option("#id_report_0", "always")
    expect(page.locator(".report-recipients-row")).to_be_visible()
    page.fill("#id_report_1", "ops@example.com\nteam@example.com")
    save_and_continue(page)

    job.refresh_from_db()
    assert job.params == [
        {"name": "days", "type": "int", "required": False, "default": 14},
        {"name": "mode", "type": "choice", "required": True, "choices": ["dry", "apply"], "help": "Dry run first.",
         "default": "dry"},
        {"name": "who", "type": "str", "required": False, "pattern": "[a-z]+"},
    ]
    assert job.report == {"when": "always", "recipients": ["ops@example.com", "team@example.com"]}

    page.reload()
    expect(editor.locator("tbody tr.param-row")).to_have_count(3)
    expect(editor.locator('input[name="params-1-choices"]')).to_have_value("dry, apply")
    expect(editor.locator('select[name="params-1-type"]')).to_have_value("choice")
    expect(editor.locator('input[name="params-1-required"]')).to_be_checked()
    expect(editor.locator('input[name="params-2-pattern"]')).to_have_value("[a-z]+")
    expect(page.locator("#id_report_0")).to_have_value("always")
    expect(page.locator("#id_report_1")).to_have_value("ops@example.com\nteam@example.com")

    # Advanced: the same declaration as JSON; edited there and saved, the table shows it after the reload.
    editor.locator(".param-advanced").click()
    expect(page.locator("#id_params")).to_be_visible()
    expect(editor.locator(".param-table-part")).to_be_hidden()
    assert '"choices": [\n      "dry",\n      "apply"\n    ]' in page.input_value("#id_params")
    page.fill("#id_params", '[{"name": "days", "type": "int", "default": 30, "help": "Since when."}]')
    save_and_continue(page)
    job.refresh_from_db()
    assert job.params == [{"name": "days", "type": "int", "required": False, "help": "Since when.", "default": 30}]
    expect(editor.locator('input[name="params-0-help"]')).to_have_value("Since when.")
    assert page.js_errors == []


def test_a_bad_parameter_row_is_named_and_the_table_comes_back_as_typed(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("bad-row", (10, "testing.echo", {}))
    open_job(page, live_server, job)
    editor = page.locator(".param-editor")
    editor.locator(".param-add").click()
    editor.locator('input[name="params-0-name"]').fill("days")
    editor.locator('select[name="params-0-type"]').select_option("int")
    editor.locator('input[name="params-0-default"]').fill("seven")
    page.click('input[name="_continue"]')
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-params")).to_contain_text("Row 1 (days), default: must be a whole number")
    expect(editor.locator('input[name="params-0-default"]')).to_have_value("seven")
    job.refresh_from_db()
    assert job.params == []
    assert page.js_errors == []


@pytest.mark.parametrize("width", [1400, 800])
def test_the_schedule_shows_the_fields_of_its_kind_with_all_weekdays_on_screen(
    browser_page, live_server, admin_user, width,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("kinds", (10, "testing.echo", {}))
    open_job(page, live_server, job, width)
    form = page.locator(".inline-related", has=page.locator('select[name$="-kind"]')).first
    kind = form.locator('select[name$="-kind"]')
    every, weekdays, cron, zone = (form.locator(f".form-row.field-{name}") for name in
                                   ("every", "weekdays", "cron", "timezone"))

    expect(kind).to_have_value("disabled")
    for row in (every, weekdays, cron, zone):
        expect(row).to_be_hidden()
    kind.select_option("interval")
    expect(every).to_be_visible()
    expect(zone).to_be_visible()
    expect(weekdays).to_be_hidden()
    kind.select_option("automatic")
    expect(every).to_be_hidden()
    expect(zone).to_be_visible()
    kind.select_option("calendar")
    expect(every).to_be_hidden()
    expect(weekdays).to_be_visible()
    expect(cron).to_be_visible()

    boxes = weekdays.locator('input[type="checkbox"]')
    expect(boxes).to_have_count(7)
    for index in range(7):
        box = boxes.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (index, box)
        expect(boxes.nth(index)).to_be_visible()
    if width == 1400:
        screenshot(page, "admin-job-schedule-kinds.png")
    assert page.js_errors == []


def test_a_schedule_form_added_on_the_page_shows_the_fields_of_its_own_kind(
    browser_page, live_server, admin_user,  # noqa: F811
):
    """As Django's inlines.js adds a form (a copy of the empty form, then "formset:added"): the script wires each
    schedule form by its own kind select, so several schedules per job work alike."""
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("two-kinds", (10, "testing.echo", {}))
    open_job(page, live_server, job)
    first = page.locator(".inline-related", has=page.locator('select[name$="-kind"]')).first
    prefix = first.locator('select[name$="-kind"]').get_attribute("name").removesuffix("-0-kind")
    page.evaluate("""prefix => {
        const template = document.getElementById(prefix + "-empty");
        const form = template.cloneNode(true);
        form.classList.remove("empty-form");
        form.id = prefix + "-1";
        form.innerHTML = form.innerHTML.replaceAll("__prefix__", "1");
        template.parentNode.insertBefore(form, template);
        form.dispatchEvent(new CustomEvent("formset:added", {bubbles: true, detail: {formsetName: prefix}}));
    }""", prefix)
    added = page.locator(f"#{prefix}-1")
    expect(added.locator(".form-row.field-every")).to_be_hidden()
    added.locator('select[name$="-kind"]').select_option("interval")
    first.locator('select[name$="-kind"]').select_option("calendar")
    expect(added.locator(".form-row.field-every")).to_be_visible()
    expect(added.locator(".form-row.field-weekdays")).to_be_hidden()
    expect(first.locator(".form-row.field-every")).to_be_hidden()
    expect(first.locator(".form-row.field-weekdays")).to_be_visible()
    assert page.js_errors == []


def test_json_typed_as_advanced_comes_back_as_table_rows_unless_the_table_cannot_keep_it(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("back-to-table", (10, "testing.echo", {}))
    open_job(page, live_server, job)
    editor = page.locator(".param-editor")
    switch = editor.locator(".param-advanced")
    switch.click()
    page.fill("#id_params", '[{"name": "n", "type": "choice", "choices": [1, 2]}]')
    switch.click()
    expect(editor.locator(".param-switch-problem")).to_contain_text("It stays JSON: the choices of n")
    expect(page.locator("#id_params")).to_be_visible()
    page.fill("#id_params", '[{"name": "days", "type": "int", "default": 7, "required": true, "help": "Back."}]')
    switch.click()
    expect(page.locator("#id_params")).to_be_hidden()
    expect(editor.locator("tbody tr.param-row")).to_have_count(1)
    expect(editor.locator('input[name="params-0-name"]')).to_have_value("days")
    expect(editor.locator('select[name="params-0-type"]')).to_have_value("int")
    expect(editor.locator('input[name="params-0-default"]')).to_have_value("7")
    expect(editor.locator('input[name="params-0-required"]')).to_be_checked()
    save_and_continue(page)
    job.refresh_from_db()
    assert job.params == [{"name": "days", "type": "int", "required": True, "help": "Back.", "default": 7}]
    assert page.js_errors == []


def line_numbers(page) -> list[list[str]]:
    """[line number, parameters] of each line row, in page order."""
    return page.eval_on_selector_all(
        "#lines-group tbody tr.form-row:not(.empty-form)",
        """rows => rows.map(row => [row.querySelector('input[name$="-line_no"]').value,
                                    row.querySelector('textarea[name$="-parameters"]').value])""")


def test_dragging_line_30_above_line_10_renumbers_the_lines_and_the_order_is_saved(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("drag", (10, "testing.echo", {"text": "a"}), (20, "testing.echo", {"text": "b"}),
                   (30, "testing.echo", {"text": "c"}))
    ids = {line.parameters["text"]: line.pk for line in job.lines.all()}
    open_job(page, live_server, job)
    rows = page.locator("#lines-group tbody tr.form-row:not(.empty-form)")
    expect(rows.nth(3).locator('input[name$="-line_no"]')).to_have_value("40")  # the empty new line

    rows.nth(2).locator(".line-drag").drag_to(rows.nth(0), target_position={"x": 20, "y": 3})
    assert [number for number, _ in line_numbers(page)][:3] == ["10", "20", "30"]
    assert [text for _, text in line_numbers(page)][:3] == ['{"text": "c"}', '{"text": "a"}', '{"text": "b"}']
    save_and_continue(page)

    assert {line.pk: line.line_no for line in job.lines.all()} == {ids["c"]: 10, ids["a"]: 20, ids["b"]: 30}
    page.reload()
    assert [text for _, text in line_numbers(page)][:3] == ['{"text": "c"}', '{"text": "a"}', '{"text": "b"}']

    # The keyboard's way: line 30 (b) one up, then saved.
    rows.nth(2).get_by_role("button", name="Move this line up").click()
    assert [text for _, text in line_numbers(page)][:3] == ['{"text": "c"}', '{"text": "b"}', '{"text": "a"}']
    save_and_continue(page)
    assert {line.pk: line.line_no for line in job.lines.all()} == {ids["c"]: 10, ids["b"]: 20, ids["a"]: 30}
    assert page.js_errors == []


def test_added_lines_are_numbered_after_the_others(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("numbered", (10, "testing.echo", {"text": "a"}), (25, "testing.echo", {"text": "b"}))
    open_job(page, live_server, job)
    expect(page.locator("#id_lines-2-line_no")).to_have_value("30")
    page.locator("#lines-group .add-row a").click()
    expect(page.locator("#id_lines-3-line_no")).to_have_value("40")
    page.select_option("#id_lines-3-action", label="testing.echo")
    save_and_continue(page)
    assert sorted(job.lines.values_list("line_no", flat=True)) == [10, 25, 40]
    assert page.js_errors == []


def test_the_filter_fields_appear_only_when_is_a_filter_is_ticked(
    browser_page, live_server, admin_user,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    FilterTemplate.objects.create(name="Every user", model="auth.User")
    job = make_job("filters", (10, "testing.echo", {"text": "a"}))
    open_job(page, live_server, job)
    template, definition = page.locator("#id_lines-0-filter_template"), page.locator("#id_lines-0-filter_definition")
    header = page.locator("#lines-group th.column-filter_template")
    expect(template).to_be_hidden()
    expect(definition).to_be_hidden()
    expect(header).to_be_hidden()
    page.check("#id_lines-0-is_filter")
    expect(template).to_be_visible()
    expect(definition).to_be_visible()
    expect(header).to_be_visible()
    expect(page.locator("#id_lines-1-filter_template")).to_be_hidden()  # the other line is no filter
    page.uncheck("#id_lines-0-is_filter")
    expect(template).to_be_hidden()
    expect(header).to_be_hidden()
    assert page.js_errors == []


@pytest.mark.parametrize("width", [1400, 800])
def test_the_parameter_table_and_the_report_fit_the_screen(
    browser_page, live_server, admin_user, width,  # noqa: F811
):
    page = browser_page
    job = make_job("fits", (10, "testing.echo", {}), params=[
        {"name": "mode", "type": "choice", "choices": ["dry", "apply"], "default": "dry", "help": "Dry run first.",
         "required": True}, {"name": "who", "type": "str", "pattern": "[a-z]+"}],
        report={"when": "failure", "recipients": ["ops@example.com"]})
    open_job(page, live_server, job, width)
    open_report_section(page)
    cells = page.locator(".param-editor tr.param-row input:visible, .param-editor tr.param-row select, "
                        ".param-editor .param-remove, .report-editor select, .report-editor textarea")
    assert cells.count() == 2 * 8 + 2
    screenshot(page, f"admin-job-parameter-table-{width}.png")
    for index in range(cells.count()):
        box = cells.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (index, box)
    assert page.js_errors == []


def test_a_viewer_sees_the_stored_filter_of_a_line(
    browser_page, live_server, member, acme,  # noqa: F811
):
    """Read-only, there is no box to tick: the read-only page names the line's filter and its lookups."""
    from playwright.sync_api import expect

    page = browser_page
    template = FilterTemplate.objects.create(name="Every user", model="auth.User", domain=acme,
                                             domain_path="memberships__domain")
    job = make_job("viewed", (10, "testing.echo", {"text": "a"}), domain=acme)
    JobLine.objects.create(job=job, line_no=5, is_filter=True, filter_template=template,
                           filter_definition={"is_active": True})
    member("vic", acme, DomainMembership.VIEWER)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "vic")
    page.fill("#id_password", "pw")
    page.click('input[type="submit"]')
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    filter_row = page.locator("#job-lines tbody tr").first
    expect(filter_row).to_contain_text("Filter: Every user")
    expect(filter_row).to_contain_text("is_active")
    assert page.js_errors == []


def test_moving_a_line_past_the_empty_new_row_leaves_that_row_out(
    browser_page, live_server, admin_user,  # noqa: F811
):
    """The empty new row keeps the number it was offered (so the server still skips it); lines are renumbered."""
    from playwright.sync_api import expect

    page = browser_page
    job = make_job("past-blank", (10, "testing.echo", {"text": "a"}), (20, "testing.echo", {"text": "b"}))
    open_job(page, live_server, job)
    line_a = page.locator("#lines-group tbody tr.form-row", has=page.locator("textarea", has_text='"a"'))
    for _ in range(2):
        line_a.get_by_role("button", name="Move this line down").click()
    assert line_numbers(page) == [["10", '{"text": "b"}'], ["30", "{}"], ["20", '{"text": "a"}']]
    save_and_continue(page)
    assert dict(job.lines.values_list("parameters__text", "line_no")) == {"b": 10, "a": 20}

    # A new row filled in after such a move takes a number no other line has.
    line_b = page.locator("#lines-group tbody tr.form-row", has=page.locator("textarea", has_text='"b"'))
    line_b.get_by_role("button", name="Move this line down").click()
    new_row = page.locator("#lines-group tbody tr.form-row:not(.has_original):not(.empty-form)").first
    expect(new_row.locator('input[name$="-line_no"]')).to_have_value("30")
    new_row.locator('select[name$="-action"]').select_option(label="testing.echo")
    expect(new_row.locator('input[name$="-line_no"]')).to_have_value("30")
    assert page.js_errors == []
