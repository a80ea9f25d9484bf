"""Domain events captured by the database: triggers write the outbox rows of every change.

Python builds no event: a trigger on each collection table turns the rows a bulk statement
inserted or updated into outbox rows, set-wise, in the same transaction, with the exact old
row of an update. Triggers act only while a write has switched capture on (`publishEvents`),
and carry that write's job id and time. PostgreSQL uses statement-level triggers over
transition tables and transaction-local settings; SQLite row triggers and a context row.

The event value: {eventId, eventTs, type, tenant, collection, key, jobId, old?, new}, where
`new` and `old` are the record's view — every column but the tenant, with its public id — or,
for a `document` view, the stored JSON document with its `_version`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Column, Date, Integer, Table

from loadbay.storage.tables import (
    ORIGIN_INDEX,
    ORIGIN_JOB,
    activities,
    entities,
    events,
    instances,
    states,
)
from loadbay.storage.types import JsonText, UtcDateTime


class OutboxLayout(Enum):
    """How the outbox holds events, by schema revision: migrations write each one's capture."""

    EVENT_ROWS = "a row per event"  # revisions 0005 to 0009, 0013 and 0014
    LISTED_EVENT_ROWS = "a row per event, listed in outbox_pending"  # 0010 to 0012
    STATEMENT_ROWS = "a row per write statement"  # from 0015


@dataclass(frozen=True)
class CapturedTable:
    """A collection table whose changes become events."""

    table: Table
    collection: str
    key: tuple[str, ...]  # the natural key, joined with ':' as the message key
    id_prefix: str  # public ids are the prefix and the row id, zero-padded to `id_width`
    id_width: int = 3
    document_view: bool = False  # the view is the `document` JSON plus `_version`

    def view_columns(self) -> list[Column[object]]:
        """Every column but the tenant and the bookkeeping of which job created the row."""
        hidden = {"tenant_id", ORIGIN_JOB, ORIGIN_INDEX}
        return [c for c in self.table.columns if c.name not in hidden]


CAPTURED = (
    CapturedTable(activities, "activities", ("mentor_id", "activity_type", "activity_date"), "pa-"),
    CapturedTable(entities, "entities", ("external_id",), "entity-"),
    CapturedTable(events, "events", ("event_id",), "event-"),
    CapturedTable(states, "states", ("external_id", "state_key"), "state-"),
    CapturedTable(instances, "instances", ("instance_id",), "instance-", document_view=True),
)


def _trigger(captured: CapturedTable, change: str) -> str:
    return f"loadbay_capture_{captured.table.name}_{change}"


def _event_type(change: str) -> str:
    return "CREATE" if change == "insert" else "UPDATE"


def _event_code(captured: CapturedTable, change: str) -> int:
    """One hex digit of an event id naming the table and the change: ids never collide
    across tables, and a write changes a row once."""
    return 2 * CAPTURED.index(captured) + (change == "update")


# PostgreSQL ------------------------------------------------------------------------------

# eventTs in milliseconds, the job's public id and the write's timestamp (the created_at and
# updated_at it stamps, as ISO text), set per write transaction by the writer.
PG_TS_SETTING = "loadbay.capture_ts"
PG_JOB_SETTING = "loadbay.capture_job"
PG_AT_SETTING = "loadbay.capture_at"

# Timestamps as Python's isoformat writes them (fraction only when non-zero). STABLE, like
# to_char: the planner then inlines it, 2.7x faster than a call per value. One to_char with
# the fraction, dropped when zero, is 1.5x faster than two and an extract(): an updated
# row's event formats three timestamps.
_PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION loadbay_json_ts(value timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT replace(to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')
      || '+00:00'
$$
"""


def _pg_json(captured: CapturedTable, column: Column[object], alias: str) -> str:
    """The column's value as JSON text; `null` for SQL NULL."""
    ref = f'{alias}."{column.name}"'
    if column.name == "id":
        width = captured.id_width
        digits = f"CASE WHEN length({ref}::text) < {width} THEN lpad({ref}::text, {width}, '0') "
        return f"'\"{captured.id_prefix}' || {digits}ELSE {ref}::text END || '\"'"
    if isinstance(column.type, JsonText):
        return f"coalesce({ref}, 'null')"  # compact JSON text already (written by orjson)
    if isinstance(column.type, UtcDateTime):
        # The write's own timestamp is formatted once per statement, not once per row.
        formatted = f"'\"' || loadbay_json_ts({ref}) || '\"'"
        value = f"CASE WHEN {ref} = at_value THEN at_text ELSE {formatted} END"
    elif isinstance(column.type, Date):
        value = f"'\"' || to_char({ref}, 'YYYY-MM-DD') || '\"'"
    elif isinstance(column.type, Integer):
        value = f"{ref}::text"
    else:
        value = f"to_json({ref})::text"
    return f"coalesce({value}, 'null')"


def _pg_view(captured: CapturedTable, alias: str) -> str:
    """The record's view as JSON text, concatenated: 25% cheaper than json_build_object."""
    if captured.document_view:
        doc, version = f"{alias}.document", f"{alias}.version"
        # The document is compact JSON text written by orjson: close it with `_version`. Its
        # closing brace is cut off as a byte, in the database's encoding: left(doc, -1)
        # counted the text's characters twice, 0.66 against 0.29 us a 160-byte document.
        opened = (
            f"convert_from(substring(convert_to({doc}, getdatabaseencoding()) "
            f"FROM 1 FOR octet_length({doc}) - 1), getdatabaseencoding())"
        )
        return (
            f"CASE WHEN {doc} = '{{}}' THEN '{{\"_version\":' || {version} || '}}' "
            f"ELSE {opened} || ',\"_version\":' || {version} || '}}' END"
        )
    members = " || ',' || ".join(
        f"'\"{c.name}\":' || {_pg_json(captured, c, alias)}" for c in captured.view_columns()
    )
    return f"'{{' || {members} || '}}'"


def _pg_key(captured: CapturedTable, alias: str) -> str:
    parts = []
    for name in captured.key:
        column = captured.table.columns[name]
        if isinstance(column.type, Date):
            parts.append(f"to_char({alias}.\"{name}\", 'YYYY-MM-DD')")
        else:
            parts.append(f'{alias}."{name}"::text')
    return " || ':' || ".join(parts)


def _pg_write_events(captured: CapturedTable, change: str, layout: OutboxLayout) -> str:
    """The trigger's statement: the outbox rows of the changed rows."""
    event_type = _event_type(change)
    old_select, old_member, old_join = "", "", ""
    if change == "update":
        old_select = f",\n             {_pg_view(captured, 'o')} AS old"
        old_member = """',"old":' || e.old || """
        old_join = " JOIN old_rows o ON o.id = n.id"
    payload = f"""'{{"eventId":"' || e.event_id || after_id || to_json(e.tenant_id)::text
             || after_tenant || to_json(e.record_key)::text || after_key
             || {old_member}',"new":' || e.new || '}}'"""
    # A statement's rows, sorted once: an ORDER BY in each of the three aggregates below
    # sorted them three times, 1.0-1.2 of PostgreSQL's ~11.6 us an activity. The aggregates
    # of one outbox row read the same rows in the same order, so its keys, ids and values
    # stay aligned whatever the order; by tenant, then id, the GROUP BY needs no sort of its
    # own and the events keep the order of their ids.
    sorted_once = (
        "\n      ORDER BY n.tenant_id, n.id" if layout is OutboxLayout.STATEMENT_ROWS else ""
    )
    changed = f"""(
      SELECT n.id, n.tenant_id, {_pg_key(captured, "n")} AS record_key,
             id_prefix || lpad(to_hex(n.id), 11, '0') AS event_id,
             {_pg_view(captured, "n")} AS new{old_select}
      FROM new_rows n{old_join}{sorted_once}
    ) e"""
    if layout is OutboxLayout.STATEMENT_ROWS:
        # GROUP BY: a statement with no row writes no outbox row.
        return f"""
    INSERT INTO outbox (tenant_id, collection, event_type, event_count, record_keys,
                        event_ids, payloads, created_at)
    SELECT e.tenant_id, '{captured.collection}', '{event_type}', count(*),
           to_json(array_agg(e.record_key))::text,
           to_json(array_agg(e.event_id))::text,
           string_agg({payload}, E'\\n'),
           to_timestamp(ts / 1000.0)
    FROM {changed}
    GROUP BY e.tenant_id;"""
    events = f"""
    INSERT INTO outbox
      (tenant_id, collection, record_key, event_id, event_type, payload, created_at)
    SELECT e.tenant_id, '{captured.collection}', e.record_key, e.event_id, '{event_type}',
           {payload},
           to_timestamp(ts / 1000.0)
    FROM {changed}
    ORDER BY e.id"""
    if layout is OutboxLayout.EVENT_ROWS:
        return f"{events};"
    listed = "INSERT INTO outbox_pending (id) SELECT id FROM written;"
    return f"  WITH written AS ({events}\n    RETURNING id\n  )\n  {listed}"


def _pg_function(captured: CapturedTable, change: str, layout: OutboxLayout) -> str:
    event_type = _event_type(change)
    # Transition tables have no statistics: a cached generic plan estimates one row each and
    # joins old to new with a nested loop, 4M comparisons (380 ms) for 2,000 rows.
    settings = "\nSET enable_nestloop = off" if change == "update" else ""
    return f"""
CREATE OR REPLACE FUNCTION {_trigger(captured, change)}() RETURNS trigger
LANGUAGE plpgsql{settings} AS $$
DECLARE
  ts bigint := nullif(current_setting('{PG_TS_SETTING}', true), '')::bigint;
  job text := nullif(current_setting('{PG_JOB_SETTING}', true), '');
  after_id text := '","eventTs":' || ts || ',"type":"{event_type}","tenant":';
  after_tenant text := ',"collection":"{captured.collection}","key":';
  after_key text := ',"jobId":' || coalesce(to_json(job)::text, 'null');
  at_value timestamptz := nullif(current_setting('{PG_AT_SETTING}', true), '')::timestamptz;
  at_text text := '"' || loadbay_json_ts(at_value) || '"';
  -- A UUIDv8 per row: this statement's random prefix, the table and change, the row id.
  id_prefix text := left(overlay(gen_random_uuid()::text PLACING '8' FROM 15 FOR 1), 24)
                    || '{_event_code(captured, change):x}';
BEGIN
  IF ts IS NULL THEN
    RETURN NULL;
  END IF;
{_pg_write_events(captured, change, layout)}
  RETURN NULL;
END
$$
"""


def postgres_functions(layout: OutboxLayout) -> Iterator[str]:
    """The trigger functions, as `CREATE OR REPLACE`: a migration may run them again."""
    yield _PG_FUNCTIONS
    for captured in CAPTURED:
        for change in ("insert", "update"):
            yield _pg_function(captured, change, layout)


def postgres_ddl(layout: OutboxLayout) -> Iterator[str]:
    """Functions and statement-level triggers for every captured table."""
    yield from postgres_functions(layout)
    for captured in CAPTURED:
        name = captured.table.name
        for change in ("insert", "update"):
            transition = (
                "NEW TABLE AS new_rows"
                if change == "insert"
                else "OLD TABLE AS old_rows NEW TABLE AS new_rows"
            )
            yield (
                f"CREATE TRIGGER {_trigger(captured, change)} AFTER {change.upper()} ON "
                f'"{name}" REFERENCING {transition} FOR EACH STATEMENT '
                f"EXECUTE FUNCTION {_trigger(captured, change)}()"
            )


def postgres_drop_ddl() -> Iterator[str]:
    for captured in CAPTURED:
        for change in ("insert", "update"):
            yield f'DROP TRIGGER IF EXISTS {_trigger(captured, change)} ON "{captured.table.name}"'
            yield f"DROP FUNCTION IF EXISTS {_trigger(captured, change)}()"
    yield "DROP FUNCTION IF EXISTS loadbay_json_ts(timestamptz)"


# SQLite ----------------------------------------------------------------------------------


def sqlite_event_id_prefix() -> str:
    """The random part of a write's event ids: a UUIDv8 (RFC 9562, custom layout) up to its
    last group, which the trigger fills with the table, the change and the row id (as the
    PostgreSQL triggers do with a prefix drawn per statement).

    Unique, since a write changes a row once; and 3x cheaper per row than five calls of
    SQLite's randomblob() for a random UUID, the largest cost of capturing an event.
    """
    digits = os.urandom(10).hex()
    variant = "89ab"[int(digits[15], 16) % 4]
    return f"{digits[:8]}-{digits[8:12]}-8{digits[12:15]}-{variant}{digits[16:19]}-"


def _sqlite_event_id(captured: CapturedTable, change: str) -> str:
    return f"printf('%s{_event_id_tail(captured, change)}', c.event_id_prefix, NEW.id)"


def _event_id_tail(captured: CapturedTable, change: str) -> str:
    """An event id's last part as a printf format: the table and change, the row id."""
    return f"{_event_code(captured, change):x}%011x"


# SQLite builds each event with one printf(): its literal text in the format, the values as
# arguments. json_object() over json() re-parsed every stored document, and a chain of `||`
# copies the growing text once per link; each cost more than the printf.
_Format = tuple[str, list[str]]


def _sqlite_json(
    captured: CapturedTable, column: Column[object], alias: str, formatted: bool
) -> _Format:
    """The column's value as JSON: a printf format and its arguments. `formatted`
    (revision 0020 on): the context row holds the write's time as JSON already (`at_json`),
    and NOT NULL integers print with %d."""
    ref = f'{alias}."{column.name}"'
    if column.name == "id":
        return f'"{captured.id_prefix}%0{captured.id_width}d"', [ref]
    if isinstance(column.type, JsonText):
        # Compact JSON text already (written by orjson).
        return "%s", [ref if not column.nullable else f"coalesce({ref}, 'null')"]
    if isinstance(column.type, UtcDateTime):
        # Stored naive UTC as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
        iso = f"replace({ref}, ' ', 'T')"
        if not formatted:
            if not column.nullable:
                return '"%s+00:00"', [iso]
            return "%s", [f"""coalesce('"' || {iso} || '+00:00"', 'null')"""]
        # Most stamps are the write's own time: formatted once per write, not per row (by
        # this revision's writers; a context row without it is formatted here).
        value = f"""'"' || {iso} || '+00:00"'"""
        value = f"coalesce({value}, 'null')" if column.nullable else value
        written = f"{ref} = c.created_at AND c.at_json IS NOT NULL"
        return "%s", [f"CASE WHEN {written} THEN c.at_json ELSE {value} END"]
    if formatted and isinstance(column.type, Integer) and not column.nullable:
        return "%d", [ref]
    return "%s", [f"json_quote({ref})"]  # a string quoted and escaped, a number, or null


def _sqlite_view(captured: CapturedTable, alias: str, formatted: bool) -> _Format:
    if captured.document_view:
        doc, version = f"{alias}.document", f"{alias}.version"
        # The document is compact JSON text written by orjson: close it with `_version`.
        opened = f"substr({doc}, 1, length({doc}) - 1) || ','"
        return '%s"_version":%d}', [
            f"CASE WHEN {doc} = '{{}}' THEN '{{' ELSE {opened} END",
            version,
        ]
    members, arguments = [], []
    for column in captured.view_columns():
        value, values = _sqlite_json(captured, column, alias, formatted)
        members.append(f'"{column.name}":{value}')
        arguments += values
    return "{" + ",".join(members) + "}", arguments


def _sqlite_payload(captured: CapturedTable, change: str, key: str, formatted: bool) -> str:
    event_type = _event_type(change)
    new, arguments = _sqlite_view(captured, "NEW", formatted)
    old = ""
    if change == "update":
        old, old_arguments = _sqlite_view(captured, "OLD", formatted)
        old = f'"old":{old},'
        arguments = old_arguments + arguments
    text = (
        f'{{"eventId":"%s{_event_id_tail(captured, change)}","eventTs":%d,'
        f'"type":"{event_type}","tenant":%s,'
        f'"collection":"{captured.collection}","key":%s,"jobId":%s,{old}"new":{new}}}'
    )
    job = "coalesce(c.job_json, json_quote(c.job_ref))" if formatted else "json_quote(c.job_ref)"
    heading = ["c.event_id_prefix", "NEW.id", "c.event_ts"]
    heading += ["json_quote(NEW.tenant_id)", f"json_quote({key})", job]
    return f"printf('{text}', {', '.join(heading + arguments)})"


def _sqlite_write_event(
    captured: CapturedTable, change: str, layout: OutboxLayout, formatted: bool
) -> str:
    """The trigger's statement: the changed row's outbox row, a row of one event."""
    key = " || ':' || ".join(f'NEW."{name}"' for name in captured.key)
    event_type = _event_type(change)
    event_id = _sqlite_event_id(captured, change)
    payload = _sqlite_payload(captured, change, key, formatted)
    if layout is OutboxLayout.STATEMENT_ROWS:
        return f"""
  INSERT INTO outbox (tenant_id, collection, event_type, event_count, record_keys, event_ids,
                      payloads, created_at)
  SELECT NEW.tenant_id, '{captured.collection}', '{event_type}', 1, json_array({key}),
         json_array({event_id}), {payload}, c.created_at
  FROM capture_context c;"""
    # Inside a trigger, last_insert_rowid() is the trigger's own last insert: the event.
    listed = "\n  INSERT INTO outbox_pending (id) VALUES (last_insert_rowid());"
    return f"""
  INSERT INTO outbox (tenant_id, collection, record_key, event_id, event_type, payload, created_at)
  SELECT NEW.tenant_id, '{captured.collection}', {key}, {event_id},
         '{event_type}', {payload}, c.created_at
  FROM capture_context c;{listed if layout is OutboxLayout.LISTED_EVENT_ROWS else ""}"""


def sqlite_ddl(layout: OutboxLayout, *, formatted: bool = False) -> Iterator[str]:
    """Row triggers for every captured table; they act while `capture_context` has its row.
    `formatted`: that row holds the job and the write's time as JSON (revision 0020 on;
    the triggers of earlier revisions read only the columns those have)."""
    for captured in CAPTURED:
        for change in ("insert", "update"):
            yield f"""
CREATE TRIGGER {_trigger(captured, change)} AFTER {change.upper()} ON "{captured.table.name}"
WHEN EXISTS (SELECT 1 FROM capture_context)
BEGIN{_sqlite_write_event(captured, change, layout, formatted)}
END
"""


def recreated(dialect: str, layout: OutboxLayout, *, formatted: bool = False) -> Iterator[str]:
    """What a migration runs to replace the capture of earlier revisions: PostgreSQL's
    functions in place (their triggers stay), SQLite's triggers dropped and made anew
    (`formatted`: see `sqlite_ddl`)."""
    if dialect == "postgresql":
        yield from postgres_functions(layout)
        return
    yield from sqlite_drop_ddl()
    yield from sqlite_ddl(layout, formatted=formatted)


def sqlite_drop_ddl() -> Iterator[str]:
    for captured in CAPTURED:
        for change in ("insert", "update"):
            yield f"DROP TRIGGER IF EXISTS {_trigger(captured, change)}"
