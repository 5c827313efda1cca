"""Job.expected_duration: the operators' "expected runtime" note read as a duration (the operations page)."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs.models import Job


@pytest.mark.parametrize(("text", "seconds"), [
    ("about 5 minutes", 300), ("5 min", 300), ("~ 90 seconds", 90), ("1h 30m", 5400), ("2 hours", 7200),
    ("up to 1.5 hours", 5400), ("30 s", 30),
])
def test_a_duration_in_words_is_read(text, seconds):
    assert Job(expected_runtime=text).expected_duration == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "quick", "a few minutes", "depends on the data", "0 s"])
def test_a_note_without_a_duration_sets_no_limit(text):
    assert Job(expected_runtime=text).expected_duration is None
