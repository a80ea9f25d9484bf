"""Reading back what the relay published, from each real broker."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def reachable(url: str) -> bool:
    host_port = url.split("//", 1)[1].rsplit("@", 1)[-1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def broker_url(broker: str) -> str:
    """The test broker's address; the test is skipped, saying so, when it is not running."""
    url = READERS[broker][0]
    if not reachable(url):
        pytest.skip(f"{broker} not reachable at {url}")
    return url


def unique_names() -> dict[str, str]:
    """Settings that keep one test's subjects, stream and exchange apart from any other's."""
    tag = uuid.uuid4().hex[:10]
    return {
        "events_env": f"lbt{tag}",
        "events_subject": "{env}.{tenant}.{collection}",
        "events_nats_stream": f"LBT{tag}",
        "events_amqp_exchange": f"lbt{tag}",
    }


def start_nats(port: int, store: Path, *options: str) -> subprocess.Popen[bytes]:
    """A JetStream server of a test's own on `port` (the test stops it); skipped without one."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        pytest.skip("nats-server is not installed")
    argv = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store), *options]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_for_port(port: int) -> None:
    for _ in range(100):
        if reachable(f"nats://127.0.0.1:{port}"):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"nothing listens on port {port}")


@asynccontextmanager
async def nats_reader(url: str, names: dict[str, str]) -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()

    async def read(expected: int) -> list[tuple[str, dict[str, Any]]]:
        subject = names["events_env"] + ".>"
        sub = await js.pull_subscribe(subject, stream=names["events_nats_stream"])
        messages = []
        while len(messages) < expected:
            batch = await sub.fetch(expected - len(messages), timeout=5)
            for message in batch:
                await message.ack()
                messages.append((message.headers["Loadbay-Key"], orjson.loads(message.data)))
        return messages

    try:
        yield read
    finally:
        try:
            await js.delete_stream(names["events_nats_stream"])
        finally:
            await nc.close()


@asynccontextmanager
async def redis_reader(url: str, names: dict[str, str]) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    prefix = names["events_env"]

    async def read(expected: int) -> list[tuple[str, dict[str, Any]]]:
        messages = []
        async for stream in client.scan_iter(match=f"{prefix}.*"):
            for _, fields in await client.xrange(stream):
                messages.append((fields[b"key"].decode(), orjson.loads(fields[b"value"])))
        return messages

    try:
        yield read
    finally:
        async for stream in client.scan_iter(match=f"{prefix}.*"):
            await client.delete(stream)
        await client.aclose()


@asynccontextmanager
async def amqp_reader(url: str, names: dict[str, str]) -> AsyncIterator[Any]:
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        names["events_amqp_exchange"], aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key=names["events_env"] + ".#")

    async def read(expected: int) -> list[tuple[str, dict[str, Any]]]:
        messages = []
        while True:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                return messages
            messages.append((message.headers["key"], orjson.loads(message.body)))

    try:
        yield read
    finally:
        await exchange.delete()
        await connection.close()


READERS = {
    "nats": (NATS_URL, nats_reader),
    "redis": (REDIS_URL, redis_reader),
    "amqp": (AMQP_URL, amqp_reader),
}
