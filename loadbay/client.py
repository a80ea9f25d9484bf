"""A Python client of a Loadbay server: `Loadbay` (blocking) and `AsyncLoadbay`, on httpx.

    with Loadbay("http://127.0.0.1:8000", key) as lb:
        result = lb.batch("entities", [{"entityType": "player", "externalId": "p1", "data": {}}])
        print(result.succeeded, result.failures)

Every call is retried on 429, 502-504, a 409 idempotency_key_in_use and dropped
connections, with backoff that honours `Retry-After`; batch writes carry an
`Idempotency-Key` (one per call unless given), so a retried batch is never applied twice.
Any other error answer raises `LoadbayError`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

T = TypeVar("T")

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
_BACKOFF_FIRST, _BACKOFF_MOST = 0.5, 30.0
_FILE_CHUNK = 1 << 20


@dataclass(frozen=True)
class Surface:
    """A batch endpoint: where it is, how many records a request may carry, how its answer
    names the records that failed."""

    name: str
    path: str
    batch_size: int
    wrap: Callable[[list[Any]], Any]
    failures: Callable[[Any], list[RecordFailure]]
    job_id: Callable[[Any], str]
    # The answer of `<path>/validate`: the failures a write would meet, nothing written.
    validation_failures: Callable[[Any], list[RecordFailure]]


@dataclass(frozen=True)
class RecordFailure:
    index: int  # position in the batch sent
    code: str
    message: str


@dataclass(frozen=True)
class BatchResult:
    job_id: str
    records: int
    failures: list[RecordFailure]
    answer: Any = field(repr=False)

    @property
    def succeeded(self) -> int:
        return self.records - len(self.failures)


class LoadbayError(Exception):
    """The server answered with an error that retrying does not cure."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def _activity_failures(answer: Any) -> list[RecordFailure]:
    return [
        RecordFailure(r["index"], r.get("error") or "", r.get("message") or "")
        for r in answer["results"]
        if r["status"] == "failed"
    ]


def _activity_validation_failures(answer: Any) -> list[RecordFailure]:
    return [RecordFailure(r["index"], r["error"], r["message"]) for r in answer["errors"]]


def _operator_failures(answer: Any) -> list[RecordFailure]:
    return [RecordFailure(e["index"], e["code"], e["message"]) for e in answer["data"]["errors"]]


def _operator_surface(kind: str, batch_size: int) -> Surface:
    return Surface(
        kind,
        f"/operator-data-api/batch/{kind}",
        batch_size,
        lambda records: records,
        _operator_failures,
        lambda answer: answer["data"]["jobId"],
        _operator_failures,
    )


SURFACES = {
    "activities": Surface(
        "activities",
        "/api/v1/batch-inserts",
        1000,
        lambda records: {"activities": records},
        _activity_failures,
        lambda answer: answer["id"],
        _activity_validation_failures,
    ),
    "entities": _operator_surface("entities", 1000),
    "events": _operator_surface("events", 5000),
    "states": _operator_surface("states", 1000),
}


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request, what counts as success and how its answer is read: the same for both
    clients, which differ only in how they send it."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    upload: bytes | Path | None = None

    @property
    def request(self) -> dict[str, Any]:
        """httpx.request's arguments but the content (a file is re-read on every attempt)."""
        return {
            "method": self.method,
            "url": self.path,
            "json": self.json,
            "params": self.params,
            "headers": self.headers,
        }

    def finish(self, response: httpx.Response) -> T:
        if response.is_error:
            raise LoadbayError(response.status_code, response.text)
        return self.read(response)


def _json(response: httpx.Response) -> Any:
    return response.json()


def _retry_delay(response: httpx.Response | None, attempt: int, retries: int) -> float | None:
    """Seconds to wait before trying again (no answer, or a retried status), or None when
    this outcome is final."""
    if attempt >= retries or (response is not None and not _retried(response)):
        return None
    if response is not None:
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            return min(float(retry_after), _BACKOFF_MOST)
    return float(min(_BACKOFF_FIRST * 2**attempt, _BACKOFF_MOST))


def _retried(response: httpx.Response) -> bool:
    # A 409 idempotency_key_in_use: the first request with this key (cut off by a crash or
    # Ctrl-C, say) still runs on the server; once it ends, its answer is replayed.
    return response.status_code in RETRIED_STATUSES or (
        response.status_code == 409 and b"idempotency_key_in_use" in response.content.lower()
    )


class _Calls:
    """The API as calls; `_run` sends one (blocking or async, by subclass)."""

    def _run(self, call: _Call[Any]) -> Any:
        raise NotImplementedError

    def batch(self, surface: str, records: list[Any], *, idempotency_key: str | None = None) -> Any:
        """Send one batch to `surface` (activities, entities, events, states): BatchResult."""
        kind = SURFACES[surface]

        def read(response: httpx.Response) -> BatchResult:
            answer = response.json()
            return BatchResult(kind.job_id(answer), len(records), kind.failures(answer), answer)

        key = idempotency_key or f"client-{uuid.uuid4()}"
        return self._run(
            _Call(
                "POST", kind.path, read, json=kind.wrap(records), headers={"Idempotency-Key": key}
            )
        )

    def validate(self, surface: str, records: list[Any]) -> Any:
        """Check one batch without writing it: a BatchResult without a job. Records are
        validated; conflicts with stored data are only known when written."""
        kind = SURFACES[surface]

        def read(response: httpx.Response) -> BatchResult:
            failures = kind.validation_failures(response.json())
            return BatchResult("", len(records), failures, response.json())

        return self._run(_Call("POST", f"{kind.path}/validate", read, json=kind.wrap(records)))

    def set_template(self, template_id: str) -> Any:
        """Choose the tenant's operator-data template (admin): the settings answer."""
        return self._run(
            _Call("PUT", "/operator-data-api/settings", _json, json={"templateId": template_id})
        )

    def put_file(self, name: str, source: bytes | Path) -> Any:
        """Store a file (a local path is streamed) in the tenant's space: its description."""
        return self._run(_Call("PUT", f"/files/{name}", _json, upload=source))

    def get_file(self, name: str) -> Any:
        """A stored file's content: bytes."""
        return self._run(_Call("GET", f"/files/{name}", lambda r: r.content))

    def list_files(self, prefix: str = "") -> Any:
        """Stored files starting with `prefix`: a list of {name, size, lastModified}."""
        return self._run(
            _Call("GET", "/files", lambda r: r.json()["data"], params={"prefix": prefix})
        )

    def bulk_instances(
        self,
        records_file: str,
        *,
        publish_events: bool = True,
        idempotency_key: str | None = None,
    ) -> Any:
        """Start the FOLIO bulk upsert of a stored records file as a job: its view."""
        body = {"recordsFileName": records_file, "publishEvents": publish_events}
        key = idempotency_key or f"client-{uuid.uuid4()}"
        headers = {"Prefer": "respond-async", "Idempotency-Key": key}
        return self._run(
            _Call("POST", "/instance-storage/instances/bulk", _json, json=body, headers=headers)
        )

    def job(self, job_id: str) -> Any:
        """A file job's view: status, linesRead, linesTotal, succeeded, failed, error files."""
        return self._run(_Call("GET", f"/jobs/{job_id}", _json))


def _client_options(url: str, key: str, timeout: float) -> dict[str, Any]:
    return {
        "base_url": url.rstrip("/"),
        "headers": {"Authorization": f"Bearer {key}"},
        "timeout": httpx.Timeout(timeout, connect=10.0),
    }


class Loadbay(_Calls):
    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 300.0,
        retries: int = 6,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**_client_options(url, key, timeout), transport=transport)
        self._retries = retries

    def _run(self, call: _Call[T]) -> T:
        for attempt in itertools.count():
            content = _file_chunks(call.upload) if isinstance(call.upload, Path) else call.upload
            try:
                response = self._http.request(content=content, **call.request)
            except httpx.TransportError:
                if (delay := _retry_delay(None, attempt, self._retries)) is None:
                    raise
            else:
                if (delay := _retry_delay(response, attempt, self._retries)) is None:
                    return call.finish(response)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Loadbay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncLoadbay(_Calls):
    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 300.0,
        retries: int = 6,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**_client_options(url, key, timeout), transport=transport)
        self._retries = retries

    async def _run(self, call: _Call[T]) -> T:
        for attempt in itertools.count():
            upload = call.upload
            content = _async_file_chunks(upload) if isinstance(upload, Path) else upload
            try:
                response = await self._http.request(content=content, **call.request)
            except httpx.TransportError:
                if (delay := _retry_delay(None, attempt, self._retries)) is None:
                    raise
            else:
                if (delay := _retry_delay(response, attempt, self._retries)) is None:
                    return call.finish(response)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncLoadbay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_FILE_CHUNK):
            yield chunk


async def _async_file_chunks(path: Path) -> AsyncIterator[bytes]:
    for chunk in _file_chunks(path):
        yield chunk
