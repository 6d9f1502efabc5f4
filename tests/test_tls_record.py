"""The TLS record path (src/ext/tls.c under asyncio's SSLProtocol) against
stock asyncio: how ciphertext arrives (byte by byte, many records at once,
application data in the handshake's last segment), BufferedProtocol apps
with tiny buffers, flow control both ways through TLS, a custom
SSLContext.sslobject_class, 200 MB each way into a BufferedProtocol, the
application transport's checks.  (tests/test_tls.py covers the rest of
TLS, renegotiation included, and runs on this record path too.)

The peer that needs exact control of the ciphertext is driven by hand: a
plain socket on the loop (sock_* calls) with an ssl.SSLObject over
MemoryBIOs, so the test decides how the encrypted bytes are cut.
"""

import asyncio
import os
import socket
import ssl

import pytest

CERTS = os.path.join(os.path.dirname(__file__), "certs")
SERVER_PEM = os.path.join(CERTS, "server.pem")
CA_PEM = os.path.join(CERTS, "ca.pem")


def server_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(SERVER_PEM)
    return ctx


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(CA_PEM)
    return ctx


def pattern(n, seed=0):
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


class ManualClient:
    """A TLS client over a plain non-blocking socket on `loop`, whose
    ciphertext the test cuts as it likes."""

    def __init__(self, loop, sock):
        self.loop, self.sock = loop, sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_ctx().wrap_bio(self.inc, self.out,
                                         server_hostname="localhost")

    @classmethod
    async def connect(cls, loop, addr):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, addr)
        return cls(loop, sock)

    async def _recv_into_bio(self):
        data = await self.loop.sock_recv(self.sock, 65536)
        if not data:
            self.inc.write_eof()
        else:
            self.inc.write(data)
        return data

    async def handshake(self, hold_last=False):
        """The handshake; with hold_last, the client's last flight
        (its Finished) is kept back and returned instead of sent."""
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.loop.sock_sendall(self.sock, self.out.read())
                await self._recv_into_bio()
        last = self.out.read()
        if hold_last:
            return last
        await self.loop.sock_sendall(self.sock, last)
        return b""

    def encrypt(self, data):
        self.obj.write(data)
        return self.out.read()

    async def send_cut(self, ciphertext, cut):
        """Send ciphertext in pieces of `cut` bytes, yielding between."""
        for i in range(0, len(ciphertext), cut):
            await self.loop.sock_sendall(self.sock, ciphertext[i:i + cut])
            await asyncio.sleep(0)

    async def read_exactly(self, n):
        got = bytearray()
        while len(got) < n:
            try:
                got += self.obj.read(n - len(got))
                continue
            except ssl.SSLWantReadError:
                pass
            if not await self._recv_into_bio():
                break
        return bytes(got)

    def close(self):
        self.sock.close()


class Echo(asyncio.Protocol):
    def __init__(self):
        self.chunks = []
        self.lost = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.chunks.append(data)
        self.transport.write(data)

    def connection_lost(self, exc):
        self.lost = exc
        self.closed.set_result(None)


async def close_all(srv, client, protos):
    """Close the manual client, wait for the server side to see it go,
    close the server."""
    client.close()
    for p in protos:
        await asyncio.wait_for(p.closed, 10)
    srv.close()
    await srv.wait_closed()


async def echo_server(loop, factory=Echo, ctx=None):
    protos = []

    def make():
        p = factory()
        protos.append(p)
        return p

    srv = await loop.create_server(make, "127.0.0.1", 0, ssl=ctx or server_ctx())
    return srv, srv.sockets[0].getsockname(), protos


@pytest.mark.parametrize("cut", [1, 5, 6, 4096, 16384 + 22, 70000])
def test_ciphertext_cut_anywhere(loop, cut):
    """Records split at every kind of boundary (inside the header, right
    after it, inside the body, several records per piece) decrypt to the
    same bytes, echoed back whole."""
    msg = pattern(50000, cut)

    async def main():
        srv, addr, protos = await echo_server(loop)
        c = await ManualClient.connect(loop, addr)
        await c.handshake()
        await c.send_cut(c.encrypt(msg), cut)
        back = await c.read_exactly(len(msg))
        await close_all(srv, c, protos)
        return back, protos

    back, protos = loop.run_until_complete(main())
    assert back == msg
    assert b"".join(protos[0].chunks) == msg


def test_many_small_records_in_one_segment(loop):
    """200 records of 10 bytes arriving together all reach the app, in
    order (asyncio joins what one read decrypts into one data_received)."""
    parts = [pattern(10, i) for i in range(200)]

    async def main():
        srv, addr, protos = await echo_server(loop)
        c = await ManualClient.connect(loop, addr)
        await c.handshake()
        blob = b"".join(c.encrypt(p) for p in parts)
        await loop.sock_sendall(c.sock, blob)
        back = await c.read_exactly(2000)
        await close_all(srv, c, protos)
        return back, protos

    back, protos = loop.run_until_complete(main())
    assert back == b"".join(parts)
    assert b"".join(protos[0].chunks) == b"".join(parts)


def test_app_data_with_the_handshakes_last_flight(loop):
    """The client's Finished and its first application record in one
    segment: the server finishes the handshake, calls connection_made,
    then delivers the data."""
    events = []

    class P(Echo):
        def connection_made(self, transport):
            events.append("made")
            super().connection_made(transport)

        def data_received(self, data):
            events.append(("data", bytes(data)))
            super().data_received(data)

    async def main():
        srv, addr, protos = await echo_server(loop, P)
        c = await ManualClient.connect(loop, addr)
        last = await c.handshake(hold_last=True)
        await loop.sock_sendall(c.sock, last + c.encrypt(b"hello"))
        back = await c.read_exactly(5)
        await close_all(srv, c, protos)
        return back

    assert loop.run_until_complete(main()) == b"hello"
    assert events == ["made", ("data", b"hello")]


def test_writes_in_connection_made_and_at_once(loop):
    """Writes from connection_made() and several writes and writelines()
    in one callback arrive in order."""

    class Greeter(asyncio.Protocol):
        def connection_made(self, transport):
            transport.write(b"hi ")
            transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
            transport.write(b" " + pattern(30000))

    async def main():
        srv, addr, _ = await echo_server(loop, Greeter)
        r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                             server_hostname="localhost")
        got = await r.readexactly(6 + 30001)
        w.close()
        await w.wait_closed()
        srv.close()
        await srv.wait_closed()
        return got

    assert loop.run_until_complete(main()) == b"hi abc " + pattern(30000)


class TinyBuffers(asyncio.BufferedProtocol):
    """A BufferedProtocol whose buffers are 1 to 7 bytes long."""

    def __init__(self):
        self.got = bytearray()
        self.sizes = []
        self.buf = bytearray(7)
        self.done = None
        self.expect = 0

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        n = len(self.sizes) % 7 + 1
        self.sizes.append(n)
        return memoryview(self.buf)[:n]

    def buffer_updated(self, nbytes):
        assert nbytes <= self.sizes[-1]
        self.got += self.buf[:nbytes]
        if len(self.got) >= self.expect:
            self.transport.write(b"ok")

    def connection_lost(self, exc):
        pass


def test_buffered_protocol_tiny_buffers(loop):
    """Decrypted data lands in the app's own small buffers, nothing lost
    when a record is larger than the buffer (the rest comes on later
    iterations, as asyncio's call_soon(_do_read) does)."""
    msg = pattern(40000, 3)

    async def main():
        protos = []

        def make():
            p = TinyBuffers()
            p.expect = len(msg)
            protos.append(p)
            return p

        srv = await loop.create_server(make, "127.0.0.1", 0, ssl=server_ctx())
        addr = srv.sockets[0].getsockname()
        r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                             server_hostname="localhost")
        w.write(msg)
        assert await r.readexactly(2) == b"ok"
        w.close()
        await w.wait_closed()
        srv.close()
        await srv.wait_closed()
        return protos[0]

    p = loop.run_until_complete(main())
    assert bytes(p.got) == msg
    assert max(p.sizes) == 7


def test_custom_sslobject_class(loop):
    """A context whose sslobject_class overrides read/write is used
    through those methods (no shortcut around a subclass)."""
    calls = {"read": 0, "write": 0}

    class Counting(ssl.SSLObject):
        def read(self, *a, **k):
            calls["read"] += 1
            return super().read(*a, **k)

        def write(self, data):
            calls["write"] += 1
            return super().write(data)

    sctx = server_ctx()
    sctx.sslobject_class = Counting

    async def main():
        srv, addr, _ = await echo_server(loop, ctx=sctx)
        r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                             server_hostname="localhost")
        w.write(b"x" * 1000)
        got = await r.readexactly(1000)
        w.close()
        await w.wait_closed()
        srv.close()
        await srv.wait_closed()
        return got

    assert loop.run_until_complete(main()) == b"x" * 1000
    assert calls["read"] > 0 and calls["write"] > 0


def test_pause_reading_through_tls(loop):
    """pause_reading() on the TLS transport stops data_received until
    resume_reading(); the data then arrives whole."""

    class P(asyncio.Protocol):
        def __init__(self):
            self.data = bytearray()
            self.paused_data = None

        def connection_made(self, transport):
            self.transport = transport
            transport.pause_reading()

        def data_received(self, data):
            self.data += data

    async def main():
        srv, addr, protos = await echo_server(loop, P)
        r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                             server_hostname="localhost")
        w.write(pattern(100000))
        await w.drain()
        for _ in range(20):
            await asyncio.sleep(0)
        p = protos[0]
        seen_while_paused = len(p.data)
        assert not p.transport.is_reading()
        p.transport.resume_reading()
        while len(p.data) < 100000:
            await asyncio.sleep(0.001)
        w.close()
        await w.wait_closed()
        srv.close()
        await srv.wait_closed()
        return seen_while_paused, bytes(p.data)

    seen, data = loop.run_until_complete(main())
    assert seen == 0
    assert data == pattern(100000)


def test_pause_writing_through_tls(loop):
    """A server writing to a client that does not read gets
    pause_writing() once the encrypted backlog passes the high-water
    mark, and resume_writing() when the client drains it."""
    events = []

    class Flood(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            transport.set_write_buffer_limits(high=64 * 1024)
            self.sent = 0
            self.paused = False
            self.pump()

        def pump(self):
            while not self.paused and self.sent < 8 << 20:
                self.transport.write(pattern(65536))
                self.sent += 65536
            if self.sent >= 8 << 20 and not self.paused:
                self.transport.close()

        def pause_writing(self):
            events.append("pause")
            self.paused = True

        def resume_writing(self):
            events.append("resume")
            self.paused = False
            loop.call_soon(self.pump)

    async def main():
        srv, addr, _ = await echo_server(loop, Flood)
        r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                             server_hostname="localhost",
                                             limit=1 << 16)
        for _ in range(50):
            await asyncio.sleep(0)
        paused_before_reading = list(events)
        total = 0
        while True:
            chunk = await r.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        w.close()
        await w.wait_closed()
        srv.close()
        await srv.wait_closed()
        return paused_before_reading, total

    before, total = loop.run_until_complete(main())
    assert before and before[0] == "pause"
    assert "resume" in events
    assert total == 8 << 20


@pytest.mark.timeout(180)
def test_200mb_both_ways_into_a_buffered_protocol(loop):
    """200 MB each way through two TLS ends on the same loop; the client
    is a BufferedProtocol with a 64 KiB buffer (records decrypted straight
    into it, a full buffer continued on the next iteration), checked
    chunk by chunk.  (tests/test_tls.py sends 200 MB to a Protocol.)"""
    total = 200 * 1000 * 1000
    block = pattern(1 << 20, 9)

    class Check(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(65536)
            self.view = memoryview(self.buf)
            self.got = 0
            self.bad = None
            self.done = loop.create_future()
            self.paused = None

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            # A memoryview: asyncio fills the rest of a buffer through
            # buffer[offset:], a copy for a bytearray.
            return self.view

        def buffer_updated(self, n):
            off = self.got % len(block)
            want = (block[off:] + block)[:n]
            if self.bad is None and self.buf[:n] != want:
                self.bad = self.got
            self.got += n
            if self.got >= total and not self.done.done():
                self.done.set_result(None)

        def pause_writing(self):
            self.paused = loop.create_future()

        def resume_writing(self):
            self.paused.set_result(None)
            self.paused = None

        def connection_lost(self, exc):
            if not self.done.done():
                self.done.set_exception(exc or ConnectionError("lost"))

    async def main():
        srv, addr, protos = await echo_server(loop)
        tr, p = await loop.create_connection(Check, *addr, ssl=client_ctx(),
                                             server_hostname="localhost")
        left = total
        while left:
            n = min(left, len(block))
            tr.write(block[:n])
            left -= n
            if p.paused is not None:
                await p.paused
        await p.done
        tr.close()
        await asyncio.wait_for(protos[0].closed, 30)
        srv.close()
        await srv.wait_closed()
        return p

    p = loop.run_until_complete(main())
    assert p.bad is None, "wrong bytes at offset %d" % p.bad
    assert p.got == total


async def first_bytes_sent(loop, server_protocol, n):
    """The first n bytes a TLS server with server_protocol sends a client
    that connects to it."""
    srv, addr, _ = await echo_server(loop, server_protocol)
    r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                         server_hostname="localhost")
    got = await r.readexactly(n)
    w.close()
    await w.wait_closed()
    srv.close()
    await srv.wait_closed()
    return got


def test_app_transport_write_checks(loop):
    """The TLS transport's write() refuses what asyncio refuses, with its
    message, and ignores empty data."""
    errors = []

    class P(asyncio.Protocol):
        def connection_made(self, transport):
            for bad in ("text", 12, None):
                try:
                    transport.write(bad)
                except TypeError as e:
                    errors.append(str(e))
            transport.write(b"")
            transport.write(memoryview(b""))
            transport.writelines([b"a", b"b"])
            transport.writelines(iter([b"c"]))
            transport.write(b"d")
            assert isinstance(transport, asyncio.sslproto._SSLProtocolTransport)

    assert loop.run_until_complete(first_bytes_sent(loop, P, 4)) == b"abcd"
    assert errors == ["data: expecting a bytes-like instance, got str",
                      "data: expecting a bytes-like instance, got int",
                      "data: expecting a bytes-like instance, got NoneType"]


def test_app_transport_subclass_writes(loop):
    """An instance of a subclass of the TLS transport's class writes as the
    class does (eloop's is a C type, which finds its module state through
    the MRO: a Python subclass has none of its own)."""

    class P(asyncio.Protocol):
        def connection_made(self, transport):
            base = type(transport)

            class Sub(base):
                pass

            transport.__class__ = Sub
            transport.write(b"a")
            transport.writelines([b"b", b"c"])
            transport.__class__ = base
            transport.write(b"d")

    assert loop.run_until_complete(first_bytes_sent(loop, P, 4)) == b"abcd"
