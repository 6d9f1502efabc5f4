"""Other threads calling into a loop while it polls: races, never a crash.

asyncio's loops are not thread-safe: add_reader(), call_soon() and
transport.write() from another thread are misuse, and stock asyncio
answers them with races (lost or reordered work, the odd exception).  A C
loop must answer them no worse: it releases the GIL only around the
kernel's wait and touches no shared table there, so such threads can never
make it read freed memory.  These tests misuse the loop on purpose, from
several threads at once, while the loop alternates between blocking polls
(GIL released) and busy iterations; they check that everything completes
and the loop stays usable, not what the races produce (so exception
handler calls are allowed: asyncio reports a handle cancelled by another
thread while it runs as a TypeError, a socket closed under a callback's
recv() as an OSError).

Run them under the sanitizer build too (tools/asan-test.sh).
"""

import asyncio
import os
import socket
import sys
import threading
import time

import pytest

ROUNDS = int(os.environ.get("ELOOP_STRESS_ROUNDS", "2000"))

# What the misusing threads may see: a closed fd, an fd another watcher
# took, a transport torn down under them, a full socket buffer.
RACE_ERRORS = (OSError, RuntimeError, ValueError, KeyError, BufferError)


@pytest.fixture(autouse=True)
def fast_switching():
    # Switch the GIL often, so the misusing threads interleave with the
    # loop at many more points than the default 5 ms allows.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def _pairs(n):
    pairs = []
    for _ in range(n):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        pairs.append((a, b))
    return pairs


def _close_pairs(pairs):
    for a, b in pairs:
        a.close()
        b.close()


class Misuser(threading.Thread):
    """Runs body(i) for i in range(rounds), recording exceptions of the
    kinds a race may give, and re-raising anything else in the test."""

    def __init__(self, body, rounds=ROUNDS):
        super().__init__(daemon=True)
        self.body = body
        self.rounds = rounds
        self.races = 0
        self.error = None

    def run(self):
        try:
            for i in range(self.rounds):
                if i % 8 == 0:
                    time.sleep(0)   # let the loop thread reach its poll
                try:
                    self.body(i)
                except RACE_ERRORS:
                    self.races += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def _run_with(loop, threads):
    """Runs the loop until every thread is done.  A ticking timer makes it
    alternate between blocking polls and busy iterations; the end comes
    through call_soon_threadsafe(), which stays reliable while other
    threads corrupt asyncio's timer heap with call_later()."""
    done = loop.create_future()
    stop_ticking = []

    def tick():
        if not stop_ticking:
            loop.call_later(0.0005, tick)

    def finish():
        stop_ticking.append(True)
        if not done.done():
            done.set_result(None)

    def finisher():
        for t in threads:
            t.join()
        loop.call_soon_threadsafe(finish)

    for t in threads:
        t.start()
    fin = threading.Thread(target=finisher, daemon=True)
    fin.start()
    loop.call_soon(tick)
    while True:
        try:
            loop.run_until_complete(done)
            break
        except RACE_ERRORS:
            # asyncio's own iteration can trip over the misuse (e.g.
            # "list changed size during iteration" when another thread
            # calls call_later); the loop stays usable, so go on.
            pass
    fin.join()
    for t in threads:
        if t.error is not None:
            raise t.error


def test_add_remove_reader_from_threads(loop, loop_errors):
    # Many socketpairs: fds well past the core's initial table, so
    # registering them from a thread grows (reallocates) the table while
    # the loop may be inside its poll.  Half of them are readable, so the
    # poll reports events for fds that other threads are detaching.
    pairs = _pairs(48)
    for a, b in pairs[::2]:
        b.send(b"x")
    fired = []

    def on_read(i):
        fired.append(i)

    def churn(offset):
        def body(i):
            a, _ = pairs[(i * 7 + offset) % len(pairs)]
            fd = a.fileno()
            loop.add_reader(fd, on_read, i)
            if i % 3:
                loop.remove_reader(fd)
            if i % 5 == 0:
                loop.add_writer(fd, on_read, i)
                loop.remove_writer(fd)
        return body

    threads = [Misuser(churn(k)) for k in range(3)]
    try:
        _run_with(loop, threads)
        for a, _ in pairs:
            loop.remove_reader(a.fileno())
            loop.remove_writer(a.fileno())
        # Still usable afterwards.
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        _close_pairs(pairs)


def test_fd_reuse_from_threads(loop, loop_errors):
    # A thread closes watched fds and opens new ones, which reuse the
    # numbers, while the loop polls: a stale event may reach the new
    # owner, or a callback's recv() (which releases the GIL) may see its
    # socket closed under it (races, reported to the exception handler),
    # but nothing reads a freed watcher.
    lock = threading.Lock()
    slots = _pairs(8)

    def body(i):
        k = i % len(slots)
        with lock:
            a, b = slots[k]
            try:
                loop.add_reader(a.fileno(), a.recv, 1)
                b.send(b"y")
            finally:
                loop.remove_reader(a.fileno())
                a.close()
                b.close()
                slots[k] = _pairs(1)[0]

    threads = [Misuser(body), Misuser(body)]
    try:
        _run_with(loop, threads)
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        with lock:
            for a, _ in slots:
                loop.remove_reader(a.fileno())
            _close_pairs(slots)


def test_call_soon_from_threads(loop, loop_errors):
    # call_soon() from another thread is misuse (only the threadsafe
    # variant wakes the loop); the callbacks still run eventually, because
    # the ticking timer keeps the loop iterating.
    ran = []
    threads = [Misuser(lambda i: loop.call_soon(ran.append, i)),
               Misuser(lambda i: loop.call_soon_threadsafe(ran.append, i)),
               Misuser(lambda i: loop.call_later(0, ran.append, i))]
    _run_with(loop, threads)
    loop.run_until_complete(asyncio.sleep(0))
    # A race may lose a callback (asyncio's deque and heap are not
    # thread-safe), never invent one.
    assert len(ran) <= 3 * ROUNDS


def test_transport_write_from_threads(loop, loop_errors):
    # transport.write() from other threads while the loop writes to the
    # same transport from a callback and the peer's reader drains it.
    a, b = socket.socketpair()
    b.setblocking(False)
    received = bytearray()

    def drain():
        try:
            while True:
                data = b.recv(65536)
                if not data:
                    break
                received.extend(data)
        except BlockingIOError:
            pass

    loop.add_reader(b.fileno(), drain)
    tr, _ = loop.run_until_complete(
        loop.create_connection(asyncio.Protocol, sock=a))
    chunk = b"z" * 1000

    def body(i):
        tr.write(chunk)
        if i % 10 == 0:
            tr.get_write_buffer_size()
            tr.pause_reading()
            tr.resume_reading()

    def loop_side():
        if not tr.is_closing():
            tr.write(chunk)
            loop.call_later(0.0002, loop_side)

    loop.call_soon(loop_side)
    threads = [Misuser(body), Misuser(body)]
    try:
        _run_with(loop, threads)
        tr.close()
        loop.run_until_complete(asyncio.sleep(0.01))
        drain()
        assert len(received) > 0
    finally:
        loop.remove_reader(b.fileno())
        if not tr.is_closing():
            tr.abort()
            loop.run_until_complete(asyncio.sleep(0))
        b.close()


def test_run_once_on_closed_loop_raises(loop_factory):
    # This used to poll a freed backend.  asyncio fails with
    # AttributeError (its selector is None), eloop with RuntimeError.
    lp = loop_factory()
    lp.close()
    with pytest.raises((RuntimeError, AttributeError)):
        lp._run_once()


def test_nested_run_once_from_callback(loop, loop_errors):
    # The same misuse from the loop's own thread: a callback running an
    # iteration of its own.  asyncio's inner iteration pops from an empty
    # ready deque (IndexError, from the callback and then from
    # run_forever); eloop refuses the nested iteration (RuntimeError, to
    # the exception handler).  It used to pop past the end of its ring.
    loop.call_soon(loop._run_once)
    loop.call_soon(loop.stop)
    try:
        loop.run_forever()
    except IndexError:
        pass
    assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
