"""Every page is served with the Content-Security-Policy: only the site's own script, style and connections."""
from __future__ import annotations

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/login/", "/admin/", "/admin/jobs/job/", "/api/jobs/", "/admin/operations/",
                                 "/admin/operations/state.json"])
def test_pages_carry_a_policy_without_inline_script_or_style(admin_client, url):
    policy = dict(part.strip().split(" ", 1) for part in admin_client.get(url)["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["form-action"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
