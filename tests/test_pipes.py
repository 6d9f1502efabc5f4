"""Pipe transports: loop.connect_read_pipe() / connect_write_pipe() with
asyncio's unix_events._UnixReadPipeTransport / _UnixWritePipeTransport
semantics.

Every test runs on stock asyncio (the specification) and on eloop.
"""

import asyncio
import os
import pty
import socket
import tempfile

import pytest

from _netutil import run


class Proto(asyncio.Protocol):
    """Records every call, in order."""

    def __init__(self, loop):
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        self.data += data
        if self.events[-1] != "data":
            self.events.append("data")

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc)))
        self.lost.set_result(exc)


@pytest.fixture
def fds():
    r, w = os.pipe()
    opened = [r, w]
    yield opened
    for fd in opened:
        try:
            os.close(fd)
        except OSError:
            pass


async def _read_pipe(loop, fd):
    pipe = open(fd, "rb", buffering=0, closefd=True)
    tr, proto = await loop.connect_read_pipe(lambda: Proto(loop), pipe)
    return tr, proto, pipe


async def _write_pipe(loop, fd):
    pipe = open(fd, "wb", buffering=0, closefd=True)
    tr, proto = await loop.connect_write_pipe(lambda: Proto(loop), pipe)
    return tr, proto, pipe


async def _read_until(fd, done):
    """Reads fd without blocking the loop (which writes into it) until
    done(what was read) is true."""
    got = bytearray()
    os.set_blocking(fd, False)
    while not done(got):
        try:
            got += os.read(fd, 65536)
        except BlockingIOError:
            await asyncio.sleep(0)
    return got


async def _read_until_lost(fd, proto):
    """Everything the write transport wrote into fd: read while it writes,
    until connection_lost(), then the rest up to EOF."""
    got = await _read_until(fd, lambda got: proto.lost.done())
    os.set_blocking(fd, True)
    while chunk := os.read(fd, 65536):
        got += chunk
    return got


# ---------------------------------------------------------------- read pipe

def test_read_pipe_data_then_eof(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _read_pipe(loop, r)
        assert isinstance(tr, asyncio.ReadTransport)
        assert tr.get_extra_info("pipe") is pipe
        assert os.get_blocking(r) is False
        assert tr.is_reading()
        os.write(w, b"hello ")
        os.write(w, b"world")
        os.close(w)
        assert await proto.lost is None
        assert bytes(proto.data) == b"hello world"
        assert proto.events == ["made", "data", "eof", ("lost", type(None))]
        assert tr.is_closing()
        assert pipe.closed

    run(loop, main())


def test_read_pipe_pause_resume(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _read_pipe(loop, r)
        tr.pause_reading()
        assert not tr.is_reading()
        os.write(w, b"abc")
        for _ in range(5):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.pause_reading()  # a second pause is a no-op
        tr.resume_reading()
        assert tr.is_reading()
        while proto.data != b"abc":
            await asyncio.sleep(0)
        tr.close()
        assert await proto.lost is None
        assert proto.events == ["made", "data", ("lost", type(None))]

    run(loop, main())


def test_read_pipe_close_and_abort(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _read_pipe(loop, r)
        tr.close()
        assert tr.is_closing()
        tr.close()  # idempotent
        assert await proto.lost is None
        assert pipe.closed
        # the writer now sees its reader gone
        with pytest.raises(BrokenPipeError):
            os.write(w, b"x")

    run(loop, main())


def test_read_pipe_regular_file_refused(loop):
    async def main():
        with tempfile.TemporaryFile() as f:
            made = []
            with pytest.raises(ValueError, match="Pipe transport is"):
                await loop.connect_read_pipe(lambda: made.append(1), f)
            with pytest.raises(ValueError, match="Pipe transport is"):
                await loop.connect_write_pipe(asyncio.Protocol, f)
            assert not f.closed

    run(loop, main())


def test_read_pipe_socketpair(loop):
    a, b = socket.socketpair()

    async def main():
        tr, proto = await loop.connect_read_pipe(lambda: Proto(loop), a)
        b.sendall(b"over a socket")
        b.close()
        assert await proto.lost is None
        assert proto.data == b"over a socket"
        assert proto.events[-2] == "eof"

    run(loop, main())
    assert a.fileno() == -1


def test_read_pipe_pty(loop):
    master, slave = pty.openpty()

    async def main():
        pipe = open(master, "rb", buffering=0)
        tr, proto = await loop.connect_read_pipe(lambda: Proto(loop), pipe)
        os.write(slave, b"tty line\n")
        while b"tty line" not in proto.data:
            await asyncio.sleep(0.01)
        tr.close()
        assert await proto.lost is None

    try:
        run(loop, main())
    finally:
        os.close(slave)


def test_streams_over_pipes(loop, fds):
    r, w = fds

    async def main():
        reader = asyncio.StreamReader()
        rproto = asyncio.StreamReaderProtocol(reader)
        await loop.connect_read_pipe(lambda: rproto, open(r, "rb", 0))
        wtr, wproto = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, open(w, "wb", 0))
        writer = asyncio.StreamWriter(wtr, wproto, None, loop)
        writer.write(b"line one\nline two\n")
        await writer.drain()
        assert await reader.readline() == b"line one\n"
        writer.write(b"x" * 300000)
        writer.write_eof()
        assert await reader.readline() == b"line two\n"
        assert await reader.read() == b"x" * 300000
        assert reader.at_eof()

    run(loop, main())


# --------------------------------------------------------------- write pipe

def test_write_pipe_data_and_write_eof(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        assert isinstance(tr, asyncio.WriteTransport)
        assert tr.get_extra_info("pipe") is pipe
        assert tr.can_write_eof() is True
        tr.write(b"abc")
        tr.writelines([b"de", bytearray(b"f"), memoryview(b"g")])
        assert tr.get_write_buffer_size() == 0
        tr.write_eof()
        assert tr.is_closing()
        assert await proto.lost is None
        assert pipe.closed
        assert os.read(r, 100) == b"abcdefg"
        assert os.read(r, 100) == b""  # EOF
        assert proto.events == ["made", ("lost", type(None))]

    run(loop, main())


def test_write_pipe_flow_control_and_close_flushes(loop, fds):
    r, w = fds
    total = 1 << 20

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        tr.set_write_buffer_limits(high=1024, low=256)
        assert tr.get_write_buffer_limits() == (256, 1024)
        tr.write(b"a" * total)  # more than the pipe's buffer
        assert tr.get_write_buffer_size() > 0
        assert proto.events == ["made", "pause"]
        tr.close()  # flushes first
        assert tr.is_closing()
        got = await _read_until_lost(r, proto)
        assert await proto.lost is None
        assert len(got) == total
        assert proto.events == ["made", "pause", "resume",
                                ("lost", type(None))]

    run(loop, main())


def test_write_pipe_reader_gone_while_idle(loop, fds):
    # A write pipe watches its fd for readability and takes it as the
    # reader going away (on a pipe the write end only becomes readable
    # when the read end closes: EPOLLERR).
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        tr.write(b"x")
        await asyncio.sleep(0)
        os.close(r)
        assert await proto.lost is None
        assert tr.is_closing()
        assert pipe.closed

    run(loop, main())


def test_write_pipe_reader_gone_with_buffer(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        tr.write(b"y" * (1 << 20))
        assert tr.get_write_buffer_size() > 0
        os.close(r)
        exc = await proto.lost
        assert isinstance(exc, BrokenPipeError)

    run(loop, main())


def test_write_pipe_epipe_on_write(loop, fds, loop_errors):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        os.close(r)
        # write() before the loop notices the reader gone: EPIPE from the
        # direct write is a fatal error (OSError: no handler call).
        tr.write(b"z")
        assert tr.is_closing()
        exc = await proto.lost
        assert isinstance(exc, BrokenPipeError)
        tr.write(b"more")  # after loss: counted, silently dropped
        assert loop_errors.calls == []

    run(loop, main())


def test_write_pipe_abort(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        tr.write(b"q" * (1 << 20))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert await proto.lost is None
        assert tr.get_write_buffer_size() == 0
        assert pipe.closed

    run(loop, main())


def test_write_pipe_socketpair(loop):
    a, b = socket.socketpair()

    async def main():
        tr, proto = await loop.connect_write_pipe(lambda: Proto(loop), a)
        tr.write(b"to socket")
        assert b.recv(100) == b"to socket"
        b.close()  # the peer gone: readable -> closed
        await proto.lost

    run(loop, main())


def test_write_pipe_pty(loop):
    master, slave = pty.openpty()

    async def main():
        pipe = open(slave, "wb", buffering=0)
        tr, proto = await loop.connect_write_pipe(lambda: Proto(loop), pipe)
        tr.write(b"to the tty\n")
        await _read_until(master, lambda got: b"to the tty" in got)
        tr.close()
        assert await proto.lost is None

    try:
        run(loop, main())
    finally:
        os.close(master)


# ------------------------------------------- edges of the C pipe transports

def test_pipe_transport_types_and_attributes(loop, fds):
    r, w = fds

    async def main():
        extra = {"mine": 1}
        pipe_r = open(r, "rb", buffering=0, closefd=True)
        pipe_w = open(w, "wb", buffering=0, closefd=True)
        rt, rp = await loop.connect_read_pipe(lambda: Proto(loop), pipe_r)
        wt, wp = await loop.connect_write_pipe(lambda: Proto(loop), pipe_w)
        assert isinstance(rt, asyncio.ReadTransport)
        assert not isinstance(rt, asyncio.WriteTransport)
        # asyncio's write pipe is a _FlowControlMixin, a Transport.
        assert isinstance(wt, asyncio.WriteTransport)
        assert isinstance(wt, asyncio.Transport)
        assert type(rt).max_size == 256 * 1024
        assert rt.get_protocol() is rp and wt.get_protocol() is wp
        assert wt.get_extra_info("pipe") is pipe_w
        assert wt.get_extra_info("nope", 7) == 7
        assert wt.can_write_eof()
        assert wt.get_write_buffer_limits() == (16384, 65536)
        assert repr(rt).endswith(f"fd={r} polling>")
        assert repr(wt).endswith(f"fd={w} idle bufsize=0>")
        # The extra dict given is the one kept, with 'pipe' added.
        t = loop._make_read_pipe_transport(
            open(os.dup(r), "rb", buffering=0), Proto(loop), None, extra)
        assert extra["pipe"] is t.get_extra_info("pipe")
        assert t.get_extra_info("mine") == 1
        t.close()
        wt.close()
        await wp.lost
        assert await rp.lost is None
        assert repr(rt).endswith(f"closed fd={r} closed>")
        assert repr(wt).endswith(f"closed fd={w} closed>")
        await asyncio.sleep(0)

    run(loop, main())


def test_write_pipe_argument_checks(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        with pytest.raises(AssertionError, match="'text'"):
            tr.write("text")
        tr.write(b"")
        tr.write(bytearray(b"ab"))
        buf = bytearray(b"cd")
        tr.write(memoryview(buf))
        buf[:] = b"XX"      # written already: a later change is not seen
        tr.writelines([b"e", bytearray(b"f"), memoryview(b"g")])
        assert os.read(r, 100) == b"abcdefg"
        tr.close()
        assert await proto.lost is None

    run(loop, main())


def test_write_pipe_short_writes_and_resume_at_drain(loop, fds):
    # Writes larger than the pipe's buffer: the kernel takes part, the rest
    # waits; asyncio resumes the protocol only once its buffer is empty.
    r, w = fds
    chunks = [bytes([65 + i % 26]) * 100_000 for i in range(8)]
    sizes_at_resume = []

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        proto.resume_writing = lambda: (
            sizes_at_resume.append(tr.get_write_buffer_size()),
            proto.events.append("resume"))
        for c in chunks:
            tr.write(c)
        assert tr.get_write_buffer_size() > 0
        assert proto.events == ["made", "pause"]
        total = sum(map(len, chunks))
        got = await _read_until(r, lambda got: len(got) >= total)
        assert got == b"".join(chunks)
        while "resume" not in proto.events:
            await asyncio.sleep(0)
        assert sizes_at_resume == [0]
        tr.close()
        assert await proto.lost is None

    run(loop, main())


def test_write_pipe_close_while_writing_then_writes_dropped(loop, fds, caplog):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        tr.write(b"k" * 200_000)
        pending = tr.get_write_buffer_size()
        assert pending > 0
        tr.close()
        assert tr.is_closing()
        tr.close()
        tr.write_eof()          # no-ops while closing
        for _ in range(6):
            tr.write(b"late")   # dropped; the later ones are logged
        assert tr.get_write_buffer_size() == pending
        got = await _read_until_lost(r, proto)
        assert await proto.lost is None
        assert pipe.closed
        assert len(got) == 200_000

    with caplog.at_level("WARNING", logger="asyncio"):
        run(loop, main())
    assert any("pipe closed by peer" in m for m in caplog.messages)


def test_write_pipe_write_eof_then_lost(loop, fds):
    r, w = fds

    async def main():
        tr, proto, pipe = await _write_pipe(loop, w)
        tr.write(b"last")
        tr.write_eof()
        assert tr.is_closing()
        assert await proto.lost is None
        assert os.read(r, 10) == b"last"
        assert os.read(r, 10) == b""
        assert proto.events == ["made", ("lost", type(None))]

    run(loop, main())


def test_read_pipe_data_received_error_keeps_reading(loop, fds, loop_errors):
    # asyncio's _read_ready() lets the protocol's exception out: the loop
    # reports a failed callback and the transport reads on.
    r, w = fds

    class Boom(Proto):
        def data_received(self, data):
            super().data_received(data)
            if len(self.data) == 1:
                raise ValueError("boom")

    async def main():
        pipe = open(r, "rb", buffering=0, closefd=True)
        tr, proto = await loop.connect_read_pipe(lambda: Boom(loop), pipe)
        os.write(w, b"1")
        while not loop_errors.calls:
            await asyncio.sleep(0)
        assert not tr.is_closing()
        ctx, = loop_errors.calls
        assert isinstance(ctx["exception"], ValueError)
        assert ctx["message"].startswith("Exception in callback ")
        os.write(w, b"23")
        os.close(w)
        assert await proto.lost is None
        assert proto.data == b"123"

    run(loop, main())


def test_read_pipe_pause_in_data_received_stops_reads(loop, fds):
    # More than one pipe buffer waits; pausing in data_received() means no
    # further data_received() until resume_reading(), however much waits.
    r, w = fds
    total = 300_000
    os.set_blocking(w, True)
    import threading
    writer = threading.Thread(target=lambda: os.write(w, b"p" * total))

    class Pausing(Proto):
        calls = 0

        def data_received(self, data):
            super().data_received(data)
            self.calls += 1
            if self.calls == 1:
                self.transport.pause_reading()

    async def main():
        pipe = open(r, "rb", buffering=0, closefd=True)
        tr, proto = await loop.connect_read_pipe(lambda: Pausing(loop), pipe)
        writer.start()
        while proto.calls == 0:
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.calls == 1
        assert not tr.is_reading()
        tr.resume_reading()
        while len(proto.data) < total:
            await asyncio.sleep(0)
        writer.join()
        tr.close()
        assert await proto.lost is None

    run(loop, main())


def test_read_pipe_bulk_in_order(loop, fds):
    # Many buffers' worth through a read pipe: every byte, in order.
    r, w = fds
    import threading
    blob = bytes(range(256)) * 4096     # 1 MiB
    os.set_blocking(w, True)

    def write_all():
        os.write(w, blob)
        os.close(w)

    async def main():
        tr, proto, pipe = await _read_pipe(loop, r)
        t = threading.Thread(target=write_all)
        t.start()
        assert await proto.lost is None
        t.join()
        assert bytes(proto.data) == blob
        assert proto.events[-2:] == ["eof", ("lost", type(None))]

    run(loop, main())


def test_pipe_transport_kept_by_loop_until_closed(loop, fds):
    # Nothing but the loop holds the transport: it keeps reading (asyncio's
    # selector holds it through its reader handle) until the loop closes;
    # then it is an unclosed transport: a ResourceWarning, the pipe closed.
    import gc
    import warnings
    r, w = fds
    got = []

    class Keep(asyncio.Protocol):
        def data_received(self, data):
            got.append(data)

    async def main():
        pipe = open(r, "rb", buffering=0, closefd=True)
        await loop.connect_read_pipe(Keep, pipe)
        gc.collect()
        os.write(w, b"still here")
        while not got:
            await asyncio.sleep(0)
        return pipe

    pipe = run(loop, main())
    assert got == [b"still here"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.close()
        gc.collect()
    assert any(issubclass(c.category, ResourceWarning)
               and "unclosed transport" in str(c.message) for c in caught)
    assert pipe.closed


def test_pipe_transports_after_loop_close(loop, fds):
    # CPython's test_unclosed_pipe_transport: repr() works once the loop is
    # closed ('open'), and `_pipe = None` tells the transport not to close
    # the pipe.
    r, w = fds

    async def connect():
        rt, _ = await loop.connect_read_pipe(
            lambda: Proto(loop), open(r, "rb", buffering=0, closefd=False))
        wt, _ = await loop.connect_write_pipe(
            lambda: Proto(loop), open(w, "wb", buffering=0, closefd=False))
        return rt, wt

    rt, wt = run(loop, connect())
    loop.close()
    assert repr(rt).endswith(f"fd={r} open>")
    assert repr(wt).endswith(f"fd={w} open>")
    rt._pipe.close()
    wt._pipe.close()
    rt._pipe = None
    wt._pipe = None
    assert rt._pipe is None


def test_pipes_in_debug_mode(loop, fds, caplog):
    # Debug mode: readiness runs through real Handles (slow-callback
    # warnings name them) and the peer's close is logged.
    r, w = fds
    loop.set_debug(True)

    async def main():
        rt, rp, rpipe = await _read_pipe(loop, r)
        wt, wp, wpipe = await _write_pipe(loop, w)
        wt.write(b"dbg" * 50_000)
        got = 0
        while got < 150_000:
            await asyncio.sleep(0)
            got = len(rp.data)
        wt.close()
        assert await wp.lost is None
        assert await rp.lost is None
        assert rp.events == ["made", "data", "eof", ("lost", type(None))]

    with caplog.at_level("DEBUG", logger="asyncio"):
        run(loop, main())
    assert any("was closed by peer" in m for m in caplog.messages)
