"""Who closes a socket passed with sock= when the call fails.

asyncio's rule, which these tests pin down on both loops: a socket its
checks reject (wrong type or family, sock= with host/port, an option that
conflicts) is never taken and stays open, the caller's to close; once
taken, the failure paths that reach the transport close it (a
create_connection() cancelled while waiting for connection_made, for
one).  asyncio calls protocol_factory() after taking the socket but does
not close it when the factory raises; eloop matches that too.

TLS sockets taken and then failing a handshake: tests/test_tls.py.

Every test runs with ResourceWarning recorded and fails on any unclosed
socket found by gc.
"""

import asyncio
import gc
import socket
import ssl
import warnings

import pytest

from _netutil import run


@pytest.fixture(autouse=True)
def no_resource_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaked = [str(w.message) for w in caught
              if issubclass(w.category, ResourceWarning)]
    assert not leaked, leaked


@pytest.fixture
def socks():
    """socks(*args) -> a new socket.socket(*args), closed at teardown."""
    made = []

    def make(*args):
        s = socket.socket(*args)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def closed(sock):
    return sock.fileno() == -1


class Boom(Exception):
    pass


def raising_factory():
    raise Boom()


async def refused(coro, exc_type, match=None):
    with pytest.raises(exc_type, match=match):
        await coro


# ------------------------------------------ rejected before taken: open

def test_create_connection_rejects_without_taking(loop, socks):
    dgram = socks(socket.AF_INET, socket.SOCK_DGRAM)
    stream = socks()

    async def main():
        await refused(loop.create_connection(asyncio.Protocol, sock=dgram),
                      ValueError, "A Stream Socket was expected")
        await refused(loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                             80, sock=stream),
                      ValueError, "host/port and sock")
        await refused(loop.create_connection(asyncio.Protocol, sock=stream,
                                             server_hostname="x"),
                      ValueError, "server_hostname is only meaningful")
        # TLS asked for but checks fail first: asyncio's error, and the
        # socket is still the caller's.
        await refused(loop.create_connection(
            asyncio.Protocol, sock=stream, ssl=ssl.create_default_context()),
            ValueError, "You must set server_hostname")

    run(loop, main())
    assert not closed(dgram) and not closed(stream)


def test_connect_accepted_socket_rejects_without_taking(loop, socks):
    dgram = socks(socket.AF_INET, socket.SOCK_DGRAM)

    async def main():
        await refused(loop.connect_accepted_socket(asyncio.Protocol, dgram),
                      ValueError, "A Stream Socket was expected")
        await refused(loop.connect_accepted_socket(
            asyncio.Protocol, dgram, ssl=ssl.create_default_context()),
            ValueError, "A Stream Socket was expected")

    run(loop, main())
    assert not closed(dgram)


def test_unix_connection_rejects_without_taking(loop, socks):
    tcp = socks()

    async def main():
        await refused(loop.create_unix_connection(asyncio.Protocol,
                                                  sock=tcp),
                      ValueError, "A UNIX Domain Stream Socket was expected")
        await refused(loop.create_unix_connection(asyncio.Protocol, "/x",
                                                  sock=tcp),
                      ValueError, "path and sock")

    run(loop, main())
    assert not closed(tcp)


def test_servers_reject_without_taking(loop, socks):
    dgram = socks(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socks()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)

    async def main():
        for tls in (None, ctx):
            await refused(loop.create_server(asyncio.Protocol, sock=dgram,
                                             ssl=tls),
                          ValueError, "A Stream Socket was expected")
            await refused(loop.create_server(asyncio.Protocol, "127.0.0.1",
                                             0, sock=tcp, ssl=tls),
                          ValueError, "host/port and sock")
            await refused(loop.create_unix_server(asyncio.Protocol,
                                                  sock=tcp, ssl=tls),
                          ValueError, "A UNIX Domain Stream Socket")
        await refused(loop.create_server(asyncio.Protocol, sock=tcp,
                                         ssl=True),
                      TypeError, "ssl argument must be an SSLContext")

    run(loop, main())
    assert not closed(dgram) and not closed(tcp)


def test_datagram_endpoint_rejects_without_taking(loop, socks):
    tcp = socks()
    udp = socks(socket.AF_INET, socket.SOCK_DGRAM)

    async def main():
        await refused(loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    sock=tcp),
                      ValueError, "(?i)socket was expected")
        await refused(loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), sock=udp),
            ValueError, "socket modifier keyword arguments")

    run(loop, main())
    assert not closed(tcp) and not closed(udp)


# ------------------------------------------ taken, then failing

def test_protocol_factory_raising_leaves_socket_open(loop, pair):
    # asyncio calls protocol_factory() after taking the socket and does not
    # close it when the factory raises (3.11 to 3.13): neither does eloop.
    a, b = pair

    async def main():
        await refused(loop.create_connection(raising_factory, sock=a), Boom)
        await refused(loop.connect_accepted_socket(raising_factory, b), Boom)

    run(loop, main())
    assert not closed(a) and not closed(b)


@pytest.mark.parametrize("method", ["create_connection",
                                    "create_unix_connection",
                                    "connect_accepted_socket"])
def test_cancelled_while_connecting_closes_socket(loop, pair, method):
    a, b = pair
    made = []

    def factory():
        made.append(asyncio.Protocol())
        return made[-1]

    async def main():
        if method == "connect_accepted_socket":
            coro = loop.connect_accepted_socket(factory, a)
        else:
            coro = getattr(loop, method)(factory, sock=a)
        task = loop.create_task(coro)
        # One step: the transport is made and its waiter awaited.
        await asyncio.sleep(0)
        assert made and not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The transport's close() lets go of the socket once
        # connection_lost has run.
        for _ in range(5):
            if closed(a):
                break
            await asyncio.sleep(0)
        assert closed(a)
        assert b.recv(1) == b""

    run(loop, main())


# ------------------------------------------ UDP

def test_datagram_endpoint_takes_socket(loop, socks):
    # A sock= asyncio accepts is the transport's: closing the transport
    # closes it; a protocol_factory that raises leaves it the caller's.
    udp = socks(socket.AF_INET, socket.SOCK_DGRAM)
    other = socks(socket.AF_INET, socket.SOCK_DGRAM)

    async def main():
        await refused(loop.create_datagram_endpoint(raising_factory,
                                                    sock=other), Boom)
        tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    sock=udp)
        assert not closed(udp)
        tr.close()
        await asyncio.sleep(0)

    run(loop, main())
    assert closed(udp) and not closed(other)
