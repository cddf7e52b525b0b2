"""`agentprod-operator`: run the operator, or print the CRD."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from agentprod_operator import crds

SERVICE = "agentprod-operator"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agentprod-operator",
        description="Reconciles AgentPipeline resources: RocketMQ topics and consumer group, "
        "the worker Deployment and the status. Settings: AGENTPROD_OPERATOR_* variables; "
        "cluster access from $KUBECONFIG or the in-cluster service account.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run the operator (the default)")
    commands.add_parser("crd", help="print the AgentPipeline CRD (YAML)")
    for target in (parser, run):
        scope = target.add_mutually_exclusive_group()
        scope.add_argument(
            "-n",
            "--namespace",
            action="append",
            default=None,
            help="watch this namespace (repeatable)",
        )
        scope.add_argument(
            "-A",
            "--all-namespaces",
            action="store_true",
            help="watch every namespace (needs the ClusterRole)",
        )
        target.add_argument(
            "--liveness",
            metavar="URL",
            help="serve liveness on URL, e.g. http://0.0.0.0:8080/healthz",
        )
    args = parser.parse_args(argv)
    if args.command == "crd":
        sys.stdout.write(crds.render_crd())
        return 0
    if not args.namespace and not args.all_namespaces:
        parser.error("choose --namespace NS (repeatable) or --all-namespaces")
    return _run(
        namespaces=args.namespace or [], clusterwide=args.all_namespaces, liveness=args.liveness
    )


def _run(*, namespaces: list[str], clusterwide: bool, liveness: str | None) -> int:
    import kopf
    from agentprod import logs, tracing

    from agentprod_operator import settings
    from agentprod_operator.handlers import build_registry

    try:
        config = settings.load_settings()
    except settings.ConfigurationError as error:
        sys.stderr.write(f"agentprod-operator: {error}\n")
        return 2
    fmt = os.environ.get("LOG_FORMAT", "json").lower()
    try:
        logs.configure(service=SERVICE, level=logging.INFO, fmt=fmt)
        tracing.configure(SERVICE)
    except ValueError as error:
        sys.stderr.write(f"agentprod-operator: {error}\n")
        return 2
    registry = build_registry(config)
    try:
        asyncio.run(
            kopf.operator(
                registry=registry,
                standalone=True,
                namespaces=namespaces,
                clusterwide=clusterwide,
                liveness_endpoint=liveness,
            )
        )
    finally:
        tracing.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
