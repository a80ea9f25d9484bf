"""Idempotency keys: the first response to a key is kept 24 h and replayed for repeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from loadbay.storage import idempotency as store
from loadbay.storage.database import Database
from loadbay.storage.types import utcnow

RETENTION = timedelta(hours=24)
# A running request renews its claim this often; a claim not renewed for ABANDONED_AFTER
# belongs to a request that died (a killed process, a lost database connection) and is free.
HEARTBEAT = timedelta(seconds=5)
ABANDONED_AFTER = 3 * HEARTBEAT


class ClaimState(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    response: StoredResponse | None = None
    # CLAIMED after a request that died having committed this job: answer from it.
    committed_job: int | None = None
    # When this claim was made: it names the claim, which a later one may take over.
    claimed_at: datetime | None = None


class Idempotency:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, tenant_id: str, key: str, request_hash: str) -> Claim:
        now = utcnow()
        async with self._db.write() as unit:
            if await store.try_claim(unit.conn, tenant_id, key, request_hash, now):
                return Claim(ClaimState.CLAIMED, claimed_at=now)
            row = await store.find_locked(unit.conn, tenant_id, key)
            if row["created_at"] <= now - RETENTION:
                await store.reclaim(unit.conn, tenant_id, key, request_hash, now, keep_job=False)
                return Claim(ClaimState.CLAIMED, claimed_at=now)
            last_sign = row["heartbeat_at"] or row["created_at"]
            abandoned = row["status_code"] is None and last_sign <= now - ABANDONED_AFTER
            committed = row["job_id"]
            if abandoned and committed is None:
                await store.reclaim(unit.conn, tenant_id, key, request_hash, now, keep_job=False)
                return Claim(ClaimState.CLAIMED, claimed_at=now)
            if abandoned and row["request_hash"] == request_hash:
                # Its batch committed, its answer was lost: answer from that job.
                await store.reclaim(unit.conn, tenant_id, key, request_hash, now, keep_job=True)
                return Claim(ClaimState.CLAIMED, committed_job=committed, claimed_at=now)
        if row["request_hash"] != request_hash:
            return Claim(ClaimState.MISMATCH)
        if row["status_code"] is None:
            return Claim(ClaimState.IN_PROGRESS)
        response = StoredResponse(row["status_code"], row["response_body"], row["response_headers"])
        return Claim(ClaimState.REPLAY, response)

    async def complete(self, tenant_id: str, key: str, response: StoredResponse) -> None:
        async with self._db.write() as unit:
            await store.store_response(
                unit.conn, tenant_id, key, response.status_code, response.body, response.headers
            )

    async def beat(self, tenant_id: str, key: str) -> None:
        async with self._db.write() as unit:
            await store.beat(unit.conn, tenant_id, key, utcnow())

    async def release(self, tenant_id: str, key: str) -> None:
        async with self._db.write() as unit:
            await store.release(unit.conn, tenant_id, key)

    async def prune(self) -> int:
        async with self._db.write() as unit:
            return await store.prune(unit.conn, utcnow() - RETENTION)
