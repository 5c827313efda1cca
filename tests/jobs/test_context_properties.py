"""Properties of context variables (jobs/context.py): resolving never fails for known names, plain text stays
as it is, ``$${x}`` is written literally, and unknown_variables finds exactly the names that are not known."""
from __future__ import annotations

import datetime as dt

from hypothesis import assume, given
from hypothesis import strategies as st

from jobs.context import (
    BUILTIN_VARIABLES,
    build_variables,
    known_variables,
    resolve,
    unknown_variables,
    variables_in,
)
from tests.property_support import json_scalars, prop_settings, text

PARAM_NAMES = ["days", "region", "day", "dry_run", "to"]
NOW = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)

param_names = st.lists(st.sampled_from(PARAM_NAMES), unique=True, max_size=5)
# Text around variables: anything without "$", "{" or "}" (those would start or end another variable).
plain = st.text(st.characters(codec="utf-8", exclude_characters="${}"), max_size=8)
# What may stand between ${ and }: anything but braces (the syntax has no escapes inside a name).
inner = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="{}"), max_size=12),
    st.sampled_from([*BUILTIN_VARIABLES, *[f"param.{n}" for n in PARAM_NAMES], "param.", "param.zone", " today ",
                     "TODAY", "job", "param.days.x", "$today"]),
)
time_zones = st.sampled_from(["UTC", "Europe/Madrid", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"])


@st.composite
def variables(draw) -> tuple[list[str], dict]:
    names = draw(param_names)
    params = {name: draw(json_scalars()) for name in names}
    values = build_variables(job_identifier=draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)),
                             domain_slug=draw(st.none() | st.sampled_from(["acme", "globex"])), params=params,
                             tz_name=draw(time_zones), now=NOW)
    return names, values


class Templated(str):
    """Text built from pieces, which say what resolving it must give."""

    pieces: tuple[tuple[str, str], ...]  # (kind, text): plain text, a variable's name, a literal's inside

    def expected(self, values: dict):
        """The resolved value: a lone variable keeps its value; otherwise values become text, literals ${...}."""
        meaningful = [(kind, part) for kind, part in self.pieces if (kind, part) != ("plain", "")]
        if len(meaningful) == 1 and meaningful[0][0] == "variable":
            return values[meaningful[0][1]]
        written = {"plain": lambda part: part, "literal": lambda part: "${" + part + "}",
                   "variable": lambda part: "" if values[part] is None else str(values[part])}
        return "".join(written[kind](part) for kind, part in self.pieces)


@st.composite
def templated(draw, names: list[str], *, only_known: bool) -> Templated:
    """Text mixing plain parts, ${variables} and $${literals}."""
    known = sorted(known_variables(names))
    pieces = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["plain", "variable", "literal"]))
        if kind == "plain":
            pieces.append((kind, draw(plain)))
        elif kind == "variable":
            pieces.append((kind, draw(st.sampled_from(known)) if only_known else draw(inner)))
        else:
            pieces.append((kind, draw(inner)))
    marks = {"plain": "{}", "variable": "${{{}}}", "literal": "$${{{}}}"}
    value = Templated("".join(marks[kind].format(part) for kind, part in pieces))
    value.pieces = tuple(pieces)
    return value


def expected_resolution(value, values: dict):
    """What resolve must give: each templated text its expected value, everything else unchanged."""
    if isinstance(value, dict):
        return {key: expected_resolution(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [expected_resolution(item, values) for item in value]
    return value.expected(values) if isinstance(value, Templated) else value


def nested(leaf: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        # Other text must not be variable syntax itself: its expected value is "unchanged" (hypothesis drew '${today}').
        st.one_of(leaf, json_scalars(special_floats=False).filter(lambda v: not (isinstance(v, str) and "$" in v))),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(text(), children, max_size=3),
        max_leaves=8,
    )


@prop_settings(60)
@given(data=st.data(), case=variables())
def test_resolve_replaces_each_known_variable_by_its_value(data, case):
    names, values = case
    value = data.draw(nested(templated(names, only_known=True)))
    assert unknown_variables(value, known_variables(names)) == []
    assert resolve(value, values) == expected_resolution(value, values)


@prop_settings(60)
@given(data=st.data(), case=variables())
def test_resolve_succeeds_with_the_values_whenever_nothing_is_unknown(data, case):
    """Whatever the text (odd names, literals, stray braces): if no name is unknown, resolve gives the values."""
    names, values = case
    value = data.draw(nested(st.one_of(templated(names, only_known=False), text())))
    assume(not unknown_variables(value, known_variables(names)))
    assume(all("${" not in s for s in strings_in(value) if not isinstance(s, Templated)))
    assert resolve(value, values) == expected_resolution(value, values)


@prop_settings(100)
@given(value=text(), case=variables())
def test_text_without_a_variable_is_unchanged(value, case):
    assume("${" not in value)
    assert resolve(value, case[1]) == value
    assert variables_in(value) == set()


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


@prop_settings(100)
@given(value=nested(text()), case=variables())
def test_nested_values_without_a_variable_are_unchanged(value, case):
    assume(all("${" not in s for s in strings_in(value)))
    assert resolve(value, case[1]) == value


@prop_settings(100)
@given(before=plain, name=inner, after=plain, case=variables())
def test_a_doubled_dollar_writes_the_variable_literally(before, name, after, case):
    value = f"{before}$${{{name}}}{after}"
    assert resolve(value, case[1]) == f"{before}${{{name}}}{after}"
    assert variables_in(value) == set()
    assert unknown_variables(value, set()) == []


@prop_settings(100)
@given(case=variables(), data=st.data())
def test_a_lone_variable_keeps_its_value_and_embedded_ones_become_text(case, data):
    names, values = case
    name = data.draw(st.sampled_from(sorted(known_variables(names))))
    assert resolve("${" + name + "}", values) is values[name]
    embedded = resolve("<${" + name + "}>", values)
    assert embedded == "<" + ("" if values[name] is None else str(values[name])) + ">"


@prop_settings(150)
@given(names=param_names, used=st.lists(inner, max_size=6), separators=st.lists(plain, min_size=7, max_size=7),
       literals=st.lists(inner, max_size=2))
def test_unknown_variables_finds_exactly_the_names_not_known(names, used, separators, literals):
    known = known_variables(names)
    parts = [separators[i] + "${" + name + "}" for i, name in enumerate(used)]
    parts += ["$${" + name + "}" for name in literals]  # literals never count
    value = "".join(parts) + separators[-1]
    assert variables_in(value) == set(used)
    assert unknown_variables(value, known) == sorted(set(used) - known)
    assert unknown_variables({"a": [value, {"b": value}]}, known) == sorted(set(used) - known)
