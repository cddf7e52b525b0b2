"""`agentprod submit` turns HTTP and connection failures into one message naming the URL and
exit 2 — never a traceback. The servers here are plain local HTTP servers standing in for what
a wrong `--url` can point at (a closed port, a proxy's HTML error page, a non-agentprod app)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from agentprod import cli


class _Scripted(http.server.BaseHTTPRequestHandler):
    post: tuple[int, str, bytes] = (202, "application/json", b'{"task_id": "t1"}')
    get: tuple[int, str, bytes] = (200, "application/json", b'{"status": "done"}')

    def _answer(self, answer: tuple[int, str, bytes]) -> None:
        status, kind, body = answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(self.post)

    def do_GET(self) -> None:
        self._answer(self.get)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _submit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["submit", "hello", *args])
    err = capsys.readouterr().err
    return code, err


def test_a_closed_port_names_the_url_and_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, err = _submit(capsys, "--url", url)
    assert code == 2
    assert err.startswith(f"agentprod submit: cannot reach {url} (--url or AGENTPROD_URL)")
    assert "Traceback" not in err


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://127.0.0.1/", "http://[::1"])
def test_an_unusable_url_names_the_flag(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, err = _submit(capsys, "--url", url)
    assert code == 2
    assert err.startswith(f"agentprod submit: --url {url!r} is not a usable http(s) URL")


@pytest.mark.parametrize(
    ("step", "answer", "flags", "expected"),
    [
        pytest.param(
            "post", (502, "text/html", b"<html>Bad Gateway</html>"), [],
            ["POST /tasks answered 502: <html>Bad Gateway</html>"], id="error-status-with-body",
        ),
        pytest.param(
            "post", (202, "text/plain", b"accepted"), ["--no-wait"],
            ["POST /tasks at {url}/tasks answered 202 with no JSON object",
             "is --url an agentprod API?"], id="non-json-answer",
        ),
        pytest.param(
            "get", (500, "application/json", b'{"detail": "boom"}'), [],
            ['GET /tasks/t1 answered 500: {"detail": "boom"}'], id="failing-poll",
        ),
    ],
)  # fmt: skip
def test_a_bad_answer_is_one_message(
    capsys: pytest.CaptureFixture[str],
    server: tuple[str, type[_Scripted]],
    step: str,
    answer: tuple[int, str, bytes],
    flags: list[str],
    expected: list[str],
) -> None:
    url, handler = server
    setattr(handler, step, answer)
    code, err = _submit(capsys, "--url", url, *flags)
    assert code == 2
    for text in expected:
        assert text.replace("{url}", url) in err
    assert "Traceback" not in err


def test_a_good_exchange_still_prints_the_view(
    capsys: pytest.CaptureFixture[str], server: tuple[str, type[_Scripted]]
) -> None:
    url, _ = server
    assert cli.main(["submit", "hello", "--url", url]) == 0
    assert '"status": "done"' in capsys.readouterr().out
