"""API keys: `lb_live_<random>`, one tenant each, with scopes; only a hash is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from loadbay.auth.tenants import DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME
from loadbay.errors import InvalidInput
from loadbay.storage import api_keys as key_store
from loadbay.storage.database import Database
from loadbay.storage.tenants import ensure_tenant
from loadbay.storage.types import utcnow
from loadbay.ttl_cache import TtlCache

KEY_PREFIX = "lb_live_"
# Characters of the random part shown in listings and used to revoke a key.
VISIBLE_CHARACTERS = 8
# Any constant works; it keeps two nodes starting together from both creating an admin key.
_BOOTSTRAP_LOCK_ID = 0x10ADB0


class Scope(StrEnum):
    INGEST_BATCH = "ingest:batch"
    INGEST_FILES = "ingest:files"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's tenant and scopes."""

    tenant_id: str
    # The key's visible prefix; None when authentication is off.
    key_prefix: str | None
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class KeyInfo:
    id: int
    tenant_id: str
    prefix: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    secret: str
    info: KeyInfo


def hash_key(secret: str) -> str:
    # Keys carry ~190 random bits, so a fast hash is enough; nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(names: list[str] | tuple[str, ...]) -> frozenset[Scope]:
    known = {s.value for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InvalidInput(
            f"unknown scopes {unknown}; choose from {sorted(known)}"
            if unknown
            else "a key needs at least one scope",
            code="invalid_scope",
        )
    return frozenset(Scope(n) for n in names)


# Tenant ids end up in broker subjects and object keys: keep them to safe characters.
TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ApiKeys:
    def __init__(self, db: Database, *, cache_seconds: float = 0) -> None:
        self._db = db
        # Keys found valid, with their expiry: a request costs no database read within this.
        self._valid: TtlCache[str, tuple[Principal, datetime | None]] = TtlCache(cache_seconds)

    async def create(
        self,
        tenant_id: str,
        scopes: frozenset[Scope],
        *,
        name: str = "",
        expires_at: datetime | None = None,
        tenant_name: str | None = None,
    ) -> NewKey:
        """Create a key (and its tenant if new); the secret is returned here only."""
        if not TENANT_ID.fullmatch(tenant_id):
            raise InvalidInput(
                "a tenant id is 1 to 64 letters, digits, '_' or '-'", code="invalid_tenant"
            )
        async with self._db.write() as unit:
            await ensure_tenant(unit.conn, tenant_id, tenant_name or tenant_id)
            return await self._insert(unit.conn, tenant_id, scopes, name, expires_at)

    async def bootstrap(self) -> NewKey | None:
        """On a database without any key: the default tenant and one admin key."""
        async with self._db.write() as unit:
            await self._db.kind.lock_transaction(unit.conn, _BOOTSTRAP_LOCK_ID)
            await ensure_tenant(unit.conn, DEFAULT_TENANT_ID, DEFAULT_TENANT_NAME)
            if await key_store.count_keys(unit.conn):
                return None
            scopes = frozenset({Scope.ADMIN})
            return await self._insert(unit.conn, DEFAULT_TENANT_ID, scopes, "bootstrap admin", None)

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal of a valid, unrevoked, unexpired key, else None."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
            return None
        digest = hash_key(secret)
        known = self._valid.get(digest)
        if known is None:
            async with self._db.read() as conn:
                row = await key_store.find_by_hash(conn, digest)
            if row is None or row["revoked_at"] is not None:
                return None
            scopes = frozenset(Scope(s) for s in row["scopes"].split())
            principal = Principal(row["tenant_id"], row["prefix"], scopes)
            known = (principal, row["expires_at"])
            self._valid.put(digest, known)
        principal, expires_at = known
        if expires_at is not None and expires_at <= utcnow():
            return None
        return principal

    async def list(self, tenant_id: str | None = None) -> list[KeyInfo]:
        async with self._db.read() as conn:
            return [_info(row) for row in await key_store.list_keys(conn, tenant_id)]

    async def revoke(self, prefix: str) -> bool:
        async with self._db.write() as unit:
            revoked = await key_store.revoke_by_prefix(unit.conn, prefix, utcnow()) > 0
        self._valid.clear()
        return revoked

    async def _insert(
        self,
        conn: Any,
        tenant_id: str,
        scopes: frozenset[Scope],
        name: str,
        expires_at: datetime | None,
    ) -> NewKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
        values = {
            "tenant_id": tenant_id,
            "prefix": secret[: len(KEY_PREFIX) + VISIBLE_CHARACTERS],
            "key_hash": hash_key(secret),
            "name": name,
            "scopes": " ".join(sorted(scopes)),
            "created_at": utcnow(),
            "expires_at": expires_at,
            "revoked_at": None,
        }
        key_id = await key_store.insert_key(conn, values)
        return NewKey(secret=secret, info=_info({"id": key_id, **values}))


def _info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row["id"],
        tenant_id=row["tenant_id"],
        prefix=row["prefix"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )
