"""The relay under sustained ingestion, and through a broker outage:
`python -m bench.relay_lag [--seconds 60] [--outage 10] [--brokers nats,redis]`.

Per broker, a broker process of this run's own (nats-server with JetStream, or redis-server,
on a free port) and a real `loadbay serve` on a fresh PostgreSQL database, running the relay
as it does (in a process beside its workers); four clients send entity batches of 1,000 as
fast as it answers for `--seconds` (a pool of 200,000 players sent over and over: first
creates, then updates, each an event), while `/metrics` is read every half second. Printed:
records/s ingested, the outbox lag (age of the oldest unpublished event) at its highest
during the load, and the seconds from the load's end until nothing is pending. With
`--outage S` the broker is down S seconds in the middle of the load (NATS: killed and
started again on its store; Redis, which keeps nothing on disk here: frozen with SIGSTOP,
then SIGCONT), and the seconds from its return until the lag is under 2 s again are printed
too, with whether the broker holds every event (JetStream deduplicates by `Nats-Msg-Id`, so
its count equals the outbox's exactly; Redis streams keep resent events twice, so theirs is
at least the outbox's).
Results go to `bench/results/<date>-relay-lag.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import data, pg
from bench.relay import reachable
from bench.scenarios import KEY_IN_LOG, RATE_LIMITS
from bench.server import VENV_BIN, Server, free_port

RESULTS = Path(__file__).resolve().parent / "results"
CLIENTS = 4
PLAYERS = 200_000
SAMPLE_SECONDS = 0.5
CAUGHT_UP_SECONDS = 2.0  # issue 13's bound on the lag


class Broker:
    """A broker process of this run's own, which can be taken down and brought back."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.port, self._folder = kind, free_port(), folder
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "nats" if self.kind == "nats" else "redis"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.kind == "nats":
            binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
            argv = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js"]
            argv += ["-sd", str(self._folder / "jetstream")]
        else:
            argv = [shutil.which("redis-server") or "redis-server", "--port", str(self.port)]
            argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until_reachable(self.url)

    def interrupt(self) -> None:
        assert self._process is not None
        if self.kind == "nats":
            self._process.terminate()
            self._process.wait()
        else:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        if self.kind == "nats":
            self.start()
        else:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
            self._process.wait()

    async def events_held(self, env: str, stream: str) -> int:
        """How many events the broker holds for this run."""
        if self.kind == "nats":
            import nats

            nc = await nats.connect(self.url)
            try:
                info = await nc.jetstream().stream_info(stream)
                return int(info.state.messages)
            finally:
                await nc.close()
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            return sum([await client.xlen(key) async for key in client.scan_iter(f"{env}.*")])
        finally:
            await client.aclose()


@dataclass
class LagRun:
    broker: str
    seconds: float
    outage_seconds: float
    records: int = 0
    failed_requests: int = 0
    samples: list[tuple[float, int, float]] = field(default_factory=list)  # t, pending, age
    drained_after_load_seconds: float | None = None
    caught_up_after_outage_seconds: float | None = None
    outbox_events: int | None = None
    broker_events: int | None = None

    def summary(self) -> dict[str, Any]:
        during = [age for t, _, age in self.samples if t <= self.seconds]
        line = asdict(self)
        del line["samples"]
        line["records_per_second"] = round(self.records / self.seconds)
        line["max_lag_seconds"] = round(max(during, default=0.0), 2)
        line["samples"] = [
            [round(t, 2), pending, round(age, 2)] for t, pending, age in self.samples
        ]
        return line


async def measure(
    broker: Broker, server: Server, key: str, seconds: float, outage: float
) -> LagRun:
    run = LagRun(broker.kind, seconds, outage)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = itertools.cycle(data.entity_batches(range(PLAYERS)))
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as http:
        started = time.monotonic()
        deadline = started + seconds
        sampling = asyncio.create_task(_sample(http, started, run))
        outage_task = asyncio.create_task(_outage(broker, started, seconds, outage, run))
        try:
            await asyncio.gather(*(_client(http, bodies, deadline, run) for _ in range(CLIENTS)))
            load_ended = time.monotonic() - started
            while run.drained_after_load_seconds is None and time.monotonic() - started < 600:
                await asyncio.sleep(SAMPLE_SECONDS)
                if sampling.done():
                    await sampling  # its error, rather than stale samples
                t, pending, _ = run.samples[-1]
                if pending == 0 and t > load_ended:
                    run.drained_after_load_seconds = round(t - load_ended, 2)
            await outage_task
        finally:
            for helper in (sampling, outage_task):
                helper.cancel()
            await asyncio.gather(sampling, outage_task, return_exceptions=True)
    return run


async def _client(http: httpx.AsyncClient, bodies: Any, deadline: float, run: LagRun) -> None:
    while time.monotonic() < deadline:
        batch = next(bodies)
        response = await http.post("/operator-data-api/batch/entities", content=batch.body)
        if response.status_code == 200:
            run.records += response.json()["data"]["succeeded"]
        else:
            run.failed_requests += 1


async def _sample(http: httpx.AsyncClient, started: float, run: LagRun) -> None:
    while True:
        text = (await http.get("/metrics")).text
        pending = _gauge(text, "loadbay_outbox_pending_events")
        age = _gauge(text, "loadbay_outbox_oldest_pending_seconds")
        run.samples.append((time.monotonic() - started, int(pending), age))
        await asyncio.sleep(SAMPLE_SECONDS)


async def _outage(
    broker: Broker, started: float, seconds: float, outage: float, run: LagRun
) -> None:
    if outage <= 0:
        return
    await asyncio.sleep(max((seconds - outage) / 2, 0))
    # In a thread: stopping and starting a broker blocks, and the clients must go on.
    await asyncio.to_thread(broker.interrupt)
    await asyncio.sleep(outage)
    await asyncio.to_thread(broker.resume)
    returned = time.monotonic() - started
    while time.monotonic() - started < returned + 300:
        await asyncio.sleep(SAMPLE_SECONDS)
        late = [s for s in run.samples if s[0] > returned]
        if late and late[-1][2] < CAUGHT_UP_SECONDS:
            run.caught_up_after_outage_seconds = round(late[-1][0] - returned, 2)
            return


def _gauge(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _wait_until_reachable(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not reachable(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers at {url} after {timeout}s")
        time.sleep(0.1)


def run_broker(
    kind: str, seconds: float, outage: float, folder: Path, relay_process: bool
) -> dict[str, Any]:
    broker = Broker(kind, folder / kind)
    (folder / kind).mkdir()
    name = pg.fresh_name(f"lag_{kind}")
    pg.create(pg.ADMIN_URL, name)
    tag = uuid.uuid4().hex[:8]
    env_name, stream = f"lag{tag}", f"LAG{tag}"
    server: Server | None = None
    relay: Server | None = None
    try:
        broker.start()
        env = {
            "LOADBAY_DATA_DIR": str(folder / kind / "data"),
            "LOADBAY_DATABASE_URL": pg.database_url(pg.ADMIN_URL, name, "postgresql+asyncpg"),
            "LOADBAY_RATE_LIMITS": RATE_LIMITS,
            "LOADBAY_EVENTS_URL": broker.url,
            "LOADBAY_EVENTS_ENV": env_name,
            "LOADBAY_EVENTS_SUBJECT": "{env}.{tenant}.{collection}",
            "LOADBAY_EVENTS_NATS_STREAM": stream,
            # Ready whatever the broker does: the load goes on through the outage.
            "LOADBAY_READY_NEEDS_BROKER": "false",
            "LOADBAY_RELAY_IN_SERVER": "false" if relay_process else "true",
        }
        port = free_port()
        argv = [str(VENV_BIN / "loadbay"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        server = Server("loadbay", argv, port, folder / kind / "loadbay.log", env)
        server.wait_ready("/healthz", timeout=120)
        key = server.find_in_log(KEY_IN_LOG)
        if relay_process:
            argv = [str(VENV_BIN / "loadbay"), "relay"]
            relay = Server("relay", argv, free_port(), folder / kind / "relay.log", env)
        httpx.put(
            f"{server.url}/operator-data-api/settings",
            headers={"Authorization": f"Bearer {key}"},
            json={"templateId": "igaming"},
            timeout=60,
        ).raise_for_status()
        run = asyncio.run(measure(broker, server, key, seconds, outage))
        run.outbox_events = asyncio.run(_outbox_count(pg.database_url(pg.ADMIN_URL, name)))
        run.broker_events = asyncio.run(broker.events_held(env_name, stream))
        return run.summary()
    finally:
        try:
            for process in (relay, server):
                if process is not None:
                    process.stop()
        finally:
            try:
                broker.stop()
            finally:
                pg.drop(pg.ADMIN_URL, name)


async def _outbox_count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT coalesce(sum(event_count), 0) FROM outbox"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay_lag", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=0.0)
    parser.add_argument("--brokers", default="nats,redis")
    parser.add_argument(
        "--relay-process",
        action="store_true",
        help="run the relay as `loadbay relay` instead of the one `loadbay serve` runs",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the scratch folder (server logs) at the end"
    )
    args = parser.parse_args()
    brokers = [b for b in args.brokers.split(",") if b]
    if set(brokers) - {"nats", "redis"}:
        parser.error("brokers: nats, redis (the ones this bench can start and stop itself)")
    lines = []
    folder = tempfile.mkdtemp(prefix="loadbay-lag-")
    try:
        for kind in brokers:
            line = run_broker(kind, args.seconds, args.outage, Path(folder), args.relay_process)
            line["relay"] = "loadbay relay" if args.relay_process else "serve"
            lines.append(line)
            print(
                f"{kind:5} ingested {line['records_per_second']:8,}/s  "
                f"lag at most {line['max_lag_seconds']:6.2f} s  "
                f"drained {line['drained_after_load_seconds']} s after the load"
                + (
                    f"  caught up {line['caught_up_after_outage_seconds']} s after the "
                    f"{args.outage:g} s outage"
                    if args.outage
                    else ""
                )
                + f"  events: outbox {line['outbox_events']:,}, broker {line['broker_events']:,}"
            )
    finally:
        if args.keep_temp:
            print(f"scratch folder, kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-outage{args.outage:g}" if args.outage else ""
    suffix += "-relay-process" if args.relay_process else ""
    out = args.out / f"{dt.date.today().isoformat()}-relay-lag{suffix}.json"
    machine = {"nproc": os.cpu_count(), "seconds": args.seconds, "clients": CLIENTS}
    out.write_text(json.dumps({"machine": machine, "results": lines}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
