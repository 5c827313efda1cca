"""Text no database stores: NUL and lone surrogates.

PostgreSQL refuses NUL in text and jsonb; a lone surrogate (what JSON's
``"\\ud800"`` or Python's ``surrogateescape`` make of bytes that are not
UTF-8) is not Unicode at all, so no UTF-8 encoder takes it. Input holding
either is refused with a rule naming where (``text_problem``,
``value_problem``); what a run writes keeps it visibly instead
(``storable``): NUL as the four characters ``\\x00``, a lone surrogate as
U+FFFD. Other control characters are stored as they are (every database
takes them; shell output uses them for colours and progress bars).
"""
from __future__ import annotations

import re
from typing import Any

NUL_RULE = "must not contain NUL characters"
SURROGATE_RULE = "must be valid Unicode (it holds a lone surrogate)"
_SURROGATES = re.compile("[\ud800-\udfff]")

Path = tuple[str | int, ...]


def text_problem(text: str) -> str | None:
    """The rule ``text`` breaks, or None."""
    if "\x00" in text:
        return NUL_RULE
    if not text.isascii() and not _encodes(text):
        return SURROGATE_RULE
    return None


def value_problem(value: Any) -> tuple[Path, str] | None:
    """The first string (value or key) in nested dicts and lists that breaks a rule: (where, rule), or None.

    ``where`` is the keys and indexes leading to the value; a bad key is named by its mapping.
    Iterative: a deeply nested value cannot exhaust the stack.
    """
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return path, problem
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem:
                    return path, problem
                stack.append((child, (*path, key)))
        elif isinstance(item, list | tuple):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
    return None


def named_problem(named: dict[str, str | list[str] | None]) -> str | None:
    """"NAME: rule" for the first text of ``named`` (values or lists of them) that breaks a rule, or None.

    For command-line arguments: a byte that is not UTF-8 arrives as a lone surrogate (surrogateescape).
    """
    for name, values in named.items():
        for value in values if isinstance(values, list) else [values]:
            problem = text_problem(value) if isinstance(value, str) else None
            if problem:
                return f"{name}: {problem}"
    return None


def storable(text: str) -> str:
    """``text`` as any database stores it: NUL shown as ``\\x00``, lone surrogates as U+FFFD.

    Cheap on the common path (log ingest): two scans in C for ASCII text, one encode for the rest.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if text.isascii() or _encodes(text):
        return text
    return _SURROGATES.sub("\ufffd", text)


def storable_json(value: Any) -> Any:
    """``value`` (JSON: dicts, lists, scalars) with every string, keys included, made ``storable``."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(key) if isinstance(key, str) else key: storable_json(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(child) for child in value]
    return value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def problems_in_words(exc, name_of=lambda name: name) -> str:
    """"NAME: rule; OTHER: rule" for a ValidationError by field: what a run that could not start says, in one line."""
    return "; ".join(f"{name_of(name)}: {' '.join(rules)}" for name, rules in exc.message_dict.items())
