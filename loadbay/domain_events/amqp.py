"""RabbitMQ: AMQP 0-9-1 publishing with publisher confirms, a whole batch in one write.

aiormq, and aio-pika on top of it, send each message through a lock, a queue, a task switch
and pamqp's generic marshalling (34 µs a message by itself): 4-8k events/s on this project's
2-core machine, all of it the client's CPU. The relay only ever publishes to one exchange
on one channel, so this module speaks just that part of the protocol: pamqp for the
handshake's frames, and the three frames of a publish packed here, for a batch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import unquote, urlsplit

from pamqp import commands
from pamqp import frame as pamqp_frame
from pamqp.base import Frame

from loadbay.domain_events.publishing import (
    TIMEOUT_SECONDS,
    Acknowledgements,
    ConnectionPublisher,
    Message,
    PartialPublish,
    hang_up,
)

_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
_CHANNEL = 1
_FRAME_HEADER = struct.Struct(">BHI")  # type, channel, payload size
_FRAME_END = b"\xce"
_METHOD, _CONTENT_HEADER, _BODY = 1, 2, 3
_METHOD_IDS = struct.Struct(">HH")  # class, method
_BASIC = 60
_ACK, _NACK = (_BASIC, 80), (_BASIC, 120)
_CHANNEL_CLOSE, _CONNECTION_CLOSE, _CONNECTION_CLOSE_OK = (20, 40), (10, 50), (10, 51)
_CONNECTION_BLOCKED, _CONNECTION_UNBLOCKED = (10, 60), (10, 61)
_CONFIRM = struct.Struct(">QB")  # delivery tag, bits (multiple first)
# The content header: class, weight, body size, which properties follow. Ours, in the
# order the flags give them: content-type, headers, delivery-mode, message-id.
_CONTENT = struct.Struct(">HHQH")
_PROPERTY_FLAGS = (1 << 15) | (1 << 13) | (1 << 12) | (1 << 7)
_JSON_TYPE = b"\x10application/json"
_PERSISTENT = b"\x02"
_FRAME_MAX = 131_072  # RabbitMQ's default; the server may ask for less


class AmqpError(Exception):
    """The broker refused something, or the connection broke."""


@dataclass(frozen=True)
class AmqpAddress:
    host: str
    port: int
    user: str
    password: str
    vhost: str
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> AmqpAddress:
        """amqp[s]://user:password@host:port/vhost, read as RabbitMQ's URI spec says; the
        vhost is `/` when the path names none."""
        parts = urlsplit(url)
        tls = parts.scheme == "amqps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (5671 if tls else 5672),
            user=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            vhost=unquote(parts.path[1:]) or "/",
            tls=tls,
        )


class AmqpPublisher(ConnectionPublisher):
    """Publishes to a durable topic exchange with publisher confirms; routing key = subject.

    Every message of a batch is in flight at once. A nack, or a confirm that does not come,
    fails the batch from there. Not mandatory: with no queue bound, an event is confirmed
    and dropped by RabbitMQ rather than retried for ever.
    """

    def __init__(self, url: str, exchange: str) -> None:
        super().__init__(partial(AmqpConnection.open, url, exchange))


class AmqpConnection:
    """One connection, one channel in confirm mode, one topic exchange (declared durable)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exchange: str,
    ) -> None:
        self._reader, self._writer, self._exchange = reader, writer, exchange
        self._frame_max = _FRAME_MAX
        self._publish_frames: dict[str, bytes] = {}  # by routing key
        self._next_tag = 1
        self._batch: _Confirms | None = None
        self._blocked: str | None = None
        self._broken: AmqpError | None = None
        self._listening: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, exchange: str) -> AmqpConnection:
        address = AmqpAddress.from_url(url)
        context = ssl.create_default_context() if address.tls else None
        reader, writer = await asyncio.open_connection(address.host, address.port, ssl=context)
        connection = cls(reader, writer, exchange)
        try:
            await connection._handshake(address)
        except BaseException:
            writer.close()
            raise
        connection._listening = asyncio.create_task(connection._listen())
        return connection

    @property
    def is_open(self) -> bool:
        return self._broken is None and not self._writer.is_closing()

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish in order and wait for every confirm; PartialPublish names how many of the
        first were confirmed when one was refused, or did not come in TIMEOUT_SECONDS."""
        if self._broken is not None:
            raise PartialPublish(0, self._broken)
        batch = self._batch = _Confirms(self._next_tag, len(messages))
        self._next_tag += len(messages)
        try:
            self._writer.write(b"".join([self._frames(m) for m in messages]))
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await self._writer.drain()
                await asyncio.shield(batch.complete)
        except Exception as error:
            if isinstance(error, TimeoutError):
                why = f": publishing is blocked ({self._blocked})" if self._blocked else ""
                error = AmqpError(f"RabbitMQ did not confirm in {TIMEOUT_SECONDS:g} s{why}")
            # Whatever comes of this batch now, no later one can tell it from a resend.
            self._break(error if isinstance(error, AmqpError) else AmqpError(str(error)))
            raise PartialPublish(batch.in_order(), error) from error
        finally:
            self._batch = None
        if batch.refused is not None:
            raise PartialPublish(batch.in_order(), batch.refused)

    async def close(self) -> None:
        """Close politely (RabbitMQ logs a connection dropped without it as an error)."""
        if self._listening is not None and not self._listening.done() and self._broken is None:
            self._send(
                commands.Connection.Close(
                    reply_code=200, reply_text="bye", class_id=0, method_id=0
                ),
                channel=0,
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._listening), 1.0)
        if self._listening is not None:
            self._listening.cancel()
        await hang_up(self._writer)

    def _frames(self, message: Message) -> bytes:
        value = message.value
        key = message.key.encode()
        event_id = message.event_id.encode()
        # headers: {"key": key}, a table of one long string
        headers = struct.pack(">IB3sBI", 9 + len(key), 3, b"key", ord("S"), len(key)) + key
        content = b"".join(
            (
                _CONTENT.pack(_BASIC, 0, len(value), _PROPERTY_FLAGS),
                _JSON_TYPE,
                headers,
                _PERSISTENT,
                _short_string(event_id),
            )
        )
        publish = self._publish_frames.get(message.subject)
        if publish is None:
            publish = self._publish_frames[message.subject] = _publish_frame(
                self._exchange, message.subject
            )
        room = self._frame_max - 8  # a frame's header and end byte count towards its max
        # As many body frames as the body needs; none for 0 bytes (RabbitMQ refuses an empty
        # one). A slice of the whole body is the body itself, not a copy.
        bodies = [_frame(_BODY, value[i : i + room]) for i in range(0, len(value), room)]
        return b"".join((publish, _frame(_CONTENT_HEADER, content), *bodies))

    async def _handshake(self, address: AmqpAddress) -> None:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            self._writer.write(_PROTOCOL_HEADER)
            await self._expect(commands.Connection.Start)
            self._send(
                commands.Connection.StartOk(
                    client_properties={
                        "product": "loadbay",
                        "capabilities": {
                            # Refused credentials are said so, rather than a dropped socket.
                            "authentication_failure_close": True,
                            "connection.blocked": True,
                            "publisher_confirms": True,
                        },
                    },
                    mechanism="PLAIN",
                    response=f"\0{address.user}\0{address.password}",
                ),
                channel=0,
            )
            tune = await self._expect(commands.Connection.Tune)
            self._frame_max = min(tune.frame_max or _FRAME_MAX, _FRAME_MAX)
            # No heartbeats: a dead connection shows at the next batch, whose confirms do
            # not come within TIMEOUT_SECONDS; the relay then connects again.
            self._send(
                commands.Connection.TuneOk(channel_max=1, frame_max=self._frame_max), channel=0
            )
            self._send(commands.Connection.Open(virtual_host=address.vhost), channel=0)
            await self._expect(commands.Connection.OpenOk)
            self._send(commands.Channel.Open())
            await self._expect(commands.Channel.OpenOk)
            self._send(commands.Confirm.Select())
            await self._expect(commands.Confirm.SelectOk)
            self._send(
                commands.Exchange.Declare(
                    exchange=self._exchange, exchange_type="topic", durable=True
                )
            )
            await self._expect(commands.Exchange.DeclareOk)

    def _send(self, method: Frame, channel: int = _CHANNEL) -> None:
        self._writer.write(pamqp_frame.marshal(method, channel))

    async def _expect(self, expected: type[Frame]) -> Frame:
        """The next method frame, which must be `expected` (heartbeats are skipped)."""
        while True:
            kind, payload = await self._read_frame()
            if kind != _METHOD:
                continue
            _, _, method = pamqp_frame.unmarshal(_frame(kind, payload))
            if isinstance(method, commands.Connection.Close | commands.Channel.Close):
                raise AmqpError(f"RabbitMQ: {method.reply_code} {method.reply_text}")
            if not isinstance(method, expected):
                raise AmqpError(f"RabbitMQ answered {method.name}, expected {expected.name}")
            return method

    async def _read_frame(self) -> tuple[int, bytes]:
        try:
            kind, _, size = _FRAME_HEADER.unpack(await self._reader.readexactly(7))
            payload = await self._reader.readexactly(size + 1)
        except asyncio.IncompleteReadError as error:
            raise AmqpError("RabbitMQ closed the connection") from error
        if payload[-1:] != _FRAME_END:
            raise AmqpError("RabbitMQ sent a malformed frame")
        return kind, payload[:-1]

    async def _listen(self) -> None:
        """Take the confirms as they come; anything else that matters breaks the connection."""
        try:
            while True:
                kind, payload = await self._read_frame()
                if kind == _METHOD:
                    self._on_method(_METHOD_IDS.unpack_from(payload), payload)
        except asyncio.CancelledError:
            raise
        except AmqpError as error:
            self._break(error)
        except Exception as error:
            self._break(AmqpError(f"RabbitMQ connection: {error}"))

    def _on_method(self, ids: tuple[int, int], payload: bytes) -> None:
        if ids in (_ACK, _NACK):
            tag, bits = _CONFIRM.unpack_from(payload, 4)
            if self._batch is not None:
                self._batch.confirm(tag, multiple=bool(bits & 1), refused=ids == _NACK)
        elif ids == _CONNECTION_BLOCKED:
            self._blocked = _read_short_string(payload, 4)
        elif ids == _CONNECTION_UNBLOCKED:
            self._blocked = None
        elif ids == _CONNECTION_CLOSE_OK:
            raise AmqpError("connection closed")
        elif ids in (_CHANNEL_CLOSE, _CONNECTION_CLOSE):
            # Answered, so that RabbitMQ logs a closed channel, not a dropped connection.
            if ids == _CHANNEL_CLOSE:
                self._send(commands.Channel.CloseOk())
            else:
                self._send(commands.Connection.CloseOk(), channel=0)
            code = struct.unpack_from(">H", payload, 4)[0]
            raise AmqpError(f"RabbitMQ: {code} {_read_short_string(payload, 6)}")

    def _break(self, error: AmqpError) -> None:
        if self._broken is None:
            self._broken = error
        if self._batch is not None:
            self._batch.fail(error)


class _Confirms(Acknowledgements):
    """The acknowledgements of one batch of deliveries, delivery tags `first` onwards."""

    def __init__(self, first: int, count: int) -> None:
        super().__init__(count)
        self._first = first
        self._below = 0  # every position under it is settled (a `multiple` confirm's reach)

    def confirm(self, tag: int, *, multiple: bool, refused: bool) -> None:
        """basic.ack or basic.nack of `tag`, or with `multiple` of every delivery up to it
        still outstanding (one acked or nacked already keeps its outcome)."""
        last = tag - self._first
        if last < 0 or last >= len(self):
            return  # a confirm for a batch given up already
        refusal = AmqpError(f"RabbitMQ refused the delivery with tag {tag}") if refused else None
        self.settle(self._below if multiple else last, last, refusal)
        if multiple:
            self._below = max(self._below, last + 1)


def _frame(kind: int, payload: bytes) -> bytes:
    return _FRAME_HEADER.pack(kind, _CHANNEL, len(payload)) + payload + _FRAME_END


def _publish_frame(exchange: str, routing_key: str) -> bytes:
    """basic.publish to the exchange under this routing key, neither mandatory nor immediate."""
    return _frame(
        _METHOD,
        _METHOD_IDS.pack(_BASIC, 40)
        + b"\0\0"  # reserved
        + _short_string(exchange.encode())
        + _short_string(routing_key.encode())
        + b"\0",
    )


def _short_string(value: bytes) -> bytes:
    if len(value) > 255:
        raise AmqpError(f"AMQP allows 255 bytes here, not {len(value)}: {value[:60]!r}…")
    return bytes((len(value),)) + value


def _read_short_string(payload: bytes, offset: int) -> str:
    size = payload[offset]
    return payload[offset + 1 : offset + 1 + size].decode(errors="replace")
