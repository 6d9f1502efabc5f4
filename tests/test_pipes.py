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
        got = bytearray()
        os.set_blocking(r, False)
        while not proto.lost.done():
            try:
                got += os.read(r, 65536)
            except BlockingIOError:
                await asyncio.sleep(0)
        assert await proto.lost is None
        os.set_blocking(r, True)
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            got += chunk
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
        got = b""
        os.set_blocking(master, False)
        while b"to the tty" not in got:
            try:
                got += os.read(master, 100)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        tr.close()
        assert await proto.lost is None

    try:
        run(loop, main())
    finally:
        os.close(master)
