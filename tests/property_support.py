"""Shared hypothesis strategies and predicates for the property-based tests (``test_*_properties.py``).

The rule the properties check: no input gives a server error, every invalid one a clear field error.
A bug found here is pinned by a strict xfail test, and the inputs that trigger it are left out of the general
properties by a ``known_*`` predicate, so those keep guarding everything else; when the bug is fixed its xfail
test starts passing (strict: the suite then fails), the marker goes and the predicate is deleted.
"""
from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Fast, reproducible, no example database written into the work tree.
PROPERTY_SETTINGS = {"deadline": None, "database": None, "derandomize": False}
DB_HEALTH_CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]


# JOBS_PROPERTY_SCALE=20 multiplies every max_examples (a longer hunt, e.g. nightly); the default keeps the suite fast.
SCALE = max(1, int(os.environ.get("JOBS_PROPERTY_SCALE", "1")))


def prop_settings(max_examples: int, **extra) -> settings:
    return settings(max_examples=max_examples * SCALE, suppress_health_check=DB_HEALTH_CHECKS, **PROPERTY_SETTINGS,
                    **extra)


HUGE_INTS = [10**309, -(10**309), 10**400, 2**1100]  # beyond float range, still fewer than 4300 digits
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0]

# Text a user would type in a field: numbers, dates, booleans, JSON, addresses, variables.
INTERESTING_TEXT = [
    "", " ", "0", "1", "-1", "7", " 42 ", "1.5", "1e3", "1e400", "-1e400", "nan", "NaN", "inf", "-inf", "Infinity",
    "true", "false", "yes", "no", "on", "off", "y", "n", "t", "f", "maybe", "TRUE", "2026-11-20", "20261120",
    "2026-02-30", "2026-11-20T08:30", "2026-11-20T08:30:00+01:00", "2026-11-20 08:30:00Z", "0000-01-01",
    "9999-12-31T23:59:59", "a@example.com", " a@example.com ", "a@b", "@example.com", "a@@example.com",
    "null", "[]", "{}", "[1, 2]", '{"a": 1}', '"text"', '"123"', "[NaN]", '{"a": Infinity}', "{", "]", "٣", "１２",
    "${today}", "$${today}", "fast", "slow", "north", "x" * 300,
]


def text(*, nul: bool = True) -> st.SearchStrategy[str]:
    """Any text (no lone surrogates: request bodies are UTF-8); ``nul=False`` leaves out NUL."""
    alphabet = st.characters(codec="utf-8", exclude_characters=None if nul else "\x00")
    return st.one_of(st.text(alphabet, max_size=40), st.sampled_from(INTERESTING_TEXT))


def json_scalars(*, huge: bool = True, special_floats: bool = True, nul: bool = True) -> st.SearchStrategy:
    ints = st.integers(min_value=-(2**64), max_value=2**64)
    floats = st.floats(allow_nan=special_floats, allow_infinity=special_floats)
    options = [st.none(), st.booleans(), ints, floats, text(nul=nul)]
    if huge:
        options.append(st.sampled_from(HUGE_INTS))
    if special_floats:
        options.append(st.sampled_from(SPECIAL_FLOATS))
    return st.one_of(options)


def json_values(*, huge: bool = True, special_floats: bool = True, nul: bool = True,
                max_leaves: int = 12) -> st.SearchStrategy:
    """JSON-ish values: scalars, lists and string-keyed objects, nested."""
    return st.recursive(
        json_scalars(huge=huge, special_floats=special_floats, nul=nul),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(text(nul=nul), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def strict_json_values(*, nul: bool = True) -> st.SearchStrategy:
    """What a JSON request body can hold (no NaN or Infinity, which the API's parser refuses)."""
    return json_values(special_floats=False, nul=nul)


# --- predicates ---------------------------------------------------------------------------------------------------


def nul_inside(value: Any) -> bool:
    """A NUL character in a string or key: PostgreSQL text and jsonb cannot store it, so it is refused everywhere."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(nul_inside(key) or nul_inside(item) for key, item in value.items())
    if isinstance(value, list):
        return any(nul_inside(item) for item in value)
    return False
