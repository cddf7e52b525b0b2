"""The remoting protocol: frames, ACL signatures, errors, and the client against a fake server.

Cases: JSON frame round trip and byte layout; binary (ROCKETMQ) header decoding; signature
vectors computed by hand (``printf DATA | openssl dgst -sha1 -hmac KEY -binary | base64``);
error messages naming address and request; concurrent requests answered out of order on one
connection; reconnect after the server drops the connection; timeout and refused connection
-> RemotingUnavailable; error codes -> RemotingError.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from agentprod_operator.rocketmq import remoting
from agentprod_operator.rocketmq.admin import RocketMQAdmin
from agentprod_operator.rocketmq.remoting import Command, RequestCode, ResponseCode

# --------------------------------------------------------------------------- frames


def test_json_frame_round_trip() -> None:
    command = Command(
        code=RequestCode.GET_CONSUME_STATS,
        opaque=42,
        ext_fields={"consumerGroup": "G", "topicList": "T;%RETRY%G_T", "ünï": "çødé"},
        body=b'{"x":1}\x00\xff',
    )
    frame = remoting.encode_frame(command)
    assert remoting.decode_frame(frame[4:]) == command


def test_json_frame_layout() -> None:
    frame = remoting.encode_frame(Command(code=105, opaque=7, ext_fields={"topic": "T"}, body=b"B"))
    total, mark = struct.unpack(">ii", frame[:8])
    header_len = mark & 0xFFFFFF
    assert total == len(frame) - 4 == 4 + header_len + 1
    assert mark >> 24 == 0  # JSON
    header = json.loads(frame[8 : 8 + header_len])
    assert header == {
        "code": 105, "language": "PYTHON", "version": 479, "opaque": 7, "flag": 0,
        "extFields": {"topic": "T"},
    }  # fmt: skip
    assert frame[8 + header_len :] == b"B"


def _binary_header(
    *, code: int, opaque: int, flag: int, remark: str, fields: dict[str, str]
) -> bytes:
    ext = b"".join(
        struct.pack(">h", len(k.encode()))
        + k.encode()
        + struct.pack(">i", len(v.encode()))
        + v.encode()
        for k, v in fields.items()
    )
    return (
        struct.pack(">hbhii", code, 0, 479, opaque, flag)
        + struct.pack(">i", len(remark.encode())) + remark.encode()
        + struct.pack(">i", len(ext)) + ext
    )  # fmt: skip


def test_binary_header_decoding() -> None:
    header = _binary_header(
        code=17, opaque=9, flag=1, remark="topic[T] not exist", fields={"offset": "12", "k": "vé"}
    )
    payload = struct.pack(">i", (1 << 24) | len(header)) + header + b"body"
    assert remoting.decode_frame(payload) == Command(
        code=17, opaque=9, flag=1, remark="topic[T] not exist",
        ext_fields={"offset": "12", "k": "vé"}, body=b"body", language="JAVA", version=479,
    )  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [b"\x00", struct.pack(">i", 100) + b"{}", struct.pack(">i", (7 << 24) | 2) + b"{}"],
)
def test_bad_frames_raise(payload: bytes) -> None:
    with pytest.raises(ValueError, match=r"frame|header|serialization"):
        remoting.decode_frame(payload)


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("fields", "body", "secret", "expected"),
    [
        # sorted keys AccessKey, queueId, topic -> data "ak" "0" "T1" + body "hello"
        ({"topic": "T1", "AccessKey": "ak", "queueId": "0"}, b"hello", "sk",
         "lGNPaz5tPpxzQSLxjrKCVOAxcqY="),
        # Signature is left out: data "rocketmq2" "0" "T", no body
        ({"topic": "T", "queueId": "0", "AccessKey": "rocketmq2", "Signature": "old"}, b"",
         "12345678", "BFnyzMhjz0AiEExA6jf8frVdCVU="),
    ],
)  # fmt: skip
def test_signature_vectors(fields: dict[str, str], body: bytes, secret: str, expected: str) -> None:
    assert remoting.sign(ext_fields=fields, body=body, secret_key=secret) == expected


# --------------------------------------------------------------------------- errors


def test_error_messages_name_address_and_request() -> None:
    request = remoting.describe_request(
        code=RequestCode.GET_ROUTEINFO_BY_TOPIC,
        ext_fields={"topic": "T", "AccessKey": "ak", "Signature": "s"},
    )
    assert request == "GET_ROUTEINFO_BY_TOPIC(topic=T)"  # never credentials
    error = remoting.RemotingError(addr="10.0.0.1:9876", request=request, code=17, remark="gone")
    assert str(error) == (
        "GET_ROUTEINFO_BY_TOPIC(topic=T) to 10.0.0.1:9876 failed: TOPIC_NOT_EXIST (17): gone"
    )
    down = remoting.RemotingUnavailable(addr="10.0.0.1:9876", request=request, remark="refused")
    assert isinstance(down, remoting.RemotingError)
    assert "10.0.0.1:9876 unavailable: refused" in str(down)
    assert remoting.describe_request(code=9999) == "9999()"


# --------------------------------------------------------------------------- client

Handler = Callable[[Command, asyncio.StreamWriter], Awaitable[None]]


class FakeServer:
    """Answers remoting frames with ``handler``; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def addr(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        tasks = set()
        try:
            while True:
                (length,) = struct.unpack(">i", await reader.readexactly(4))
                request = remoting.decode_frame(await reader.readexactly(length))
                task = asyncio.create_task(self.handler(request, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            writer.close()


def reply(request: Command, *, code: int = 0, remark: str = "", body: bytes = b"") -> bytes:
    return remoting.encode_frame(
        Command(code=code, opaque=request.opaque, flag=1, remark=remark, body=body)
    )


StartFake = Callable[[Handler], Awaitable[FakeServer]]


@pytest.fixture
async def fake() -> AsyncIterator[StartFake]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> FakeServer:
        fake = FakeServer(handler)
        fake.server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
        servers.append(fake.server)
        return fake

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_concurrent_requests_share_one_connection_and_match_opaque(fake: StartFake) -> None:
    async def handler(request: Command, writer: asyncio.StreamWriter) -> None:
        delay = float(request.ext_fields["delay"])
        await asyncio.sleep(delay)  # later requests answered first
        writer.write(reply(request, body=request.ext_fields["delay"].encode()))

    server = await fake(handler)
    client = remoting.RemotingClient(timeout=5)
    delays = ["0.3", "0.2", "0.1", "0"]
    replies = await asyncio.gather(
        *(client.invoke(addr=server.addr, code=105, ext_fields={"delay": d}) for d in delays)
    )
    assert [r.body.decode() for r in replies] == delays
    assert server.connections == 1
    await client.close()


async def test_error_code_raises_remoting_error(fake: StartFake) -> None:
    async def handler(request: Command, writer: asyncio.StreamWriter) -> None:
        writer.write(reply(request, code=17, remark="No topic route info in name server"))

    server = await fake(handler)
    async with asyncio.timeout(10):
        client = remoting.RemotingClient()
        with pytest.raises(remoting.RemotingError) as caught:
            await client.invoke(addr=server.addr, code=105, ext_fields={"topic": "T"})
        assert caught.value.code == ResponseCode.TOPIC_NOT_EXIST
        assert server.addr in str(caught.value)
        assert "GET_ROUTEINFO_BY_TOPIC(topic=T)" in str(caught.value)
        accepted = await client.invoke(addr=server.addr, code=105, accept=(0, 17))
        assert accepted.code == 17
        await client.close()


async def test_reconnects_after_the_server_drops_the_connection(fake: StartFake) -> None:
    async def handler(request: Command, writer: asyncio.StreamWriter) -> None:
        writer.write(reply(request, body=b"ok"))
        await writer.drain()
        writer.close()  # like an idle-timeout close right after answering

    server = await fake(handler)
    client = remoting.RemotingClient(timeout=5)
    for _ in range(3):
        assert (await client.invoke(addr=server.addr, code=106)).body == b"ok"
        await asyncio.sleep(0.05)
    assert server.connections == 3
    await client.close()


async def test_timeout_is_unavailable_and_names_the_address(fake: StartFake) -> None:
    async def handler(request: Command, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await fake(handler)
    client = remoting.RemotingClient(timeout=0.2)
    with pytest.raises(remoting.RemotingUnavailable, match=r"no reply within 0\.2s") as caught:
        await client.invoke(addr=server.addr, code=RequestCode.GET_CONSUME_STATS)
    assert caught.value.addr == server.addr
    assert f"GET_CONSUME_STATS() to {server.addr} unavailable" in str(caught.value)
    await client.close()


async def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = remoting.RemotingClient(timeout=2)
    with pytest.raises(remoting.RemotingUnavailable, match=f"127.0.0.1:{port}"):
        await client.invoke(addr=f"127.0.0.1:{port}", code=106)
    with pytest.raises(remoting.RemotingUnavailable, match="bad address"):
        await client.invoke(addr="no-port", code=106)
    await client.close()


async def test_signed_requests_carry_access_key_and_signature(fake: StartFake) -> None:
    seen: list[Command] = []

    async def handler(request: Command, writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        writer.write(reply(request))

    server = await fake(handler)
    client = remoting.RemotingClient(access_key="ak", secret_key="sk")
    await client.invoke(
        addr=server.addr, code=30, ext_fields={"topic": "T1", "queueId": "0"}, body=b"hello"
    )
    fields = dict(seen[0].ext_fields)
    assert fields["AccessKey"] == "ak"
    assert fields["Signature"] == "lGNPaz5tPpxzQSLxjrKCVOAxcqY="  # the first vector above
    unsigned = remoting.RemotingClient()
    await unsigned.invoke(addr=server.addr, code=30, ext_fields={"topic": "T1"})
    assert "AccessKey" not in seen[1].ext_fields
    await client.close()
    await unsigned.close()


# --------------------------------------------------------------------------- admin fallback


@pytest.mark.parametrize(
    "consume_stats_reply",
    [
        (ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, b""),  # an error code meaning "no offsets"
        (ResponseCode.SUCCESS, b'{"consumeTps":0.0,"offsetTable":{}}'),  # an empty table
    ],
)
async def test_lag_falls_back_to_max_offsets_without_group_offsets(
    fake: StartFake, consume_stats_reply: tuple[int, bytes]
) -> None:
    """One fake process plays name server and broker: the broker has no offsets for the group,
    so every message of the topic is lag (Σ max offsets).
    """
    addr: list[str] = []

    async def handler(request: Command, writer: asyncio.StreamWriter) -> None:
        if request.code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            body = json.dumps({
                "brokerDatas": [{"brokerAddrs": {"0": addr[0]}, "brokerName": "broker-a",
                                 "cluster": "C"}],
                "queueDatas": [{"brokerName": "broker-a", "perm": 6, "readQueueNums": 2,
                                "writeQueueNums": 2, "topicSysFlag": 0}],
            }).encode()  # fmt: skip
            writer.write(reply(request, body=body))
        elif request.code == RequestCode.GET_CONSUME_STATS:
            assert request.ext_fields["topicList"] == "T;%RETRY%G_T;%RETRY%G+T"
            code, body = consume_stats_reply
            writer.write(reply(request, code=code, body=body))
        elif request.code == RequestCode.GET_TOPIC_STATS_INFO:
            body = (
                b'{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:'
                b'{"maxOffset":3,"minOffset":1},{"brokerName":"broker-a","queueId":1,'
                b'"topic":"T"}:{"maxOffset":4,"minOffset":0}}}'
            )
            writer.write(reply(request, body=body))
        else:
            writer.write(reply(request, code=ResponseCode.REQUEST_CODE_NOT_SUPPORTED))

    server = await fake(handler)
    addr.append(server.addr)
    async with RocketMQAdmin(name_servers=server.addr) as admin:
        stats = await admin.consume_stats(group="G", topic="T")
    assert stats.lag == 7  # max offsets minus 0
    assert stats.fallback_brokers == ("broker-a",)
    assert [q.consumer_offset for q in stats.queues] == [0, 0]
