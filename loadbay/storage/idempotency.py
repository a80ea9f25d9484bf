"""Idempotency-key rows: a claim while the first request runs, then its stored response."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loadbay.storage.kinds import DatabaseKind, kind_of
from loadbay.storage.tables import idempotency_keys as keys

# Statements built once and executed with parameters: built per call, SQLAlchemy's
# construction cost more than running them (0.6 ms of 1 ms), on every request with a key.
_THE_KEY = (keys.c.tenant_id == bindparam("of_tenant"), keys.c.key == bindparam("of_key"))
_FIND_LOCKED = select(keys).where(*_THE_KEY).with_for_update()
_UPDATE = update(keys).where(*_THE_KEY)  # the SET columns are those of the parameters
_ATTACH = _UPDATE.where(keys.c.created_at == bindparam("claimed_at"), keys.c.job_id.is_(None))
# A row locked by its own request's transaction is alive: only an unlocked one is beaten.
_BEAT = _UPDATE.where(
    keys.c.status_code.is_(None),
    keys.c.key.in_(select(keys.c.key).where(*_THE_KEY).with_for_update(skip_locked=True)),
)
_DROP_UNCOMMITTED = delete(keys).where(*_THE_KEY, keys.c.job_id.is_(None))
_ABANDON = _UPDATE.where(keys.c.status_code.is_(None))


@functools.cache
def _claim(kind: DatabaseKind) -> Any:
    claim = kind.upsert_insert(keys)
    return claim.on_conflict_do_nothing(index_elements=["tenant_id", "key"]).returning(keys.c.key)


def _the_key(tenant_id: str, key: str) -> dict[str, str]:
    return {"of_tenant": tenant_id, "of_key": key}


async def try_claim(
    conn: AsyncConnection, tenant_id: str, key: str, request_hash: str, now: datetime
) -> bool:
    """Insert a fresh claim; False if a row for the key exists already."""
    claim = {
        "tenant_id": tenant_id,
        "key": key,
        "request_hash": request_hash,
        "created_at": now,
        "heartbeat_at": now,
    }
    inserted = await conn.execute(_claim(kind_of(conn)), claim)
    return inserted.first() is not None


async def find_locked(conn: AsyncConnection, tenant_id: str, key: str) -> Mapping[str, Any]:
    return (await conn.execute(_FIND_LOCKED, _the_key(tenant_id, key))).mappings().one()


async def reclaim(
    conn: AsyncConnection,
    tenant_id: str,
    key: str,
    request_hash: str,
    now: datetime,
    *,
    keep_job: bool,
) -> None:
    """Make the key the claim of a new request (keeping the job a dead one committed)."""
    values: dict[str, Any] = {
        "request_hash": request_hash,
        "created_at": now,
        "heartbeat_at": now,
        "status_code": None,
        "response_body": None,
        "response_headers": None,
    }
    if not keep_job:
        values["job_id"] = None
    await conn.execute(_UPDATE, {**_the_key(tenant_id, key), **values})


async def attach_job(
    conn: AsyncConnection, tenant_id: str, key: str, claimed_at: datetime, job_id: int
) -> bool:
    """Record, in the job's own transaction, that the claiming request committed it.

    False if the claim made at `claimed_at` is no longer the key's (it went quiet and a
    resend took the key over): the caller must not commit.
    """
    attached = await conn.execute(
        _ATTACH, {**_the_key(tenant_id, key), "claimed_at": claimed_at, "job_id": job_id}
    )
    return attached.rowcount == 1


async def store_response(
    conn: AsyncConnection,
    tenant_id: str,
    key: str,
    status_code: int,
    body: str,
    headers: dict[str, str],
) -> None:
    response = {"status_code": status_code, "response_body": body, "response_headers": headers}
    await conn.execute(_UPDATE, {**_the_key(tenant_id, key), **response})


async def beat(conn: AsyncConnection, tenant_id: str, key: str, now: datetime) -> None:
    """Keep a running claim alive; a row locked by its own request's transaction is alive."""
    await conn.execute(_BEAT, {**_the_key(tenant_id, key), "heartbeat_at": now})


async def release(conn: AsyncConnection, tenant_id: str, key: str) -> None:
    """Free the key for a resend: gone, or, if its request committed a job, abandoned now."""
    await conn.execute(_DROP_UNCOMMITTED, _the_key(tenant_id, key))
    abandoned = datetime(1970, 1, 1, tzinfo=UTC)
    await conn.execute(_ABANDON, {**_the_key(tenant_id, key), "heartbeat_at": abandoned})


async def prune(conn: AsyncConnection, created_before: datetime) -> int:
    pruned = await conn.execute(delete(keys).where(keys.c.created_at < created_before))
    return pruned.rowcount
