"""A transport never touches a reused fd (issue 9, point 4).

User code may close a transport's socket behind its back (the sock= it
passed in).  The fd number is then free, and the next socket the process
opens may get it.  asyncio's transport keeps calling methods of its closed
socket object, which fail with EBADF and go through its fatal-error path;
it never reads from or writes to the file that reused the number.  Each
test closes the socket, puts a new socketpair on the same fd number, and
checks that no byte crosses between the old transport and the new file,
and that the protocol sees what asyncio's sees.  Every test runs on both
loops.
"""

import asyncio
import errno
import os
import socket
import sys

import pytest

from _netutil import run
from _transport_util import connect, pending, spin


def reuse_fd(fd):
    """A connected pair (c, d) with c on fd number `fd`, which must be
    free: whatever is written to c arrives at d and vice versa."""
    c, d = socket.socketpair()
    if c.fileno() != fd:
        os.dup2(c.fileno(), fd)
        c.close()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd)
    c.setblocking(False)
    d.setblocking(False)
    return c, d


def describe(exc):
    """What connection_lost() got, comparable across loops."""
    if exc is None:
        return None
    return type(exc).__name__, getattr(exc, "errno", None)


async def close_and_reuse(sock):
    """Closes sock behind its transport's back and returns a new pair
    (c, d) with c on its fd number."""
    await spin()
    fd = sock.fileno()
    sock.close()
    return reuse_fd(fd)


def test_write_after_close_goes_nowhere(loop, sockpair):
    a, b = sockpair

    async def main():
        tr, proto = await connect(loop, a)
        c, d = await close_and_reuse(a)
        try:
            tr.write(b"must not reach the new file")
            exc = await asyncio.wait_for(proto.lost, 5)
            await spin()
            return describe(exc), pending(d), pending(c), b.recv(100)
        finally:
            c.close()
            d.close()

    lost, at_d, at_c, at_b = run(loop, main())
    assert lost == ("OSError", errno.EBADF)
    assert at_d is None and at_c is None
    assert at_b == b""      # the old peer sees only the close


def test_queued_writes_not_sent_to_reused_fd(loop, sockpair):
    a, b = sockpair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    async def main():
        tr, proto = await connect(loop, a)
        # Not reading: asyncio's selector then holds only the writer, and
        # abort() below can drop it (changing a two-way registration of a
        # closed fd raises ENOENT out of asyncio's selector).
        tr.pause_reading()
        tr.write(b"x" * (4 << 20))
        await spin()
        assert tr.get_write_buffer_size() > 0   # the writer is armed
        c, d = await close_and_reuse(a)
        try:
            d.send(b"to c")
            await spin(10)
            first = pending(d)
            tr.write(b"more")
            await spin(10)
            second = pending(d)
            tr.abort()
            exc = await asyncio.wait_for(proto.lost, 5)
            return describe(exc), first, second, pending(d), pending(c)
        finally:
            c.close()
            d.close()

    lost, first, second, last, at_c = run(loop, main())
    assert (first, second, last) == (None, None, None)
    assert at_c == b"to c"
    assert lost is None


def test_rearmed_writer_fails_with_ebadf(impl, loop, sockpair):
    # eloop-only: eloop narrows a registration lazily, and re-adds the fd
    # number if the kernel no longer knows it, which here registers the
    # new file (writable at once) for the old transport.  asyncio's
    # selector raises ENOENT out of pause_reading() instead.
    if impl.name != "eloop":
        pytest.skip("eloop's lazy re-registration")
    a, b = sockpair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    async def main():
        tr, proto = await connect(loop, a)
        tr.write(b"x" * (4 << 20))
        c, d = await close_and_reuse(a)
        try:
            tr.pause_reading()
            exc = await asyncio.wait_for(proto.lost, 5)
            await spin()
            return describe(exc), pending(d)
        finally:
            c.close()
            d.close()

    lost, at_d = run(loop, main())
    # What asyncio reports when a send on its closed socket fails.
    assert lost == ("OSError", errno.EBADF)
    assert at_d is None


def test_reads_not_taken_from_reused_fd(loop, sockpair):
    a, b = sockpair

    async def main():
        tr, proto = await connect(loop, a)
        c, d = await close_and_reuse(a)
        try:
            d.send(b"secret")
            await spin()
            tr.pause_reading()
            await spin()
            tr.resume_reading()
            exc = await asyncio.wait_for(proto.lost, 5)
            await spin()
            return describe(exc), proto.data, pending(c)
        finally:
            c.close()
            d.close()

    lost, got, left = run(loop, main())
    assert lost == ("OSError", errno.EBADF)
    assert got == b""
    assert left == b"secret"


def test_write_eof_after_close_raises_ebadf(loop, sockpair):
    a, b = sockpair

    async def main():
        tr, proto = await connect(loop, a)
        c, d = await close_and_reuse(a)
        try:
            with pytest.raises(OSError) as info:
                tr.write_eof()
            tr.abort()
            await asyncio.wait_for(proto.lost, 5)
            return info.value.errno, pending(d)
        finally:
            c.close()
            d.close()

    err, at_d = run(loop, main())
    assert err == errno.EBADF
    assert at_d is None     # no shutdown reached the new file's peer


def test_new_transport_on_reused_fd(loop, sockpair):
    a, b = sockpair

    async def main():
        tr, proto = await connect(loop, a)
        c, d = await close_and_reuse(a)
        try:
            if sys.version_info >= (3, 12):
                # 3.12 refuses an fd that an open transport still has.
                with pytest.raises(RuntimeError, match="is used by"):
                    await connect(loop, c)
                tr.close()
                await asyncio.wait_for(proto.lost, 5)
            tr2, proto2 = await connect(loop, c)
            d.send(b"for the new transport")
            await spin(10)
            tr2.write(b"from the new transport")
            await spin(10)
            at_d = pending(d)
            tr.close()
            tr2.close()
            await asyncio.wait_for(proto2.lost, 5)
            await asyncio.wait_for(proto.lost, 5)
            return proto.data, proto2.data, at_d
        finally:
            d.close()

    old, new, at_d = run(loop, main())
    # The old transport gets nothing of the new file's.  (asyncio's new
    # transport may never read here: its selector key for the fd number
    # still looks registered, so nothing is asked of the kernel.)
    assert old == b""
    assert new in (b"", b"for the new transport")
    assert at_d == b"from the new transport"
