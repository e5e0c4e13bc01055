"""Which receiver URLs are allowed: http(s) only, and never an address inside the operator's network.

A webhook URL makes this service send requests where a caller points it; a URL naming a private,
loopback or link-local address (or a host name resolving to one) would let a partner probe the
internal network or a cloud metadata endpoint (SSRF). The host is resolved at registration and again
before every delivery (a DNS answer can change after registration).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from mvno_core.kernel.config import Settings


class UrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why."""


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, settings: Settings) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return settings.webhook_allow_loopback_urls or settings.webhook_allow_private_urls
    if address.is_global:
        return True
    return settings.webhook_allow_private_urls and not (address.is_multicast or address.is_unspecified)


async def check_url(url: str, settings: Settings) -> None:
    """Raise ``UrlRefused`` unless ``url`` is http(s) and every address its host resolves to is allowed."""
    try:
        # urlsplit raises ValueError on a malformed bracketed host ("https://a[b"); a bad URL is the
        # caller's mistake, never a server error.
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise UrlRefused("The URL is not well formed.") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise UrlRefused("The URL must be http:// or https:// with a host.")
    if parts.username or parts.password:
        raise UrlRefused("The URL must not carry credentials.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlRefused("The URL's port is not valid.") from exc
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UrlRefused(f"The host {hostname!r} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not _allowed(address, settings):
            raise UrlRefused(
                f"The host {hostname} resolves to {address}, a private, loopback or link-local "
                "address; webhooks go to public addresses only."
            )
