"""Loopback ports for the local runtime, the tests and the benchmark: a free one, whether one is
taken (as a server about to bind sees it), and whether something answers on one."""

from __future__ import annotations

import errno
import socket

from werkzeug.serving import select_address_family


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing holds now, as the system picks one."""
    with socket.socket(select_address_family(host, 0), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_taken(host: str, port: int) -> bool:
    """Whether another program holds the port, probed by binding as a server does (so a port
    left in TIME_WAIT by the last run counts as free)."""
    with socket.socket(select_address_family(host, port), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def accepting(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on the port: a server that has started listening."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
