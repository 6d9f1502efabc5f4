"""Servers and connections: create_server / create_unix_server and the
Server object, the accept loop (_start_serving), create_connection,
create_unix_connection, connect_accepted_socket, streams, loop.sendfile.

Tests that only exercise the accept loop replace the loop's
_make_socket_transport() with a recorder (FakeTransports), so they do not
depend on a transport implementation.  The others use real transports.
"""

import asyncio
import errno
import json
import io
import os
import socket
import ssl
import sys
import tempfile

import pytest


from _netutil import Echo, needs_ipv6, run


def active(server):
    """How many transports are attached to an asyncio.Server (3.13 keeps
    the transports themselves, earlier versions a count)."""
    if hasattr(server, "_clients"):
        return len(server._clients)
    return server._active_count


async def wait_until(pred, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


class FakeTransports:
    """Replaces loop._make_socket_transport(): records each accepted
    connection and closes its socket.  asyncio passes a waiter it awaits;
    eloop passes waiter=None."""

    def __init__(self, loop):
        self.loop = loop
        self.calls = []
        loop._make_socket_transport = self

    def __call__(self, sock, protocol, waiter=None, extra=None,
                 server=None):
        self.calls.append({"sock": sock, "protocol": protocol,
                           "extra": extra, "server": server,
                           "blocking": sock.getblocking()})
        sock.close()
        if waiter is not None:
            self.loop.call_soon(waiter.set_result, None)
        return object()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Collect(asyncio.Protocol):
    def __init__(self, loop):
        self.data = bytearray()
        self.done = loop.create_future()
        self.made = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


# ------------------------------------------------------- the Server object

def test_create_server_basics(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        socks = server.sockets
        assert len(socks) == 1
        assert type(socks[0]).__name__ == "TransportSocket"
        host, port = socks[0].getsockname()
        assert host == "127.0.0.1" and port > 0
        assert server.get_loop() is loop
        assert server.is_serving()
        assert repr(server).startswith("<Server sockets=(")
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port)).close()

    run(loop, main())


def test_create_server_accepts_connections(loop):
    fake = FakeTransports(loop)
    protocols = []

    def factory():
        protocols.append(asyncio.Protocol())
        return protocols[-1]

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        clients = [socket.create_connection(addr) for _ in range(5)]
        await wait_until(lambda: len(fake.calls) == 5)
        server.close()
        await server.wait_closed()
        return server, clients

    server, clients = run(loop, main())
    names = sorted(c.getsockname() for c in clients)
    for c in clients:
        c.close()
    assert sorted(call["extra"]["peername"] for call in fake.calls) == names
    assert all(call["extra"] == {"peername": call["extra"]["peername"]}
               for call in fake.calls)
    assert all(call["server"] is server for call in fake.calls)
    assert [call["protocol"] for call in fake.calls] == protocols
    assert not any(call["blocking"] for call in fake.calls)


def test_small_backlog_accepts_everything(loop):
    # backlog bounds both listen() and the accepts per readable event.
    fake = FakeTransports(loop)

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                          backlog=2)
        addr = server.sockets[0].getsockname()
        clients = []
        for _ in range(7):
            c = socket.socket()
            c.setblocking(False)
            clients.append(c)
            await loop.sock_connect(c, addr)
        await wait_until(lambda: len(fake.calls) == 7)
        # asyncio's accept tasks finish once the fake's waiters are set
        # (3.13's wait_closed() no longer waits for them).
        for _ in range(3):
            await asyncio.sleep(0)
        server.close()
        await server.wait_closed()
        for c in clients:
            c.close()

    run(loop, main())


@needs_ipv6
def test_create_server_several_hosts(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol,
                                          ["127.0.0.1", "::1"], 0)
        families = sorted(s.family for s in server.sockets)
        v6 = [s for s in server.sockets if s.family == socket.AF_INET6]
        only = v6[0].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        server.close()
        await server.wait_closed()
        return families, only

    families, v6only = run(loop, main())
    assert families == [socket.AF_INET, socket.AF_INET6]
    assert v6only == 1


def test_create_server_duplicate_hosts_bind_once(loop):
    async def main():
        port = free_port()
        server = await loop.create_server(
            asyncio.Protocol, ["127.0.0.1", "127.0.0.1"], port)
        n = len(server.sockets)
        server.close()
        await server.wait_closed()
        return n

    assert run(loop, main()) == 1


def test_create_server_all_interfaces(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "", 0)
        hosts = {s.getsockname()[0] for s in server.sockets}
        server.close()
        await server.wait_closed()
        return hosts

    assert run(loop, main()) & {"0.0.0.0", "::"}


def test_create_server_reuse_options(loop):
    async def main():
        s1 = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                      reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        s2 = await loop.create_server(asyncio.Protocol, "127.0.0.1", port,
                                      reuse_port=True)
        opts = [(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0,
                 s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0)
                for s in (s1.sockets[0], s2.sockets[0])]
        s3 = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                      reuse_address=False)
        no_reuse = s3.sockets[0].getsockopt(socket.SOL_SOCKET,
                                            socket.SO_REUSEADDR)
        for s in (s1, s2, s3):
            s.close()
            await s.wait_closed()
        return opts, no_reuse

    opts, no_reuse = run(loop, main())
    assert opts == [(True, True), (True, True)]
    assert no_reuse == 0


def test_create_server_address_in_use(loop):
    async def main():
        s1 = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = s1.sockets[0].getsockname()[1]
        try:
            with pytest.raises(OSError) as info:
                await loop.create_server(asyncio.Protocol, "127.0.0.1",
                                         port, reuse_address=False)
            return info.value, port
        finally:
            s1.close()
            await s1.wait_closed()

    exc, port = run(loop, main())
    assert exc.errno == errno.EADDRINUSE
    # 3.13 keeps the whole str(err) where 3.11 kept only strerror
    reason = (f"[errno {errno.EADDRINUSE}] address already in use"
              if sys.version_info >= (3, 13) else "address already in use")
    assert str(exc) == (f"[Errno {errno.EADDRINUSE}] error while attempting "
                        f"to bind on address ('127.0.0.1', {port}): {reason}")


def test_create_server_argument_errors(loop):
    async def main():
        errors = []
        sock = socket.socket()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for kwargs in ({}, {"host": "127.0.0.1", "sock": sock},
                       {"sock": udp}, {"ssl": True},
                       {"ssl_handshake_timeout": 1, "port": 0}):
            with pytest.raises((ValueError, TypeError)) as info:
                await loop.create_server(asyncio.Protocol, **kwargs)
            errors.append(type(info.value).__name__
                          + ": " + str(info.value).split(",")[0])
        sock.close()
        udp.close()
        return errors

    assert run(loop, main()) == [
        "ValueError: Neither host/port nor sock were specified",
        "ValueError: host/port and sock can not be specified at the same "
        "time",
        "ValueError: A Stream Socket was expected",
        "TypeError: ssl argument must be an SSLContext or None",
        "ValueError: ssl_handshake_timeout is only meaningful with ssl",
    ]


def test_start_serving_false(loop):
    fake = FakeTransports(loop)

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                          start_serving=False)
        addr = server.sockets[0].getsockname()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr).close()
        await server.start_serving()
        assert server.is_serving()
        c = socket.create_connection(addr)
        await wait_until(lambda: len(fake.calls) == 1)
        c.close()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_create_server_from_sock(loop):
    fake = FakeTransports(loop)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))

    async def main():
        server = await loop.create_server(asyncio.Protocol, sock=sock)
        assert sock.getblocking() is False
        c = socket.create_connection(sock.getsockname())
        await wait_until(lambda: len(fake.calls) == 1)
        c.close()
        server.close()
        await server.wait_closed()
        return sock.fileno()

    assert run(loop, main()) == -1     # _stop_serving() closed it


def test_serve_forever_and_cancel(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                          start_serving=False)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        assert server.is_serving()
        with pytest.raises(RuntimeError):
            await server.serve_forever()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return server.is_serving(), server.sockets

    assert run(loop, main()) == (False, ())


def test_server_async_with(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        async with server as s:
            assert s is server
            assert server.is_serving()
        assert not server.is_serving()
        await server.wait_closed()

    run(loop, main())


def test_protocol_factory_error_reported_in_debug_mode(loop, loop_errors):
    loop.set_debug(True)
    loop.slow_callback_duration = 10

    def factory():
        raise ZeroDivisionError("no protocol")

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        c = socket.create_connection(server.sockets[0].getsockname())
        await wait_until(lambda: loop_errors.calls)
        c.close()
        server.close()
        await server.wait_closed()

    run(loop, main())
    [ctx] = loop_errors.calls
    assert ctx["message"] == ("Error on transport creation for incoming "
                              "connection")
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert "protocol" not in ctx


def test_protocol_factory_error_silent_without_debug(loop):
    loop.set_debug(False)
    called = []

    def factory():
        called.append(1)
        raise ZeroDivisionError("no protocol")

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        c = socket.create_connection(server.sockets[0].getsockname())
        await wait_until(lambda: called)
        await asyncio.sleep(0.01)
        c.close()
        server.close()
        await server.wait_closed()

    run(loop, main())       # the fixture fails on any handler call


EMFILE_CHILD = r"""
import asyncio, json, os, resource, socket, time

loop = loop_factory()
errors = []
loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
accepted = []

def fake_transport(sock, protocol, waiter=None, extra=None, server=None):
    accepted.append(extra["peername"])
    sock.close()
    if waiter is not None:
        loop.call_soon(waiter.set_result, None)

loop._make_socket_transport = fake_transport

async def main():
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    addr = server.sockets[0].getsockname()
    client = socket.socket()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    hog = []
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    # The kernel completes the handshake; accept() then has no fd to use.
    client.connect(addr)
    await asyncio.sleep(0.3)
    seen = len(errors)
    t0 = time.process_time()
    await asyncio.sleep(0.5)
    cpu = time.process_time() - t0
    for fd in hog:
        os.close(fd)
    t1 = time.monotonic()
    while not accepted and time.monotonic() - t1 < 5:
        await asyncio.sleep(0.02)
    recovered_after = time.monotonic() - t1
    result = {
        "seen": seen,
        "messages": sorted({c["message"] for c in errors}),
        "errnos": sorted({c["exception"].errno for c in errors}),
        "socket": sorted({type(c["socket"]).__name__ for c in errors}),
        "cpu": cpu,
        "accepted": accepted == [client.getsockname()],
        "recovered_after": recovered_after,
    }
    client.close()
    server.close()
    await server.wait_closed()
    return result

print(json.dumps(loop.run_until_complete(main())))
loop.close()
"""


def test_accept_out_of_fds_pauses_and_recovers(child_python):
    proc = child_python(EMFILE_CHILD)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["seen"] >= 1
    assert res["messages"] == ["socket.accept() out of system resource"]
    assert res["errnos"] == [errno.EMFILE]
    assert res["socket"] == ["TransportSocket"]
    # Paused, not spinning on the still-readable listening socket.
    assert res["cpu"] < 0.25, res
    # Accepting resumed after ACCEPT_RETRY_DELAY (1 s).
    assert res["accepted"], res
    assert res["recovered_after"] < 3, res


# ------------------------------------------------------------ Unix servers

def test_create_unix_server(loop, tmp_path):
    fake = FakeTransports(loop)
    path = str(tmp_path / "sock")

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path)
        assert server.sockets[0].getsockname() == path
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        await wait_until(lambda: len(fake.calls) == 1)
        c.close()
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert fake.calls[0]["extra"] == {"peername": ""}


def test_create_unix_server_removes_stale_socket(loop, tmp_path):
    path = str(tmp_path / "stale")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()                          # the socket file stays behind
    assert os.path.exists(path)

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path)
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_create_unix_server_address_in_use(loop, tmp_path):
    # A socket file is removed as stale (even a live one: asyncio does not
    # probe it); any other file at the path makes bind() fail.
    path = str(tmp_path / "busy")
    with open(path, "w"):
        pass

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(asyncio.Protocol, path)
        return info.value

    exc = run(loop, main())
    assert exc.errno == errno.EADDRINUSE
    assert str(exc) == (f"[Errno {errno.EADDRINUSE}] Address {path!r} is "
                        f"already in use")


@pytest.mark.parametrize("kind", [str, bytes])
def test_create_unix_server_abstract_namespace(loop, kind):
    fake = FakeTransports(loop)
    name = f"\0eloop-test-server-{os.getpid()}"
    path = name if kind is str else name.encode()

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path)
        bound = server.sockets[0].getsockname()
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        await wait_until(lambda: len(fake.calls) == 1)
        c.close()
        server.close()
        await server.wait_closed()
        return bound

    assert run(loop, main()) == name.encode()


def test_create_unix_server_argument_errors(loop, tmp_path):
    async def main():
        errors = []
        tcp = socket.socket()
        for kwargs in ({}, {"path": str(tmp_path / "x"), "sock": tcp},
                       {"sock": tcp}, {"ssl": True}):
            with pytest.raises((ValueError, TypeError)) as info:
                await loop.create_unix_server(asyncio.Protocol, **kwargs)
            errors.append(str(info.value).split(",")[0])
        tcp.close()
        return errors

    assert run(loop, main()) == [
        "path was not specified",
        "path and sock can not be specified at the same time",
        "A UNIX Domain Stream Socket was expected",
        "ssl argument must be an SSLContext or None",
    ]


# ------------------------------------------------------- client connections

def test_create_connection_refused(loop):
    port = free_port()

    async def main():
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        return str(info.value)

    assert run(loop, main()) == (f"[Errno {errno.ECONNREFUSED}] Connect call "
                                 f"failed ('127.0.0.1', {port})")


def test_create_connection_refused_happy_eyeballs(loop):
    port = free_port()

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_connection(asyncio.Protocol, "localhost", port,
                                         happy_eyeballs_delay=0.05)
        return info.value

    exc = run(loop, main())
    assert "Connect call failed" in str(exc) or "Multiple exceptions" in \
        str(exc)
    loop.run_until_complete(loop.shutdown_default_executor())


def test_create_unix_connection_missing_path(loop, tmp_path):
    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(asyncio.Protocol,
                                              str(tmp_path / "none"))

    run(loop, main())


def test_create_connection_argument_errors(loop):
    async def main():
        errors = []
        sock = socket.socket()
        for kwargs in ({}, {"host": "127.0.0.1", "port": 1, "sock": sock},
                       {"server_hostname": "x"},
                       {"ssl_handshake_timeout": 1}):
            with pytest.raises(ValueError) as info:
                await loop.create_connection(asyncio.Protocol, **kwargs)
            errors.append(str(info.value))
        sock.close()
        return errors

    assert run(loop, main()) == [
        "host and port was not specified and no sock specified",
        "host/port and sock can not be specified at the same time",
        "server_hostname is only meaningful with ssl",
        "ssl_handshake_timeout is only meaningful with ssl",
    ]


# ------------------------------------------ round trips (need transports)

def test_tcp_echo_create_server_create_connection(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        proto = Collect(loop)
        tr, pr = await loop.create_connection(lambda: proto, *addr)
        assert pr is proto
        assert tr.get_extra_info("peername") == addr
        tr.write(b"hello ")
        tr.write(b"world")
        tr.write_eof()
        await proto.done
        server.close()
        await server.wait_closed()
        return bytes(proto.data)

    assert run(loop, main()) == b"hello world"


def test_transports_attach_to_their_server(loop):
    # Server.wait_closed() (3.12+) and close_clients() (3.13) rely on the
    # transport attaching itself to the server while it is open.
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        proto = Collect(loop)
        tr, _ = await loop.create_connection(lambda: proto, *addr)
        tr.write(b"x")
        await wait_until(lambda: proto.data == b"x")
        attached = active(server)
        tr.close()
        await wait_until(lambda: active(server) == 0)
        server.close()
        await server.wait_closed()
        return attached

    assert run(loop, main()) == 1


def test_streams_round_trip(loop):
    async def handle(reader, writer):
        data = await reader.readline()
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"round trip\n")
        line = await reader.readline()
        eof = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return line, eof

    assert run(loop, main()) == (b"ROUND TRIP\n", b"")


@pytest.mark.parametrize("abstract", [False, True])
def test_unix_streams_round_trip(loop, tmp_path, abstract):
    path = (f"\0eloop-test-streams-{os.getpid()}" if abstract
            else str(tmp_path / "s"))

    async def handle(reader, writer):
        writer.write(await reader.read())
        writer.close()

    async def main():
        server = await asyncio.start_unix_server(handle, path)
        reader, writer = await asyncio.open_unix_connection(path)
        payload = os.urandom(1 << 20)
        writer.write(payload)
        writer.write_eof()
        echoed = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return echoed == payload

    assert run(loop, main())


def test_connect_accepted_socket(loop):
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        cli = socket.create_connection(lsock.getsockname())
        conn, _ = lsock.accept()
        lsock.close()
        proto = Collect(loop)
        tr, pr = await loop.connect_accepted_socket(lambda: proto, conn)
        assert pr is proto
        assert tr.get_extra_info("socket").fileno() == conn.fileno()
        cli.sendall(b"accepted")
        cli.shutdown(socket.SHUT_WR)
        await wait_until(lambda: proto.data == b"accepted")
        tr.close()
        await proto.done
        cli.close()
        return bytes(proto.data)

    assert run(loop, main()) == b"accepted"


def test_connect_accepted_socket_type_check(loop):
    async def main():
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with pytest.raises(ValueError, match="A Stream Socket was "
                                                 "expected"):
                await loop.connect_accepted_socket(asyncio.Protocol, udp)
        finally:
            udp.close()

    run(loop, main())


def test_create_connection_local_addr(loop):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        local = ("127.0.0.1", free_port())
        tr, _ = await loop.create_connection(asyncio.Protocol, *addr,
                                             local_addr=local)
        got = tr.get_extra_info("sockname")
        tr.close()
        server.close()
        await server.wait_closed()
        return got, local

    got, local = run(loop, main())
    assert got == local


def test_loop_sendfile_regular_file(loop):
    data = os.urandom(500_000)

    async def main():
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            server = await loop.create_server(
                lambda: proto, "127.0.0.1", 0)
            addr = server.sockets[0].getsockname()
            tr, _ = await loop.create_connection(asyncio.Protocol, *addr)
            sent = await loop.sendfile(tr, f)
            tr.close()
            await proto.done
            server.close()
            await server.wait_closed()
            return sent, f.tell()

    proto = Collect(loop)
    sent, pos = run(loop, main())
    assert sent == len(data) and pos == len(data)
    assert bytes(proto.data) == data


def test_loop_sendfile_fallback_for_non_regular_file(loop):
    # io.BytesIO has no fileno(): os.sendfile is impossible, so the
    # read-and-write fallback runs (with flow control) and the transport's
    # protocol is restored afterwards.
    data = os.urandom(300_000)

    class Client(asyncio.Protocol):
        def data_received(self, data):
            raise AssertionError("nothing is sent back")

    async def main():
        f = io.BytesIO(data)
        server = await loop.create_server(lambda: proto, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        client = Client()
        tr, _ = await loop.create_connection(lambda: client, *addr)
        sent = await loop.sendfile(tr, f, offset=1000, count=200_000)
        restored = tr.get_protocol() is client and tr.is_reading()
        tr.close()
        await proto.done
        server.close()
        await server.wait_closed()
        return sent, f.tell(), restored

    proto = Collect(loop)
    sent, pos, restored = run(loop, main())
    assert (sent, pos, restored) == (200_000, 201_000, True)
    assert bytes(proto.data) == data[1000:201_000]
