"""One date format for the lists: the absolute time in the site's zone, and how far it is from now.

"2026-12-03 14:05 (in 3 min)", "2026-12-03 14:02 (5 min ago)"; with seconds where they matter (a schedule
that fires more often than once a minute). ``static/jobs/job_list.js`` keeps the relative part current
from the ``datetime`` attribute with the same rules (``relative`` here, ``relative`` there).
"""
from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

STEPS = ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s"))


def relative(instant: dt.datetime, now: dt.datetime) -> str:
    """ "in 3 min", "5 min ago", "now": the largest whole unit (rounded down)."""
    seconds = int((instant - now).total_seconds())
    for size, unit in STEPS:
        if abs(seconds) >= size:
            count = abs(seconds) // size
            return f"in {count} {unit}" if seconds > 0 else f"{count} {unit} ago"
    return "now"


def absolute(instant: dt.datetime, seconds: bool = False) -> str:
    return f"{timezone.localtime(instant):%Y-%m-%d %H:%M:%S}"[: None if seconds else 16]


def when_html(instant: dt.datetime | None, *, seconds: bool = False, now: dt.datetime | None = None) -> SafeString:
    """The one date cell of the lists; "—" for no time."""
    if instant is None:
        return mark_safe('<span class="when when-none">—</span>')  # a constant
    return format_html('<time class="when" datetime="{}" title="{}">{} <span class="when-relative">({})</span>'
                       "</time>", instant.isoformat(), timezone.localtime(instant).isoformat(),
                       absolute(instant, seconds), relative(instant, now or timezone.now()))
