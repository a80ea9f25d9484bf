"""NATS JetStream: a whole batch published in one write, the stream's acknowledgements read
as they come.

nats-py builds every publish and every acknowledgement as objects of its own, through a
queue and a task per subscription: 20 µs of the relay's CPU per event, more than the
server's. The relay needs little of NATS — connect, one subscription for the answers, the
stream made if missing, and `HPUB` with a reply subject per message — so this module
speaks that part of the protocol itself (nats:// and tls://, user and password or a token
in the URL).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from loadbay.domain_events.publishing import (
    TIMEOUT_SECONDS,
    Acknowledgements,
    ConnectionPublisher,
    Message,
    PartialPublish,
    hang_up,
)

_CRLF = b"\r\n"
# Header values cannot hold a line break (it would end the header): replaced by spaces.
_NO_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
_SUBSCRIPTION = "1"
_HEADERS = b"NATS/1.0\r\nNats-Msg-Id: %b\r\nLoadbay-Key: %b\r\n\r\n"


class NatsError(Exception):
    """The server refused something, or the connection broke."""


@dataclass(frozen=True)
class NatsAddress:
    host: str
    port: int
    tls: bool
    user: str | None
    password: str | None
    token: str | None

    @classmethod
    def from_url(cls, url: str) -> NatsAddress:
        """nats://[user:password@ | token@]host[:port], or tls://… for TLS."""
        parts = urlsplit(url)
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 4222,
            tls=parts.scheme == "tls",
            user=user if password is not None else None,
            password=password,
            token=user if password is None else None,
        )


class NatsPublisher(ConnectionPublisher):
    """Publishes to JetStream: a batch in one write, every message with a reply subject of
    its own, the acknowledgements counted as they come."""

    def __init__(self, url: str, stream: str, subjects: list[str]) -> None:
        super().__init__(partial(JetStreamConnection.open, url, stream, subjects))


class JetStreamConnection:
    """One connection to a NATS server, publishing to one stream (made if missing)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._inbox = f"_INBOX.{secrets.token_hex(11)}"
        self._max_payload = 1 << 20
        # The subjects published to, checked, and as sent.
        self._subjects: dict[str, bytes] = {}
        self._batch_number = 0
        self._batch: Acknowledgements | None = None
        self._replies = b""  # the current batch's reply subjects, but for the index after
        self._batch_tag = b""  # the current batch's number, as in its reply subjects
        # An acknowledgement of a stored message (or of a duplicate): `MSG <inbox>.<batch>.
        # <index> <sid> <size>`, then the stream's answer, {"stream":…,"seq":…}.
        self._stored_answer = re.compile(
            b"MSG "
            + re.escape(self._inbox.encode())
            + rb"\.(\d+)\.(\d+) "
            + _SUBSCRIPTION.encode()
            + rb' \d+\r\n\{"stream":[^\r\n]*\}\r\n'
        )
        self._requests: dict[str, asyncio.Future[tuple[str | None, bytes]]] = {}
        self._requests_made = 0
        self._broken: NatsError | None = None
        self._listening: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, stream: str, subjects: list[str]) -> JetStreamConnection:
        address = NatsAddress.from_url(url)
        async with asyncio.timeout(TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection(address.host, address.port)
            connection = cls(reader, writer)
            try:
                await connection._handshake(address)
                connection._listening = asyncio.create_task(connection._listen())
                await connection._ensure_stream(stream, subjects)
            except BaseException:
                await connection.close()
                raise
        return connection

    @property
    def is_open(self) -> bool:
        return self._broken is None and not self._writer.is_closing()

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish in order and wait for every acknowledgement; PartialPublish names how many
        of the first were stored when one was refused, or did not come in TIMEOUT_SECONDS."""
        if self._broken is not None:
            raise PartialPublish(0, self._broken)
        self._batch_number += 1
        replies = f"{self._inbox}.{self._batch_number}.".encode()
        commands, unsendable = [], None
        for index, message in enumerate(messages):
            try:
                commands.append(self._hpub(message, replies, index))
            except NatsError as why:
                # Sent up to it; it fails the batch there, once those before it are stored.
                unsendable = why
                break
        batch = self._batch = Acknowledgements(len(commands))
        self._replies, self._batch_tag = replies, b"%d" % self._batch_number
        try:
            self._writer.write(b"".join(commands))
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await self._writer.drain()
                await asyncio.shield(batch.complete)
        except Exception as error:
            if isinstance(error, TimeoutError):
                error = NatsError(f"JetStream did not acknowledge in {TIMEOUT_SECONDS:g} s")
            # Acknowledgements still to come would be counted against no batch: start afresh.
            self._break(error if isinstance(error, NatsError) else NatsError(str(error)))
            raise PartialPublish(batch.in_order(), error) from error
        finally:
            self._batch = None
        refused = batch.refused or unsendable
        if refused is not None:
            raise PartialPublish(batch.in_order(), refused)

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.wait([self._listening])  # a cancel of close() itself still goes through
        await hang_up(self._writer)

    def _hpub(self, message: Message, replies: bytes, index: int) -> bytes:
        """The message as HPUB to the reply subject `replies` + `index`, JetStream's
        Nats-Msg-Id (it drops a repeat) and our key in its headers; NatsError if it cannot be
        sent (its subject, its size). One bytes formatting a message: this runs per event."""
        subject_text, key, value, event_id = message
        subject = self._subjects.get(subject_text)
        if subject is None:
            if not _is_subject(subject_text):
                raise NatsError(
                    f"{subject_text!r} is not a NATS subject to publish to (no spaces, no "
                    "empty or wildcard tokens): check LOADBAY_EVENTS_SUBJECT"
                )
            subject = self._subjects[subject_text] = subject_text.encode()
        key = key.strip()
        if "\r" in key or "\n" in key:
            key = key.translate(_NO_NEWLINES)
        head = _HEADERS % (event_id.encode(), key.encode())
        total = len(head) + len(value)
        if total > self._max_payload:
            raise NatsError(_too_large(message, self._max_payload))
        return b"HPUB %b %b%d %d %d\r\n%b%b\r\n" % (
            subject,
            replies,
            index,
            len(head),
            total,
            head,
            value,
        )

    async def _handshake(self, address: NatsAddress) -> None:
        info = _info(await self._reader.readline())
        self._max_payload = int(info.get("max_payload", self._max_payload))
        tls = address.tls or bool(info.get("tls_required"))
        if tls:
            await self._writer.start_tls(ssl.create_default_context(), server_hostname=address.host)
        options: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "tls_required": tls,
            "name": "loadbay-relay",
            "lang": "python",
            "version": "loadbay",
            "protocol": 1,
            "headers": True,
            "no_responders": True,
        }
        if address.token is not None:
            options["auth_token"] = address.token
        elif address.user is not None:
            options["user"], options["pass"] = address.user, address.password
        self._writer.write(b"CONNECT " + orjson.dumps(options) + b"\r\nPING\r\n")
        while True:
            line = await self._reader.readline()
            if line.startswith(b"PONG"):
                break
            if line.startswith(b"-ERR"):
                raise NatsError(f"NATS: {line[5:].strip().decode(errors='replace')}")
            if not line:
                raise NatsError("NATS closed the connection")
        self._writer.write(f"SUB {self._inbox}.> {_SUBSCRIPTION}\r\n".encode())

    async def _ensure_stream(self, stream: str, subjects: list[str]) -> None:
        status, data = await self._request(f"$JS.API.STREAM.INFO.{stream}", b"")
        if status == "503":
            raise NatsError("NATS: JetStream is not enabled on this server (no responders)")
        answer = orjson.loads(data)
        if answer.get("error", {}).get("code") == 404:
            config = {"name": stream, "subjects": subjects}
            status, data = await self._request(
                f"$JS.API.STREAM.CREATE.{stream}", orjson.dumps(config)
            )
            if status == "503":
                raise NatsError("NATS: JetStream did not answer the stream's creation")
            answer = orjson.loads(data)
        if "error" in answer:
            raise NatsError(f"JetStream: {answer['error'].get('description', answer['error'])}")

    async def _request(self, subject: str, payload: bytes) -> tuple[str | None, bytes]:
        """Send to `subject`, await the answer on a reply subject of our inbox."""
        self._requests_made += 1
        reply = f"{self._inbox}.api.{self._requests_made}"
        answer = self._requests[reply] = asyncio.get_running_loop().create_future()
        try:
            self._writer.write(
                f"PUB {subject} {reply} {len(payload)}\r\n".encode() + payload + _CRLF
            )
            return await answer
        finally:
            del self._requests[reply]

    async def _listen(self) -> None:
        unread = b""
        try:
            while True:
                data = await self._reader.read(1 << 16)
                if not data:
                    raise NatsError("NATS closed the connection")
                unread = self._take(unread + data)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._break(error if isinstance(error, NatsError) else NatsError(f"NATS: {error}"))

    def _take(self, data: bytes) -> bytes:
        """Handle every whole operation in `data` (a batch's acknowledgements come thousands
        a read: parsed here without an await each); what is left of a partial one."""
        start = 0
        while True:
            if self._batch is not None:
                start = self._take_stored(data, start)
            if (end := data.find(_CRLF, start)) < 0:
                break
            line = data[start:end]
            if line.startswith((b"MSG ", b"HMSG ")):
                # MSG <subject> <sid> [reply] <size> | HMSG … <header size> <size>
                fields = line.split()
                body_end = end + 2 + int(fields[-1])
                if body_end + 2 > len(data):
                    break  # the rest of the body is still to come
                header_end = end + 2 + (int(fields[-2]) if line[0] == ord("H") else 0)
                status = _status(data[end + 2 : header_end]) if header_end > end + 2 else None
                self._on_message(fields[1], status, data[header_end:body_end])
                start = body_end + 2
                continue
            if line.startswith(b"PING"):
                self._writer.write(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise NatsError(f"NATS: {line[5:].strip().decode(errors='replace')}")
            start = end + 2  # +OK, PONG, INFO (cluster news): nothing to do
        return data[start:]

    def _take_stored(self, data: bytes, start: int) -> int:
        """The current batch's acknowledgements of stored messages from `start` on, settled
        together, one regular expression match each; where they end. Anything else (an
        error, a request's answer, the end of a read) is left to `_take`'s line by line."""
        batch, match, number = self._batch, self._stored_answer.match, self._batch_tag
        positions, end = [], start
        while (
            (found := match(data, end)) is not None
            and found[1] == number
            and data.find(b'"error"', end, found.end()) < 0
        ):
            positions.append(int(found[2]))
            end = found.end()
        if positions and batch is not None:
            batch.settle_stored(positions)
        return end

    def _on_message(self, subject: bytes, status: str | None, data: bytes) -> None:
        """An answer on our inbox: one message's acknowledgement, or a request's answer."""
        batch = self._batch
        if batch is not None and subject.startswith(self._replies):
            index = int(subject[len(self._replies) :])
            # The common answer, {"stream":…,"seq":…}, recognised without parsing it.
            if status is None and data.startswith(b'{"stream":') and b'"error"' not in data:
                batch.settle(index, index)
            else:
                batch.settle(index, index, _refusal(status, data))
            return
        request = self._requests.get(subject.decode())
        if request is not None and not request.done():
            request.set_result((status, data))
        # Else an answer to a batch given up already.

    def _break(self, error: NatsError) -> None:
        if self._broken is None:
            self._broken = error
        if self._batch is not None:
            self._batch.fail(error)
        for request in self._requests.values():
            if not request.done():
                request.set_exception(error)


def _info(line: bytes) -> dict[str, Any]:
    if not line.startswith(b"INFO "):
        raise NatsError(f"not a NATS server: it sent {line[:80]!r}")
    info: dict[str, Any] = orjson.loads(line[5:])
    return info


def _status(headers: bytes) -> str | None:
    """The status code of a header block's first line (`NATS/1.0 503`), if any."""
    first = headers.split(b"\r\n", 1)[0].split()
    return first[1].decode() if len(first) > 1 else None


def _refusal(status: str | None, data: bytes) -> NatsError | None:
    """None for a stored (or duplicate) message, else why JetStream did not store it."""
    if status == "503":
        return NatsError("JetStream: no stream takes this subject (no responders)")
    try:
        answer = orjson.loads(data)
    except orjson.JSONDecodeError:
        return NatsError(f"JetStream: unexpected answer {data[:200]!r}")
    if "error" in answer:
        return NatsError(f"JetStream: {answer['error'].get('description', answer['error'])}")
    return None


def _is_subject(subject: str) -> bool:
    tokens = subject.split(".")
    return all(t and t not in ("*", ">") and not any(c.isspace() for c in t) for t in tokens)


def _too_large(message: Message, max_payload: int) -> str:
    return (
        f"event {message.event_id} is larger than the server's max_payload ({max_payload} "
        "bytes): raise max_payload in the NATS server's configuration"
    )
