"""Local TCP ports."""

from __future__ import annotations

import socket


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(start: int, host: str = "127.0.0.1", tries: int = 200) -> int:
    """The first free port from start onwards."""
    for port in range(start, start + tries):
        if port_is_free(port, host):
            return port
    raise OSError(f"no free port in {start}..{start + tries - 1}")


def free_block(start: int, size: int, host: str = "127.0.0.1") -> int:
    """The first port from start onwards with `size` consecutive free ports (a balancer and
    its replicas)."""
    port = free_port(start, host)
    while not all(port_is_free(port + i, host) for i in range(size)):
        port = free_port(port + size, host)
    return port
