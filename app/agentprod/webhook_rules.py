"""The pure rules of completion webhooks: which callback URLs are allowed, how a delivery is
signed, and when a failed one is tried again. The sending is `webhooks.py`'s.

Signature (docs/api.md): `X-Agentprod-Signature: sha256=<hex>` where hex is
HMAC-SHA256(WEBHOOK_SECRET, f"{X-Agentprod-Timestamp}." + body), the timestamp being the
delivery's Unix time in seconds; a receiver recomputes it and refuses old timestamps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Agentprod-Signature"
TIMESTAMP_HEADER = "X-Agentprod-Timestamp"
DELIVERY_HEADER = "X-Agentprod-Delivery"
ATTEMPT_HEADER = "X-Agentprod-Attempt"
MAX_BACKOFF_SECONDS = 300.0

#: Cloud metadata endpoints that are not link-local (AWS IPv6, Alibaba Cloud).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text) for text in ("fd00:ec2::254", "100.100.100.200")
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class CallbackRefused(ValueError):
    """A callback URL the settings do not allow; the message says why."""


@dataclasses.dataclass(frozen=True)
class UrlPolicy:
    allow_loopback: bool = False
    allow_link_local: bool = False  # link-local and cloud metadata addresses
    require_https: bool = False


def check_url(url: str, policy: UrlPolicy) -> str:
    """The URL's host when the scheme and (a literal) address are allowed, else raise."""
    parts = urlsplit(url)
    allowed = ("https",) if policy.require_https else ("http", "https")
    if parts.scheme not in allowed:
        raise CallbackRefused(f"scheme must be {' or '.join(allowed)}, not {parts.scheme!r}")
    if not parts.hostname:
        raise CallbackRefused("the URL has no host")
    if parts.username or parts.password:
        raise CallbackRefused("credentials in the URL are not allowed")
    try:
        _ = parts.port
    except ValueError as error:
        raise CallbackRefused(f"bad port: {error}") from None
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            check_address(ipaddress.ip_address("127.0.0.1"), policy)
        return host
    check_address(address, policy)
    return host


def check_address(address: Address, policy: UrlPolicy) -> None:
    """Raise when a callback may not go to `address` (checked again on every delivery, after
    the host name is resolved)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        if not policy.allow_loopback:
            raise CallbackRefused(f"{address} is a loopback address (WEBHOOK_ALLOW_LOOPBACK)")
        return
    if address.is_link_local or address in METADATA_ADDRESSES:
        if not policy.allow_link_local:
            raise CallbackRefused(
                f"{address} is a link-local or cloud metadata address (WEBHOOK_ALLOW_LINK_LOCAL)"
            )
        return
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        raise CallbackRefused(f"{address} is not a unicast address")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Agentprod-Signature` value of `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does (the same code as the snippet in docs/api.md)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def backoff(*, attempt: int, base_seconds: float) -> float:
    """Wait before attempt `attempt + 1`: base, 2 x base, 4 x base ... capped at 5 minutes."""
    return min(MAX_BACKOFF_SECONDS, base_seconds * 2.0 ** max(0, attempt - 1))


def succeeded(status_code: int) -> bool:
    return 200 <= status_code < 300
