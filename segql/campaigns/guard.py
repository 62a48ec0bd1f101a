"""No webhook to loopback, private, link-local or otherwise internal addresses (SSRF).

A definition file names the URL, and the worker runs next to the database: without this guard a
campaign could make it POST to the metadata service or an admin port. Every address the host
resolves to must be public, unless `SEGQL_WEBHOOK_ALLOW` (comma-separated host names, addresses
or CIDRs, e.g. "127.0.0.1,10.0.0.0/8,hooks.internal") allows it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

from segql.errors import SegqlError

ALLOW_ENV = "SEGQL_WEBHOOK_ALLOW"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Blocked(SegqlError):
    """The webhook's address is not allowed."""


def allowlist_text() -> str:
    return os.environ.get(ALLOW_ENV, "")


def allowlist(text: str | None = None) -> tuple[set[str], list[Network]]:
    """Host names and networks from `SEGQL_WEBHOOK_ALLOW` (or `text`)."""
    raw = allowlist_text() if text is None else text
    hosts: set[str] = set()
    networks: list[Network] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower().rstrip("."))
    return hosts, networks


def check(url: str, allow: tuple[set[str], list[Network]] | None = None) -> None:
    """Raise `Blocked` unless every address of the URL's host may receive webhooks."""
    hosts, networks = allow if allow is not None else allowlist()
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in hosts:
        return
    for address in _addresses(host, urlsplit(url).port):
        if _internal(address) and not any(address in n for n in networks):
            raise Blocked(
                f"{host} resolves to {address}, an internal address; webhooks go to public "
                f"addresses only unless {ALLOW_ENV} lists it (e.g. {ALLOW_ENV}={address})"
            )


def _addresses(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except OSError as err:
        raise Blocked(f"cannot resolve {host}: {err}") from None
    out = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        out.append(address)
    return out


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
