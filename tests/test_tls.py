"""TLS on both loops: ssl= on every connection and server method,
start_tls (loop and streams), handshake failures and timeouts, shutdown
(close_notify both ways, ssl_shutdown_timeout, a peer closing without
one, data with and after one), write_eof, abort, a plaintext peer, a peer
aborting mid-record, a renegotiation attempt, flow control, 200 MB each
way, 1,000 concurrent handshakes, aiohttp and uvicorn (test_frameworks).

Certificates: tests/certs (made by tests/certs/make.sh with the openssl
CLI: a private CA, ECDSA P-256 leaves valid for 100 years, plus an expired
one and one for the wrong host).

Where a test needs a peer that misbehaves at the record level, the peer
is driven by hand (Peer: an ssl.SSLObject and two MemoryBIOs over a raw
socket and loop.sock_*), so the test chooses which bytes go out and when,
on the same loop, without threads.
"""

import asyncio
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys

import pytest

from _netutil import run

CERTS = os.path.join(os.path.dirname(__file__), "certs")


def cert(name):
    return os.path.join(CERTS, name)


def server_ctx(name="server.pem"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert(name))
    return ctx


def client_ctx():
    return ssl.create_default_context(cafile=cert("ca.pem"))


class Rec(asyncio.Protocol):
    """Records what the application protocol sees."""

    def __init__(self, loop, eof_result=None):
        self.loop = loop
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof_result = eof_result

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        return self.eof_result

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)

    async def wait_for_data(self, n):
        while len(self.data) < n:
            if self.lost.done():
                raise AssertionError(f"lost after {len(self.data)} bytes")
            await asyncio.sleep(0.001)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Peer:
    """A TLS endpoint driven by hand over a raw non-blocking socket."""

    def __init__(self, loop, sock, ctx, server_side, hostname=None):
        self.loop = loop
        self.sock = sock
        sock.setblocking(False)
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=server_side,
                                server_hostname=hostname)

    async def send_pending(self, extra=b""):
        data = self.out.read() + extra
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def fill(self):
        data = await self.loop.sock_recv(self.sock, 65536)
        if data:
            self.inc.write(data)
        else:
            self.inc.write_eof()
        return data

    async def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.send_pending()
                if not await self.fill():
                    raise ConnectionResetError("EOF in handshake")
        await self.send_pending()

    async def read_until_close(self):
        """Decrypted data up to the peer's close_notify ("close_notify")
        or a bare EOF ("eof")."""
        got = bytearray()
        while True:
            try:
                data = self.obj.read(65536)
                if not data:    # SSLObject's answer to close_notify
                    return bytes(got), "close_notify"
                got += data
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLEOFError:
                return bytes(got), "eof"
            await self.send_pending()
            await self.fill()

    def close_notify(self):
        """Queues our close_notify (sent by the next send_pending())."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass


async def tls_server(loop, factory, ctx=None, **kw):
    srv = await loop.create_server(factory, "127.0.0.1", 0,
                                   ssl=ctx or server_ctx(), **kw)
    return srv, srv.sockets[0].getsockname()[:2]


async def raw_server(loop):
    """A listening socket and a future for the first accepted one."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.setblocking(False)
    return lsock, lsock.getsockname()


async def tls_client(loop, addr, factory=None, **kw):
    kw.setdefault("ssl", client_ctx())
    kw.setdefault("server_hostname", "localhost")
    return await loop.create_connection(factory or (lambda: Rec(loop)),
                                        *addr, **kw)


async def handshaken_peer(loop, **kw):
    """A TLS client (tls_client(**kw)) connected to a Peer on a raw socket,
    the handshake done: (conn, peer, transport, protocol)."""
    lsock, addr = await raw_server(loop)
    connecting = asyncio.ensure_future(tls_client(loop, addr, **kw))
    conn, _ = await loop.sock_accept(lsock)
    lsock.close()
    peer = Peer(loop, conn, server_ctx(), True)
    await peer.handshake()
    tr, pr = await connecting
    return conn, peer, tr, pr


async def close_server(srv):
    srv.close()
    await srv.wait_closed()


# ------------------------------------------------------------ round trips

def test_echo_and_extra_info(loop):
    sctx, cctx = server_ctx(), client_ctx()
    seen = {}

    class ServerSide(Echo):
        def connection_made(self, transport):
            super().connection_made(transport)
            seen["server"] = {k: transport.get_extra_info(k) for k in (
                "sslcontext", "peercert", "compression")}
            seen["server_sslobj"] = transport.get_extra_info("ssl_object")

    async def main():
        srv, addr = await tls_server(loop, ServerSide, sctx)
        tr, pr = await tls_client(loop, addr, ssl=cctx)
        tr.write(b"hello ")
        tr.writelines([b"tls ", b"world"])
        await pr.wait_for_data(15)
        info = {k: tr.get_extra_info(k) for k in (
            "sslcontext", "peercert", "cipher", "compression", "ssl_object",
            "peername", "sockname", "socket")}
        tr.close()
        await pr.lost
        await close_server(srv)
        return pr, info, addr

    pr, info, addr = run(loop, main())
    assert bytes(pr.data) == b"hello tls world"
    # close() sends close_notify; the server's answer is EOF to us.
    assert pr.events == ["made", "data", "eof", ("lost", None)]
    assert info["sslcontext"] is cctx
    assert dict(x[0] for x in info["peercert"]["subject"]) == {
        "commonName": "localhost"}
    name, version, bits = info["cipher"]
    assert version.startswith("TLS") and bits > 0
    assert info["compression"] is None
    assert isinstance(info["ssl_object"], ssl.SSLObject)
    assert info["ssl_object"].server_hostname == "localhost"
    assert info["peername"] == addr
    assert info["socket"] is not None
    assert seen["server"]["sslcontext"] is sctx
    assert seen["server"]["peercert"] is None     # no client certificate
    assert seen["server_sslobj"].server_side


@pytest.mark.parametrize("debug", [False, True])
def test_handshake_complete_order_and_extra_info(loop, caplog, debug):
    # asyncio's _on_handshake_complete: the extra info is there when
    # connection_made() runs, the create_connection waiter resolves after
    # it, and in debug mode the handshake's duration is logged.  A context
    # whose sslobject_class is a subclass takes the same path.
    loop.set_debug(debug)
    loop.slow_callback_duration = 10
    events = []

    class MySSLObject(ssl.SSLObject):
        pass

    sctx = server_ctx()
    sctx.sslobject_class = MySSLObject

    class ServerSide(Echo):
        def connection_made(self, transport):
            super().connection_made(transport)
            events.append(("server made", transport.get_extra_info("cipher")
                           is not None,
                           type(transport.get_extra_info("ssl_object"))))

    class ClientSide(Rec):
        def connection_made(self, transport):
            events.append(("client made",
                           transport.get_extra_info("peercert") is not None))
            super().connection_made(transport)

    async def main():
        srv, addr = await tls_server(loop, ServerSide, sctx)
        tr, pr = await tls_client(loop, addr, lambda: ClientSide(loop))
        events.append("connected")
        tr.write(b"x")
        await pr.wait_for_data(1)
        tr.close()
        await pr.lost
        await close_server(srv)

    with caplog.at_level("DEBUG", logger="asyncio"):
        run(loop, main())
    assert ("client made", True) in events
    assert events.index(("client made", True)) < events.index("connected")
    assert ("server made", True, MySSLObject) in events
    took = [r for r in caplog.records
            if "SSL handshake took" in r.getMessage()]
    assert len(took) == (2 if debug else 0)


def test_streams_echo_both_ways(loop):
    async def handle(r, w):
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0,
                                         ssl=server_ctx())
        addr = srv.sockets[0].getsockname()
        r, w = await asyncio.open_connection(*addr, ssl=client_ctx(),
                                             server_hostname="localhost")
        lines = []
        for i in range(50):
            w.write(b"line %d\n" % i)
            lines.append(await r.readline())
        w.write_eof() if w.can_write_eof() else None
        w.close()
        await w.wait_closed()
        await close_server(srv)
        return lines

    assert run(loop, main()) == [b"line %d\n" % i for i in range(50)]


def test_ssl_true_uses_default_verify_paths(loop, monkeypatch):
    # ssl=True is a default client context: it trusts the system store
    # (here: our CA through SSL_CERT_FILE, which OpenSSL reads when the
    # default paths are loaded) and checks the host name.
    async def main():
        srv, addr = await tls_server(loop, Echo)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.create_connection(lambda: Rec(loop), *addr,
                                             ssl=True,
                                             server_hostname="localhost")
            monkeypatch.setenv("SSL_CERT_FILE", cert("ca.pem"))
            tr, pr = await loop.create_connection(
                lambda: Rec(loop), "localhost", addr[1], ssl=True)
            hostname = tr.get_extra_info("ssl_object").server_hostname
            tr.close()
            await pr.lost
            return hostname
        finally:
            await close_server(srv)

    # The host name given as host is the one checked.
    assert run(loop, main()) == "localhost"


def test_argument_checks(loop, tmp_path):
    ctx = client_ctx()

    async def main():
        errors = []
        unconnected = socket.socket()
        calls = [
            lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                           server_hostname="x"),
            lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                           ssl_handshake_timeout=1),
            lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                           ssl_shutdown_timeout=1),
            lambda: loop.create_connection(asyncio.Protocol,
                                           sock=unconnected, ssl=ctx),
            lambda: loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                       ssl=True),
            lambda: loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                       ssl_shutdown_timeout=1),
            lambda: loop.create_unix_connection(asyncio.Protocol,
                                                str(tmp_path / "x"), ssl=ctx),
            lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                           ssl=ctx, ssl_handshake_timeout=0),
            lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                           ssl=ctx, ssl_shutdown_timeout=-1),
            lambda: loop.start_tls(None, None, True),
        ]
        for call in calls:
            try:
                await call()
            except (ValueError, TypeError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        # Refused before it was taken: still the caller's.
        assert unconnected.fileno() != -1
        unconnected.close()
        return errors

    errors = run(loop, main())
    assert errors[:7] == [
        "ValueError: server_hostname is only meaningful with ssl",
        "ValueError: ssl_handshake_timeout is only meaningful with ssl",
        "ValueError: ssl_shutdown_timeout is only meaningful with ssl",
        "ValueError: You must set server_hostname when using ssl without "
        "a host",
        "TypeError: ssl argument must be an SSLContext or None",
        "ValueError: ssl_shutdown_timeout is only meaningful with ssl",
        "ValueError: you have to pass server_hostname when using ssl",
    ]
    # SSLProtocol's checks: the connection is refused first (port 1), so
    # only the error type is certain; start_tls checks the context.
    assert errors[-1].startswith("TypeError: sslcontext is expected to be "
                                 "an instance of ssl.SSLContext")


def test_sni_callback_and_alpn(loop):
    other = server_ctx("other.pem")
    sctx = server_ctx()
    names = []

    def sni(sslobj, name, ctx):
        names.append(name)
        if name == "other.test":
            sslobj.context = other

    sctx.sni_callback = sni
    # ALPN is chosen by the context the SNI callback settles on.
    sctx.set_alpn_protocols(["h2", "http/1.1"])
    other.set_alpn_protocols(["spdy/2", "http/1.1"])
    cctx = client_ctx()
    cctx.set_alpn_protocols(["http/1.1"])

    async def main():
        srv, addr = await tls_server(loop, Echo, sctx)
        got = []
        for host in ("localhost", "other.test"):
            tr, pr = await tls_client(loop, addr, ssl=cctx,
                                      server_hostname=host)
            sub = dict(x[0] for x in tr.get_extra_info("peercert")["subject"])
            got.append((sub["commonName"],
                        tr.get_extra_info("ssl_object")
                        .selected_alpn_protocol()))
            tr.close()
            await pr.lost
        await close_server(srv)
        return got

    assert run(loop, main()) == [("localhost", "http/1.1"),
                                 ("other.test", "http/1.1")]
    assert names == ["localhost", "other.test"]


def test_client_certificate(loop):
    sctx = server_ctx()
    sctx.verify_mode = ssl.CERT_REQUIRED
    sctx.load_verify_locations(cert("ca.pem"))
    cctx = client_ctx()
    cctx.load_cert_chain(cert("client.pem"))
    peer = []

    class ServerSide(Echo):
        def connection_made(self, transport):
            super().connection_made(transport)
            sub = transport.get_extra_info("peercert")["subject"]
            peer.append(dict(x[0] for x in sub)["commonName"])

    async def main():
        srv, addr = await tls_server(loop, ServerSide, sctx)
        tr, pr = await tls_client(loop, addr, ssl=cctx)
        tr.write(b"x")
        await pr.wait_for_data(1)
        tr.close()
        await pr.lost
        await close_server(srv)

    run(loop, main())
    assert peer == ["client"]


# ------------------------------------------------------- handshake faults

@pytest.mark.parametrize("name, hostname, ctx, reason", [
    ("server.pem", "localhost", ssl.create_default_context,
     "unable to get local issuer certificate"),
    ("wronghost.pem", "localhost", client_ctx, "Hostname mismatch"),
    ("expired.pem", "localhost", client_ctx, "certificate has expired"),
])
def test_handshake_verify_failure(loop, name, hostname, ctx, reason):
    made = []

    async def main():
        srv, addr = await tls_server(loop, lambda: made.append(1) or Echo(),
                                     server_ctx(name))
        try:
            with pytest.raises(ssl.SSLCertVerificationError) as info:
                await tls_client(loop, addr, ssl=ctx(),
                                 server_hostname=hostname)
        finally:
            await close_server(srv)
        return info.value

    exc = run(loop, main())
    assert reason in exc.verify_message
    assert made == [1]  # the server made its protocol, never connected it


def test_handshake_failure_closes_taken_socket(loop):
    # aiohttp's way: its own connected socket, then ssl=; a failed
    # handshake closes it, as asyncio's _create_connection_transport does.
    async def main():
        srv, addr = await tls_server(loop, Echo, server_ctx("wronghost.pem"))
        sock = socket.create_connection(addr)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await loop.create_connection(lambda: Rec(loop), sock=sock,
                                             ssl=client_ctx(),
                                             server_hostname="localhost")
        finally:
            await close_server(srv)
        return sock.fileno()

    assert run(loop, main()) == -1


def test_server_reports_failed_handshake_in_debug(loop, loop_errors):
    loop.set_debug(True)

    async def main():
        srv, addr = await tls_server(loop, Echo)
        with pytest.raises(ssl.SSLCertVerificationError):
            await tls_client(loop, addr, ssl=ssl.create_default_context())
        for _ in range(100):
            if loop_errors.calls:
                break
            await asyncio.sleep(0.01)
        await close_server(srv)

    run(loop, main())
    assert [c["message"] for c in loop_errors.calls] == [
        "Error on transport creation for incoming connection"]
    # The client's alert, or its close racing the alert.
    assert isinstance(loop_errors.calls[0]["exception"],
                      (ssl.SSLError, ConnectionError))
    assert isinstance(loop_errors.calls[0]["protocol"], Echo)
    assert isinstance(loop_errors.calls[0]["transport"], asyncio.Transport)
    assert loop_errors.calls[0]["transport"].is_closing()


def test_failed_handshake_debug_log_carries_the_error(loop, caplog,
                                                      loop_errors):
    # A failed handshake goes _do_handshake -> _on_handshake_complete(exc)
    # -> _fatal_error, whose debug log (exc_info=True) carries the
    # handshake's SSLError.  (The debug server reports its side:
    # loop_errors.)
    loop.set_debug(True)

    async def main():
        srv, addr = await tls_server(loop, Echo, server_ctx("wronghost.pem"))
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await tls_client(loop, addr, ssl=client_ctx(),
                                 server_hostname="localhost")
        finally:
            await close_server(srv)

    with caplog.at_level("DEBUG", logger="asyncio"):
        run(loop, main())
    recs = [r for r in caplog.records
            if r.getMessage().endswith("SSL handshake failed on verifying "
                                       "the certificate")]
    assert len(recs) == 1
    assert isinstance(recs[0].exc_info[1], ssl.SSLCertVerificationError)


def test_server_protocol_factory_error_reported_in_debug(loop, loop_errors):
    # asyncio's _accept_connection2 on a TLS server: an exception from
    # protocol_factory is reported in debug mode, with no protocol or
    # transport to show.
    loop.set_debug(True)
    loop.slow_callback_duration = 10

    def factory():
        raise ZeroDivisionError("no protocol")

    async def main():
        srv, addr = await tls_server(loop, factory)
        c = socket.create_connection(addr)
        for _ in range(200):
            if loop_errors.calls:
                break
            await asyncio.sleep(0.01)
        c.close()
        await close_server(srv)

    run(loop, main())
    [call] = loop_errors.calls
    assert call["message"] == ("Error on transport creation for incoming "
                               "connection")
    assert isinstance(call["exception"], ZeroDivisionError)
    assert "protocol" not in call and "transport" not in call


def test_client_handshake_timeout(loop):
    async def main():
        lsock, addr = await raw_server(loop)
        try:
            with pytest.raises(ConnectionAbortedError,
                               match="SSL handshake is taking longer than "
                                     "0.1 seconds"):
                await tls_client(loop, addr, ssl_handshake_timeout=0.1)
        finally:
            conn = lsock.accept()[0]
            conn.close()
            lsock.close()

    run(loop, main())


def test_server_handshake_timeout(loop):
    made = []

    async def main():
        srv, addr = await tls_server(loop, lambda: made.append(1) or Echo(),
                                     ssl_handshake_timeout=0.1)
        sock = socket.create_connection(addr)
        sock.setblocking(False)
        try:
            # Nothing sent: the server gives up and closes.
            return await loop.sock_recv(sock, 100)
        finally:
            sock.close()
            await close_server(srv)

    assert run(loop, main()) == b""
    assert made == [1]


def test_plaintext_peer(loop):
    async def main():
        # A TLS client talking to a plaintext server.
        lsock, addr = await raw_server(loop)
        connecting = asyncio.ensure_future(tls_client(loop, addr))
        conn, _ = await loop.sock_accept(lsock)
        await loop.sock_recv(conn, 65536)       # the ClientHello
        await loop.sock_sendall(conn, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        with pytest.raises(ssl.SSLError) as client_err:
            await connecting
        conn.close()
        lsock.close()
        # A plaintext client talking to a TLS server: closed on it.
        srv, addr = await tls_server(loop, Echo)
        sock = socket.create_connection(addr)
        sock.setblocking(False)
        await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while data := await loop.sock_recv(sock, 65536):
            got += data
        sock.close()
        await close_server(srv)
        return client_err.value, got

    exc, got = run(loop, main())
    assert exc.reason == "WRONG_VERSION_NUMBER"
    assert b"HTTP" not in got


# --------------------------------------------------------------- shutdown

def test_close_notify_both_ways(loop):
    # The client closes: its close_notify reaches the server's protocol as
    # EOF; the server closing too ends both connections cleanly.
    async def main():
        server_rec = []
        srv, addr = await tls_server(
            loop, lambda: server_rec.append(Rec(loop)) or server_rec[-1])
        tr, pr = await tls_client(loop, addr)
        tr.write(b"bye")
        await asyncio.sleep(0)
        while not server_rec or len(server_rec[0].data) < 3:
            await asyncio.sleep(0.001)
        tr.close()
        assert tr.is_closing()
        await server_rec[0].lost
        await pr.lost
        await close_server(srv)
        return pr.events, server_rec[0].events

    client, server = run(loop, main())
    assert client == ["made", "eof", ("lost", None)]
    assert server == ["made", "data", "eof", ("lost", None)]


def test_peer_close_notify_with_trailing_data(loop):
    # Data and close_notify in one segment, then bytes after close_notify
    # (ignored): the protocol gets the data, EOF, then connection_lost.
    async def main():
        conn, peer, tr, pr = await handshaken_peer(loop)
        peer.obj.write(b"last words")
        peer.close_notify()
        await peer.send_pending(extra=b"garbage after close_notify")
        await pr.lost
        conn.close()
        return pr

    pr = run(loop, main())
    assert bytes(pr.data) == b"last words"
    assert pr.events == ["made", "data", "eof", ("lost", None)]


def test_peer_closes_without_close_notify(loop):
    async def main():
        conn, peer, tr, pr = await handshaken_peer(loop)
        peer.obj.write(b"cut short")
        await peer.send_pending()
        conn.close()        # a bare FIN, no close_notify
        await pr.lost
        return pr

    pr = run(loop, main())
    assert bytes(pr.data) == b"cut short"
    assert pr.events == ["made", "data", "eof", ("lost", None)]


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_peer_aborts_mid_record(loop, how):
    # Half a record, then the connection ends: the complete record before
    # it is delivered, the torn one is not.
    async def main():
        conn, peer, tr, pr = await handshaken_peer(loop)
        peer.obj.write(b"whole")
        await peer.send_pending()
        await pr.wait_for_data(5)
        peer.obj.write(b"torn" * 1000)
        record = peer.out.read()
        await loop.sock_sendall(conn, record[:len(record) // 2])
        if how == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            b"\1\0\0\0\0\0\0\0")
        conn.close()
        exc = await pr.lost
        return bytes(pr.data), pr.events, exc

    data, events, exc = run(loop, main())
    assert data == b"whole"
    if how == "fin":
        assert events == ["made", "data", "eof", ("lost", None)]
    else:
        assert events == ["made", "data", ("lost", "ConnectionResetError")]


def test_close_sends_close_notify_and_flushes(loop):
    # Data written just before close() is flushed, then close_notify.
    async def main():
        conn, peer, tr, pr = await handshaken_peer(loop)
        tr.write(b"x" * 100_000)
        tr.close()
        data, how = await peer.read_until_close()
        peer.close_notify()
        await peer.send_pending()
        await pr.lost
        conn.close()
        return data, how, pr.events

    data, how, events = run(loop, main())
    assert (len(data), how) == (100_000, "close_notify")
    assert events == ["made", "eof", ("lost", None)]


def test_shutdown_timeout(loop):
    # The peer never answers our close_notify: after ssl_shutdown_timeout
    # the connection is dropped, connection_lost() says why.
    async def main():
        conn, peer, tr, pr = await handshaken_peer(
            loop, ssl_shutdown_timeout=0.1)
        tr.close()
        exc = await pr.lost
        conn.close()
        return exc, pr.events

    exc, events = run(loop, main())
    assert type(exc) is asyncio.TimeoutError
    assert str(exc) == "SSL shutdown timed out"
    assert events == ["made", ("lost", "TimeoutError")]


def test_write_eof_refused_and_abort(loop):
    async def main():
        server_rec = []
        srv, addr = await tls_server(
            loop, lambda: server_rec.append(Rec(loop)) or server_rec[-1])
        tr, pr = await tls_client(loop, addr)
        assert tr.can_write_eof() is False
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        tr.write(b"x")
        while not server_rec or not server_rec[0].data:
            await asyncio.sleep(0.001)
        tr.abort()
        assert tr.is_closing()
        await pr.lost
        await server_rec[0].lost
        await close_server(srv)
        return pr.events, server_rec[0].events

    client, server = run(loop, main())
    assert client == ["made", ("lost", None)]
    # A bare FIN after data: EOF, then lost.
    assert server == ["made", "data", "eof", ("lost", None)]


# ----------------------------------------------------- volume and pressure

def test_200mb_both_ways(loop):
    size = 200 * 1024 * 1024
    chunk = os.urandom(1 << 20)
    want = hashlib.sha256(chunk * (size // len(chunk))).hexdigest()

    async def main():
        srv, addr = await tls_server(loop, Echo)
        tr, pr = await tls_client(loop, addr)
        digest = hashlib.sha256()
        received = 0
        done = loop.create_future()

        lost = loop.create_future()

        class Sink(asyncio.Protocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

            def data_received(self, data):
                nonlocal received
                digest.update(data)
                received += len(data)
                if received == size:
                    done.set_result(None)

        tr.set_protocol(Sink())
        sent = 0
        while sent < size:
            tr.write(chunk)
            sent += len(chunk)
            while tr.get_write_buffer_size() > 8 << 20:
                await asyncio.sleep(0.001)
        await done
        tr.close()
        await lost
        await close_server(srv)
        return digest.hexdigest()

    assert run(loop, main(), timeout=120) == want


def test_slow_reader_pauses_writing(loop):
    # The client stops reading: the server's writes back up through the
    # TLS layer until its protocol is paused; resuming drains it all.
    total = 8 * 1024 * 1024

    class Writer(asyncio.Protocol):
        def __init__(self):
            self.calls = []
            self.resumed = loop.create_future()
            self.paused = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport
            transport.set_write_buffer_limits(high=256 * 1024)
            block = b"y" * 65536
            for _ in range(total // len(block)):
                transport.write(block)

        def pause_writing(self):
            self.calls.append("pause")
            if not self.paused.done():
                self.paused.set_result(None)

        def resume_writing(self):
            self.calls.append("resume")
            if not self.resumed.done():
                self.resumed.set_result(None)

    async def main():
        writers = []
        srv, addr = await tls_server(
            loop, lambda: writers.append(Writer()) or writers[-1])
        tr, pr = await tls_client(loop, addr)
        tr.pause_reading()
        assert not tr.is_reading()
        while not writers:
            await asyncio.sleep(0.001)
        await writers[0].paused
        tr.resume_reading()
        await pr.wait_for_data(total)
        await writers[0].resumed
        tr.close()
        await pr.lost
        await close_server(srv)
        return writers[0].calls, len(pr.data)

    calls, n = run(loop, main(), timeout=60)
    assert n == total
    assert calls[:2] == ["pause", "resume"]


def test_1000_concurrent_handshakes(loop):
    n = 1000

    async def one(addr, i):
        tr, pr = await tls_client(loop, addr)
        tr.write(b"%d" % i)
        await pr.wait_for_data(len(b"%d" % i))
        tr.close()
        await pr.lost
        return bytes(pr.data)

    async def main():
        srv, addr = await tls_server(loop, Echo, backlog=n)
        try:
            return await asyncio.gather(*[one(addr, i) for i in range(n)])
        finally:
            await close_server(srv)

    assert run(loop, main(), timeout=120) == [b"%d" % i for i in range(n)]


# ------------------------------------------------------ start_tls, others

def test_loop_start_tls_both_sides(loop):
    # STARTTLS: a plaintext exchange, then both sides upgrade the same
    # connection; data written with the first TLS record goes through.
    upgraded = []

    class PlainServer(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            assert data == b"STARTTLS\n"
            self.transport.write(b"GO\n")
            task = loop.create_task(self.upgrade())
            upgraded.append(task)

        async def upgrade(self):
            rec = Rec(loop)
            tls = await loop.start_tls(self.transport, rec, server_ctx(),
                                       server_side=True)
            await rec.wait_for_data(5)
            tls.write(bytes(rec.data).upper())
            return rec

    async def main():
        srv = await loop.create_server(PlainServer, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        pr = Rec(loop)
        tr, _ = await loop.create_connection(lambda: pr, *addr)
        tr.write(b"STARTTLS\n")
        await pr.wait_for_data(3)
        assert bytes(pr.data) == b"GO\n"
        rec = Rec(loop)
        tls = await loop.start_tls(tr, rec, client_ctx(),
                                   server_hostname="localhost")
        assert tls.get_extra_info("ssl_object") is not None
        assert tr.get_protocol() is not pr
        tls.write(b"hello")
        await rec.wait_for_data(5)
        tls.close()
        await rec.lost
        server_rec = await upgraded[0]
        await close_server(srv)
        return bytes(rec.data), rec.events, server_rec.events

    data, client, server = run(loop, main())
    assert data == b"HELLO"
    # start_tls does not call connection_made.
    assert client == ["data", "eof", ("lost", None)]
    assert server == ["data", "eof", ("lost", None)]


def test_streams_start_tls(loop):
    if sys.version_info < (3, 11):
        pytest.skip("StreamWriter.start_tls() is 3.11+")

    async def handle(r, w):
        assert await r.readline() == b"STARTTLS\n"
        # The client starts its handshake only after GO, so none of it can
        # land in the plaintext reader's buffer.
        w.write(b"GO\n")
        await w.start_tls(server_ctx())
        w.write((await r.readline()).upper())
        await w.drain()
        w.close()

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        r, w = await asyncio.open_connection(*addr)
        w.write(b"STARTTLS\n")
        assert await r.readline() == b"GO\n"
        await w.start_tls(client_ctx(), server_hostname="localhost")
        assert w.get_extra_info("cipher") is not None
        w.write(b"secret\n")
        line = await r.readline()
        w.close()
        await w.wait_closed()
        await close_server(srv)
        return line

    assert run(loop, main()) == b"SECRET\n"


def test_start_tls_refuses_non_tls_transports(loop):
    async def main():
        r, w = os.pipe()
        os.close(r)
        tr, _ = await loop.connect_write_pipe(asyncio.Protocol,
                                              os.fdopen(w, "wb"))
        try:
            with pytest.raises(TypeError, match="is not supported by "
                                                "start_tls"):
                await loop.start_tls(tr, asyncio.Protocol(), client_ctx())
        finally:
            tr.close()

    run(loop, main())


def test_buffered_protocol_app(loop):
    class Buf(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1000)
            self.got = bytearray()
            self.sizes = set()
            self.lost = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            # A view, as the protocol contract wants: SSLProtocol slices
            # it to fill the rest (a bytearray's slice would be a copy).
            return memoryview(self.buf)

        def buffer_updated(self, nbytes):
            self.sizes.add(nbytes <= len(self.buf))
            self.got += self.buf[:nbytes]

        def eof_received(self):
            pass

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    payload = os.urandom(300_000)

    async def main():
        srv, addr = await tls_server(loop, Echo)
        pr = Buf()
        tr, _ = await tls_client(loop, addr, factory=lambda: pr)
        tr.write(payload)
        while len(pr.got) < len(payload):
            await asyncio.sleep(0.001)
        tr.close()
        await pr.lost
        await close_server(srv)
        return pr

    pr = run(loop, main())
    assert bytes(pr.got) == payload
    assert pr.sizes == {True}


def test_unix_sockets(loop, tmp_path):
    path = str(tmp_path / "tls.sock")

    async def main():
        srv = await loop.create_unix_server(Echo, path, ssl=server_ctx())
        tr, pr = await loop.create_unix_connection(
            lambda: Rec(loop), path, ssl=client_ctx(),
            server_hostname="localhost")
        tr.write(b"over unix")
        await pr.wait_for_data(9)
        cipher = tr.get_extra_info("cipher")
        tr.close()
        await pr.lost
        await close_server(srv)
        return bytes(pr.data), cipher

    data, cipher = run(loop, main())
    assert data == b"over unix" and cipher is not None


def test_connect_accepted_socket(loop):
    async def main():
        a, b = socket.socketpair()
        accepting = asyncio.ensure_future(loop.connect_accepted_socket(
            Echo, a, ssl=server_ctx()))
        tr, pr = await loop.create_connection(
            lambda: Rec(loop), sock=b, ssl=client_ctx(),
            server_hostname="localhost")
        srv_tr, _ = await accepting
        assert srv_tr.get_extra_info("ssl_object").server_side
        tr.write(b"accepted")
        await pr.wait_for_data(8)
        tr.close()
        await pr.lost
        srv_tr.close()
        return bytes(pr.data)

    assert run(loop, main()) == b"accepted"


def test_sendfile_over_tls(loop, tmp_path):
    # loop.sendfile() on a TLS transport takes the read-and-write fallback.
    data = os.urandom(1_000_000)
    path = tmp_path / "f"
    path.write_bytes(data)

    async def main():
        server_rec = []
        srv, addr = await tls_server(
            loop, lambda: server_rec.append(Rec(loop)) or server_rec[-1])
        tr, pr = await tls_client(loop, addr)
        with open(path, "rb") as f:
            sent = await loop.sendfile(tr, f)
        while not server_rec or len(server_rec[0].data) < len(data):
            await asyncio.sleep(0.001)
        tr.close()
        await pr.lost
        await close_server(srv)
        return sent, bytes(server_rec[0].data)

    assert run(loop, main()) == (len(data), data)


def test_keylog_file(loop, tmp_path):
    # The user's SSLContext is used as is: its keylog file gets the secrets.
    keylog = tmp_path / "keys.log"
    cctx = client_ctx()
    cctx.keylog_filename = str(keylog)

    async def main():
        srv, addr = await tls_server(loop, Echo)
        tr, pr = await tls_client(loop, addr, ssl=cctx)
        tr.close()
        await pr.lost
        await close_server(srv)

    run(loop, main())
    assert b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" in keylog.read_bytes()


def test_every_tls_path_uses_the_seam(impl, loop, monkeypatch, tmp_path):
    # eloop-only (its internals): every TLS protocol, whichever method made
    # it, comes from eloop._loop._SSLProtocol, and sits directly on the C
    # socket transport.  A C record path replaces that one name.
    if impl.name != "eloop":
        pytest.skip("eloop internals: the _SSLProtocol seam")
    import eloop._loop

    made = []

    class Counting(eloop._loop._SSLProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(("server" if self._server_side else "client"))

    monkeypatch.setattr(eloop._loop, "_SSLProtocol", Counting)
    raw_types = set()

    async def main():
        srv, addr = await tls_server(loop, Echo)            # accept path
        tr, pr = await tls_client(loop, addr)               # client
        raw_types.add(type(tr._ssl_protocol._transport))
        tr.close()
        await pr.lost
        a, b = socket.socketpair()
        accepting = asyncio.ensure_future(loop.connect_accepted_socket(
            Echo, a, ssl=server_ctx()))
        tr, pr = await loop.create_connection(
            lambda: Rec(loop), sock=b, ssl=client_ctx(),
            server_hostname="localhost")
        srv_tr, _ = await accepting
        tr.close()
        await pr.lost
        srv_tr.close()
        plain = Rec(loop)
        tr, _ = await loop.create_connection(lambda: plain, *addr)
        upgraded = Rec(loop)
        tls = await loop.start_tls(tr, upgraded, client_ctx(),
                                   server_hostname="localhost")
        tls.close()
        await upgraded.lost
        await close_server(srv)

    run(loop, main())
    assert sorted(made) == ["client"] * 3 + ["server"] * 3
    assert [t.__module__ for t in raw_types] == ["eloop._eloop"]


@pytest.mark.skipif(shutil.which("openssl") is None,
                    reason="needs the openssl CLI")
def test_client_renegotiation_refused(loop):
    # TLS 1.2 renegotiation asked by the client (openssl s_client's "R"
    # command): OpenSSL refuses it; the connection ends with an SSLError in
    # the server protocol's connection_lost(), data before it intact.
    sctx = server_ctx()
    sctx.maximum_version = ssl.TLSVersion.TLSv1_2

    async def main():
        recs = []
        srv, addr = await tls_server(
            loop, lambda: recs.append(Rec(loop)) or recs[-1], sctx)
        proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "%s:%d" % addr, "-tls1_2",
             "-CAfile", cert("ca.pem")],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            proc.stdin.write(b"hello\n")
            proc.stdin.flush()
            while not recs:
                await asyncio.sleep(0.001)
            await recs[0].wait_for_data(6)
            # Alone in the pipe, so s_client reads it as a command.
            proc.stdin.write(b"R\n")
            proc.stdin.flush()
            exc = await recs[0].lost
        finally:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            await close_server(srv)
        return bytes(recs[0].data), exc

    data, exc = run(loop, main())
    assert data == b"hello\n"
    assert isinstance(exc, ssl.SSLError)
