"""The lists' one date format: absolute in the site's zone, with "in 3 min" / "5 min ago"."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.when import absolute, relative, when_html

NOW = dt.datetime(2026, 12, 3, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("offset", "words"), [
    (0, "now"), (0.4, "now"), (7, "in 7 s"), (-7, "7 s ago"), (180, "in 3 min"), (-300, "5 min ago"),
    (-359, "5 min ago"), (7_200, "in 2 h"), (-90_000, "1 d ago"), (3 * 86_400 + 5, "in 3 d"),
])
def test_relative_uses_the_largest_whole_unit(offset, words):
    assert relative(NOW + dt.timedelta(seconds=offset), NOW) == words


def test_absolute_is_in_the_site_time_zone_with_seconds_only_when_asked(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    with timezone.override("Europe/Madrid"):
        assert absolute(NOW) == "2026-12-03 13:00"
        assert absolute(NOW + dt.timedelta(seconds=5), seconds=True) == "2026-12-03 13:00:05"


def test_when_html_carries_the_instant_for_the_script_and_says_dash_for_none():
    html = when_html(NOW - dt.timedelta(minutes=5), now=NOW)
    assert 'datetime="2026-12-03T11:55:00+00:00"' in html
    assert '<span class="when-relative">(5 min ago)</span>' in html
    assert "—" in when_html(None)
