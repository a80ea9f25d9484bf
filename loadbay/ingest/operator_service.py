"""The operator data API's use cases: templates, batches, single upserts, reads, erasure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from loadbay.domain_events.outbox import EventContext, deletion_row
from loadbay.errors import InvalidInput, NotFound
from loadbay.ingest.engine import write_records
from loadbay.ingest.jobs import BatchJobs, IdempotentRequest
from loadbay.ingest.operator import OperatorCollections, collections_for
from loadbay.ingest.templates.model import built_in, checked
from loadbay.outcomes import Job, RecordResult
from loadbay.storage import operator_data as store
from loadbay.storage import outbox
from loadbay.storage.database import Database
from loadbay.storage.rows import from_row
from loadbay.storage.types import utcnow
from loadbay.ttl_cache import TtlCache


@dataclass(frozen=True)
class TemplateSetting:
    template_id: str
    template: dict[str, Any]
    updated_at: Any


@dataclass(frozen=True)
class EntityState:
    key: str
    value: Any
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class Entity:
    """An entity as stored, with its current states (by key)."""

    entity_type: str
    external_id: str
    data: Any
    version: int
    created_at: datetime
    updated_at: datetime
    states: list[EntityState]


@dataclass(frozen=True)
class EntityEvent:
    event_id: str
    event_type: str
    data: Any
    created_at: datetime


@dataclass(frozen=True)
class Erasure:
    """What erasing an entity removed."""

    entity_type: str
    external_id: str
    events_erased: int
    states_erased: int
    erased_at: datetime


class OperatorData:
    def __init__(
        self, db: Database, jobs: BatchJobs, chunk_size: int, *, cache_seconds: float = 0
    ) -> None:
        self._db = db
        self.jobs = jobs
        self._chunk_size = chunk_size
        self._templates: TtlCache[str, TemplateSetting] = TtlCache(cache_seconds)

    async def template(self, tenant_id: str) -> TemplateSetting:
        cached = self._templates.get(tenant_id)
        if cached is not None:
            return cached
        async with self._db.read() as conn:
            row = await store.find_template(conn, tenant_id)
        if row is None:
            raise InvalidInput(
                "no template is set for this tenant: call PUT /operator-data-api/settings first",
                code="template_not_configured",
            )
        setting = TemplateSetting(row["template_id"], row["template"], row["updated_at"])
        self._templates.put(tenant_id, setting)
        return setting

    async def set_template(self, tenant_id: str, body: Any) -> TemplateSetting:
        """`{"templateId": "igaming"}` picks a built-in template, `{"template": {...}}` sets one."""
        if (
            not isinstance(body, dict)
            or len(body) != 1
            or not {"templateId", "template"} & set(body)
        ):
            raise InvalidInput(
                'send {"templateId": "<built-in id>"} or {"template": {...}}',
                code="invalid_body",
            )
        if "templateId" in body:
            if not isinstance(body["templateId"], str):
                raise InvalidInput("templateId must be a string", code="invalid_body")
            document = checked(built_in(body["templateId"]))
        else:
            document = checked(body["template"])
        now = utcnow()
        async with self._db.write() as unit:
            await store.save_template(unit.conn, tenant_id, document["templateId"], document, now)
        self._templates.discard(tenant_id)
        return TemplateSetting(document["templateId"], document, now)

    async def batch(
        self,
        tenant_id: str,
        kind: str,
        records: Sequence[Any],
        idempotent: IdempotentRequest | None = None,
    ) -> Job:
        collection = getattr(await self._collections(tenant_id), kind)
        return await self.jobs.run(tenant_id, collection, records, idempotent)

    async def check(self, tenant_id: str, kind: str, records: Sequence[Any]) -> list[RecordResult]:
        """A batch's failures as far as they are known without writing (see BatchJobs.check)."""
        collection = getattr(await self._collections(tenant_id), kind)
        return self.jobs.check(tenant_id, collection, records)

    async def upsert_entity(self, tenant_id: str, record: Any) -> RecordResult:
        collections = await self._collections(tenant_id)
        async with self._db.write() as unit:
            (result,) = await write_records(
                unit,
                collections.entities,
                tenant_id,
                [(0, record)],
                mode=collections.entities.on_conflict,
                chunk_size=self._chunk_size,
                now=utcnow(),
                events=EventContext(),
            )
        return result

    async def entity(self, tenant_id: str, entity_type: str, external_id: str) -> Entity:
        async with self._db.read() as conn:
            entity = await self._find(conn, tenant_id, entity_type, external_id)
            states = await store.entity_states(conn, entity["id"])
        return from_row(
            Entity,
            entity,
            states=[from_row(EntityState, s, key=s["state_key"]) for s in states],
        )

    async def entity_events(
        self, tenant_id: str, entity_type: str, external_id: str, *, offset: int, limit: int
    ) -> tuple[list[EntityEvent], int]:
        """One page of the entity's events, oldest first, and how many it has in all."""
        async with self._db.read() as conn:
            entity = await self._find(conn, tenant_id, entity_type, external_id)
            found, total = await store.entity_events(conn, entity["id"], offset=offset, limit=limit)
        return [from_row(EntityEvent, e) for e in found], total

    async def erase(self, tenant_id: str, entity_type: str, external_id: str) -> Erasure:
        """Delete the entity with its states and events; its DELETE event names it only."""
        now = utcnow()
        async with self._db.write() as unit:
            entity = await self._find(unit.conn, tenant_id, entity_type, external_id)
            erased = await store.erase_entity(unit.conn, tenant_id, entity, now)
            # Carrying the erased data to every consumer would defeat the erasure.
            identity = {"externalId": external_id, "entityType": entity_type, "erased": True}
            deletion = deletion_row(
                collection="entities", tenant_id=tenant_id, key=external_id, old=identity, now=now
            )
            await outbox.add_events(unit.conn, [deletion])
        return from_row(Erasure, erased)

    async def _find(
        self, conn: Any, tenant_id: str, entity_type: str, external_id: str
    ) -> Mapping[str, Any]:
        entity = await store.find_entity(conn, tenant_id, entity_type, external_id)
        if entity is None:
            raise NotFound(f"no {entity_type} entity with externalId {external_id!r}")
        return entity

    async def _collections(self, tenant_id: str) -> OperatorCollections:
        setting = await self.template(tenant_id)
        return collections_for(orjson.dumps(setting.template, option=orjson.OPT_SORT_KEYS).decode())
