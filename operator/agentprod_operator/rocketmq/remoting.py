"""RocketMQ's remoting protocol (TCP, used by name servers and brokers for admin requests).

Pure parts: :func:`encode_frame` / :func:`decode_frame` (the wire format) and :func:`sign`
(ACL request signature). I/O part: :class:`RemotingClient`, one asyncio connection per address
shared by concurrent requests (replies are matched by ``opaque``), re-opened after a failure.
Failures are :class:`RemotingError` (the server answered with an error code) or
:class:`RemotingUnavailable` (no connection, connection lost, or no reply in time); both name
the address and the request. Used by :mod:`agentprod_operator.rocketmq_admin`.

Frame (big-endian): ``int32 length`` (of the rest), ``int32 serType << 24 | headerLength``,
header, body. We send JSON headers; replies may use JSON (0) or the binary ROCKETMQ (1) header.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import itertools
import json
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

__all__ = [
    "MAX_FRAME",
    "Command",
    "RemotingClient",
    "RemotingError",
    "RemotingUnavailable",
    "RequestCode",
    "ResponseCode",
    "decode_frame",
    "encode_frame",
    "sign",
]

MAX_FRAME = 16 * 1024 * 1024  # the servers' NettyDecoder limit
MQ_VERSION = 479  # MQVersion ordinal of 5.3.3; >= 401 also makes name servers send standard JSON
RESPONSE_FLAG = 1
_JSON, _ROCKETMQ = 0, 1
_LANGUAGES = ("JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO",
              "PHP", "OMS", "RUST", "NODE_JS")  # fmt: skip
_SECRET_FIELDS = frozenset({"AccessKey", "Signature", "SecurityToken"})


class RequestCode(enum.IntEnum):
    """The request codes this package sends (``RequestCode.java``)."""

    UPDATE_AND_CREATE_TOPIC = 17
    GET_ALL_TOPIC_CONFIG = 21
    GET_ROUTEINFO_BY_TOPIC = 105
    GET_BROKER_CLUSTER_INFO = 106
    UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200
    GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201
    GET_TOPIC_STATS_INFO = 202
    DELETE_SUBSCRIPTIONGROUP = 207
    GET_CONSUME_STATS = 208
    DELETE_TOPIC_IN_BROKER = 215
    DELETE_TOPIC_IN_NAMESRV = 216


class ResponseCode(enum.IntEnum):
    """Response codes worth a name (``RemotingSysResponseCode.java``, ``ResponseCode.java``)."""

    SUCCESS = 0
    SYSTEM_ERROR = 1
    SYSTEM_BUSY = 2
    REQUEST_CODE_NOT_SUPPORTED = 3
    SERVICE_NOT_AVAILABLE = 14
    NO_PERMISSION = 16
    TOPIC_NOT_EXIST = 17
    TOPIC_EXIST_ALREADY = 18
    QUERY_NOT_FOUND = 22
    SUBSCRIPTION_NOT_EXIST = 24
    SUBSCRIPTION_GROUP_NOT_EXIST = 26
    INVALID_PARAMETER = 29
    CONSUMER_NOT_ONLINE = 206


def _name(enum_type: type[enum.IntEnum], code: int) -> str:
    try:
        return enum_type(code).name
    except ValueError:
        return str(code)


def describe_request(*, code: int, ext_fields: Mapping[str, str] | None = None) -> str:
    """``GET_CONSUME_STATS(consumerGroup=G, topic=T)``: code name and fields, never credentials."""
    shown = ", ".join(f"{k}={v}" for k, v in (ext_fields or {}).items() if k not in _SECRET_FIELDS)
    return f"{_name(RequestCode, code)}({shown})"


class RemotingError(Exception):
    """A server answered with an error ``code`` (None for :class:`RemotingUnavailable`)."""

    def __init__(self, *, addr: str, request: str, code: int | None, remark: str) -> None:
        self.addr = addr
        self.request = request
        self.code = code
        self.remark = remark
        super().__init__(self._message())

    def _message(self) -> str:
        code = f"{_name(ResponseCode, self.code)} ({self.code})" if self.code is not None else "?"
        return f"{self.request} to {self.addr} failed: {code}: {self.remark}"


class RemotingUnavailable(RemotingError):
    """No answer: connection refused or lost, or no reply within the timeout (retry later)."""

    def __init__(self, *, addr: str, request: str, remark: str) -> None:
        super().__init__(addr=addr, request=request, code=None, remark=remark)

    def _message(self) -> str:
        return f"{self.request} to {self.addr} unavailable: {self.remark}"


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Command:
    """One request or response; ``flag`` bit 0 marks a response."""

    code: int
    opaque: int
    flag: int = 0
    remark: str = ""
    ext_fields: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    language: str = "PYTHON"
    version: int = MQ_VERSION

    @property
    def is_response(self) -> bool:
        return bool(self.flag & RESPONSE_FLAG)


def encode_frame(command: Command) -> bytes:
    """The full frame (length prefix included) with a JSON header."""
    header: dict[str, object] = {
        "code": command.code,
        "language": command.language,
        "version": command.version,
        "opaque": command.opaque,
        "flag": command.flag,
        "extFields": dict(command.ext_fields),
    }
    if command.remark:
        header["remark"] = command.remark
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    total = 4 + len(raw) + len(command.body)
    if total > MAX_FRAME:
        raise ValueError(f"frame of {total} bytes exceeds the {MAX_FRAME}-byte limit")
    return struct.pack(">ii", total, (_JSON << 24) | len(raw)) + raw + command.body


def decode_frame(payload: bytes) -> Command:
    """Decode a frame without its 4-byte length prefix; JSON or binary (ROCKETMQ) header.

    Whatever the bytes, a frame that cannot be decoded raises `ValueError` (never another
    exception: the connection's reader drops the connection on it).
    """
    if len(payload) < 4:
        raise ValueError(f"frame of {len(payload)} bytes is shorter than its header mark")
    (mark,) = struct.unpack_from(">i", payload)
    ser_type, header_len = (mark >> 24) & 0xFF, mark & 0xFFFFFF
    header, body = payload[4 : 4 + header_len], payload[4 + header_len :]
    if len(header) != header_len:
        raise ValueError(f"header of {header_len} bytes overruns a {len(payload)}-byte frame")
    try:
        if ser_type == _JSON:
            return _decode_json_header(header, body)
        if ser_type == _ROCKETMQ:
            return _decode_binary_header(header, body)
    except struct.error as exc:
        raise ValueError(f"truncated binary header: {exc}") from None
    except RecursionError:
        raise ValueError("header nested too deeply") from None
    raise ValueError(f"unknown serialization type {ser_type}")


def _header_int(fields: Mapping[str, object], name: str, default: int) -> int:
    value = fields.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"header field {name} is not an integer: {value!r:.40}")
    return int(value)  # a non-numeric string raises ValueError too


def _decode_json_header(header: bytes, body: bytes) -> Command:
    fields = json.loads(header)  # bad UTF-8 or JSON: a ValueError
    if not isinstance(fields, dict):
        raise ValueError(f"JSON header is not an object: {type(fields).__name__}")
    ext = fields.get("extFields") or {}
    if not isinstance(ext, dict):
        raise ValueError(f"header field extFields is not an object: {type(ext).__name__}")
    language = fields.get("language")
    return Command(
        code=_header_int(fields, "code", -1),
        opaque=_header_int(fields, "opaque", 0),
        flag=_header_int(fields, "flag", 0),
        remark=str(fields.get("remark") or ""),
        ext_fields={str(k): str(v) for k, v in ext.items()},
        body=body,
        language=str(language) if language is not None else "JAVA",
        version=_header_int(fields, "version", 0),
    )


def _decode_binary_header(header: bytes, body: bytes) -> Command:
    """``RocketMQSerializable.rocketMQProtocolDecode``: fixed fields, remark, extFields."""
    code, language, version, opaque, flag = struct.unpack_from(">hbhii", header)
    pos = 13

    def text(size_format: str, limit: int) -> str:
        nonlocal pos
        (size,) = struct.unpack_from(size_format, header, pos)
        pos += struct.calcsize(size_format)
        if not 0 <= size <= limit - pos:
            raise ValueError(f"binary header: a {size}-byte string at offset {pos} overruns it")
        value = header[pos : pos + size].decode()
        pos += size
        return value

    remark = text(">i", len(header))
    (ext_len,) = struct.unpack_from(">i", header, pos)
    pos += 4
    end = pos + ext_len
    if not pos <= end <= len(header):
        raise ValueError(f"binary header: extFields of {ext_len} bytes overrun it")
    ext_fields: dict[str, str] = {}
    while pos < end:
        key = text(">h", end)
        ext_fields[key] = text(">i", end)
    known = 0 <= language < len(_LANGUAGES)
    return Command(
        code=code,
        opaque=opaque,
        flag=flag,
        remark=remark,
        ext_fields=ext_fields,
        body=body,
        language=_LANGUAGES[language] if known else str(language),
        version=version,
    )


def sign(*, ext_fields: Mapping[str, str], body: bytes, secret_key: str) -> str:
    """ACL signature (``AclClientRPCHook``): base64 HMAC-SHA1 over the field values sorted by
    key (``Signature`` excluded), UTF-8, followed by the body. ``AccessKey`` must be in the fields.
    """
    values = "".join(ext_fields[k] for k in sorted(ext_fields) if k != "Signature")
    digest = hmac.new(secret_key.encode(), values.encode() + body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# --------------------------------------------------------------------------- connections


class _ConnectionLost(Exception):
    """The connection closed or broke before the reply arrived."""


class _Connection:
    """One TCP connection; a reader task resolves the futures of in-flight requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: dict[int, asyncio.Future[Command]] = {}
        self.broken: str | None = None
        self.reader_task = asyncio.create_task(self._read(reader))

    async def request(self, command: Command) -> Command:
        if self.broken is not None:
            raise _ConnectionLost(self.broken)
        future: asyncio.Future[Command] = asyncio.get_running_loop().create_future()
        self.pending[command.opaque] = future
        try:
            self.writer.write(encode_frame(command))
            await self.writer.drain()
            return await future
        except OSError as exc:
            self._break(f"write failed: {exc}")
            raise _ConnectionLost(self.broken) from exc
        finally:
            self.pending.pop(command.opaque, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (length,) = struct.unpack(">i", await reader.readexactly(4))
                if not 4 <= length <= MAX_FRAME:
                    raise ValueError(f"bad frame length {length}")
                reply = decode_frame(await reader.readexactly(length))
                future = self.pending.get(reply.opaque)
                if reply.is_response and future is not None and not future.done():
                    future.set_result(reply)
        except asyncio.IncompleteReadError:
            self._break("connection closed by the server")
        except (OSError, ValueError) as exc:  # ValueError: a frame we cannot decode
            self._break(f"connection failed: {exc}")

    def _break(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
        for future in self.pending.values():
            if not future.done():
                future.set_exception(_ConnectionLost(reason))
        self.writer.close()

    async def close(self) -> None:
        self._break("connection closed by the client")
        self.reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await self.reader_task
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class RemotingClient:
    """Requests to name servers and brokers by ``host:port``; signs them when given an access key.

    Connections are opened lazily, shared by concurrent requests and replaced after a failure;
    a request that finds a reused connection dead is sent once more on a new one. Bind one
    client to one event loop; :meth:`close` it when done.
    """

    def __init__(self, *, access_key: str = "", secret_key: str = "", timeout: float = 5.0) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.timeout = timeout
        self._connections: dict[str, _Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._opaques = itertools.count(1)

    async def invoke(
        self,
        *,
        addr: str,
        code: int,
        ext_fields: Mapping[str, str] | None = None,
        body: bytes = b"",
        accept: Collection[int] = (ResponseCode.SUCCESS,),
    ) -> Command:
        """Send one request and return the reply; :class:`RemotingError` if its code is not in
        ``accept``, :class:`RemotingUnavailable` if there is no reply within ``self.timeout``.
        """
        fields = dict(ext_fields or {})
        request = describe_request(code=code, ext_fields=fields)
        if self.access_key:
            fields["AccessKey"] = self.access_key
            fields["Signature"] = sign(ext_fields=fields, body=body, secret_key=self.secret_key)
        limit = self.timeout
        try:
            async with asyncio.timeout(limit):
                reply = await self._send(addr=addr, code=code, fields=fields, body=body)
        except TimeoutError:
            raise RemotingUnavailable(
                addr=addr, request=request, remark=f"no reply within {limit:g}s"
            ) from None
        except (OSError, _ConnectionLost) as exc:
            raise RemotingUnavailable(addr=addr, request=request, remark=str(exc)) from exc
        if reply.code not in accept:
            raise RemotingError(addr=addr, request=request, code=reply.code, remark=reply.remark)
        return reply

    async def _send(self, *, addr: str, code: int, fields: dict[str, str], body: bytes) -> Command:
        for attempt in range(2):
            connection, fresh = await self._connection(addr)
            command = Command(code=code, opaque=self._next_opaque(), ext_fields=fields, body=body)
            try:
                return await connection.request(command)
            except _ConnectionLost:
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    def _next_opaque(self) -> int:
        return next(self._opaques) % 0x7FFFFFFF + 1

    async def _connection(self, addr: str) -> tuple[_Connection, bool]:
        """The open connection to ``addr`` and whether it was opened by this call."""
        lock = self._locks.setdefault(addr, asyncio.Lock())
        async with lock:
            current = self._connections.get(addr)
            if current is not None and current.broken is None:
                return current, False
            if current is not None:
                await current.close()
            host, _, port = addr.strip().rpartition(":")
            if not host or not port.isdigit():
                raise OSError(f"bad address {addr!r} (want host:port)")
            reader, writer = await asyncio.open_connection(host, int(port))
            connection = _Connection(reader, writer)
            self._connections[addr] = connection
            return connection, True

    async def close(self) -> None:
        """Close every connection; in-flight requests fail with :class:`RemotingUnavailable`."""
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.close()
