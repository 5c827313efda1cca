"""Properties of filter definitions (jobs/filters.py) against auth.User and a few real users.

``definition_errors`` never raises (it only returns messages); a definition it accepts builds a queryset that
evaluates without error (validation and execution agree); lookups deeper than MAX_LOOKUP_DEPTH are refused;
``RecordSet`` pages hand every selected record over exactly once, in primary-key order.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from jobs import context
from jobs.filters import MAX_LOOKUP_DEPTH, RecordSet, definition_errors, queryset_for
from jobs.models import Domain, DomainMembership
from tests.property_support import json_values, prop_settings, text

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC)
PARAMS = {"days": 7, "region": "north"}
VARIABLES = context.build_variables(job_identifier="props", domain_slug="acme", params=PARAMS, now=NOW)
KNOWN = context.known_variables(list(PARAMS))

TRANSFORM_KINDS = {
    "date": "date", "time": "time", "year": "year", "month": "int", "day": "int", "hour": "int", "minute": "int",
    "second": "int", "week": "int", "week_day": "int", "iso_week_day": "int", "quarter": "int", "iso_year": "year",
}
LOOKUPS = ["exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith", "iendswith", "gt",
           "gte", "lt", "lte", "in", "isnull", "range"]
FIELD_KINDS = {
    "AutoField": "int", "BigAutoField": "int", "IntegerField": "int", "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int", "SmallIntegerField": "int", "BigIntegerField": "int", "CharField": "str",
    "TextField": "str", "EmailField": "str", "SlugField": "str", "BooleanField": "bool", "DateTimeField": "datetime",
    "DateField": "date", "TimeField": "time", "ForeignKey": "pk", "OneToOneField": "pk", "ManyToManyField": "pk",
}
JUNK = ["pk", "nope", "", "ID", "user_id", "domain_id", "password", "key", "lower", "unaccent", "regex", "0"]
MULTI_VALUED = ("many_to_many", "one_to_many")


@pytest.fixture
def people(db):
    """A couple of real users: in several groups, in one, in none; with and without a domain membership."""
    acme = Domain.objects.create(name="Acme", slug="acme")
    ops, dev = Group.objects.create(name="ops"), Group.objects.create(name="dev")
    alice = User.objects.create_user("alice", "alice@example.com", "pw", first_name="Alice")
    bob = User.objects.create_user("bob", "bob@example.com", "pw", is_active=False)
    carol = User.objects.create_superuser("carol", "carol@example.com", "pw")
    User.objects.filter(pk=alice.pk).update(last_login=NOW, date_joined=NOW - dt.timedelta(days=3))
    alice.groups.add(ops, dev)
    bob.groups.add(ops)
    DomainMembership.objects.create(user=alice, domain=acme, role=DomainMembership.OPERATOR)
    DomainMembership.objects.create(user=carol, domain=acme, role=DomainMembership.ADMIN)
    return [alice, bob, carol]


# --- keys and values ----------------------------------------------------------------------------------------------


def kind_of(field) -> str | None:
    if field.is_relation:
        return FIELD_KINDS.get(field.related_model._meta.pk.get_internal_type()) if field.related_model else None
    return FIELD_KINDS.get(field.get_internal_type())


def value_shape(model, key: str) -> tuple[str | None, str]:
    """The test's own reading of a lookup: the kind of value it compares, and its final lookup."""
    parts = key.split("__")
    current, kind, rest = model, None, []
    for index, part in enumerate(parts):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            rest = parts[index:]
            break
        kind = kind_of(field)
        if field.is_relation and field.related_model is not None:
            current = field.related_model
    lookup = "exact"
    for part in rest:
        if part in TRANSFORM_KINDS:
            kind = TRANSFORM_KINDS[part]
        else:
            lookup = part
    return ("int" if kind == "pk" else kind), lookup


VARIABLE_VALUES = {
    "int": ["${param.days}"], "year": ["${param.days}"], "str": ["${param.region}", "${domain}", "${job.identifier}",
                                                                 "a${today}"],
    "date": ["${today}", "${yesterday}"], "datetime": ["${now}"],
}


def scalar_for(kind: str | None) -> st.SearchStrategy:
    base = {
        "int": st.integers(-(2**31), 2**31),
        "year": st.integers(0, 9999),  # year 0, or 9999 for iso_year, cannot be compared with: refused
        "str": text(),
        "bool": st.booleans(),
        "datetime": st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
        "date": st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
        "time": st.times(),
    }.get(kind, st.none())
    variables = VARIABLE_VALUES.get(kind, [])
    return st.one_of(base, st.sampled_from(variables)) if variables else base


def value_for(model, key: str) -> st.SearchStrategy:
    """A value of the right type for ``key`` (dates as ISO text, as JSON stores them)."""
    kind, lookup = value_shape(model, key)
    if lookup == "isnull":
        return st.booleans()
    if lookup in ("regex", "iregex"):
        return st.sampled_from(["^a", "e$", ".", "[0-9]", "${param.region}"])
    scalar = scalar_for(kind).map(lambda v: v.isoformat() if isinstance(v, dt.date | dt.time) else v)
    if lookup == "in":
        return st.lists(scalar, max_size=3)
    if lookup == "range":
        return st.lists(scalar, min_size=2, max_size=2)
    return scalar


@st.composite
def walked_key(draw, model=User, single_valued: bool = False) -> str:
    """A lookup that follows real fields and relations, then maybe transforms, a lookup, a field or junk."""
    parts = []
    current = model
    field = None
    for _ in range(draw(st.integers(1, MAX_LOOKUP_DEPTH + 2))):
        fields = [f for f in current._meta.get_fields()
                  if not (single_valued and any(getattr(f, flag) for flag in MULTI_VALUED))]
        field = draw(st.sampled_from(fields))
        parts.append(field.name)
        if not (field.is_relation and field.related_model is not None) or draw(st.booleans()):
            break
        current = field.related_model
    endings = ["none", "none", "lookup", "lookup", "field", "junk"]
    if kind_of(field) in ("datetime", "date", "time"):
        endings += ["transforms", "transforms", "transforms"]
    ending = draw(st.sampled_from(endings))
    if ending == "lookup":
        parts.append(draw(st.sampled_from(LOOKUPS)))
    elif ending == "transforms":
        parts += draw(st.lists(st.sampled_from(list(TRANSFORM_KINDS)), min_size=1, max_size=2))
        parts += draw(st.lists(st.sampled_from(LOOKUPS), max_size=1))
    elif ending == "field":
        parts.append(draw(st.sampled_from([f.name for f in current._meta.get_fields()])))
    elif ending == "junk":
        parts += draw(st.lists(st.sampled_from([*TRANSFORM_KINDS, *LOOKUPS, *JUNK]), min_size=1, max_size=3))
    return "__".join(parts)


random_key = st.lists(
    st.sampled_from(["id", "username", "email", "is_active", "date_joined", "last_login", "groups", "memberships",
                     "auth_token", "name", "user", "domain", "slug", "role", "permissions", "codename",
                     *TRANSFORM_KINDS, *LOOKUPS, *JUNK]),
    min_size=1, max_size=7,
).map("__".join)


@st.composite
def typed_definition(draw, single_valued: bool = False) -> dict:
    walked = walked_key(single_valued=single_valued)
    keys = walked if single_valued else st.one_of(walked, walked, walked, random_key)
    definition = {}
    for key in draw(st.lists(keys, min_size=1, max_size=2, unique=True)):
        definition[key] = draw(value_for(User, key))
    return definition


base_definitions = st.sampled_from([{}, {"is_active": True}, {"username__startswith": "a"}])


def evaluate(base: dict, definition: dict) -> list[int]:
    """Build and run the line's queryset as the runner does; a savepoint keeps PostgreSQL usable after errors."""
    with transaction.atomic():
        queryset = queryset_for("auth.User", base, definition, VARIABLES)
        records = RecordSet(queryset)
        ids = [user.pk for batch in records.batches(2) for user in batch]
        records.count()
        records.exists()
        return ids


def check_agreement(base: dict, definition: dict) -> None:
    errors = definition_errors(User, definition, KNOWN)
    assert isinstance(errors, list) and all(isinstance(e, str) and e for e in errors)
    event("accepted" if not errors else "refused")
    if not errors:
        evaluate(base, definition)


# --- definition_errors never raises -------------------------------------------------------------------------------

any_keys = st.one_of(text(), random_key, st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False))


@prop_settings(200)
@given(definition=st.one_of(json_values(), st.dictionaries(any_keys, json_values(), max_size=5)))
def test_definition_errors_only_returns_messages(definition):
    errors = definition_errors(User, definition, KNOWN)
    assert isinstance(errors, list) and all(isinstance(e, str) and e for e in errors)
    if isinstance(definition, dict):
        assert all(any(e.startswith(f"{key}: ") for key in definition) for e in errors)


# --- validation and execution agree -------------------------------------------------------------------------------


@prop_settings(250)
@given(base=base_definitions, definition=typed_definition())
@example(base={}, definition={"memberships__domain_id__slug": "acme"})
@example(base={}, definition={"date_joined__date__year__gte": 2000, "last_login__time__hour": 8})
@example(base={}, definition={"groups__name__in": ["ops", "${param.region}"], "date_joined__lte": "${now}"})
def test_an_accepted_definition_with_typed_values_runs(people, base, definition):
    check_agreement(base, definition)


# BUG 6 (fixed; PostgreSQL): iexact on a number or boolean compiled to UPPER(integer), a text lookup after week_day to
# ``EXTRACT(...) + 1::text``; PostgreSQL refused both at run time. They are refused when saved, on every database.
@prop_settings(10)
@given(base=base_definitions, definition=typed_definition())
@example(base={}, definition={"is_staff__iexact": False})
@example(base={}, definition={"id__iexact": 5})
@example(base={}, definition={"date_joined__year__iexact": 2026})
@example(base={}, definition={"last_login__week_day__contains": 1})
def test_bug_iexact_on_non_text_fields(people, base, definition):
    check_agreement(base, definition)


# BUG 9 (fixed): a field name after a plain field (id__id, username__email) was accepted.
@prop_settings(10)
@given(base=base_definitions, definition=typed_definition())
@example(base={}, definition={"id__id": 1})
@example(base={}, definition={"username__email": "a@example.com"})
@example(base={}, definition={"groups__name__id": 1})
def test_bug_a_field_after_a_plain_field_is_refused(people, base, definition):
    check_agreement(base, definition)


# BUG 6 (fixed): definition_errors checked only keys; values of the wrong type failed at run time.
@prop_settings(10)
@given(base=base_definitions, definition=st.dictionaries(walked_key(), json_values(), max_size=3))
@example(base={}, definition={"id": "abc"})
@example(base={}, definition={"is_active": "maybe"})
@example(base={}, definition={"id__in": 5})
@example(base={}, definition={"username__isnull": "x"})
@example(base={}, definition={"id__range": [1]})
@example(base={}, definition={"date_joined__gte": "yesterday"})
@example(base={}, definition={"date_joined__date": 5})
@example(base={}, definition={"id__gt": None})
@example(base={}, definition={"username__regex": "("})
@example(base={}, definition={"id__regex": "${param.days}"})
@example(base={}, definition={"last_login__iso_year": 0})
@example(base={}, definition={"date_joined__iso_year": 9999})
def test_bug_an_accepted_definition_with_any_values_runs(people, base, definition):
    check_agreement(base, definition)


# BUG 10 (fixed; PostgreSQL): text with NUL was accepted but PostgreSQL refused it at run time.
@prop_settings(10)
@given(base=base_definitions, definition=typed_definition())
@example(base={}, definition={"username": "a\x00b"})
def test_bug_text_with_nul_in_a_definition(people, base, definition):
    check_agreement(base, definition)


# --- depth --------------------------------------------------------------------------------------------------------


@prop_settings(150)
@given(key=st.lists(st.sampled_from(["groups", "user", "memberships", "domain", "name", "id", "date", "year", "gte"]),
                    min_size=MAX_LOOKUP_DEPTH + 2, max_size=MAX_LOOKUP_DEPTH + 5).map("__".join))
def test_lookups_longer_than_the_depth_are_refused(people, key):
    assert definition_errors(User, {key: 1}, KNOWN) == [f"{key}: not a valid field lookup"]


RELATION_CHAIN = ["groups", "user"]


@prop_settings(50)
@given(hops=st.integers(MAX_LOOKUP_DEPTH + 1, MAX_LOOKUP_DEPTH + 3), tail=st.sampled_from(["", "__id", "__in"]))
def test_lookups_following_more_relations_than_the_depth_are_refused_when_long(people, hops, tail):
    key = "__".join(RELATION_CHAIN[i % 2] for i in range(hops)) + tail
    assume(len(key.split("__")) > MAX_LOOKUP_DEPTH + 1)
    assert definition_errors(User, {key: 1}, KNOWN) != []


# BUG 7 (fixed): a key of exactly MAX_LOOKUP_DEPTH+1 relations (5 joins) was accepted.
@prop_settings(10)
@given(hops=st.integers(MAX_LOOKUP_DEPTH + 1, MAX_LOOKUP_DEPTH + 3))
@example(hops=MAX_LOOKUP_DEPTH + 1)
def test_bug_following_more_relations_than_the_depth_is_refused(people, hops):
    key = "__".join(RELATION_CHAIN[i % 2] for i in range(hops))
    assert definition_errors(User, {key: 1}, KNOWN) != []


# --- RecordSet keyset pages ---------------------------------------------------------------------------------------


def check_batches(base: dict, definition: dict, size: int) -> None:
    assume(not definition_errors(User, definition, KNOWN))
    with transaction.atomic():  # PostgreSQL stays usable after an error
        queryset = queryset_for("auth.User", base, definition, VARIABLES)
        records = RecordSet(queryset)
        handed = [user.pk for batch in records.batches(size) for user in batch]
        assert all(len(batch) <= size for batch in records.batches(size))
        expected = sorted(set(queryset.values_list("pk", flat=True)))
        assert handed == expected, "every selected record once, in primary-key order"
        assert records.count() == len(expected)
        assert records.exists() == bool(expected)


@prop_settings(60)
@given(base=base_definitions, definition=typed_definition(single_valued=True), size=st.integers(1, 4))
def test_batches_hand_every_record_once_in_pk_order(people, base, definition, size):
    check_batches(base, definition, size)


# BUG 8 (fixed): across a to-many relation RecordSet repeated records and count() counted joins.
@prop_settings(10)
@given(base=base_definitions, definition=typed_definition(), size=st.integers(1, 4))
@example(base={}, definition={"groups__name__in": ["ops", "dev"]}, size=5)
@example(base={}, definition={"groups__name__in": ["ops", "dev"]}, size=1)
def test_bug_batches_across_to_many_relations(people, base, definition, size):
    check_batches(base, definition, size)

