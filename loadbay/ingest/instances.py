"""The instances collection: FOLIO inventory instances, upserted by id.

Beyond the generic engine, a chunk of instances goes through `_prepare`: optimistic locking on
`_version`, fields the catalogue data does not control keep their stored values, blank hrids
get the tenant's next numbers, and hrid / matchKey stay unique.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Hashable, Mapping
from enum import StrEnum
from importlib import resources
from typing import Any, NoReturn

import jsonschema_rs
import orjson

from loadbay.ingest.collection import Collection, ConflictMode
from loadbay.ingest.fields import RecordInvalid
from loadbay.ingest.ids import PublicIds
from loadbay.ingest.instance_titles import far_ends, linked_instances, take_titles
from loadbay.outcomes import RecordError
from loadbay.storage import instances as store
from loadbay.storage.bulk import BulkTarget
from loadbay.storage.database import WriteUnit
from loadbay.storage.tables import instances
from loadbay.storage.types import JsonText

# Not controlled by incoming catalogue data: an update keeps what is stored.
PROTECTED_FIELDS = (
    "staffSuppress",
    "discoverySuppress",
    "deleted",
    "catalogedDate",
    "statusId",
    "statusUpdatedDate",
    "statisticalCodeIds",
    "administrativeNotes",
    "natureOfContentTermIds",
    "tags",
    "previouslyHeld",
)
# Rows carry the client's `_version` to `_prepare`, and their title links to `_link_titles`,
# under these names; no column has them.
_EXPECTED = "expected_version"
_TITLES = "title_links"
# The columns unique per tenant beside the id, and their names in the API.
_UNIQUE = (("hrid", "hrid"), ("match_key", "matchKey"))


class OptimisticLocking(StrEnum):
    """What updating a stored instance does with `_version`: LOADBAY_INSTANCE_OPTIMISTIC_LOCKING."""

    FAIL = "fail"  # FOLIO's default: it must equal the stored version
    OFF = "off"  # overwrite whatever is stored: for loads that must win


_SCHEMA = orjson.loads(
    resources.files("loadbay.ingest.schemas").joinpath("instance.json").read_text()
)
_VALIDATOR = jsonschema_rs.validator_for(_SCHEMA)


def validate_instance(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise RecordInvalid("an instance must be a JSON object", RecordError.INVALID)
    # is_valid first: 0.48 against 0.77 us for a valid record, which builds no error list.
    if not _VALIDATOR.is_valid(record):
        problems = [_describe(e) for e in _VALIDATOR.iter_errors(record)]
        raise RecordInvalid("; ".join(problems[:10]), RecordError.INVALID)
    document = dict(record)
    expected = document.pop("_version", None)
    document["id"] = (document.get("id") or str(uuid.uuid4())).lower()
    row = {
        "instance_id": document["id"],
        "hrid": document.get("hrid") or "",
        "match_key": document.get("matchKey") or None,
        _TITLES: take_titles(document),
        "document": document,
        _EXPECTED: expected,
    }
    _refuse_nul(row)
    return row


def _refuse_nul(row: dict[str, Any]) -> None:
    """The values stored as plain text, not JSON, cannot hold NUL (PostgreSQL refuses it)."""
    # The schema has made each of them a string, where present.
    if "\x00" in row["hrid"]:
        _nul_in("hrid")
    if row["match_key"] and "\x00" in row["match_key"]:
        _nul_in("matchKey")
    for link in row[_TITLES] or ():
        for field in ("title", "hrid"):
            value = link[field]
            if value and "\x00" in value:
                _nul_in(f"{field} of a linked title")


def _nul_in(field: str) -> NoReturn:
    raise RecordInvalid(f"{field} may not contain NUL (\\u0000)", RecordError.INVALID)


def _describe(error: jsonschema_rs.ValidationError) -> str:
    path = ".".join(str(p) for p in error.instance_path)
    kind = error.kind.name
    if kind == "required":
        return f"{error.kind.as_dict()['property']} may not be null"
    if kind == "additionalProperties":
        names = ", ".join(error.kind.as_dict().get("unexpected", []))
        return f"unrecognized field(s): {names}"
    message = error.message if len(error.message) < 200 else error.message[:200] + "…"
    return f"{path or 'instance'}: {message}"


async def _prepare(
    unit: WriteUnit,
    tenant_id: str,
    rows: list[dict[str, Any]],
    stored: list[Mapping[str, Any] | None],
    hrid_prefix: str,
    locking: OptimisticLocking,
) -> dict[int, RecordInvalid]:
    failures: dict[int, RecordInvalid] = {}
    for position, (row, old) in enumerate(zip(rows, stored, strict=True)):
        expected = row.pop(_EXPECTED, None)
        if old is None:
            continue
        if locking is OptimisticLocking.FAIL and expected != old["version"]:
            failures[position] = _changed_meanwhile(row["instance_id"], old["version"], expected)
            continue
        _keep_protected(row["document"], JsonText.raw_decode(old["document"]))
        row["hrid"] = row["hrid"] or old["hrid"]
    assigned = await _assign_hrids(unit, tenant_id, rows, failures, hrid_prefix)
    await _check_unique(unit, tenant_id, rows, failures, stored, assigned)
    await _check_links(unit, tenant_id, rows, failures)
    for row in rows:
        row["document"]["hrid"] = row["hrid"]
    return failures


def _changed_meanwhile(instance_id: str, stored: int, requested: Any) -> RecordInvalid:
    # FOLIO's wording (its trigger prints a missing _version, or -1, as <NULL>).
    shown = "<NULL>" if requested in (None, -1) else requested
    return RecordInvalid(
        f"Cannot update record {instance_id} because it has been changed (optimistic locking): "
        f"Stored _version is {stored}, _version of request is {shown}",
        RecordError.VERSION_CONFLICT,
    )


async def _check_links(
    unit: WriteUnit, tenant_id: str, rows: list[dict[str, Any]], failures: dict[int, RecordInvalid]
) -> None:
    """A title link to an instance that neither exists nor is written here fails its record,
    whole: the instance is not written either (FOLIO's foreign key, one transaction each)."""
    linking = [(p, row) for p, row in enumerate(rows) if p not in failures and row[_TITLES]]
    far = set().union(*(linked_instances(row[_TITLES]) for _, row in linking))
    stored = await store.stored_instance_ids(unit, tenant_id, far)
    while linking:
        known = stored | {row["instance_id"] for p, row in enumerate(rows) if p not in failures}
        newly = {p: problems for p, row in linking if (problems := _dangling(row[_TITLES], known))}
        if not newly:
            return
        for position, problems in newly.items():
            failures[position] = RecordInvalid("; ".join(problems), RecordError.REFERENCE_NOT_FOUND)
        # A record that failed takes its instance out of this chunk: look again.
        linking = [(p, row) for p, row in linking if p not in failures]


# The record's field that names each end, and FOLIO's foreign key on it.
_ENDS = {
    "preceding_instance_id": ("precedingTitles", "precedinginstanceid_instance_fkey"),
    "succeeding_instance_id": ("succeedingTitles", "succeedinginstanceid_instance_fkey"),
}


def _dangling(links: list[dict[str, Any]], known: set[str]) -> list[str]:
    """What is wrong with links whose far end is not a known instance, in FOLIO's terms."""
    problems = []
    for link in links:
        for column, other in far_ends(link):
            if other not in known:
                field, constraint = _ENDS[column]
                problems.append(
                    f"{field} names instance {other}, which does not exist "
                    f'(violates foreign key constraint "{constraint}")'
                )
    return problems


async def _link_titles(unit: WriteUnit, tenant_id: str, rows: list[dict[str, Any]]) -> None:
    """The written instances that listed titles get exactly those links."""
    listing = [row for row in rows if row[_TITLES] is not None]
    if not listing:
        return
    links = [link for row in listing for link in row[_TITLES]]
    await store.replace_title_links(unit, tenant_id, [row["instance_id"] for row in listing], links)


def _keep_protected(document: dict[str, Any], stored: Mapping[str, Any]) -> None:
    for field in PROTECTED_FIELDS:
        if field in stored:
            document[field] = stored[field]
        else:
            document.pop(field, None)


async def _assign_hrids(
    unit: WriteUnit,
    tenant_id: str,
    rows: list[dict[str, Any]],
    failures: dict[int, Any],
    prefix: str,
) -> list[str]:
    """Blank hrids get the tenant's next numbers; the hrids assigned, in ascending order."""
    blank = [
        row for position, row in enumerate(rows) if position not in failures and not row["hrid"]
    ]
    if not blank:
        return []
    async with unit.counters() as conn:
        numbers = await store.allocate_hrids(conn, tenant_id, len(blank))
    for row, number in zip(blank, numbers, strict=True):
        row["hrid"] = prefix + str(number).zfill(11)  # half the time of f"{number:011d}"
    return [row["hrid"] for row in blank]


async def _check_unique(
    unit: WriteUnit,
    tenant_id: str,
    rows: list[dict[str, Any]],
    failures: dict[int, RecordInvalid],
    stored: list[Mapping[str, Any] | None],
    assigned: list[str],
) -> None:
    """hrid and matchKey belong to one instance, in the chunk and in the database.

    The database is asked only about the values an instance takes anew, not those it keeps;
    and about the hrids just assigned, consecutive numbers of one width, in one range scan
    (only an hrid some instance chose for itself can be there).
    """
    live = [(p, row) for p, row in enumerate(rows) if p not in failures]
    just_assigned = set(assigned)
    hrids = _taken_anew(live, stored, "hrid", just_assigned)
    match_keys = _taken_anew(live, stored, "match_key", just_assigned)
    held = await store.holders(unit, tenant_id, hrids, match_keys)
    if assigned:
        held += await store.hrid_holders_between(unit.conn, tenant_id, assigned[0], assigned[-1])
    if not held and all(_distinct(live, column) for column, _ in _UNIQUE):
        return  # no value is anybody else's: the loop below would find nothing
    # Per column, the instance holding each value.
    owners: dict[str, dict[str, str]] = {column: {} for column, _ in _UNIQUE}
    for holder in held:
        for column, _ in _UNIQUE:
            if holder[column]:
                owners[column][holder[column]] = holder["instance_id"]
    for position, row in live:
        for column, label in _UNIQUE:
            value = row[column]
            if value is None:
                continue
            owner = owners[column].setdefault(value, row["instance_id"])
            if owner != row["instance_id"]:
                failures[position] = RecordInvalid(
                    f"{label} {value!r} is already used by instance {owner}", RecordError.DUPLICATE
                )
                break


def _taken_anew(
    live: list[tuple[int, dict[str, Any]]],
    stored: list[Mapping[str, Any] | None],
    column: str,
    just_assigned: set[str],
) -> set[str]:
    """The column's values that rows take anew: not stored for them, nor just assigned."""
    values = {
        row[column]
        for position, row in live
        if (old := stored[position]) is None or old[column] != row[column]
    }
    values -= just_assigned
    values.discard(None)
    return values


def _distinct(live: list[tuple[int, dict[str, Any]]], column: str) -> bool:
    """Whether no two rows hold one value in the column (but None)."""
    present = [value for _, row in live if (value := row[column]) is not None]
    return len(set(present)) == len(present)


def _shares(rows: list[dict[str, Any]]) -> set[Hashable]:
    """The instances the rows' titles link (by natural key), their hrids and matchKeys."""
    # Set-wise, not a call per row: this runs for every row of every chunk of a file.
    shared: set[Hashable] = {
        (column, row[column]) for column, _ in _UNIQUE for row in rows if row[column]
    }
    for row in rows:
        if row[_TITLES]:
            shared.update((other,) for other in linked_instances(row[_TITLES]))
    return shared


def instance_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The instance as clients and events see it: the stored JSON with its `_version`."""
    return {**row["document"], "_version": row["version"]}


@functools.cache
def instances_collection(
    hrid_prefix: str = "in", locking: OptimisticLocking = OptimisticLocking.FAIL
) -> Collection:
    """The collection, assigning blank hrids as `<prefix><11 digits>`."""

    async def prepare(
        unit: WriteUnit,
        tenant_id: str,
        rows: list[dict[str, Any]],
        stored: list[Mapping[str, Any] | None],
    ) -> dict[int, RecordInvalid]:
        return await _prepare(unit, tenant_id, rows, stored, hrid_prefix, locking)

    return Collection(
        name="instances",
        target=BulkTarget.for_table(instances, ("tenant_id", "instance_id")),
        key=("instance_id",),
        validate=validate_instance,
        ids=PublicIds("instance-"),
        on_conflict=ConflictMode.UPDATE,
        conflict_code=RecordError.DUPLICATE,
        conflict_message="this instance could not be written",
        prepare=prepare,
        stored_columns=("hrid", "match_key", "document", "version"),
        after_write=_link_titles,
        shares=_shares,
    )
