"""host[:port] checks: what a forwarded header or a URL setting may name."""

from __future__ import annotations

import pytest

from shared.hosts import is_host


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
    ],
)
def test_anything_else_is_not_a_host(netloc: str) -> None:
    assert not is_host(netloc)
