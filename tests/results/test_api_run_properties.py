"""Property: POST /api/jobs/<identifier>/run/ never answers a server error.

Whatever the JSON body, the answer is 202 (a pending result), 400 with ``{"errors": {field: [message, ...]}}``
naming each bad field, or 409; a 400 creates no result. Only validation is tested here: the job's queue is one
no worker consumes, and a test transaction never publishes (the run is published after commit).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.text import storable
from results.models import JobResult
from tests.helpers import make_job
from tests.property_support import HUGE_INTS, prop_settings, strict_json_values, text

pytestmark = pytest.mark.django_db

PARAMS = [
    {"name": "days", "type": "int", "default": 7},
    {"name": "ratio", "type": "float"},
    {"name": "dry_run", "type": "bool", "default": False},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "datetime"},
    {"name": "mode", "type": "choice", "choices": ["fast", "slow"], "required": True},
    {"name": "to", "type": "email"},
    {"name": "payload", "type": "json"},
    {"name": "note", "type": "str"},
]
TYPES = {spec["name"]: spec["type"] for spec in PARAMS}
URL = "/api/jobs/props/run/"


@pytest.fixture
def client(django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "root-password")
    make_job("props", (10, "testing.echo", {"text": "${param.note} ${param.days}"}), params=PARAMS,
             queue="nobody-props", concurrency=Job.PARALLEL)
    api = APIClient()
    api.force_login(root)
    return api


# --- bodies -------------------------------------------------------------------------------------------------------


def valid_values(nul: bool) -> dict[str, st.SearchStrategy]:
    """Right values for each parameter, in the forms a caller might send them."""
    finite = st.floats(allow_nan=False, allow_infinity=False)
    return {
        "days": st.one_of(st.integers(), st.integers().map(str), st.integers(-1000, 1000).map(float)),
        "ratio": st.one_of(finite, st.integers(-(2**64), 2**64), finite.map(repr)),
        "dry_run": st.sampled_from([True, False, "yes", "no", "on", "off", "1", "0", 1, 0, ""]),
        "day": st.dates().map(lambda d: d.isoformat()),
        "at": st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
        "mode": st.sampled_from(["fast", "slow"]),
        "to": st.sampled_from(["ops@example.com", " ops@example.com ", "a.b+c@sub.example.org"]),
        "payload": st.one_of(strict_json_values(nul=nul), strict_json_values(nul=nul).map(json.dumps)),
        "note": text(nul=nul),
    }


def wrong_values(nul: bool) -> dict[str, st.SearchStrategy]:
    """Values that break each parameter's rule (or look as if they might)."""
    return {
        # A JSON body cannot carry NaN or Infinity (the test client refuses to send them; see the raw-body test).
        "days": st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                          st.sampled_from(["a week", "1.5", "", " ", "٣"])),
        "ratio": st.sampled_from(["nan", "inf", "-inf", "1e400", "abc", "", True]),
        "dry_run": st.sampled_from(["maybe", 2, 1.5, "yess", [], {}]),
        "day": st.sampled_from(["2026-02-30", "20261120", "2026-11-20T08:00", "tomorrow", 20261120]),
        "at": st.sampled_from(["2026-11-20T25:00", "2026-11-20T08:30:00+25:00", "noon", 0]),
        "mode": st.sampled_from(["FAST", "", "medium", ["fast"], {"fast": 1}, 0]),
        "to": st.sampled_from(["not-an-address", "a@b", "@example.com", "", 5]),
        "payload": st.sampled_from(["{", "[1,", "{'a': 1}", "undefined", "NaN-ish"]),
        "note": st.one_of(st.lists(text(nul=nul), max_size=2), st.dictionaries(text(nul=nul), st.integers())),
    }


@st.composite
def parameters(draw, nul: bool = False) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(strict_json_values(nul=nul))  # not even an object
    valid, wrong = valid_values(nul), wrong_values(nul)
    names = draw(st.lists(st.sampled_from(list(TYPES)), unique=True, max_size=len(TYPES)))
    if draw(st.integers(0, 3)) and "mode" not in names:
        names.append("mode")  # the required one, most of the time
    values = {}
    for name in names:
        pick = draw(st.integers(0, 9))
        source = valid[name] if pick < 7 else wrong[name] if pick < 9 else strict_json_values(nul=nul)
        values[name] = draw(source)
    if draw(st.integers(0, 3)) == 0:
        values.update(draw(st.dictionaries(text(nul=nul), strict_json_values(nul=nul), max_size=2)))
    return values


@st.composite
def bodies(draw, nul: bool = False) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(strict_json_values(nul=nul))  # any JSON document at all
    body: dict[str, Any] = {}
    if kind != 1:
        body["parameters"] = draw(parameters(nul=nul))
    if draw(st.integers(0, 4)) == 0:
        body["confirm"] = draw(st.one_of(st.just("props"), strict_json_values(nul=nul)))
    if draw(st.integers(0, 4)) == 0:
        body.update(draw(st.dictionaries(text(nul=nul), strict_json_values(nul=nul), max_size=2)))
    return body


# --- the property -------------------------------------------------------------------------------------------------


def check_run(client: APIClient, body: Any, *, raw: bool = False) -> None:
    before = JobResult.objects.count()
    encoding = {"content_type": "application/json"} if raw else {"format": "json"}
    response = client.post(URL, body, **encoding)
    assert response.status_code in (202, 400, 409), (response.status_code, response.content[:500])
    event(f"answered {response.status_code}")
    after = JobResult.objects.count()
    data = response.json()
    if response.status_code == 202:
        assert after == before + 1
        assert data["status"] == "pending" and data["queue"] == "nobody-props"
        assert set(data["parameters"]) == set(TYPES)
        return
    assert after == before, "a refused run creates no result"
    assert set(data) == {"errors"}, data
    errors = data["errors"]
    assert isinstance(errors, dict) and errors, data
    for field, messages in errors.items():
        assert isinstance(field, str) and field
        assert isinstance(messages, list) and messages, data
        assert all(isinstance(message, str) and message for message in messages), data
    if response.status_code == 400 and not raw:
        check_fields_named(body, errors)


def check_fields_named(body: Any, errors: dict) -> None:
    """A 400 names the fields that are wrong: the body, confirm, or parameters.NAME for each bad parameter."""
    body = {} if body is None else body  # the test client sends no body at all for None
    if not isinstance(body, dict):
        assert set(errors) == {"non_field_errors"}, errors
        return
    sent = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    allowed = {"parameters", "confirm"} | {f"parameters.{name}" for name in [*sent, *TYPES]}
    allowed |= {storable(key) for key in body}  # text no database stores is refused in any key's value
    assert set(errors) <= allowed, errors


@prop_settings(100)
@given(body=bodies())
@example(body={"parameters": {"mode": "fast"}})
@example(body={"parameters": {"mode": "slow", "days": "30", "day": "2026-11-20", "payload": '{"a": [1]}'}})
@example(body={"parameters": {"days": "a week", "mode": "east", "colour": "red"}})
@example(body={"parameters": None})
@example(body=[])
@example(body={"parameters": {"mode": "fast", "payload": '"text"'}})
def test_run_answers_202_400_or_409_never_500(client, body):
    check_run(client, body)


@prop_settings(40)
@given(body=st.one_of(text(), strict_json_values().map(json.dumps), bodies().map(json.dumps)))
@example(body="")
@example(body="{")
@example(body='{"parameters": {"mode": NaN}}')
@example(body='{"parameters": {"mode": "fast", "ratio": 1e400}}')
@example(body="[" * 50 + "]" * 50)
def test_run_with_any_raw_body_answers_202_400_or_409(client, body):
    check_run(client, body, raw=True)


# BUG 1/2/3 (fixed): a float beyond float range, deeply nested or non-finite JSON text gave 500.
@prop_settings(10)
@given(body=bodies())
@example(body={"parameters": {"mode": "fast", "ratio": HUGE_INTS[0]}})
@example(body={"parameters": {"mode": "fast", "payload": "[" * 100_000 + "]" * 100_000}})
@example(body={"parameters": {"mode": "fast", "payload": "NaN"}})
@example(body={"parameters": {"mode": "fast", "payload": "[1e400]"}})
def test_bug_run_with_parameters_that_crash_coerce(client, body):
    check_run(client, body)


# BUG 10 (fixed): PostgreSQL cannot store NUL in text or jsonb; the run answered 500.
@prop_settings(10)
@given(body=bodies(nul=True))
@example(body={"parameters": {"mode": "fast", "note": "a\x00b"}})
@example(body={"parameters": {"mode": "fast", "payload": {"k\x00": 1}}})
@example(body={"parameters": {"mode": "fast"}, "other": "a\x00b"})
def test_bug_run_with_nul_characters(client, body):
    check_run(client, body)


# BUG 11 (fixed): a deeply nested JSON body made DRF's JSONParser raise RecursionError (500).
@prop_settings(10)
@given(depth=st.integers(1, 200_000))
@example(depth=100_000)
def test_bug_run_with_a_deeply_nested_body(client, depth):
    check_run(client, '{"parameters": ' + "[" * depth + "]" * depth + "}", raw=True)
