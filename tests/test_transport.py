"""Socket transports: asyncio's _SelectorSocketTransport semantics.

Every test runs on stock asyncio (the specification) and on eloop.
Transports are built over socket.socketpair() (or a loopback TCP pair) with
the loops' private factory, see make_transport().
"""

import asyncio
import contextvars
import errno
import gc
import logging
import re
import socket
import struct
import sys
import weakref
import zlib

import pytest

from _netutil import Echo, needs_ipv6


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def make_transport(loop, sock, protocol, waiter=None, **kwargs):
    """PRIVATE-API TEST HELPER.

    The public ways to get a socket transport (create_connection,
    connect_accepted_socket, ...) are not all available on eloop yet, so
    these tests call the private factory both loops share:
    asyncio.SelectorEventLoop._make_socket_transport(sock, protocol,
    waiter=None, *, extra=None, server=None) and eloop's method of the same
    name and signature.  Nothing outside the tests should do this.
    """
    return loop._make_socket_transport(sock, protocol, waiter, **kwargs)


@pytest.fixture
def tcppair():
    """A connected loopback TCP pair (client, accepted), non-blocking."""
    try:
        srv = socket.create_server(("127.0.0.1", 0))
    except OSError as exc:  # pragma: no cover
        pytest.skip(f"no loopback TCP: {exc}")
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    c.connect(srv.getsockname())
    s, _ = srv.accept()
    srv.close()
    c.setblocking(False)
    s.setblocking(False)
    yield c, s
    c.close()
    s.close()


class Recorder(asyncio.Protocol):
    """Records every callback; futures for the interesting moments."""

    def __init__(self, loop, name="p", keep_open=False):
        self.loop = loop
        self.name = name
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.keep_open = keep_open
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.nbytes_waiters = []
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport
        self.made.set_result(None)

    def data_received(self, data):
        assert type(data) is bytes
        self.events.append("data")
        self.data += data
        self._wake()

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)
        self._wake()

    def pause_writing(self):
        self.events.append("pause")
        self.paused += 1

    def resume_writing(self):
        self.events.append("resume")
        self.resumed += 1

    def _wake(self):
        for n, fut in list(self.nbytes_waiters):
            if (len(self.data) >= n or self.lost.done()) and not fut.done():
                fut.set_result(None)

    def wait_bytes(self, n):
        fut = self.loop.create_future()
        self.nbytes_waiters.append((n, fut))
        self._wake()
        return fut


def run(loop, coro, timeout=60):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def connect_pair(loop, sockpair, pa=None, pb=None):
    a, b = sockpair
    pa = pa or Recorder(loop, "a")
    pb = pb or Recorder(loop, "b")
    wa, wb = loop.create_future(), loop.create_future()
    ta = make_transport(loop, a, pa, wa)
    tb = make_transport(loop, b, pb, wb)
    await wa
    await wb
    return ta, tb, pa, pb


# --------------------------------------------------------------------------
# Construction, identity, introspection
# --------------------------------------------------------------------------

def test_is_an_asyncio_transport(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        for t in (ta, tb):
            assert isinstance(t, asyncio.Transport)
            assert isinstance(t, asyncio.BaseTransport)
            assert isinstance(t, asyncio.ReadTransport)
            assert isinstance(t, asyncio.WriteTransport)
        assert ta.can_write_eof() is True
        assert ta.is_closing() is False
        assert ta.is_reading() is True
        assert ta.get_protocol() is pa
        assert ta._protocol is pa
        assert ta._sock is sockpair[0]
        assert ta._sock_fd == sockpair[0].fileno()
        assert ta._loop is loop
        assert ta._closing is False
        assert ta._server is None
        assert loop._transports[ta._sock_fd] is ta
        assert re.fullmatch(
            r"<\w+ fd=%d read=polling write=<idle, bufsize=0>>"
            % ta._sock_fd, repr(ta)), repr(ta)
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
        assert ta._sock is None
        assert ta._protocol is None
        assert ta._loop is None
        assert re.fullmatch(r"<\w+ closed fd=%d>" % sockpair[0].fileno()
                            if sockpair[0].fileno() != -1 else
                            r"<\w+ closed fd=\d+>", repr(ta)), repr(ta)
    run(loop, main())


def test_get_extra_info(loop, sockpair):
    a, b = sockpair
    extra = {"peername": "given", "custom": 42}

    async def main():
        p = Recorder(loop)
        t = make_transport(loop, a, p, extra=extra)
        await p.made
        s = t.get_extra_info("socket")
        assert isinstance(s, asyncio.trsock.TransportSocket)
        assert s.fileno() == a.fileno()
        assert t.get_extra_info("sockname") == a.getsockname()
        # A peername given in extra is kept, as asyncio does.
        assert t.get_extra_info("peername") == "given"
        assert t.get_extra_info("custom") == 42
        assert t.get_extra_info("nope") is None
        assert t.get_extra_info("nope", "dflt") == "dflt"
        assert t.get_extra_info(name="nope", default=1) == 1
        # asyncio fills in (and keeps) the caller's dict.
        assert extra["socket"] is s
        assert t._extra is extra
        p2 = Recorder(loop)
        t2 = make_transport(loop, b, p2)
        await p2.made
        assert t2.get_extra_info("peername") == b.getpeername()
        t.close()
        t2.close()
        await p.lost
        # Extra info survives closing.
        assert t.get_extra_info("custom") == 42
    run(loop, main())


async def tcp_connection(loop, host):
    """(server-side transport, client transport, their protocols) of one
    connection made through create_server() and create_connection()."""
    accepted = loop.create_future()

    def factory():
        p = Recorder(loop, "s")
        accepted.set_result(p)
        return p
    server = await loop.create_server(factory, host, 0)
    addr = server.sockets[0].getsockname()
    ct, cp = await loop.create_connection(lambda: Recorder(loop, "c"),
                                          *addr[:2])
    sp = await accepted
    await sp.made
    server.close()
    return sp.transport, ct, sp, cp, addr


@pytest.mark.parametrize("host", ["127.0.0.1",
                                  pytest.param("::1", marks=needs_ipv6)])
def test_extra_info_of_tcp_connections(loop, host):
    async def main():
        st, ct, sp, cp, addr = await tcp_connection(loop, host)
        csock = ct.get_extra_info("socket")
        assert isinstance(csock, asyncio.trsock.TransportSocket)
        caddr = csock.getsockname()
        assert ct.get_extra_info("nope") is None
        assert ct.get_extra_info("nope", 7) == 7
        assert st.get_extra_info("nope", default=8) == 8
        assert st.get_extra_info("sockname") == addr
        assert st.get_extra_info("peername") == caddr
        assert ct.get_extra_info("sockname") == caddr
        assert ct.get_extra_info("peername") == addr
        for t in (st, ct):
            peer = t.get_extra_info("peername")
            assert type(peer) is tuple and type(peer[0]) is str
            assert t.get_extra_info("peername") is peer
            assert t.get_extra_info("socket").fileno() == t._sock_fd
            assert t._extra["peername"] is peer
            with pytest.raises(TypeError):
                t.get_extra_info([])
        # The accept loop passes extra={'peername': addr} first.
        assert list(st._extra) == ["peername", "socket", "sockname"]
        assert list(ct._extra) == ["socket", "sockname", "peername"]
        st.close()
        ct.close()
        await sp.lost
        await cp.lost
    run(loop, main())


def test_extra_info_after_reset(loop):
    """The addresses are read when the transport is made: after the peer
    resets the connection (getpeername() would fail) and the transport
    closes, they are still there, as is the socket."""
    async def main():
        st, ct, sp, cp, addr = await tcp_connection(loop, "127.0.0.1")
        caddr = ct._sock.getsockname()
        ct._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        ct.abort()
        await cp.lost
        await sp.lost
        assert st._sock is None
        assert st.get_extra_info("peername") == caddr
        assert st.get_extra_info("sockname") == addr
        assert st.get_extra_info("socket").fileno() == -1
        assert ct.get_extra_info("peername") == addr
        assert ct.get_extra_info("sockname") == caddr
    run(loop, main())


def test_extra_attribute_can_be_replaced(loop):
    async def main():
        st, ct, sp, cp, addr = await tcp_connection(loop, "127.0.0.1")
        ct._extra = {"custom": 1}
        assert ct.get_extra_info("custom") == 1
        assert ct.get_extra_info("peername") is None
        assert ct._extra == {"custom": 1}
        st.close()
        ct.close()
        await sp.lost
        await cp.lost
    run(loop, main())


def test_data_received_context_persists(loop, sockpair):
    """asyncio's reader handle runs in one context for the whole
    connection, copied when reading started: what data_received() sets,
    the next data_received() sees; the creator's context is untouched."""
    var = contextvars.ContextVar("var", default=0)
    seen = []

    class P(Recorder):
        def data_received(self, data):
            seen.append(var.get())
            var.set(var.get() + 1)
            super().data_received(data)

    async def main():
        var.set(10)
        a, b = sockpair
        p = P(loop)
        t = make_transport(loop, a, p)
        await p.made
        for i in range(3):
            b.send(b"x")
            await p.wait_bytes(i + 1)
        assert seen == [10, 11, 12]
        assert var.get() == 10
        t.close()
        await p.lost
    run(loop, main())


def test_tcp_nodelay_set_on_tcp_sockets(loop, tcppair):
    c, s = tcppair

    async def main():
        pc, ps = Recorder(loop), Recorder(loop)
        tc = make_transport(loop, c, pc)
        ts = make_transport(loop, s, ps)
        await pc.made
        await ps.made
        # c was made with proto=IPPROTO_TCP: NODELAY set; s (accepted,
        # proto 0) is left alone, exactly as base_events._set_nodelay().
        assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert not s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert tc.get_extra_info("peername") == s.getsockname()
        tc.close()
        ts.close()
        await pc.lost
        await ps.lost
    run(loop, main())


def test_server_attach_detach(loop, sockpair):
    class FakeServer:
        attached = detached = 0

        # 3.13's Server tracks its clients: _attach(transport)
        def _attach(self, *transport):
            self.attached += 1
            self.args = transport

        def _detach(self, *transport):
            self.detached += 1
            self.args = transport

    server = FakeServer()

    async def main():
        p = Recorder(loop)
        t = make_transport(loop, sockpair[0], p, server=server)
        assert server.attached == 1 and server.detached == 0
        assert server.args == ((t,) if sys.version_info >= (3, 13) else ())
        assert t._server is server
        await p.made
        t.close()
        await p.lost
        await asyncio.sleep(0)
        assert server.detached == 1
        assert server.args == ((t,) if sys.version_info >= (3, 13) else ())
        assert t._server is None
    run(loop, main())


# --------------------------------------------------------------------------
# Callback order and data
# --------------------------------------------------------------------------

def test_callback_order(loop, sockpair):
    a, b = sockpair
    order = []
    b.send(b"early")     # waiting before the transport exists

    class P(Recorder):
        def connection_made(self, tr):
            order.append("made")
            super().connection_made(tr)

        def data_received(self, data):
            order.append(("data", data))
            super().data_received(data)

        def eof_received(self):
            order.append("eof")
            return super().eof_received()

        def connection_lost(self, exc):
            order.append(("lost", exc))
            super().connection_lost(exc)

    async def main():
        p = P(loop)
        waiter = loop.create_future()
        waiter.add_done_callback(lambda f: order.append("waiter"))
        make_transport(loop, a, p, waiter)
        order.append("created")
        await p.lost
    loop.call_later(0.05, b.shutdown, socket.SHUT_WR)
    run(loop, main())
    assert order == ["created", "made", "waiter", ("data", b"early"), "eof",
                     ("lost", None)]


def test_waiter_cancelled_is_left_alone(loop, sockpair):
    async def main():
        p = Recorder(loop)
        waiter = loop.create_future()
        waiter.cancel()
        t = make_transport(loop, sockpair[0], p, waiter)
        await p.made
        await asyncio.sleep(0)
        assert waiter.cancelled()
        t.close()
        await p.lost
    run(loop, main())


def test_many_writes_arrive_in_order(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        expected = bytearray()
        for rnd in range(50):
            for i in range(100):
                msg = b"%d:%d;" % (rnd, i)
                expected += msg
                kind = i % 3
                if kind == 0:
                    ta.write(msg)
                elif kind == 1:
                    ta.write(bytearray(msg))
                else:
                    ta.write(memoryview(msg))
            await asyncio.sleep(0)
        await pb.wait_bytes(len(expected))
        assert pb.data == expected
        assert set(pb.events[1:]) == {"data"}
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
    run(loop, main())


def test_writes_of_one_callback_arrive_together(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        ta.write(b"head")
        ta.writelines([b"-", bytearray(b"body"), memoryview(b"-")])
        ta.write(b"tail")
        await pb.wait_bytes(14)
        assert pb.events == ["made", "data"]
        assert pb.data == b"head-body-tail"
        ta.close()
        tb.close()
        await pb.lost
    run(loop, main())


def test_peers_become_readable_in_write_order(loop):
    # asyncio sends at once, so the peer written to first is readable
    # first; a large write (sent at once on every loop) must not overtake
    # a small one made before it on another connection.
    order = []

    class Peer(Recorder):
        def data_received(self, data):
            order.append(self.name)
            super().data_received(data)

    async def main():
        pairs = [socket.socketpair() for _ in range(2)]
        for a, b in pairs:
            a.setblocking(False)
            b.setblocking(False)
        writers, peers = [], []
        for name, (a, b) in zip("xy", pairs):
            w, p = Recorder(loop, "w" + name), Peer(loop, name)
            writers.append(make_transport(loop, a, w))
            peers.append(p)
            make_transport(loop, b, p)
            await p.made
        writers[0].write(b"small")
        writers[1].write(b"L" * 100000)     # above the high-water mark
        await peers[0].wait_bytes(5)
        await peers[1].wait_bytes(100000)
        assert order[:2] == ["x", "y"], order
        for t in writers:
            t.close()
        for p in peers:
            await p.lost
    run(loop, main())


def test_write_copies_mutable_buffers(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        buf = bytearray(b"original")
        ta.write(buf)
        buf[:] = b"CHANGED!"
        arr = bytearray(b"mv-data")
        ta.write(memoryview(arr))
        arr[:] = b"XXXXXXX"
        ta.write(b"")                   # empty writes are no-ops
        ta.write(bytearray())
        ta.writelines([])
        await pb.wait_bytes(15)
        assert pb.data == b"originalmv-data"
        ta.close()
        tb.close()
        await pb.lost
    run(loop, main())


def test_echo_ping_pong(loop, sockpair):
    rounds = 2000

    class Pinger(Recorder):
        count = 0

        def data_received(self, data):
            super().data_received(data)
            while len(self.data) >= 4:
                n, = struct.unpack("!I", self.data[:4])
                del self.data[:4]
                assert n == self.count
                self.count += 1
                if self.count == rounds:
                    self.transport.close()
                    return
                self.transport.write(struct.pack("!I", self.count))

    async def main():
        a, b = sockpair
        ping = Pinger(loop)
        echo = Echo()
        ta = make_transport(loop, a, ping)
        tb = make_transport(loop, b, echo)
        await ping.made
        ta.write(struct.pack("!I", 0))
        await ping.lost
        assert ping.count == rounds
        tb.close()
    run(loop, main())


@pytest.mark.timeout(300)
def test_200mb_transfer_intact(loop, sockpair):
    total = 200 * 1024 * 1024
    block = bytes(range(256)) * 4096 * 8          # 8 MiB
    blocks = [block[i:] + block[:i] for i in (0, 1, 7, 255)]

    class Sender(Recorder):
        def __init__(self, loop):
            super().__init__(loop)
            self.sent = 0
            self.crc = 0
            self.i = 0

        def pump(self):
            while self.sent < total and not self.paused > self.resumed:
                chunk = blocks[self.i % 4][: min(len(block),
                                                 total - self.sent)]
                self.i += 1
                self.crc = zlib.crc32(chunk, self.crc)
                self.sent += len(chunk)
                self.transport.write(chunk)
                assert self.transport.get_write_buffer_size() <= \
                    len(block) + 64 * 1024
            if self.sent == total:
                self.transport.close()

        def resume_writing(self):
            super().resume_writing()
            self.pump()

    class Receiver(asyncio.Protocol):
        def __init__(self):
            self.n = 0
            self.crc = 0
            self.done = loop.create_future()

        def connection_made(self, tr):
            pass

        def data_received(self, data):
            self.n += len(data)
            self.crc = zlib.crc32(data, self.crc)

        def eof_received(self):
            self.done.set_result(None)

    async def main():
        a, b = sockpair
        s = Sender(loop)
        r = Receiver()
        make_transport(loop, a, s)
        tb = make_transport(loop, b, r)
        await s.made
        s.pump()
        await r.done
        await s.lost
        tb.close()
        assert r.n == total
        assert r.crc == s.crc
        assert s.paused >= 1 and s.resumed == s.paused
    run(loop, main(), timeout=280)


# --------------------------------------------------------------------------
# Flow control
# --------------------------------------------------------------------------

def test_write_buffer_limits(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        assert ta.get_write_buffer_limits() == (16384, 65536)
        ta.set_write_buffer_limits(high=100)
        assert ta.get_write_buffer_limits() == (25, 100)
        ta.set_write_buffer_limits(low=10)
        assert ta.get_write_buffer_limits() == (10, 40)
        ta.set_write_buffer_limits(50, 20)
        assert ta.get_write_buffer_limits() == (20, 50)
        ta.set_write_buffer_limits(high=0)
        assert ta.get_write_buffer_limits() == (0, 0)
        ta.set_write_buffer_limits(high=10.5)
        assert ta.get_write_buffer_limits() == (2.0, 10.5)
        with pytest.raises(ValueError) as ei:
            ta.set_write_buffer_limits(high=1, low=2)
        assert str(ei.value) == "high (1) must be >= low (2) must be >= 0"
        with pytest.raises(ValueError) as ei:
            ta.set_write_buffer_limits(low=-1)
        assert str(ei.value) == "high (-4) must be >= low (-1) must be >= 0"
        with pytest.raises(TypeError):
            ta.set_write_buffer_limits(high="x")
        assert ta.get_write_buffer_limits() == (2.0, 10.5)
        assert ta.get_write_buffer_size() == 0
        ta.close()
        tb.close()
        await pb.lost
    run(loop, main())


def test_small_writes_never_pause(loop, sockpair):
    # The kernel takes these at once, so asyncio's buffer never fills and
    # pause_writing() is never called, even with a zero high-water mark.
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        ta.set_write_buffer_limits(high=0)
        for i in range(100):
            ta.write(b"x" * 100)
        assert pa.paused == 0
        await pb.wait_bytes(10000)
        assert pa.paused == 0 and pa.resumed == 0
        ta.close()
        tb.close()
        await pb.lost
    run(loop, main())


def test_pause_resume_writing_with_slow_reader(loop, sockpair):
    chunk = b"z" * 65536

    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        tb.pause_reading()
        assert not tb.is_reading()
        written = 0
        # Write until the protocol is told to stop; the buffer stays
        # bounded because a well-behaved writer stops there.
        while not pa.paused:
            size_before = ta.get_write_buffer_size()
            assert size_before <= 65536
            ta.write(chunk)
            written += len(chunk)
            assert written < 64 * 1024 * 1024, "pause_writing never came"
            await asyncio.sleep(0)
        assert pa.paused == 1
        assert ta.get_write_buffer_size() > 65536
        # Writing more while paused is allowed (asyncio only advises).
        ta.write(chunk)
        written += len(chunk)
        assert pa.paused == 1
        await asyncio.sleep(0.05)
        assert pa.resumed == 0
        tb.resume_reading()
        assert tb.is_reading()
        await pb.wait_bytes(written)
        assert pa.resumed == 1
        assert ta.get_write_buffer_size() == 0
        assert pa.events.count("pause") == 1
        assert pa.events.index("pause") < pa.events.index("resume")
        assert bytes(pb.data) == chunk * (written // len(chunk))
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
    run(loop, main())


def test_set_write_buffer_limits_pauses(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        tb.pause_reading()
        while ta.get_write_buffer_size() == 0:
            ta.write(b"q" * 65536)
            await asyncio.sleep(0)
        ta.set_write_buffer_limits(high=1 << 30)
        pa.paused = 0
        ta.set_write_buffer_limits(high=0)
        assert pa.paused == 1
        tb.resume_reading()
        ta.close()
        await pa.lost
        tb.close()
        await pb.lost
    run(loop, main())


def test_pause_writing_errors_are_reported(loop, loop_errors, sockpair):
    class P(Recorder):
        def pause_writing(self):
            super().pause_writing()
            raise ZeroDivisionError("pause")

        def resume_writing(self):
            super().resume_writing()
            raise ValueError("resume")

    async def main():
        a, b = sockpair
        pa = P(loop)
        ta, tb, pa, pb = await connect_pair(loop, sockpair, pa=pa)
        ta.set_write_buffer_limits(high=0)
        tb.pause_reading()
        while not pa.paused:
            ta.write(b"w" * 65536)
            await asyncio.sleep(0)
        tb.resume_reading()
        while not pa.resumed:
            await asyncio.sleep(0.01)
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
    run(loop, main())
    msgs = loop_errors.messages()
    assert msgs == ["protocol.pause_writing() failed",
                    "protocol.resume_writing() failed"]
    ctx = loop_errors.calls[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert isinstance(ctx["transport"], asyncio.Transport)
    assert isinstance(ctx["protocol"], P)


# --------------------------------------------------------------------------
# Reading control
# --------------------------------------------------------------------------

def test_pause_resume_reading(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        tb.pause_reading()
        tb.pause_reading()                  # idempotent
        assert tb._paused is True
        ta.write(b"held")
        await asyncio.sleep(0.05)
        assert pb.data == b""
        assert re.search(r"read=idle", repr(tb)), repr(tb)
        tb.resume_reading()
        tb.resume_reading()
        await pb.wait_bytes(4)
        assert pb.data == b"held"
        ta.close()
        tb.close()
        assert not tb.is_reading()
        tb.resume_reading()                 # no effect once closing
        await pb.lost
    run(loop, main())


def test_pause_reading_inside_connection_made(loop, sockpair):
    a, b = sockpair
    b.send(b"data")

    class P(Recorder):
        def connection_made(self, tr):
            super().connection_made(tr)
            tr.pause_reading()

    async def main():
        p = P(loop)
        t = make_transport(loop, a, p)
        await p.made
        await asyncio.sleep(0.05)
        assert p.data == b""
        t.resume_reading()
        await p.wait_bytes(4)
        t.close()
        await p.lost
    run(loop, main())


def test_set_protocol(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        other = Recorder(loop, "other")
        tb.set_protocol(other)
        assert tb.get_protocol() is other
        ta.write(b"to-other")
        await other.wait_bytes(8)
        assert pb.data == b""
        ta.close()
        await other.lost
        assert pb.events == ["made"]
        assert other.events == ["data", "eof", ("lost", None)]
    run(loop, main())


# --------------------------------------------------------------------------
# Half-close and closing
# --------------------------------------------------------------------------

def test_write_eof_half_close(loop, sockpair):
    async def main():
        pb = Recorder(loop, "b", keep_open=True)
        ta, tb, pa, pb = await connect_pair(loop, sockpair, pb=pb)
        ta.write(b"request")
        ta.write_eof()
        ta.write_eof()                          # idempotent
        assert ta._eof is True
        assert ta.is_closing() is False
        with pytest.raises(RuntimeError) as ei:
            ta.write(b"more")
        assert str(ei.value) == "Cannot call write() after write_eof()"
        await pb.eof
        assert pb.data == b"request"
        # eof_received() returned True: still open for writing.
        assert not tb.is_closing()
        tb.write(b"response")
        await pa.wait_bytes(8)
        assert pa.data == b"response"
        tb.close()
        await pb.lost
        await pa.lost
        assert pa.events == ["made", "data", "eof", ("lost", None)]
        assert pb.events == ["made", "data", "eof", ("lost", None)]
    run(loop, main())


def test_write_eof_after_pending_data(loop, sockpair):
    big = bytes(range(256)) * 4096 * 4                  # 4 MiB

    async def main():
        pb = Recorder(loop, "b", keep_open=True)
        ta, tb, pa, pb = await connect_pair(loop, sockpair, pb=pb)
        ta.write(big)
        assert ta.get_write_buffer_size() > 0
        ta.write_eof()
        await pb.eof
        assert pb.data == big
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
    run(loop, main())


@pytest.mark.parametrize("keep_open", [False, None, 0, True, 1])
def test_eof_received_return_value(loop, sockpair, keep_open):
    async def main():
        pb = Recorder(loop, "b", keep_open=keep_open)
        ta, tb, pa, pb = await connect_pair(loop, sockpair, pb=pb)
        ta.write_eof()
        await pb.eof
        await asyncio.sleep(0.02)
        if keep_open:
            assert not tb.is_closing()
            assert not pb.lost.done()
            # asyncio removes the reader but keeps _paused False.
            assert tb.is_reading()
            tb.write(b"still here")
            await pa.wait_bytes(10)
            tb.close()
        else:
            assert tb.is_closing()
        await pb.lost
        assert pb.lost.result() is None
        ta.close()
        await pa.lost
    run(loop, main())


def test_close_flushes_before_connection_lost(loop, sockpair):
    big = bytes(range(251)) * 20000                      # ~5 MB

    class P(Recorder):
        def connection_lost(self, exc):
            self.size_at_lost = self.transport.get_write_buffer_size()
            super().connection_lost(exc)

    async def main():
        pa = P(loop, "a")
        ta, tb, pa, pb = await connect_pair(loop, sockpair, pa=pa)
        ta.write(big)
        ta.close()
        assert ta.is_closing()
        assert ta.get_write_buffer_size() > 0
        ta.close()                                      # idempotent
        await pb.eof
        await pa.lost
        assert pa.size_at_lost == 0
        assert pa.lost.result() is None
        assert pb.data == big
        assert sockpair[0].fileno() == -1              # the socket closed
        await pb.lost
    run(loop, main())


def test_close_then_abort_loses_once(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        tb.pause_reading()
        while ta.get_write_buffer_size() == 0:
            ta.write(b"a" * 65536)
            await asyncio.sleep(0)
        ta.close()
        ta.abort()
        ta.abort()
        ta.close()
        await pa.lost
        await asyncio.sleep(0.02)
        assert pa.events.count(("lost", None)) == 1
        tb.close()
        await pb.lost
    run(loop, main())


def test_abort_drops_data(loop, sockpair):
    big = b"d" * (16 * 1024 * 1024)

    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        tb.pause_reading()
        ta.write(big)
        assert ta.get_write_buffer_size() > 0
        ta.abort()
        assert ta.is_closing()
        assert ta.get_write_buffer_size() == 0
        assert not pa.lost.done()               # via call_soon
        await pa.lost
        assert pa.lost.result() is None
        tb.resume_reading()
        await pb.lost
        assert 0 < len(pb.data) < len(big)
    run(loop, main())


def test_connection_lost_exactly_once_and_cleanup(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        fd = ta._sock_fd
        ta.close()
        await pa.lost
        await asyncio.sleep(0.02)
        assert pa.events.count(("lost", None)) == 1
        # A closing transport no longer guards its fd number.
        loop.remove_reader(fd)
        tb.close()
        await pb.lost
    run(loop, main())


def test_transport_is_freed_after_close(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        ref = weakref.ref(ta)
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
        return ref

    ref = run(loop, main())
    gc.collect()
    assert ref() is None


def test_unclosed_transport_warns(loop_factory):
    a, b = socket.socketpair()
    loop = loop_factory()
    try:
        p = Recorder(loop)
        t = make_transport(loop, a, p)
        loop.run_until_complete(p.made)
        ref = weakref.ref(t)
        del t, p
    finally:
        loop.close()
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del loop
        gc.collect()
        assert ref() is None
    assert a.fileno() == -1                     # closed by the finalizer
    b.close()


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_peer_reset(loop, tcppair):
    c, s = tcppair

    async def main():
        p = Recorder(loop)
        t = make_transport(loop, c, p)
        await p.made
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()
        exc = await p.lost
        assert isinstance(exc, ConnectionResetError)
        assert exc.errno == errno.ECONNRESET
        assert t.is_closing()
        assert p.events == ["made", ("lost", exc)]
    run(loop, main())


def test_write_to_closed_peer(loop, sockpair, caplog):
    async def main():
        a, b = sockpair
        p = Recorder(loop)
        t = make_transport(loop, a, p)
        await p.made
        t.pause_reading()          # only the write path sees the error
        b.close()
        for _ in range(3):
            t.write(b"x" * 1000)
            await asyncio.sleep(0)
        exc = await p.lost
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
        assert t.is_closing()
    run(loop, main())


def test_writes_after_close_are_ignored_with_warning(loop, sockpair, caplog):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        ta.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for i in range(10):
                ta.write(b"ignored")
        assert ta.get_write_buffer_size() == 0
        await pa.lost
        await pb.lost
        assert pb.data == b""
    run(loop, main())
    msgs = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.levelno == logging.WARNING]
    # _conn_lost is 1 after close(); the warning starts at the 5th write.
    assert msgs == ["socket.send() raised exception."] * 6


def test_debug_mode_logging(loop, tcppair, caplog):
    c, s = tcppair
    loop.set_debug(True)
    loop.slow_callback_duration = 60

    async def main():
        p = Recorder(loop)
        t = make_transport(loop, c, p)
        await p.made
        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            t.pause_reading()
            t.resume_reading()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.close()
            exc = await p.lost
        assert isinstance(exc, ConnectionResetError)
        return t

    run(loop, main())
    recs = [r for r in caplog.records if r.name == "asyncio"
            and "Transport" in r.getMessage()]
    msgs = [re.sub(r"^<.*?>", "<T>", r.getMessage()) for r in recs]
    assert msgs == ["<T> pauses reading", "<T> resumes reading",
                    "<T>: Fatal read error on socket transport"], msgs
    assert recs[-1].exc_info[0] is ConnectionResetError


def test_bad_arguments(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        for bad, name in (("str", "str"), (1, "int"), (None, "NoneType"),
                          ([b"x"], "list")):
            with pytest.raises(TypeError) as ei:
                ta.write(bad)
            assert str(ei.value) == (
                f"data argument must be a bytes-like object, not {name!r}")
        with pytest.raises(TypeError) as ei:
            ta.writelines([b"ok", "bad"])
        assert str(ei.value) == (
            # 3.12 builds a memoryview per item instead of b"".join()
            "memoryview: a bytes-like object is required, not 'str'"
            if sys.version_info >= (3, 12) else
            "sequence item 1: expected a bytes-like object, str found")
        with pytest.raises(TypeError):
            ta.writelines(5)
        with pytest.raises(TypeError):
            ta.write()
        with pytest.raises(TypeError):
            ta.get_extra_info()
        assert ta.get_write_buffer_size() == 0
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
        assert pb.data == b""
    run(loop, main())


def test_add_reader_on_transport_fd_refused(loop, sockpair):
    async def main():
        a, b = sockpair
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        for meth, args in ((loop.add_reader, (print,)),
                           (loop.add_writer, (print,)),
                           (loop.remove_reader, ()),
                           (loop.remove_writer, ())):
            for fileobj in (a, a.fileno()):
                with pytest.raises(RuntimeError) as ei:
                    meth(fileobj, *args)
                assert str(ei.value) == (
                    f"File descriptor {fileobj!r} is used by transport "
                    f"{ta!r}")
        ta.close()
        tb.close()
        await pa.lost
        await pb.lost
    run(loop, main())


def _raising(method):
    def f(self, *args):
        getattr(Recorder, method)(self, *args)
        raise ZeroDivisionError(method)
    return f


@pytest.mark.parametrize("method, message", [
    ("data_received", "Fatal error: protocol.data_received() call failed."),
    ("eof_received", "Fatal error: protocol.eof_received() call failed."),
])
def test_protocol_callback_raises(loop, loop_errors, sockpair, method,
                                  message):
    P = type("P", (Recorder,), {method: _raising(method)})

    async def main():
        pb = P(loop, "b")
        ta, tb, pa, pb = await connect_pair(loop, sockpair, pb=pb)
        if method == "data_received":
            ta.write(b"boom")
        else:
            ta.write_eof()
        exc = await pb.lost
        assert isinstance(exc, ZeroDivisionError)
        assert tb.is_closing()
        assert sockpair[1].fileno() == -1
        ta.close()
        await pa.lost
    run(loop, main())
    assert loop_errors.messages() == [message]
    ctx = loop_errors.calls[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert isinstance(ctx["transport"], asyncio.Transport)
    assert isinstance(ctx["protocol"], Recorder)


def test_connection_made_and_lost_raising(loop, loop_errors, sockpair):
    class P(Recorder):
        def connection_made(self, tr):
            super().connection_made(tr)
            raise ValueError("made")

        def connection_lost(self, exc):
            super().connection_lost(exc)
            raise KeyError("lost")

    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair,
                                            pa=P(loop, "a"))
        ta.write(b"still works")
        await pb.wait_bytes(11)
        ta.close()
        await pa.lost
        await asyncio.sleep(0.01)
        # The socket is closed even though connection_lost() raised.
        assert sockpair[0].fileno() == -1
        tb.close()
        await pb.lost
    run(loop, main())
    msgs = loop_errors.messages()
    assert len(msgs) == 2
    assert all(m.startswith("Exception in callback ") for m in msgs), msgs
    assert isinstance(loop_errors.calls[0]["exception"], ValueError)
    assert isinstance(loop_errors.calls[1]["exception"], KeyError)


def test_fatal_os_error_not_reported(loop, sockpair):
    # OSErrors are expected on transports: logged in debug mode only, no
    # exception handler call (the fixture fails the test on one).
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        tb.abort()
        await pb.lost
        ta.write(b"x" * 100000)
        exc = await pa.lost
        assert exc is None or isinstance(exc, OSError)
    run(loop, main())


def test_sendfile_empty_waiter(loop, sockpair):
    # The private protocol loop.sendfile() uses with both loops' transports.
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        w = ta._make_empty_waiter()
        assert w.done() and w.result() is None     # nothing buffered
        with pytest.raises(RuntimeError) as ei:
            ta._make_empty_waiter()
        assert str(ei.value) == "Empty waiter is already set"
        with pytest.raises(RuntimeError) as ei:
            ta.write(b"x")
        assert str(ei.value) == "unable to write; sendfile is in progress"
        ta._reset_empty_waiter()
        # With data waiting for the peer, the waiter resolves on drain.
        tb.pause_reading()
        ta.write(b"p" * (4 * 1024 * 1024))
        assert ta.get_write_buffer_size() > 0
        w = ta._make_empty_waiter()
        assert not w.done()
        tb.resume_reading()
        await w
        assert ta.get_write_buffer_size() == 0
        ta._reset_empty_waiter()
        # A waiter still pending when the connection goes learns it.
        tb.pause_reading()
        ta.write(b"q" * (4 * 1024 * 1024))
        w = ta._make_empty_waiter()
        tb.abort()
        with pytest.raises(ConnectionError):
            await w
        await pa.lost
        await pb.lost
    run(loop, main())


# --------------------------------------------------------------------------
# BufferedProtocol
# --------------------------------------------------------------------------

class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop, size=100):
        self.buf = bytearray(size)
        self.data = bytearray()
        self.sizes = []
        self.hints = []
        self.events = []
        self.lost = loop.create_future()
        self.made = loop.create_future()

    def connection_made(self, tr):
        self.events.append("made")
        self.transport = tr
        self.made.set_result(None)

    def get_buffer(self, sizehint):
        self.hints.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes):
        self.sizes.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


def test_buffered_protocol(loop, sockpair):
    payload = bytes(range(256)) * 40

    async def main():
        a, b = sockpair
        p = Buffered(loop)
        pa = Recorder(loop)
        ta = make_transport(loop, a, pa)
        tb = make_transport(loop, b, p)
        await p.made
        ta.write(payload)
        ta.write_eof()
        await p.lost
        assert bytes(p.data) == payload
        assert max(p.sizes) <= 100
        assert set(p.hints) == {-1}
        assert p.events == ["made", "eof", ("lost", None)]
        assert tb.is_closing()
        ta.close()
        await pa.lost
    run(loop, main())


def test_buffered_protocol_memoryview_buffer(loop, sockpair):
    class MV(Buffered):
        def get_buffer(self, sizehint):
            self.hints.append(sizehint)
            return memoryview(self.buf)[10:20]

        def buffer_updated(self, nbytes):
            self.sizes.append(nbytes)
            self.data += self.buf[10:10 + nbytes]

    async def main():
        a, b = sockpair
        p = MV(loop)
        make_transport(loop, b, p)
        await p.made
        a.send(b"0123456789abcdefghij!")
        a.shutdown(socket.SHUT_WR)
        await p.lost
        assert bytes(p.data) == b"0123456789abcdefghij!"
        assert max(p.sizes) <= 10
    run(loop, main())


@pytest.mark.parametrize("case, message, exc_type", [
    ("get_buffer_raises",
     "Fatal error: protocol.get_buffer() call failed.", ZeroDivisionError),
    ("empty_buffer",
     "Fatal error: protocol.get_buffer() call failed.", RuntimeError),
    ("readonly_buffer",
     "Fatal read error on socket transport", TypeError),
    ("buffer_updated_raises",
     "Fatal error: protocol.buffer_updated() call failed.",
     ZeroDivisionError),
])
def test_buffered_protocol_errors(loop, loop_errors, sockpair, case,
                                  message, exc_type):
    class P(Buffered):
        def get_buffer(self, sizehint):
            if case == "get_buffer_raises":
                raise ZeroDivisionError
            if case == "empty_buffer":
                return bytearray()
            if case == "readonly_buffer":
                return b"readonly"
            return super().get_buffer(sizehint)

        def buffer_updated(self, nbytes):
            if case == "buffer_updated_raises":
                raise ZeroDivisionError
            super().buffer_updated(nbytes)

    async def main():
        a, b = sockpair
        p = P(loop)
        t = make_transport(loop, b, p)
        await p.made
        a.send(b"data")
        exc = await p.lost
        assert isinstance(exc, exc_type)
        if case == "empty_buffer":
            assert str(exc) == "get_buffer() returned an empty buffer"
        if case == "readonly_buffer":
            assert str(exc) == ("recv_into() argument 1 must be read-write "
                                "bytes-like object, not bytes")
        assert t.is_closing()
    run(loop, main())
    assert loop_errors.messages() == [message]
    assert isinstance(loop_errors.calls[0]["exception"], exc_type)


def test_switch_to_buffered_protocol(loop, sockpair):
    async def main():
        ta, tb, pa, pb = await connect_pair(loop, sockpair)
        ta.write(b"one")
        await pb.wait_bytes(3)
        bp = Buffered(loop)
        tb.set_protocol(bp)
        ta.write(b"two")
        ta.close()
        await bp.lost
        assert pb.data == b"one"
        assert bytes(bp.data) == b"two"
    run(loop, main())


def test_subclass_call_soon_sees_transport_callbacks(loop_class, make_loop):
    """A loop subclass that overrides call_soon() gets the transport's own
    scheduling (connection_made, reading, connection_lost), as asyncio's
    transports call self._loop.call_soon()."""
    scheduled = []

    class CountingLoop(loop_class):
        def call_soon(self, callback, *args, context=None):
            scheduled.append(getattr(callback, "__name__", repr(callback)))
            return super().call_soon(callback, *args, context=context)

    loop = make_loop(CountingLoop)
    done = loop.create_future()

    class Proto(asyncio.Protocol):
        def connection_lost(self, exc):
            done.set_result(exc)

    async def main():
        a, b = socket.socketpair()
        tr, _ = await loop.connect_accepted_socket(Proto, a)
        b.close()
        return await asyncio.wait_for(done, 10)

    assert loop.run_until_complete(main()) is None
    for name in ("connection_made", "_call_connection_lost"):
        assert name in scheduled, scheduled
