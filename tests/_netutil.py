"""Helpers shared by the networking tests (not a test module)."""
import asyncio
import socket

import pytest

HAS_IPV6 = socket.has_ipv6
try:
    _s6 = socket.socket(socket.AF_INET6)
    _s6.bind(("::1", 0))
    _s6.close()
except OSError:
    HAS_IPV6 = False

needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")


def run(loop, coro, timeout=20):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Echo(asyncio.Protocol):
    """Sends back what it receives; closes at the peer's EOF."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()
