"""CLI for the developer services: ``PYTHONPATH=hack python -m harness up|down|status|jars|deps``
(and ``schemas``: the JSON schemas the unit tests validate against; ``llm-deps|llm-up|llm-down``:
the local llama.cpp model server, see harness/llm.py; ``system-deps``: every install step, in
two lanes, see harness/lanes.py; ``beside-installs CMD...``: those steps in the background while
the commands run, as `make test` does).

``up`` prints the endpoints on stdout in ``.env`` syntax (progress goes to stderr), so
``python -m harness up > .env.local`` works. State lives in ``<repo>/.cache/services``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.paths import cache_dir, state_dir
from harness.processes import ServiceError
from harness.redis import RedisServer, ensure_redis_server, ping
from harness.rocketmq import RocketMQ, RocketMQPorts, ensure_jars, jars_dir

REDIS_PORT = 6379
DEFAULT_TOPICS = ("TopicTest", "TopicTest-high", "TopicResult")  # -high: priority tasks
DEFAULT_GROUP = "GID_AGENT_PYTHON"
CACHE_REFRESH_SECONDS = 5


def _say(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


def _redis() -> RedisServer:
    return RedisServer(home=state_dir() / "services" / "redis", port=REDIS_PORT)


def _rocketmq(*, fetch: bool) -> RocketMQ:
    lib = ensure_jars(cache=cache_dir()) if fetch else jars_dir(cache=cache_dir())
    return RocketMQ(
        home=state_dir() / "services" / "rocketmq",
        lib=lib,
        ports=RocketMQPorts(),
        cache_refresh_seconds=CACHE_REFRESH_SECONDS,
    )


def _print_env(*, redis: RedisServer, mq: RocketMQ) -> None:
    print(f"REDIS_URL={redis.url}")
    print(f"MQ_ENDPOINT={mq.endpoint}")
    print(f"MQ_NAMESRV={mq.namesrv_addr}")


def cmd_up() -> None:
    """Start Redis and RocketMQ (idempotent), ensure default topics/group, print endpoints."""
    redis = _redis()
    mq = _rocketmq(fetch=True)
    redis.check_port_free()
    mq.check_ports_free()
    if redis.running:
        _say(f"redis already running (pid {redis.pid})")
    else:
        t0 = time.monotonic()
        redis.start()
        _say(f"redis ready on {redis.url} in {time.monotonic() - t0:.1f}s")
    if mq.running:
        mq.wait_ready(timeout=240)
        _say(f"rocketmq already running (pids {mq.pids()})")
    else:
        t0 = time.monotonic()
        mq.start(timeout=240)
        _say(f"rocketmq ready on {mq.endpoint} in {time.monotonic() - t0:.1f}s")
    for topic in DEFAULT_TOPICS:
        mq.create_topic(topic, queues=8, message_type="NORMAL")
    mq.create_group(DEFAULT_GROUP, max_retries=16)
    _say(f"topics {', '.join(DEFAULT_TOPICS)} and group {DEFAULT_GROUP} present")
    _print_env(redis=redis, mq=mq)


def cmd_down() -> None:
    """Stop everything recorded in the pidfiles (data is kept)."""
    mq = _rocketmq(fetch=False)
    if mq.running or any(mq.pids().values()):
        mq.stop()
        _say("rocketmq stopped")
    redis = _redis()
    if redis.running:
        redis.stop()
        _say("redis stopped")


def cmd_status() -> int:
    """Print what runs; exit 0 if everything is up and answering, 1 otherwise."""
    redis = _redis()
    mq = _rocketmq(fetch=False)

    redis_ok = redis.running and ping(port=redis.port)
    print(f"redis     pid={redis.pid} {'ready' if redis_ok else 'down'} {redis.url}")
    pids = mq.pids()
    mq_ok = mq.running and mq.ready()
    print(
        f"rocketmq  namesrv pid={pids['namesrv']} proxy pid={pids['proxy']} "
        f"{'ready' if mq_ok else 'down'} endpoint={mq.endpoint} namesrv={mq.namesrv_addr}"
    )
    print(f"state     {state_dir() / 'services'}")
    return 0 if redis_ok and mq_ok else 1


def cmd_deps() -> None:
    """Install redis-server if missing (root only) and fetch the jars; print both locations."""
    print(f"redis-server {ensure_redis_server()}")
    print(f"rocketmq-lib {ensure_jars(cache=cache_dir())}")


def cmd_jars() -> None:
    """Fetch the RocketMQ jars if needed and print the lib directory."""
    print(ensure_jars(cache=cache_dir()))


def cmd_schemas() -> None:
    """Fetch the JSON schemas the tests validate against (skaffold.yaml) and print them."""
    from harness.schemas import ensure_skaffold_schema

    print(f"skaffold-schema {ensure_skaffold_schema(cache=cache_dir())}")


def cmd_cluster_up() -> None:
    """Control plane + one real node (containerd, kubelet, kube-proxy, CoreDNS), images
    built from the Dockerfiles and imported, the CRD installed."""
    from harness.cluster import LocalCluster
    from harness.kubernetes import cluster_home

    cluster = LocalCluster(home=cluster_home())
    if cluster.running:
        _say("cluster already running")
    else:
        timings = cluster.start()
        cluster.node.detach()
        _say("cluster ready: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    print(f"KUBECONFIG={cluster.kubeconfig}")
    print(f"KUBECTL={cluster.plane.bin_dir / 'kubectl'}")
    print(f"HELM={cluster.plane.bin_dir / 'helm'}")


def cmd_cluster_down() -> None:
    from harness.cluster import LocalCluster
    from harness.kubernetes import cluster_home

    LocalCluster(home=cluster_home()).stop()
    _say("cluster stopped")


def cmd_node_deps() -> None:
    """The node's Debian packages (containerd, runc, CNI plugins, nftables, buildah,
    debootstrap) when missing, then its binaries and images, cached."""
    from harness.cluster import ensure_images
    from harness.kubernetes import ensure_binaries
    from harness.node import ensure_packages

    added = ensure_packages()
    _say(f"apt-get installed {' '.join(added)}" if added else "node packages present")
    print(f"node-binaries {ensure_binaries(node=True)}")
    for image, archive in ensure_images().items():
        print(f"image {image} {archive}")


def cmd_node_packages() -> None:
    """The node's Debian packages (containerd, runc, CNI plugins, nftables, buildah,
    debootstrap) when missing."""
    from harness.node import ensure_packages

    added = ensure_packages()
    print(f"apt-get installed {' '.join(added)}" if added else "node packages present")


def cmd_images() -> None:
    """Build (or reuse) the node's images and print their archives (buildah and debootstrap
    installed first when missing: the node's packages)."""
    from harness.cluster import ensure_images
    from harness.node import ensure_packages

    ensure_packages()
    for image, archive in ensure_images().items():
        print(f"{image} {archive}")


def cmd_browser() -> None:
    """Debian's chromium for the console's browser test (installed when missing)."""
    from harness.browser import require_chromium

    print(f"chromium {require_chromium()}")


def cmd_otelcol() -> None:
    """Build (or reuse) the OpenTelemetry Collector the tracing tests export to."""
    from harness.otelcol import ensure_otelcol

    print(f"otelcol {ensure_otelcol()}")


def cmd_control_plane() -> None:
    """Build (or reuse) the cached control-plane binaries and print their folder."""
    from harness.kubernetes import ensure_binaries

    print(ensure_binaries())


def cmd_llm(action: str) -> None:
    """llm-deps: build/cache the model server and model; llm-up/llm-down: run it (127.0.0.1)."""
    from harness import llm

    if action == "llm-deps":
        wheel, model = llm.ensure_all(cache_dir())
        print(f"llama-cpp-python-wheel {wheel}")
        print(f"model {model}")
        return
    if action == "llm-down":
        llm.LlamaServer(home=state_dir() / "llm", model=Path("/nonexistent")).stop()
        _say("llm server stopped")
        return
    llm.ensure_server_installed(cache_dir())
    server = llm.local_server(state=state_dir(), cache=cache_dir())
    started = time.monotonic()
    server.start()
    _say(f"llm server ready on {server.base_url} in {time.monotonic() - started:.1f}s")
    for line in llm.env_lines(server):
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    parser.add_argument(
        "command",
        choices=(
            "up",
            "down",
            "status",
            "jars",
            "deps",
            "cluster-up",
            "cluster-down",
            "control-plane",
            "images",
            "node-deps",
            "node-packages",
            "schemas",
            "llm-deps",
            "llm-up",
            "llm-down",
            "otelcol",
            "browser",
            "system-deps",
            "beside-installs",
        ),
    )
    parser.add_argument(
        "commands",
        nargs="*",
        help="beside-installs: shell commands to run one after another while system-deps runs",
    )
    args = parser.parse_args(argv)
    if args.commands and args.command != "beside-installs":
        parser.error(f"{args.command} takes no arguments (got {' '.join(args.commands)})")
    try:
        if args.command == "up":
            cmd_up()
        elif args.command == "down":
            cmd_down()
        elif args.command == "status":
            return cmd_status()
        elif args.command == "deps":
            cmd_deps()
        elif args.command == "cluster-up":
            cmd_cluster_up()
        elif args.command == "cluster-down":
            cmd_cluster_down()
        elif args.command == "control-plane":
            cmd_control_plane()
        elif args.command == "schemas":
            cmd_schemas()
        elif args.command == "images":
            cmd_images()
        elif args.command == "node-deps":
            cmd_node_deps()
        elif args.command == "node-packages":
            cmd_node_packages()
        elif args.command == "browser":
            cmd_browser()
        elif args.command == "otelcol":
            cmd_otelcol()
        elif args.command == "system-deps":
            from harness import lanes

            return lanes.main()
        elif args.command == "beside-installs":
            from harness import lanes

            if not args.commands:
                parser.error("beside-installs needs the commands to run, e.g. 'make lint'")
            return lanes.run_beside_installs(args.commands, log=state_dir() / "system-deps.log")
        elif args.command.startswith("llm-"):
            cmd_llm(args.command)
        else:
            cmd_jars()
    except ServiceError as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
