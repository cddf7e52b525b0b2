"""Command line: `agentprod api | worker | dev | submit | dlq | keys` (settings from the
environment; flags override them)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from agentprod import __version__
from agentprod.settings import ConfigurationError, Settings, load_settings

#: The service name of each server command, in logs and traces (OTEL_SERVICE_NAME wins).
SERVICES = {"api": "agentprod-api", "worker": "agentprod-worker", "dev": "agentprod-dev"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "submit":
        return _submit(args)
    try:
        settings = _settings(args)
    except ConfigurationError as error:
        print(f"agentprod: {error}", file=sys.stderr)
        return 2
    from agentprod import logs, tracing

    service = SERVICES.get(args.command, "agentprod")
    default_format = "text" if args.command in ("dev", "dlq") else "json"
    logs.configure(
        service=service, level=settings.log_level, fmt=settings.log_format or default_format
    )
    try:
        tracing.configure(service)
    except ValueError as error:
        print(f"agentprod: {error}", file=sys.stderr)
        return 2

    try:
        return _serve(parser, args, settings)
    finally:
        tracing.shutdown()  # flush the spans still in the exporter's queue


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    from agentprod import runtime  # heavy imports only for the server commands

    if args.command == "keys":
        from agentprod import apikeys

        return apikeys.run(
            settings,
            action=args.action,
            tenant=args.tenant,
            name=args.name,
            rate=args.rate,
            max_queued=args.max_queued,
            key_ids=args.key_ids,
            as_json=args.json,
        )
    if args.command in ("worker", "dev"):
        try:
            runtime.check_agent(settings)
        except ConfigurationError as error:
            print(f"agentprod: {error}", file=sys.stderr)
            return 2
    if args.command == "dlq":
        from agentprod import dlq

        if args.action in ("show", "redrive") and not args.task_ids:
            parser.error(f"dlq {args.action}: give at least one TASK_ID")
        return dlq.run(settings, action=args.action, task_ids=args.task_ids)
    if args.command == "api":
        runtime.run_api(settings)
    elif args.command == "dev":
        print(
            f"agentprod dev: http://{settings.api_host}:{settings.api_port} "
            f"(embedded broker and store; docs at /docs)",
            file=sys.stderr,
        )
        if settings.api_auth == "off":
            print(
                "agentprod dev: WARNING: no API keys are checked (API_AUTH=off, the dev "
                "default); every caller is tenant 'public'. Never expose this port.",
                file=sys.stderr,
            )
        runtime.run_dev(settings)
    else:
        return runtime.run_worker(settings)
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.command in ("api", "dev"):
        overrides |= {"api_host": args.host, "api_port": args.port}
    if args.command in ("worker", "dev"):
        overrides |= {
            "agent": args.agent,
            "worker_concurrency": args.concurrency,
        }
    if args.command == "worker":
        overrides["worker_health_port"] = args.health_port
    if args.command == "dev" and args.host is None:
        overrides["api_host"] = "127.0.0.1"
    if args.command == "dev" and "API_AUTH" not in os.environ:
        overrides |= {"api_auth": "off", "api_docs": "public", "api_metrics": "public"}
    if args.command == "dev" and not _env_set("AGENTPROD_TEST_AGENTS"):
        overrides["test_agents"] = True  # the playground offers echo and sleep
    return load_settings(**overrides)


def _env_set(name: str) -> bool:
    return any(key.upper() == name for key in os.environ)


def _submit(args: argparse.Namespace) -> int:
    from agentprod.submit import SubmitError, submit

    try:
        view = submit(
            url=args.url,
            content=args.text,
            user_id=args.user,
            agent=args.agent,
            idempotency_key=args.idempotency_key,
            api_key=args.api_key,
            wait=not args.no_wait,
            timeout=args.timeout,
            follow=args.follow,
            priority=args.priority,
        )
    except SubmitError as error:
        print(f"agentprod submit: {error}", file=sys.stderr)
        return 2
    print(json.dumps(view, ensure_ascii=False, indent=2))
    return 1 if view.get("status") == "failed" else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentprod",
        description="Asynchronous AI-agent tasks on RocketMQ 5 and Redis. Settings come from "
        "the environment and .env (REDIS_URL or REDIS_HOST/REDIS_PORT, MQ_ENDPOINT, "
        "MQ_TOPIC_REQUEST, MQ_TOPIC_RESULT, MQ_GROUP_AGENT, AGENT, ...); flags override them.",
    )
    parser.add_argument("--version", action="version", version=f"agentprod {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = commands.add_parser("api", help="serve the HTTP API (RocketMQ + Redis)")
    api.add_argument("--host", help="bind address (API_HOST, default 0.0.0.0)")
    api.add_argument("--port", type=int, help="port (API_PORT, default 8000)")

    worker = commands.add_parser("worker", help="consume tasks and run the agent")
    _worker_flags(worker)
    worker.add_argument(
        "--health-port",
        type=int,
        help="port of /healthz and /metrics (WORKER_HEALTH_PORT, default 8001; 0 disables)",
    )

    dev = commands.add_parser(
        "dev", help="API + worker in one process on the embedded broker and store"
    )
    dev.add_argument("--host", help="bind address (default 127.0.0.1)")
    dev.add_argument("--port", type=int, help="port (API_PORT, default 8000)")
    _worker_flags(dev)

    dlq = commands.add_parser(
        "dlq", help="list, show or re-drive the consumer group's dead-lettered tasks"
    )
    dlq.add_argument("action", choices=["list", "show", "redrive"])
    dlq.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="for show and redrive")

    submit = commands.add_parser("submit", help="post a task and wait for its result")
    submit.add_argument("text", help="the task's content")
    submit.add_argument(
        "--url",
        default=os.environ.get("AGENTPROD_URL", "http://127.0.0.1:8000"),
        help="API base URL (AGENTPROD_URL, default http://127.0.0.1:8000)",
    )
    submit.add_argument(
        "--api-key",
        default=os.environ.get("AGENTPROD_API_KEY"),
        help="API key sent as Authorization: Bearer (AGENTPROD_API_KEY)",
    )
    submit.add_argument("--user", default="cli", help="user_id of the task (default cli)")
    submit.add_argument("--agent", help="agent to run (default: the worker's AGENT)")
    submit.add_argument(
        "--priority",
        choices=("high", "normal"),
        help="high: workers take the task before normal ones (default normal)",
    )
    submit.add_argument("--idempotency-key", help="Idempotency-Key header")
    submit.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the outcome (default 60)"
    )
    submit.add_argument("--no-wait", action="store_true", help="print the task id and return")
    submit.add_argument(
        "--follow",
        action="store_true",
        help="print the task's events (status, progress, result) as they come (stderr)",
    )

    keys = commands.add_parser(
        "keys", help="create, list or revoke API keys (stored hashed in Redis)"
    )
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("key_ids", nargs="*", metavar="KEY_ID", help="for revoke")
    keys.add_argument("--tenant", help="create: the tenant the key acts for")
    keys.add_argument("--name", default="", help="create: a label (who or what uses the key)")
    keys.add_argument("--rate", help="create: requests per window, e.g. 600/minute")
    keys.add_argument("--max-queued", type=int, help="create: the tenant's unfinished tasks cap")
    keys.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", help="default agent (AGENT, default tagger)")
    parser.add_argument(
        "--concurrency", type=int, help="tasks run at once (WORKER_CONCURRENCY, default 8)"
    )


if __name__ == "__main__":
    sys.exit(main())
