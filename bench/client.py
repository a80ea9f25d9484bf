"""The load driver: N concurrent httpx clients sending pre-serialised bodies, and what it saw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson

from bench.cpu import CpuWatch
from bench.data import Batch
from bench.server import Server

WARM_UP_CLIENTS = 4

# Given a 2xx answer's JSON, (records that failed in it, a message for the first failure or None).
FailureCounter = Callable[[Any], tuple[int, str | None]]


@dataclass
class Measurement:
    """One line of the report."""

    name: str
    kind: str  # loadbay | ceiling | peer | floor
    op: str  # insert | update: which baselines a Loadbay line is compared with
    clients: int | None
    records: int  # records reported written
    failed: int  # records reported failed, or sent in a request that was not answered 2xx
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    failed_requests: int = 0
    first_error: str | None = None
    peak_rss_mb: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    # The kind of row written (entities | events | activities | instances): a line's ceiling
    # is the one of its rows; the peer and the floor write entities only.
    rows: str = "entities"

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        data.update(
            rate=round(self.rate, 1),
            requests=len(self.latencies_ms),
            p50_ms=_round(self.percentile(0.50)),
            p99_ms=_round(self.percentile(0.99)),
            seconds=round(self.seconds, 3),
        )
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def no_failures(_: Any) -> tuple[int, str | None]:
    return 0, None


async def drive(
    url: str,
    path: str,
    bodies: list[Batch],
    *,
    clients: int,
    headers: dict[str, str],
    count_failures: FailureCounter = no_failures,
    request_timeout: float = 600,
) -> Measurement:
    """POST every body once, `clients` at a time; time from the first send to the last answer."""
    pending = iter(bodies)
    seen = Measurement(path, "loadbay", "insert", clients, 0, 0, 0.0)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=request_timeout, limits=limits
    ) as client:

        async def worker() -> None:
            for batch in pending:  # one shared iterator: each body is sent exactly once
                start = time.perf_counter()
                try:
                    response = await client.post(path, content=batch.body)
                except httpx.HTTPError as error:
                    _failed_request(seen, batch, f"{type(error).__name__}: {error}")
                    continue
                seen.latencies_ms.append((time.perf_counter() - start) * 1000)
                if not response.is_success:
                    _failed_request(seen, batch, f"HTTP {response.status_code}: {response.text}")
                    continue
                try:
                    failed, message = count_failures(orjson.loads(response.content))
                except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
                    failed, message = 0, f"unreadable 2xx answer ({error}): {response.text}"
                seen.records += batch.count - failed
                seen.failed += failed
                if message and seen.first_error is None:
                    seen.first_error = message[:500]
                    print(f"    first record error on {path}: {seen.first_error}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seen.seconds = time.perf_counter() - start
    return seen


def _failed_request(seen: Measurement, batch: Batch, message: str) -> None:
    seen.failed += batch.count
    seen.failed_requests += 1
    if seen.first_error is None:
        seen.first_error = message[:500]
        print(f"    first failed request on {seen.name}: {seen.first_error}")


def measure(
    server: Server,
    name: str,
    kind: str,
    op: str,
    path: str,
    bodies: list[Batch],
    *,
    clients: int,
    headers: dict[str, str],
    count_failures: FailureCounter = no_failures,
    rows: str = "entities",
) -> Measurement:
    """Drive `server` with `bodies` and label the result; peak RSS is that of this load only."""
    server.reset_peak_rss()
    watch = CpuWatch(server)
    seen = asyncio.run(
        drive(
            server.url,
            path,
            bodies,
            clients=clients,
            headers=headers,
            count_failures=count_failures,
        )
    )
    seen.name, seen.kind, seen.op, seen.rows = name, kind, op, rows
    seen.peak_rss_mb = server.peak_rss_mb()
    seen.notes["peak_rss_largest_process_mb"] = server.peak_rss_largest_mb()
    seen.notes.update(watch.cores())
    print_line(seen)
    return seen


def warm_up(server: Server, path: str, bodies: list[Batch], headers: dict[str, str]) -> None:
    """One unmeasured pass (connections, caches, first-request imports) on keys of its own.

    At 4 clients, which the server spreads over its workers: each worker meets its first
    requests here (a route's first request builds FastAPI's route state, a connection's
    first write compiles the capture triggers), not in a measured line.
    """
    asyncio.run(drive(server.url, path, bodies, clients=WARM_UP_CLIENTS, headers=headers))


def print_line(seen: Measurement) -> None:
    failed = f", {seen.failed:,} failed" if seen.failed else ""
    done = f"{seen.records:,} in {seen.seconds:.1f}s{failed}"
    print(f"  {seen.name:<40} {seen.rate:>10,.0f} records/s  ({done})", flush=True)
