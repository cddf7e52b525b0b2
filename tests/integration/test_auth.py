"""API keys, tenants, limits, headers and body bounds on the real stack (RocketMQ + Redis).

One API with `API_AUTH=required` (the default outside `agentprod dev`) and one worker; the keys
are made and revoked with the real `agentprod keys` command against the same Redis.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid

import httpx
import psutil
import pytest
from harness.apps import AGENTPROD, AgentprodProcess, free_port
from harness.redis import RedisServer

from tests.integration.helpers import Launch, bearer, make_key


@pytest.fixture
def api(launch: Launch) -> AgentprodProcess:
    launch("worker", AGENT="sleep", WORKER_CONCURRENCY="4")
    return launch("api", API_AUTH="required", MAX_CONTENT_BYTES="65536")


def wait_finished(client: httpx.Client, task_id: str, key: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/tasks/{task_id}", headers=bearer(key)).json()["status"]
        if status in ("done", "failed"):
            return str(status)
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish in {timeout}s")


def test_keys_tenants_and_revocation(api: AgentprodProcess, redis_server: RedisServer) -> None:
    alice = make_key(redis_server, "alice", "--name", "ci")
    bob = make_key(redis_server, "bob")
    body = {"user_id": "u1", "content": "hello", "metadata": {"sleep_seconds": 0.01}}
    with httpx.Client(base_url=api.url, timeout=10) as client:
        missing = client.post("/tasks", json=body)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert missing.json()["detail"][0]["field"] == "Authorization"
        forged = alice["key"][:-4] + "AAAA"
        assert client.post("/tasks", json=body, headers=bearer(forged)).status_code == 401
        assert client.post("/tasks", json=body, headers=bearer("nonsense")).status_code == 401

        accepted = client.post("/tasks", json=body, headers={"X-API-Key": alice["key"]})
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        assert wait_finished(client, task_id, alice["key"]) == "done"
        # Bob cannot tell Alice's task from one that does not exist.
        theirs = client.get(f"/tasks/{task_id}", headers=bearer(bob["key"]))
        nothing = client.get(f"/tasks/{uuid.uuid4()}", headers=bearer(bob["key"]))
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json()["detail"][0]["type"] == nothing.json()["detail"][0]["type"]

        # The same Idempotency-Key in two tenants is two tasks, never a replay of the other's.
        replay = {"Idempotency-Key": "same-key"}
        first = client.post("/tasks", json=body, headers=bearer(alice["key"]) | replay)
        second = client.post("/tasks", json=body, headers=bearer(bob["key"]) | replay)
        again = client.post("/tasks", json=body, headers=bearer(alice["key"]) | replay)
        assert first.status_code == second.status_code == again.status_code == 202
        assert first.json()["task_id"] == again.json()["task_id"] != second.json()["task_id"]

        listed = subprocess.run(
            [AGENTPROD, "keys", "list", "--json"],
            env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        rows = {row["key_id"]: row for row in json.loads(listed.stdout)}
        assert rows[alice["key_id"]]["tenant"] == "alice"
        assert alice["key"] not in listed.stdout  # only ids and digests are kept
        subprocess.run(
            [AGENTPROD, "keys", "revoke", alice["key_id"]],
            env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
        )
        revoked = client.get(f"/tasks/{task_id}", headers=bearer(alice["key"]))
        assert revoked.status_code == 401


def test_bad_key_flags_are_named(redis_server: RedisServer) -> None:
    done = subprocess.run(
        [AGENTPROD, "keys", "create", "--tenant", "ok", "--rate", "lots"],
        env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--rate" in done.stderr


def test_rate_limit_answers_429_with_retry_after_and_recovers(
    api: AgentprodProcess, redis_server: RedisServer
) -> None:
    key = make_key(redis_server, "limited", "--rate", "5/2 second")["key"]
    with httpx.Client(base_url=api.url, timeout=10, headers=bearer(key)) as client:
        answers = [client.get("/models") for _ in range(8)]
        codes = [answer.status_code for answer in answers]
        assert codes[:5] == [200] * 5, codes
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.json()["detail"][0]["type"] == "rate_limited"
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 4
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert answers[0].headers["RateLimit-Limit"] == "5"
        assert int(answers[0].headers["X-RateLimit-Remaining"]) == 4
        time.sleep(retry_after + 0.2)
        assert client.get("/models").status_code == 200


def test_queued_task_cap_per_tenant(api: AgentprodProcess, redis_server: RedisServer) -> None:
    key = make_key(redis_server, "capped", "--max-queued", "2")["key"]
    slow = {"user_id": "u", "content": "x", "metadata": {"sleep_seconds": 1.0}}
    with httpx.Client(base_url=api.url, timeout=10, headers=bearer(key)) as client:
        ids = [client.post("/tasks", json=slow).json()["task_id"] for _ in range(2)]
        over = client.post("/tasks", json=slow)
        assert over.status_code == 429, over.text
        assert over.json()["detail"][0] == {
            "field": "tenant",
            "msg": over.json()["detail"][0]["msg"],
            "type": "queued_cap",
        }
        assert "Retry-After" in over.headers
        for task_id in ids:
            assert wait_finished(client, task_id, key) == "done"
        assert client.post("/tasks", json=slow).status_code == 202


def test_security_headers_and_protected_docs(
    api: AgentprodProcess, redis_server: RedisServer
) -> None:
    key = make_key(redis_server, "docs")["key"]
    with httpx.Client(base_url=api.url, timeout=10) as client:
        for answer in (
            client.get("/healthz"),
            client.get("/tasks/x"),
            client.get(f"/tasks/{uuid.uuid4()}", headers=bearer(key)),
        ):
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.headers["X-Frame-Options"] == "DENY"
            assert answer.headers["Referrer-Policy"] == "no-referrer"
            assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert client.get("/readyz").status_code == 200  # probes stay open
        for path in ("/docs", "/openapi.json", "/metrics"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=bearer(key)).status_code == 200, path
        docs = client.get("/docs", headers=bearer(key))
        assert (
            "script-src https://cdn.jsdelivr.net 'sha256-"
            in docs.headers["Content-Security-Policy"]
        )
        schema = client.get("/openapi.json", headers=bearer(key)).json()
        agent = schema["components"]["schemas"]["TaskRequest"]["properties"]["agent"]
        assert "sleep" in agent["anyOf"][0]["enum"]
        assert {"401", "429", "503", "413", "422", "400"} <= set(
            schema["paths"]["/tasks"]["post"]["responses"]
        )


def test_chunked_body_over_the_limit_is_refused_unbuffered(
    api: AgentprodProcess, redis_server: RedisServer
) -> None:
    """20 MB sent chunked (no Content-Length): a 413 the client reads, RSS stays flat."""
    key = make_key(redis_server, "big")["key"]
    process = psutil.Process(api.process.pid)
    before = process.memory_info().rss
    chunk = b"x" * 65536
    head = (
        "POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=20) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < 20 * 1024 * 1024:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has answered
        received = b""
        while b"}]}" not in received:
            part = sock.recv(65536)
            if not part:
                break
            received += part
        answer = received.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"field":"body"' in answer
    grown = process.memory_info().rss - before
    assert grown < 15 * 1024 * 1024, f"API RSS grew {grown / 1e6:.1f} MB"


def test_declared_oversize_body_gets_a_readable_413(api: AgentprodProcess) -> None:
    with httpx.Client(base_url=api.url, timeout=20) as client:
        answer = client.post(
            "/tasks", content=b"{" + b" " * (3 * 1024 * 1024) + b"}", headers=bearer("k")
        )
    assert answer.status_code == 413
    assert answer.json()["detail"][0]["type"] == "too_large"


def test_metrics_on_their_own_port_need_no_key(launch: Launch) -> None:
    port = free_port()
    api = launch("api", API_AUTH="required", API_METRICS_PORT=str(port))
    assert httpx.get(f"{api.url}/metrics").status_code == 404  # not served on the API port
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert "agentprod_" in scraped.text
