"""host[:port] checks: what a forwarded header or a URL setting may name."""

from __future__ import annotations

import pytest

from shared.hosts import is_host, is_loopback


@pytest.mark.parametrize(
    "netloc",
    [
        "myapp.azurewebsites.net",
        "frontdoor.example.com:443",
        "localhost:7071",
        "10.0.0.5:8080",
        "[::1]",
        "[2001:db8::1]:65535",
        "a-b.c1.example",
        "host:1",
        "[::ffff:192.0.2.1]",
        ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]),  # 253 characters, the most DNS allows
    ],
)
def test_hostnames_and_ip_literals_with_a_valid_port_are_hosts(netloc: str) -> None:
    assert is_host(netloc)


@pytest.mark.parametrize(
    "netloc",
    [
        "",
        "[",
        "[::1",
        "::1",
        "host:99999",
        "host:0",
        "host:",
        "host:abc",
        "host:+80",
        "host:٣",
        "evil.example/#",
        "https://evil.example",
        "user@host",
        "a b",
        "-host.example",
        "host..example",
        "[fe80::1%25eth0/x]",
        "[1.2.3.4]",
        "x" * 64 + ".example",
        "host:65536",
        "x::1]",
        ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62]),  # 254 characters
    ],
)
def test_anything_else_is_not_a_host(netloc: str) -> None:
    assert not is_host(netloc)


def test_an_ipv6_literal_with_a_zone_id_is_not_a_host() -> None:
    # Python accepts fe80::1%eth0, but a zone ID may hold characters that end the host in a URL.
    assert not is_host("[fe80::1%eth0]")


@pytest.mark.parametrize(
    ("name", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),  # noqa: S104 - the name checked, not bound
        ("192.0.2.1", False),
        ("::ffff:192.0.2.1", False),
        ("localhost.example", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_is_localhost_or_a_loopback_address_as_written(name: str | None, loopback: bool) -> None:
    assert is_loopback(name) is loopback
