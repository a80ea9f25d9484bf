"""The records sent, generated deterministically and serialised before any clock starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

TENANT = "default"  # the tenant of Loadbay's first admin key; baselines use the same value
INSTANCE_TYPE = "6a1f0ee4-2e0b-4a33-86e5-6f2f34c61a0b"
ACTIVITY_TYPES = ("workshop", "one_to_one", "review", "call", "visit", "demo", "lab")

Record = dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """One request body, ready to send, and how many records it carries."""

    body: bytes
    count: int


def entity_data(n: int, updated: bool = False) -> Record:
    name = f"Name {n} (updated)" if updated else f"Name {n}"
    return {"email": f"p{n}@example.com", "first_name": name, "country": "GB", "currency": "GBP"}


def entity(n: int, updated: bool = False) -> Record:
    return {"entityType": "player", "externalId": f"p{n}", "data": entity_data(n, updated)}


def event(n: int, entity_n: int) -> Record:
    return {
        "externalId": f"p{entity_n}",
        "eventType": "transaction",
        "eventId": f"tx-{n}",
        "data": {"type": "deposit", "amount": 10.5, "currency": "GBP"},
    }


def activity(n: int) -> Record:
    # (mentor_id, activity_type, activity_date) is unique: 7 types per mentor, one date.
    return {
        "coordinator_id": f"coord-{n % 50}",
        "mentor_id": f"mentor-{n // len(ACTIVITY_TYPES)}",
        "activity_type": ACTIVITY_TYPES[n % len(ACTIVITY_TYPES)],
        "activity_date": "2026-03-28",
        "duration_minutes": 30 + n % 90,
    }


def instance_line(n: int) -> bytes:
    record = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "title": f"Title {n}",
        "source": "MARC",
        "instanceTypeId": INSTANCE_TYPE,
    }
    return orjson.dumps(record) + b"\n"


def catalogue_instance_line(n: int) -> bytes:
    """An instance as a library catalogue exports it (~740 bytes): identifiers, contributors,
    subjects, notes and publication as nested lists, where `instance_line` has four flat
    fields. Nested values are objects the garbage collector tracks, flat ones are not."""
    record = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "title": f"Title {n}",
        "source": "MARC",
        "instanceTypeId": INSTANCE_TYPE,
        "identifiers": [
            {"identifierTypeId": "8261054f-be78-422d-bd51-4ed9f33c3422", "value": f"978-{n}"},
            {"identifierTypeId": "439bfbae-75bc-4f74-9fc7-b2a2d47ce3ef", "value": f"(OCoLC){n}"},
        ],
        "contributors": [
            {
                "name": f"Author {n}",
                "contributorNameTypeId": "2b94c631-fca9-4892-a730-03ee529ffe2a",
                "primary": True,
            }
        ],
        "subjects": [{"value": f"Subject {n % 100}"}, {"value": "History"}],
        "notes": [
            {
                "instanceNoteTypeId": "6a2533a7-4de2-4e64-8466-074c2fa9308c",
                "note": f"Note {n}",
                "staffOnly": False,
            }
        ],
        "publication": [{"publisher": "Publisher", "place": "Place", "dateOfPublication": "2001"}],
        "languages": ["eng"],
        "physicalDescriptions": ["300 p."],
        "editions": ["1st ed."],
    }
    return orjson.dumps(record) + b"\n"


def batches(
    numbers: range, per: int, make: Callable[[int], Record], wrap: Callable[[list[Record]], Any]
) -> list[Batch]:
    """Bodies of `per` records each; `wrap` turns a list of records into the request's JSON."""
    out = []
    for start in range(numbers.start, numbers.stop, per):
        records = [make(n) for n in range(start, min(start + per, numbers.stop))]
        out.append(Batch(orjson.dumps(wrap(records)), len(records)))
    return out


def as_list(records: list[Record]) -> list[Record]:
    return records


def entity_batches(numbers: range, updated: bool = False, per: int = 1000) -> list[Batch]:
    return batches(numbers, per, lambda n: entity(n, updated), as_list)


def event_batches(numbers: range, entities: range, per: int = 5000) -> list[Batch]:
    """Events `numbers`, each naming an existing entity of `entities` (round robin)."""
    size = len(entities)
    return batches(numbers, per, lambda n: event(n, entities.start + n % size), as_list)


def activity_batches(numbers: range, per: int = 1000) -> list[Batch]:
    return batches(numbers, per, activity, lambda records: {"activities": records})


def peer_row(n: int, updated: bool = False) -> Record:
    """An entity as a Datasette row (the data object is stored as JSON text by sqlite-utils)."""
    return {
        "tenant": TENANT,
        "type": "player",
        "external_id": f"p{n}",
        "data": entity_data(n, updated),
    }


def peer_batches(numbers: range, updated: bool = False, per: int = 1000) -> list[Batch]:
    return batches(numbers, per, lambda n: peer_row(n, updated), lambda rows: {"rows": rows})


def write_instances(path: Path, numbers: range) -> int:
    """Write an NDJSON file of instances; returns its size in bytes."""
    with path.open("wb") as file:
        for start in range(numbers.start, numbers.stop, 10_000):
            stop = min(start + 10_000, numbers.stop)
            file.write(b"".join(instance_line(n) for n in range(start, stop)))
    return path.stat().st_size


def read_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk
