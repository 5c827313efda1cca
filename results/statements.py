"""The statements every run executes, built once per process and prepared by PostgreSQL.

A one-line run costs the claim, one INSERT of its line, one of its log and the
UPDATE that ends it. Through the ORM each of them is compiled again in Python
and parsed and planned again by PostgreSQL: at hundreds of runs a second that
was most of the worker's and the database's time. Here the SQL text of each
statement is built once per process from the model's fields, and on
PostgreSQL it runs as a prepared statement (``hot_cursor``): parsed and
planned once per connection. Values go through each field's
``get_db_prep_save``, as the ORM would send them, so every backend gets what
it expects (JSON, datetimes on SQLite). Django's cursor wrapper is kept:
errors are Django's, and the statements show in ``connection.queries``.

The writes of a journal's flush go further (``combined``): on PostgreSQL they
are one statement, each write a data-modifying ``WITH`` part of the one whose
answer is needed (the run's end and its row count), the rows of an insert
passed as one JSON parameter (``json_populate_recordset``: one value to adapt
instead of one per column and row), so the statement's text, and its plan, do
not change with their number. One round trip, one commit, no BEGIN.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from psycopg.types.json import Json, Jsonb


@contextlib.contextmanager
def hot_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL prepares on first use (server-side binding); a plain one elsewhere.

    Preparing needs ``prepare_threshold`` in the database OPTIONS (settings.py sets it unless
    DATABASE_PREPARED_STATEMENTS=0, e.g. behind a pooler that cannot keep them); without it
    the statements run unprepared, still without the ORM's compiling.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = _prepared_cursor_class()(db.connection)
    wrapped = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    with wrapped as cursor:
        yield cursor


_pipeline = threading.local()


@contextlib.contextmanager
def pipelined() -> Iterator[None]:
    """Send the statements inside together (PostgreSQL's pipeline mode); use it inside a transaction.

    A statement whose result is needed (a row count, a new id) waits for what was sent before it;
    the others do not wait at all, so ending a run (its line, its log, its end) costs one round
    trip and the commit instead of one round trip per statement. Elsewhere statements go one by one.
    """
    if connection.vendor != "postgresql" or _in_pipeline() or not _pipeline_supported():
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline() as pipeline:
        _pipeline.current = pipeline
        try:
            yield
        finally:
            _pipeline.current = None


_combined = threading.local()


@contextlib.contextmanager
def combined() -> Iterator[None]:
    """Send the writes inside as one statement (PostgreSQL); elsewhere, and nested, as they come.

    ``insert`` without ids and ``update_later`` wait; the first write whose answer is needed (``update``'s
    row count, ``insert``'s new ids) takes the waiting ones along as ``WITH`` parts, and what still waits
    at the end goes then. One statement is atomic without a transaction. Its parts see one snapshot and
    cannot see each other's rows: the writes inside must each touch rows no other one does.
    """
    if connection.vendor != "postgresql" or _combining():
        yield
        return
    _combined.parts = []
    try:
        yield
        if _combined.parts:
            *before, (sql, params) = _combined.parts
            _combined.parts = before
            _send(sql, params)
    finally:
        _combined.parts = None


def _combining() -> bool:
    return getattr(_combined, "parts", None) is not None


def _send(sql: str, params: list) -> tuple[int, list]:
    """Execute ``sql`` with the waiting writes as ``WITH`` parts before it: its row count and rows."""
    parts, _combined.parts = _combined.parts, []
    if parts:
        prefix = ", ".join(f"written_{n} AS ({part})" for n, (part, _) in enumerate(parts))
        sql = f"WITH {prefix} {sql}"
        params = [value for _, part_params in parts for value in part_params] + params
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount, cursor.fetchall() if cursor.description else []


@functools.cache
def _pipeline_supported() -> bool:
    """Pipeline mode needs libpq 14 or later (psycopg-binary bundles one); with an older one, one by one."""
    import psycopg

    return psycopg.Pipeline.is_supported()


def _in_pipeline() -> bool:
    return getattr(_pipeline, "current", None) is not None


def _wait_for_results() -> None:
    pipeline = getattr(_pipeline, "current", None)
    if pipeline is not None:
        with connection.wrap_database_errors:
            pipeline.sync()


@functools.cache
def _prepared_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

        def _convert_query(self, query, params=None):
            converted = super()._convert_query(query, params)
            self._query = converted  # kept, as psycopg's client-side cursors keep it, for connection.queries
            return converted

    return PreparedCursor


@functools.cache
def _insert_sql(model: type[Model], returning_id: bool) -> tuple[str, tuple]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    returning = f" RETURNING {qn(model._meta.pk.column)}" if returning_id else ""
    # Only quoted names from the model's metadata go into the text; every value is a parameter.
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({placeholders}){returning}", fields  # noqa: S608


@functools.cache
def _json_insert_sql(model: type[Model], returning_id: bool) -> tuple[str, tuple]:
    """An INSERT of any number of rows passed as one JSON array of objects: one text (and plan) for every count.

    ``json_populate_recordset`` reads each object as a row of the table itself, so each value takes its
    column's own type and checks (a varchar's length, a positive integer), as an INSERT of it would.
    """
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = ", ".join(qn(f.column) for f in fields)
    returning = f" RETURNING {qn(model._meta.pk.column)}" if returning_id else ""
    return (f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s::json)"  # noqa: S608
            f"{returning}"), fields


def _json_rows(objs: Sequence[Model], fields: Sequence, db: Any) -> str:
    """The objects' values as the ORM would send them (``_row``), as JSON: one parameter instead of one each."""
    columns = [f.column for f in fields]
    return json.dumps([dict(zip(columns, map(_json_value, _row(obj, fields, db)), strict=True)) for obj in objs])


def _json_value(value: Any) -> Any:
    if isinstance(value, Json | Jsonb):  # a JSONField's value: the document itself, encoded as the field would
        return value.obj if value.dumps is None else json.loads(value.dumps(value.obj))
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value


def _row(obj: Model, fields: Sequence, db: Any) -> list:
    return [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]


def _set_id(obj: Model, pk: Any, db: Any) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = db.alias


def insert(objs: Iterable[Model], *, set_ids: bool = False) -> None:
    """INSERT each (unsaved) object, as ``bulk_create`` would; ``set_ids`` reads back each new id."""
    objs = list(objs)
    if not objs:
        return
    model = type(objs[0])
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each attribute of the ``connection`` proxy is a lookup
    if _combining():
        sql, fields = _json_insert_sql(model, set_ids)
        rows = [_json_rows(objs, fields, db)]
        if not set_ids:
            _combined.parts.append((sql, rows))
            return
        # The rows come back in the order of the array, as Django's bulk_create relies on for its UNNEST too.
        for obj, (pk,) in zip(objs, _send(sql, rows)[1], strict=True):
            _set_id(obj, pk, db)
        return
    sql, fields = _insert_sql(model, set_ids)
    with hot_cursor() as cursor:
        if not set_ids:  # inside ``pipelined`` it rides the pipeline, without waiting
            cursor.executemany(sql, [_row(obj, fields, db) for obj in objs])
            return
        for obj in objs:
            cursor.execute(sql, _row(obj, fields, db))
            _set_id(obj, cursor.fetchone()[0], db)


@functools.cache
def _update_sql(model: type[Model], names: tuple[str, ...], where: tuple[str, ...]) -> tuple[str, tuple, tuple]:
    meta = model._meta
    qn = connection.ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    conditions = tuple(meta.get_field(name) for name in where)
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    predicate = " AND ".join(f"{qn(f.column)} = %s" for f in conditions)
    # Field names come from code (never from a request), quoted; every value is a parameter.
    return f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {predicate}", fields, conditions  # noqa: S608


def _update_params(fields: tuple, conditions: tuple, values: Mapping[str, Any], where: Mapping[str, Any]) -> list:
    db = connections[DEFAULT_DB_ALIAS]
    params = [f.get_db_prep_save(value, db) for f, value in zip(fields, values.values(), strict=True)]
    return params + [f.get_db_prep_value(value, db) for f, value in zip(conditions, where.values(), strict=True)]


def update(model: type[Model], values: Mapping[str, Any], **where: Any) -> int:
    """``model.objects.filter(**where).update(**values)`` with equality conditions only; the row count."""
    sql, fields, conditions = _update_sql(model, tuple(values), tuple(where))
    params = _update_params(fields, conditions, values, where)
    if _combining():
        return _send(sql, params)[0]
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        _wait_for_results()
        return cursor.rowcount


def update_later(model: type[Model], values: Mapping[str, Any], **where: Any) -> None:
    """``update`` whose row count nobody reads: it waits for the next write of ``combined`` (or rides the
    pipeline without waiting)."""
    sql, fields, conditions = _update_sql(model, tuple(values), tuple(where))
    params = _update_params(fields, conditions, values, where)
    if _combining():
        _combined.parts.append((sql, params))
        return
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
