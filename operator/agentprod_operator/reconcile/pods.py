"""Whether the worker pods stop on their own configuration (pure): `spec.agent.name` not
registered in the worker image, or an `agent.config` its agent refuses.

The operator does not know which agents an image holds (users install theirs only in their
worker image); the worker does: it exits with code 2 and one line naming the variable
(`agentprod: invalid configuration: AGENT: unknown agent 'nope'; registered: ...`). The
container's `terminationMessagePolicy: FallbackToLogsOnError` (`workloads`) puts that line in
the pod status, where this module reads it. The caller lists the pods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

#: The exit code of `agentprod worker` on a bad AGENT / AGENT_CONFIG (or any other setting).
CONFIG_EXIT_CODE = 2
REASON = "WorkerConfigInvalid"
CONTAINER = "worker"
MAX_MESSAGE = 1024
_MARKER = "invalid configuration"
_PREFIX = "agentprod: "


@dataclasses.dataclass(frozen=True)
class ConfigFailure:
    pod: str
    message: str


def config_failure(pods: Sequence[Mapping[str, Any]]) -> ConfigFailure | None:
    """The newest live pod whose worker container stops on its configuration, if any.

    `pods`: Pod objects as the API returns them (camelCase). A container counts as failing
    when it terminated with code 2, or waits to restart (CrashLoopBackOff) after a code-2
    exit, or was just restarted after one and is not Ready yet: a crash-looping container
    runs for a moment between its back-offs, which must not read as healthy. A Ready
    container is fine whatever it exited with before; terminating pods are ignored.
    """
    live = [pod for pod in pods if not (pod.get("metadata") or {}).get("deletionTimestamp")]
    live.sort(key=lambda pod: str((pod.get("metadata") or {}).get("creationTimestamp") or ""))
    for pod in reversed(live):  # the newest pod carries the newest configuration
        name = str((pod.get("metadata") or {}).get("name") or "")
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") != CONTAINER:
                continue
            terminated = _failed_exit(status)
            if terminated is not None:
                return ConfigFailure(pod=name, message=_message(name, terminated))
    return None


def _failed_exit(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `terminated` record of a code-2 exit that still holds the container, if any."""
    state: Mapping[str, Any] = status.get("state") or {}
    last: Mapping[str, Any] | None = (status.get("lastState") or {}).get("terminated")
    current: Mapping[str, Any] | None = state.get("terminated")
    if current is not None:
        return current if _code(current) == CONFIG_EXIT_CODE else None
    if last is None or _code(last) != CONFIG_EXIT_CODE:
        return None
    if state.get("waiting") is not None:
        return last
    if state.get("running") is not None and not status.get("ready"):
        return last
    return None


def _code(terminated: Mapping[str, Any]) -> int | None:
    code = terminated.get("exitCode")
    return code if isinstance(code, int) else None


def _message(pod: str, terminated: Mapping[str, Any]) -> str:
    """The worker's own line (from its termination message / log tail), else a pointer."""
    lines = [line.strip() for line in str(terminated.get("message") or "").splitlines()]
    lines = [line for line in lines if line]
    chosen = next((line for line in reversed(lines) if _MARKER in line), None)
    if chosen is None and lines:
        chosen = lines[-1]
    if chosen is None:
        text = f"exited with code {CONFIG_EXIT_CODE}; see `kubectl logs {pod}`"
    else:
        text = chosen.removeprefix(_PREFIX)
    out = f"worker pod {pod}: {text}"
    return out if len(out) <= MAX_MESSAGE else out[: MAX_MESSAGE - 1] + "…"
