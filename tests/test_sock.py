"""Low-level socket operations (sock_recv, sock_sendall, sock_accept, ...),
getaddrinfo/getnameinfo and sock_sendfile.

The loop's methods may return a coroutine (asyncio) or a future (eloop):
tests await them, and wrap them with ensure_future() when they must run
concurrently or be cancelled.
"""

import asyncio
import errno
import gc
import io
import itertools
import os
import socket
import ssl
import tempfile
import warnings
import weakref

import pytest


from _netutil import needs_ipv6, run


def nonblocking(*socks):
    for s in socks:
        s.setblocking(False)
    return socks


@pytest.fixture
def sockpair():
    a, b = nonblocking(*socket.socketpair())
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(100)
    srv.setblocking(False)
    yield srv
    srv.close()


async def tcp_pair(loop, family=socket.AF_INET, host="127.0.0.1"):
    srv = socket.socket(family)
    srv.bind((host, 0))
    srv.listen()
    srv.setblocking(False)
    cli = socket.socket(family)
    cli.setblocking(False)
    accept = asyncio.ensure_future(loop.sock_accept(srv))
    await loop.sock_connect(cli, srv.getsockname()[:2])
    conn, addr = await accept
    srv.close()
    return cli, conn, addr


# --------------------------------------------------------------- receiving

def test_sock_recv_ready_data(loop, sockpair):
    a, b = sockpair
    b.send(b"hello")

    async def main():
        return await loop.sock_recv(a, 100)

    assert run(loop, main()) == b"hello"


def test_sock_recv_waits_for_data(loop, sockpair):
    a, b = sockpair

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv(a, 3))
        await asyncio.sleep(0.01)
        assert not fut.done()
        b.send(b"abcdef")
        first = await fut
        rest = await loop.sock_recv(a, 100)
        return first, rest

    assert run(loop, main()) == (b"abc", b"def")


def test_sock_recv_eof_and_zero(loop, sockpair):
    a, b = sockpair

    async def main():
        zero = await loop.sock_recv(a, 0)
        b.shutdown(socket.SHUT_WR)
        return zero, await loop.sock_recv(a, 10)

    assert run(loop, main()) == (b"", b"")


def test_sock_recv_into(loop, sockpair):
    a, b = sockpair
    buf = bytearray(8)

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv_into(a, buf))
        await asyncio.sleep(0)
        b.send(b"xyz")
        n = await fut
        view = memoryview(buf)[4:]
        b.send(b"0123456789")
        m = await loop.sock_recv_into(a, view)
        return n, m

    assert run(loop, main()) == (3, 4)
    assert buf == b"xyz\x000123"


def test_sock_recv_errors_match_socket_module(loop, sockpair):
    a, b = sockpair

    async def main():
        errors = []
        for coro in (lambda: loop.sock_recv(a, -1),
                     lambda: loop.sock_recv(a, 1.5),
                     lambda: loop.sock_recv_into(a, b"immutable"),
                     lambda: loop.sock_recvfrom_into(a, bytearray(2), 5),
                     lambda: loop.sock_sendall(a, "text")):
            with pytest.raises((TypeError, ValueError)) as info:
                await coro()
            errors.append((type(info.value), str(info.value)))
        return errors

    assert run(loop, main()) == [
        (ValueError, "negative buffersize in recv"),
        (TypeError, "'float' object cannot be interpreted as an integer"),
        (TypeError, "recv_into() argument 1 must be read-write bytes-like "
                    "object, not bytes"),
        (ValueError, "nbytes is greater than the length of the buffer"),
        (TypeError, "a bytes-like object is required, not 'str'"),
    ]


def test_sock_recv_closed_socket(loop):
    a, b = nonblocking(*socket.socketpair())
    a.close()

    async def main():
        with pytest.raises(OSError) as info:
            await loop.sock_recv(a, 10)
        return info.value.errno

    try:
        assert run(loop, main()) == errno.EBADF
    finally:
        b.close()


def test_sock_recv_socket_subclass_methods_are_used(loop, sockpair):
    calls = []

    class Sock(socket.socket):
        def recv(self, n, *args):
            calls.append(n)
            return super().recv(n, *args)

    a, b = sockpair
    s = Sock(fileno=os.dup(a.fileno()))
    s.setblocking(False)

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv(s, 5))
        await asyncio.sleep(0.01)
        b.send(b"data")
        return await fut

    try:
        assert run(loop, main()) == b"data"
    finally:
        s.close()
    assert calls and set(calls) == {5}


# --------------------------------------------------------------- datagrams

def test_sock_recvfrom_udp(loop):
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nonblocking(r, w)
    r.bind(("127.0.0.1", 0))
    w.bind(("127.0.0.1", 0))

    async def main():
        fut = asyncio.ensure_future(loop.sock_recvfrom(r, 100))
        await asyncio.sleep(0)
        n = await loop.sock_sendto(w, b"ping", r.getsockname())
        got = await fut
        await loop.sock_sendto(w, b"pong!", r.getsockname())
        buf = bytearray(10)
        got2 = await loop.sock_recvfrom_into(r, buf)
        await loop.sock_sendto(w, b"abcdef", r.getsockname())
        buf2 = bytearray(10)
        got3 = await loop.sock_recvfrom_into(r, buf2, 3)
        return n, got, got2, bytes(buf[:5]), got3, bytes(buf2[:3])

    try:
        n, got, got2, data2, got3, data3 = run(loop, main())
    finally:
        r.close()
        addr = w.getsockname()
        w.close()
    assert n == 4
    assert got == (b"ping", addr)
    assert got2 == (5, addr) and data2 == b"pong!"
    assert got3 == (3, addr) and data3 == b"abc"


@needs_ipv6
def test_sock_recvfrom_udp6(loop):
    r = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    w = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    nonblocking(r, w)
    r.bind(("::1", 0))
    w.bind(("::1", 0))

    async def main():
        await loop.sock_sendto(w, b"six", r.getsockname())
        return await loop.sock_recvfrom(r, 100)

    try:
        got = run(loop, main())
        assert got == (b"six", w.getsockname())
    finally:
        r.close()
        w.close()


@pytest.mark.parametrize("bind_sender", [False, True])
def test_sock_recvfrom_unix_dgram(loop, bind_sender):
    name = f"\0eloop-test-dgram-{os.getpid()}-{bind_sender}"
    r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    w = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nonblocking(r, w)
    r.bind(name)
    if bind_sender:
        w.bind(name + "-w")

    async def main():
        await loop.sock_sendto(w, b"x", name)
        return await loop.sock_recvfrom(r, 10)

    try:
        data, addr = run(loop, main())
        # What the socket module itself reports for the same sender.
        w.sendto(b"y", name)
        assert r.recvfrom(10) == (b"y", addr)
        assert data == b"x"
    finally:
        r.close()
        w.close()


# ----------------------------------------------------------------- sending

def test_sock_sendall_small(loop, sockpair):
    a, b = sockpair

    async def main():
        await loop.sock_sendall(a, b"")
        await loop.sock_sendall(a, b"abc")
        await loop.sock_sendall(a, bytearray(b"def"))
        await loop.sock_sendall(a, memoryview(b"-ghi-")[1:4])
        return await loop.sock_recv(b, 100)

    assert run(loop, main()) == b"abcdefghi"


def test_sock_sendall_large_partial_sends(loop, sockpair):
    a, b = sockpair
    data = os.urandom(1 << 20) * 50      # 50 MB: many partial sends

    async def reader():
        chunks = []
        total = 0
        while total < len(data):
            chunk = await loop.sock_recv(b, 1 << 18)
            assert chunk
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)

    async def main():
        rd = asyncio.ensure_future(reader())
        result = await loop.sock_sendall(a, data)
        return result, await rd

    result, received = run(loop, main(), timeout=60)
    assert result is None
    assert received == data


def test_sock_sendall_holds_bytearray(loop, sockpair):
    a, b = sockpair
    data = bytearray(8 << 20)

    async def main():
        fut = asyncio.ensure_future(loop.sock_sendall(a, data))
        await asyncio.sleep(0)
        assert not fut.done()
        # asyncio keeps a memoryview of the data while sending.
        with pytest.raises(BufferError):
            data.extend(b"more")
        fut.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        data.extend(b"more")    # released

    run(loop, main())


def test_sock_sendall_peer_closed(loop, sockpair):
    a, b = sockpair
    b.close()

    async def main():
        with pytest.raises(OSError) as info:
            for _ in range(100):
                await loop.sock_sendall(a, b"x" * 65536)
        return info.value

    exc = run(loop, main())
    assert isinstance(exc, (BrokenPipeError, ConnectionResetError))


# ------------------------------------------------------- connect and accept

def test_sock_connect_accept_tcp(loop):
    async def main():
        cli, conn, addr = await tcp_pair(loop)
        try:
            assert addr == cli.getsockname()
            assert conn.getpeername() == cli.getsockname()
            assert conn.gettimeout() == 0.0
            assert type(conn) is socket.socket
            assert (conn.family, conn.type, conn.proto) == (
                socket.AF_INET, socket.SOCK_STREAM, 0)
            assert conn.get_inheritable() is False
            await loop.sock_sendall(cli, b"over tcp")
            return await loop.sock_recv(conn, 100)
        finally:
            cli.close()
            conn.close()

    assert run(loop, main()) == b"over tcp"


@needs_ipv6
def test_sock_connect_accept_tcp6(loop):
    async def main():
        cli, conn, addr = await tcp_pair(loop, socket.AF_INET6, "::1")
        try:
            return addr, cli.getsockname()
        finally:
            cli.close()
            conn.close()

    addr, expected = run(loop, main())
    assert addr == expected and len(addr) == 4


def test_sock_connect_resolves_names(loop, listener):
    cli = socket.socket()
    cli.setblocking(False)

    async def main():
        port = listener.getsockname()[1]
        await loop.sock_connect(cli, ("localhost", port))
        conn, _ = await loop.sock_accept(listener)
        conn.close()
        return cli.getpeername()

    try:
        assert run(loop, main()) == listener.getsockname()
    finally:
        cli.close()


def test_sock_accept_waits(loop, listener):
    async def main():
        fut = asyncio.ensure_future(loop.sock_accept(listener))
        await asyncio.sleep(0.01)
        assert not fut.done()
        cli = socket.create_connection(listener.getsockname())
        conn, addr = await fut
        conn.close()
        expected = cli.getsockname()
        cli.close()
        return addr, expected

    addr, expected = run(loop, main())
    assert addr == expected


def test_sock_accept_proto_follows_listener(loop):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM,
                        socket.IPPROTO_TCP)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.setblocking(False)

    async def main():
        cli = socket.create_connection(srv.getsockname())
        conn, _ = await loop.sock_accept(srv)
        try:
            return conn.proto
        finally:
            conn.close()
            cli.close()

    try:
        assert run(loop, main()) == socket.IPPROTO_TCP
    finally:
        srv.close()


@pytest.mark.parametrize("kind", ["path", "abstract", "unnamed"])
def test_sock_accept_unix_addresses(loop, kind, tmp_path):
    srv = socket.socket(socket.AF_UNIX)
    if kind == "abstract":
        srv.bind(f"\0eloop-test-{os.getpid()}")
    else:
        srv.bind(str(tmp_path / "s"))
    srv.listen()
    srv.setblocking(False)
    cli = socket.socket(socket.AF_UNIX)
    if kind == "path":
        cli.bind(str(tmp_path / "c"))
    elif kind == "abstract":
        cli.bind(f"\0eloop-test-c-{os.getpid()}")
    cli.setblocking(False)

    async def main():
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        await loop.sock_connect(cli, srv.getsockname())
        conn, addr = await accept
        conn.close()
        return addr

    try:
        addr = run(loop, main())
        # Compare with what the socket module reports for a second client.
        cli2 = socket.socket(socket.AF_UNIX)
        if kind != "unnamed":
            cli2.bind(cli.getsockname() + (b"2" if kind == "abstract"
                                           and isinstance(cli.getsockname(),
                                                          bytes) else "2"))
        cli2.connect(srv.getsockname())
        srv.setblocking(True)
        conn2, addr2 = srv.accept()
        conn2.close()
        cli2.close()
        assert addr == cli.getsockname()
        assert type(addr) is type(addr2)
    finally:
        srv.close()
        cli.close()


def test_sock_connect_refused(loop):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cli = socket.socket()
    cli.setblocking(False)

    async def main():
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.sock_connect(cli, ("127.0.0.1", port))
        return info.value

    try:
        exc = run(loop, main())
    finally:
        cli.close()
    assert exc.errno == errno.ECONNREFUSED
    assert str(exc) == (f"[Errno {errno.ECONNREFUSED}] Connect call failed "
                        f"('127.0.0.1', {port})")


def test_sock_connect_unix_missing_path(loop, tmp_path):
    cli = socket.socket(socket.AF_UNIX)
    cli.setblocking(False)

    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.sock_connect(cli, str(tmp_path / "nothing"))

    try:
        run(loop, main())
    finally:
        cli.close()


def test_sock_connect_bad_address(loop):
    cli = socket.socket()
    cli.setblocking(False)

    async def main():
        errors = []
        for address in (("127.0.0.1",), 1234, ("127.0.0.1", 1, 0, 0, 9)):
            try:
                await loop.sock_connect(cli, address)
            except (TypeError, ValueError, OSError) as exc:
                errors.append(type(exc))
        return errors

    try:
        assert run(loop, main()) == [ValueError, TypeError, TypeError]
    finally:
        cli.close()


# ------------------------------------------------------------ cancellation

def test_cancel_recv_leaves_socket_usable(loop, sockpair):
    a, b = sockpair

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0.01)
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut
        b.send(b"later")
        return await loop.sock_recv(a, 10)

    assert run(loop, main()) == b"later"
    # The reader was removed, so the fd can be watched again.
    assert loop.remove_reader(a) is False


def test_cancel_through_wait_for(loop, sockpair):
    a, b = sockpair

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_recv(a, 10), 0.05)
        b.send(b"x")
        return await loop.sock_recv(a, 10)

    assert run(loop, main()) == b"x"


def test_cancel_warns_nothing(loop, sockpair):
    # A Task cancels by coro.throw(exc); an operation awaited inside a
    # coroutine must pass it on without 3.12+'s DeprecationWarning for the
    # (type, exc, tb) form of throw().
    a, b = sockpair

    async def recv():
        return await loop.sock_recv(a, 10)

    async def main():
        task = asyncio.ensure_future(recv())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        run(loop, main())


def test_cancel_sendall_then_resend(loop, sockpair):
    a, b = sockpair
    big = b"z" * (16 << 20)

    async def main():
        fut = asyncio.ensure_future(loop.sock_sendall(a, big))
        await asyncio.sleep(0.01)
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut
        # Drain what went through, then the socket still works.
        got = 0
        while True:
            try:
                got += len(b.recv(1 << 20))
            except BlockingIOError:
                break
        await loop.sock_sendall(a, b"tail")
        return got, await loop.sock_recv(b, 10)

    got, tail = run(loop, main())
    assert 0 < got < len(big)
    assert tail == b"tail"


def test_cancel_accept_then_accept(loop, listener):
    async def main():
        fut = asyncio.ensure_future(loop.sock_accept(listener))
        await asyncio.sleep(0)
        fut.cancel()
        await asyncio.sleep(0)
        cli = socket.create_connection(listener.getsockname())
        conn, _ = await loop.sock_accept(listener)
        conn.close()
        cli.close()
        return fut.cancelled()

    assert run(loop, main())


def test_two_recvs_on_one_fd_replace_the_reader(loop, sockpair):
    # asyncio keeps one reader per fd: the second operation replaces the
    # first, whose future then waits forever (until cancelled).
    a, b = sockpair

    async def main():
        first = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0)
        b.send(b"one")
        got = await second
        await asyncio.sleep(0.01)
        pending = not first.done()
        first.cancel()
        await asyncio.sleep(0)
        return got, pending

    assert run(loop, main()) == (b"one", True)


def test_recv_and_sendall_share_an_fd(loop, sockpair):
    a, b = sockpair
    big = b"q" * (8 << 20)

    async def main():
        rd = asyncio.ensure_future(loop.sock_recv(a, 10))
        wr = asyncio.ensure_future(loop.sock_sendall(a, big))
        await asyncio.sleep(0.01)
        b.send(b"ping")
        got = await rd
        n = 0
        while n < len(big):
            n += len(await loop.sock_recv(b, 1 << 20))
        await wr
        return got, n

    assert run(loop, main()) == (b"ping", len(big))


def test_sock_recv_replaces_user_reader(loop, sockpair):
    a, b = sockpair
    calls = []

    async def main():
        loop.add_reader(a, calls.append, "user")
        fut = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0)
        b.send(b"x")
        got = await fut
        await asyncio.sleep(0.01)
        return got

    assert run(loop, main()) == b"x"
    assert calls == []
    assert loop.remove_reader(a) is False


def test_fd_used_by_transport_is_refused(loop, sockpair):
    a, b = sockpair

    class FakeTransport:
        def is_closing(self):
            return False

        def __repr__(self):
            return "<FakeTransport>"

    fake = FakeTransport()  # asyncio's _transports holds weak references
    loop._transports[a.fileno()] = fake

    async def main():
        with pytest.raises(RuntimeError) as info:
            await loop.sock_recv(a, 10)
        return str(info.value)

    try:
        msg = run(loop, main())
    finally:
        del loop._transports[a.fileno()]
    assert msg == (f"File descriptor {a.fileno()} is used by transport "
                   f"<FakeTransport>")


# ----------------------------------------------------------------- checks

@pytest.mark.parametrize("method, extra", [
    ("sock_recv", (10,)), ("sock_recv_into", (bytearray(1),)),
    ("sock_recvfrom", (10,)), ("sock_recvfrom_into", (bytearray(1),)),
    ("sock_sendall", (b"x",)), ("sock_sendto", (b"x", ("127.0.0.1", 9))),
    ("sock_connect", (("127.0.0.1", 9),)), ("sock_accept", ()),
])
def test_blocking_socket_refused_in_debug(loop, method, extra):
    loop.set_debug(True)
    s = socket.socket()     # blocking

    async def main():
        with pytest.raises(ValueError) as info:
            await getattr(loop, method)(s, *extra)
        return str(info.value)

    try:
        assert run(loop, main()) == "the socket must be non-blocking"
    finally:
        s.close()


@pytest.mark.parametrize("method, extra", [
    ("sock_recv", (10,)), ("sock_sendall", (b"x",)), ("sock_accept", ()),
])
def test_ssl_socket_refused(loop, method, extra):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    s = ctx.wrap_socket(socket.socket(), server_hostname="x",
                        do_handshake_on_connect=False)

    async def main():
        with pytest.raises(TypeError) as info:
            await getattr(loop, method)(s, *extra)
        return str(info.value)

    try:
        assert run(loop, main()) == "Socket cannot be of type SSLSocket"
    finally:
        s.close()


# ------------------------------------------------------------ resolution

HOSTS = [None, "127.0.0.1", "::1", "::ffff:127.0.0.1", "fe80::1%1",
         "fe80::1%lo", "0.0.0.0", "::", b"127.0.0.1", "localhost",
         "127.1", "1.2.3.4.5", "", "fe80::1%nosuchif0", "::1%1"]
PORTS = [None, 0, 80, "80", b"443", "http", "", "99999", -1]
FAMILIES = [0, socket.AF_INET, socket.AF_INET6, socket.AF_UNIX]
TYPES = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM]
PROTOS = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP]
FLAGS = [0, socket.AI_PASSIVE, socket.AI_NUMERICHOST,
         socket.AI_NUMERICSERV, socket.AI_CANONNAME,
         socket.AI_PASSIVE | socket.AI_ADDRCONFIG, socket.AI_V4MAPPED]


def _expected(*args):
    try:
        return ("ok", socket.getaddrinfo(*args))
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return ("error", type(exc), exc.args)


def _combinations():
    # Every host x port, and a sweep of the other parameters on a few
    # representative hosts (the full product would be ~50k resolver calls).
    for host, port in itertools.product(HOSTS, PORTS):
        yield host, port, 0, 0, 0, 0
    for host in (None, "127.0.0.1", "::1", "fe80::1%1", "localhost"):
        for family, type_, proto, flags in itertools.product(
                FAMILIES, TYPES, PROTOS, FLAGS):
            yield host, 8080, family, type_, proto, flags


def test_getaddrinfo_matches_socket_module(loop):
    cases = list(_combinations())

    async def main():
        results = []
        for host, port, family, type_, proto, flags in cases:
            try:
                r = ("ok", await loop.getaddrinfo(
                    host, port, family=family, type=type_, proto=proto,
                    flags=flags))
            except Exception as exc:  # noqa: BLE001
                r = ("error", type(exc), exc.args)
            results.append(r)
        return results

    got = run(loop, main(), timeout=120)
    expected = [_expected(*case) for case in cases]
    mismatches = [(case, g, e) for case, g, e in zip(cases, got, expected)
                  if g != e]
    assert not mismatches, mismatches[:5]
    loop.run_until_complete(loop.shutdown_default_executor())


def test_getaddrinfo_result_types(loop):
    async def main():
        return await loop.getaddrinfo("127.0.0.1", 80,
                                      type=socket.SOCK_STREAM)

    [(family, type_, proto, canon, addr)] = run(loop, main())
    assert family is socket.AF_INET and type_ is socket.SOCK_STREAM
    assert (proto, canon, addr) == (socket.IPPROTO_TCP, "", ("127.0.0.1",
                                                             80))


def test_getaddrinfo_keyword_and_positional_errors(loop):
    with pytest.raises(TypeError):
        loop.getaddrinfo("127.0.0.1", 80, 0)
    with pytest.raises(TypeError):
        loop.getaddrinfo("127.0.0.1", 80, bogus=1)
    with pytest.raises(TypeError):
        loop.getaddrinfo("127.0.0.1")


def test_getaddrinfo_debug_mode(loop):
    loop.set_debug(True)

    async def main():
        return await loop.getaddrinfo("127.0.0.1", 80,
                                      type=socket.SOCK_STREAM)

    assert run(loop, main()) == socket.getaddrinfo(
        "127.0.0.1", 80, type=socket.SOCK_STREAM)
    loop.run_until_complete(loop.shutdown_default_executor())


def test_getaddrinfo_after_executor_shutdown(loop):
    loop.run_until_complete(loop.shutdown_default_executor())

    async def main():
        for host in ("127.0.0.1", "localhost"):
            with pytest.raises(RuntimeError) as info:
                await loop.getaddrinfo(host, 80)
            assert str(info.value) == "Executor shutdown has been called"

    run(loop, main())


def test_getnameinfo(loop):
    async def main():
        return await loop.getnameinfo(
            ("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)

    assert run(loop, main()) == ("127.0.0.1", "80")
    loop.run_until_complete(loop.shutdown_default_executor())


# ------------------------------------------------------------ sock_sendfile

@pytest.fixture
def datafile():
    data = os.urandom(300_000)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        f.seek(0)
        yield f, data


async def _read_exactly(loop, sock, n):
    chunks = []
    while n:
        chunk = await loop.sock_recv(sock, min(n, 1 << 16))
        assert chunk
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def test_sock_sendfile_regular_file(loop, datafile):
    f, data = datafile

    async def main():
        cli, conn, _ = await tcp_pair(loop)
        try:
            rd = asyncio.ensure_future(_read_exactly(loop, conn, len(data)))
            sent = await loop.sock_sendfile(cli, f)
            return sent, await rd, f.tell()
        finally:
            cli.close()
            conn.close()

    sent, received, pos = run(loop, main())
    assert sent == len(data) and received == data and pos == len(data)


def test_sock_sendfile_offset_count(loop, datafile):
    f, data = datafile

    async def main():
        cli, conn, _ = await tcp_pair(loop)
        try:
            sent = await loop.sock_sendfile(cli, f, 1000, 5000)
            return sent, await _read_exactly(loop, conn, 5000), f.tell()
        finally:
            cli.close()
            conn.close()

    assert run(loop, main()) == (5000, data[1000:6000], 6000)


def test_sock_sendfile_fallback_for_non_regular_file(loop):
    data = b"in memory" * 1000

    async def main():
        cli, conn, _ = await tcp_pair(loop)
        try:
            with pytest.raises(asyncio.SendfileNotAvailableError) as info:
                await loop.sock_sendfile(cli, io.BytesIO(data),
                                         fallback=False)
            sent = await loop.sock_sendfile(cli, io.BytesIO(data))
            return str(info.value), sent, await _read_exactly(
                loop, conn, len(data))
        finally:
            cli.close()
            conn.close()

    msg, sent, received = run(loop, main())
    assert msg == "not a regular file"
    assert sent == len(data) and received == data
    loop.run_until_complete(loop.shutdown_default_executor())


def test_sock_sendfile_parameter_errors(loop, datafile, tmp_path):
    f, _ = datafile
    (tmp_path / "t").write_text("text")
    text = open(tmp_path / "t")

    async def main():
        cli, conn, _ = await tcp_pair(loop)
        errors = []
        try:
            for args in ((f, -1), (f, 0, 0), (f, "0"), (text,)):
                try:
                    await loop.sock_sendfile(cli, *args)
                except (TypeError, ValueError) as exc:
                    errors.append((type(exc), str(exc)))
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.setblocking(False)
            try:
                await loop.sock_sendfile(udp, f)
            except ValueError as exc:
                errors.append((type(exc), str(exc)))
            finally:
                udp.close()
        finally:
            cli.close()
            conn.close()
            text.close()
        return errors

    assert run(loop, main()) == [
        (ValueError, "offset must be a non-negative integer (got -1)"),
        (ValueError, "count must be a positive integer (got 0)"),
        (TypeError, "offset must be a non-negative integer (got '0')"),
        (ValueError, "file should be opened in binary mode"),
        (ValueError, "only SOCK_STREAM type sockets are supported"),
    ]


# ------------------------------------------------------------- lifetimes

@pytest.mark.parametrize("finish", ["complete", "cancel", "close_loop"])
def test_operations_release_their_socket(loop_factory, finish):
    loop = loop_factory()
    a, b = nonblocking(*socket.socketpair())
    ref = weakref.ref(a)

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0)
        if finish == "complete":
            b.send(b"x")
            await fut
        elif finish == "cancel":
            fut.cancel()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return fut

    fut = loop.run_until_complete(main())
    loop.close()
    del fut
    a.close()
    del a
    gc.collect()
    b.close()
    assert ref() is None


# ------------------------------------------------- coroutine behaviour

def test_methods_return_coroutines(loop, sockpair):
    a, b = sockpair
    coro = loop.sock_recv(a, 10)
    try:
        assert asyncio.iscoroutine(coro)
        assert coro.__qualname__.endswith(".sock_recv")
    finally:
        coro.close()


def test_operation_starts_when_awaited(loop, sockpair):
    # As with asyncio's `async def`, calling the method does nothing yet.
    a, b = sockpair

    async def main():
        coro = loop.sock_sendall(a, b"lazy")
        await asyncio.sleep(0.01)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        await coro
        return await loop.sock_recv(b, 10)

    assert run(loop, main()) == b"lazy"


def test_create_task_from_sock_methods(loop, sockpair):
    a, b = sockpair

    async def main():
        rd = loop.create_task(loop.sock_recv(a, 10))
        wr = asyncio.create_task(loop.sock_sendall(b, b"task"))
        await wr
        info = loop.create_task(loop.getaddrinfo("127.0.0.1", 80,
                                                 type=socket.SOCK_STREAM))
        return await rd, len(await info)

    assert run(loop, main()) == (b"task", 1)


def test_task_cancelled_before_it_starts(loop, sockpair):
    a, b = sockpair

    async def main():
        task = loop.create_task(loop.sock_recv(a, 10))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        b.send(b"still here")
        return await loop.sock_recv(a, 100)

    assert run(loop, main()) == b"still here"


def test_coroutine_cannot_be_awaited_twice(loop, sockpair):
    a, b = sockpair
    b.send(b"x")

    async def main():
        coro = loop.sock_recv(a, 10)
        first = await coro
        with pytest.raises(RuntimeError, match="cannot reuse already "
                                               "awaited coroutine"):
            await coro
        return first

    assert run(loop, main()) == b"x"


def test_never_awaited_warning(loop, sockpair):
    a, b = sockpair
    with pytest.warns(RuntimeWarning, match="sock_recv' was never awaited"):
        loop.sock_recv(a, 10)
        gc.collect()
