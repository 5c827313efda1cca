"""jobs.filters.queryset_for: a filter line narrows its template's definition, never replaces it."""
from __future__ import annotations

import pytest

from jobs.filters import queryset_for
from tests.helpers import make_job

pytestmark = pytest.mark.django_db


def identifiers(queryset) -> set[str]:
    return set(queryset.values_list("identifier", flat=True))


def test_a_line_cannot_undo_a_key_of_its_template(acme):
    """Review 1: {**template, **line} let a line's {"active": false} replace the template's {"active": true}."""
    make_job("on", domain=acme)
    make_job("off", domain=acme, active=False)
    assert identifiers(queryset_for("jobs.Job", {"active": True}, {"active": False}, {})) == set()
    assert identifiers(queryset_for("jobs.Job", {"active": True}, {"identifier__startswith": "o"}, {})) == {"on"}


def test_the_template_and_the_line_each_resolve_their_variables(acme):
    make_job("nightly", domain=acme)
    make_job("weekly", domain=acme)
    variables = {"param.who": "nightly"}
    assert identifiers(queryset_for("jobs.Job", {"active": True}, {"identifier": "${param.who}"},
                                    variables)) == {"nightly"}
