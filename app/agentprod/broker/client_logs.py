"""A writable log folder for the official RocketMQ client, before anything imports it.

rocketmq-python-client 5.1.2 creates `~/logs/rocketmq_python` when it is imported. In a pod
with a read-only root filesystem and no home (the images' user has HOME=/nonexistent) that
raises PermissionError and the process never starts. `prepare` keeps a writable home as it is;
otherwise it points HOME at the temporary directory (the chart mounts an emptyDir at /tmp) and
logs that it did. The package `agentprod.broker` calls it on import, so it runs before
`broker.rocketmq` imports the client.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

CLIENT_LOG_FOLDER = ("logs", "rocketmq_python")


class NoWritableHome(RuntimeError):
    """Neither HOME nor a temporary directory can hold the client's log."""


def prepare(environ: MutableMapping[str, str] = os.environ) -> str:
    """Return the home the client will log under, changing HOME in `environ` if it must."""
    home = os.path.expanduser(environ.get("HOME", "~"))
    if _can_create(os.path.join(home, *CLIENT_LOG_FOLDER)):
        return home
    try:
        fallback = tempfile.gettempdir()
    except FileNotFoundError as error:
        raise NoWritableHome(
            f"HOME={home} is not writable and no temporary directory is: the RocketMQ client "
            "needs one for its log; set HOME to a writable folder or mount an emptyDir at /tmp"
        ) from error
    if not _can_create(os.path.join(fallback, *CLIENT_LOG_FOLDER)):
        raise NoWritableHome(f"neither HOME={home} nor {fallback} can hold the client's log")
    log.info("HOME=%s is not writable; the RocketMQ client logs under %s", home, fallback)
    environ["HOME"] = fallback
    return fallback


def _can_create(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)
