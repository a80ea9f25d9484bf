"""Preceding and succeeding titles: links between instances, kept apart from the documents.

An instance record lists `precedingTitles` and `succeedingTitles`. Each entry becomes a link
row with this instance at one end and, at the other, another instance
(`precedingInstanceId` / `succeedingInstanceId`) or just a title outside the catalogue.
Reading an instance shows every link touching it, from either side.

A leaf module (no database access): the write path, the reads and a migration share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

PRECEDING = "precedingTitles"
SUCCEEDING = "succeedingTitles"
# FOLIO's bulk mapper does not store these inside the instance either.
DROPPED_FIELDS = ("parentInstances", "childInstances", "isBoundWith")

Link = dict[str, Any]


def take_titles(document: dict[str, Any]) -> list[Link] | None:
    """Remove the titles (and the fields FOLIO drops) from a validated instance document;
    return its links, or None when the record says nothing about titles (links stay)."""
    for field in DROPPED_FIELDS:
        document.pop(field, None)
    if PRECEDING not in document and SUCCEEDING not in document:
        return None
    instance_id = document["id"]
    links = [_link(instance_id, entry, PRECEDING) for entry in document.pop(PRECEDING, [])]
    links += [_link(instance_id, entry, SUCCEEDING) for entry in document.pop(SUCCEEDING, [])]
    return links


def _link(instance_id: str, entry: Mapping[str, Any], side: str) -> Link:
    preceding = entry.get("precedingInstanceId")
    succeeding = entry.get("succeedingInstanceId")
    if side == PRECEDING:
        succeeding = instance_id
    else:
        preceding = instance_id
    return {
        "link_id": (entry.get("id") or str(uuid.uuid4())).lower(),
        "owner_instance_id": instance_id,
        "preceding_instance_id": preceding.lower() if preceding else None,
        "succeeding_instance_id": succeeding.lower() if succeeding else None,
        "title": entry.get("title"),
        "hrid": entry.get("hrid"),
        "identifiers": entry.get("identifiers"),
    }


def far_ends(link: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(column, instance id) of each end of the link that is not its owner."""
    for column in ("preceding_instance_id", "succeeding_instance_id"):
        other = link[column]
        if other and other != link["owner_instance_id"]:
            yield column, other


def linked_instances(links: Iterable[Link]) -> set[str]:
    """The instances at the far end of these links (the owner excluded)."""
    return {other for link in links for _, other in far_ends(link)}


def with_titles(
    document: dict[str, Any], instance_id: str, links: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The document with every link touching the instance, as FOLIO shows title entries."""
    preceding, succeeding = [], []
    for link in links:
        if link["succeeding_instance_id"] == instance_id:
            preceding.append(_entry(link))
        if link["preceding_instance_id"] == instance_id:
            succeeding.append(_entry(link))
    return {**document, PRECEDING: preceding, SUCCEEDING: succeeding}


def _entry(link: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": link["link_id"]}
    if link["preceding_instance_id"]:
        entry["precedingInstanceId"] = link["preceding_instance_id"]
    if link["succeeding_instance_id"]:
        entry["succeedingInstanceId"] = link["succeeding_instance_id"]
    for field in ("title", "hrid"):
        if link[field] is not None:
            entry[field] = link[field]
    if link["identifiers"] is not None:
        entry["identifiers"] = link["identifiers"]
    return entry
