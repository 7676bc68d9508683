"""What a base URL for the app's webhooks may be, and how a URL is printed without its secrets."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from shared import hosts
from shared.settings import ROUTE_PREFIX

# RFC 3986's own split (appendix B), which no input makes fail: scheme, authority, path, query, fragment.
_URL = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL)
# The app checks each webhook's signature against the URL it rebuilds from its settings, so the base path
# keeps to characters no client encodes or normalizes differently.
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# A last label that URL parsers (WHATWG) read as a number makes the whole host an IPv4 address: 0x7f.1 is 127.0.0.1.
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_PRINTABLE = "".join(map(chr, range(0x21, 0x7F)))


def shown(url: str | None) -> str:
    """A URL as printed: user info, query and fragment values masked, as an old webhook may carry a token
    in any of them, and anything but printable ASCII percent-encoded, so that no stored value can act on the
    terminal."""
    if not url:
        return "(none)"
    scheme, netloc, path, query, fragment = _split(url)
    shown = f"{scheme}:" if scheme is not None else ""
    if netloc is not None:
        shown += f"//***@{netloc.rpartition('@')[2]}" if "@" in netloc else f"//{netloc}"
    shown += path
    if query is not None:
        shown += f"?{_masked(query)}"
    if fragment is not None:
        shown += f"#{_masked(fragment)}"
    return quote(shown, safe=_PRINTABLE)


def _split(url: str) -> tuple[str | None, str | None, str, str | None, str | None]:
    parts = _URL.fullmatch(url)
    assert parts is not None  # every part of the pattern may be empty
    scheme, netloc, path, query, fragment = parts.groups()
    return scheme, netloc, path, query, fragment


def _masked(pairs: str) -> str:
    """Names kept, values masked: enough to recognise the URL, never its token."""
    if not pairs:
        return pairs
    return "&".join(
        f"{name}=***" if sep else "***" for name, sep, _ in (pair.partition("=") for pair in pairs.split("&"))
    )


def refusal(url: str) -> str | None:
    """Why `url` is not an address of the app: https, a valid host, and a plain path that is not a route."""
    scheme, netloc, path, query, fragment = _split(url)
    if scheme is None or scheme.lower() not in {"https", "http"} or netloc is None:
        return "must be an absolute https URL such as https://myapp.azurewebsites.net"
    refusal = _host_refusal(scheme.lower(), netloc) or _path_refusal(path)
    if refusal is None and (query is not None or fragment is not None):
        refusal = "must not carry a query or fragment"
    return refusal


def _host_refusal(scheme: str, netloc: str) -> str | None:
    if "@" in netloc:
        return "must not carry credentials"
    if not netloc.isascii():
        return _foreign_host(netloc)
    if not _is_host(netloc):
        return "must have a valid host name, IPv4 or [IPv6] address, and port from 1 to 65535 if any"
    if scheme == "http" and not hosts.is_loopback(urlsplit(f"//{netloc}").hostname or ""):
        return "must be https (http only for a loopback address, such as localhost or 127.0.0.1)"
    return None


def _path_refusal(path: str) -> str | None:
    segments = path.rstrip("/").split("/")[1:]
    if ROUTE_PREFIX in (segment.lower() for segment in segments):
        return (
            f"must be the app's address, not one of its routes: the webhooks add /{ROUTE_PREFIX}/voice_url"
            f" and /{ROUTE_PREFIX}/sms_url to it"
        )
    if not all(_SEGMENT.fullmatch(segment) and segment not in {".", ".."} for segment in segments):
        return "must have a path of plain segments (letters, digits and -._~, no . or .. segment), if any"
    return None


def _is_host(netloc: str) -> bool:
    """hosts.is_host, where a numeric last label means an IPv4 address and an xn-- label valid IDNA."""
    if not hosts.is_host(netloc):
        return False
    host = urlsplit(f"//{netloc}").hostname or ""
    if ":" in host:  # IPv6, which hosts.is_host has parsed
        return True
    if _NUMBER.fullmatch(host.rpartition(".")[2]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return all(_is_idna(label) for label in host.split(".") if label.startswith("xn--"))


def _is_idna(label: str) -> bool:
    try:
        label.encode("ascii").decode("idna")
    except UnicodeError:
        return False
    return True


def _foreign_host(netloc: str) -> str:
    """A host beyond ASCII can pass for another (a Cyrillic letter for a Latin one): refused, naming the real one."""
    try:
        ascii_netloc = netloc.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_netloc = ""
    if not _is_host(ascii_netloc):
        return "must have a valid host name: this one is not valid IDNA"
    return f"must give a host beyond ASCII in its IDNA form, {ascii_netloc}, which shows the host it really is"
