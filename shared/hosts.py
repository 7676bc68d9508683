"""host[:port] as a URL carries it, checked before a setting or a forwarded header is believed.

A malformed one would otherwise fail deep inside URL parsing, as a 500 on every request.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile("[0-9]{1,5}")


def is_host(netloc: str) -> bool:
    """A hostname, IPv4 address or bracketed IPv6 address, with an optional port from 1 to 65535."""
    host, port = _split_port(netloc)
    if port is not None and not (_PORT.fullmatch(port) and 0 < int(port) < 65_536):
        return False
    if host.startswith("[") and host.endswith("]"):
        return _is_ipv6(host[1:-1])
    return len(host) <= 253 and bool(_HOSTNAME.fullmatch(host))


def is_loopback(name: str | None) -> bool:
    """localhost or a loopback address (an IPv4 one written as IPv6 too), as written: no DNS answer counts."""
    if not name:
        return False
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def _split_port(netloc: str) -> tuple[str, str | None]:
    if netloc.endswith("]") or ":" not in netloc:
        return netloc, None
    host, _, port = netloc.rpartition(":")
    return host, port


def _is_ipv6(literal: str) -> bool:
    if "%" in literal:  # a zone ID may hold '/', '?' or '#', which would end the host in a URL
        return False
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True
