"""A Python signal handler that raises, at many points of a busy loop.

Python runs signal handlers between bytecodes of the main thread, so a
handler that raises (pytest-timeout's SIGALRM, Ctrl-C's KeyboardInterrupt,
an alarm() timeout helper) can make almost any Python call the loop makes
fail: a callback, a protocol method, a done callback, the poll itself
(PyErr_CheckSignals after EINTR).  The loop must come out of each such
raise either usable (run_until_complete works again) or able to close
cleanly, and never crash.

The timer (setitimer) fires once per round, at intervals spread from tens
of microseconds to a few milliseconds, while the loop runs callbacks,
timers, TCP echo round trips, a server accepting connections and
run_in_executor calls.  Everything the timed window needs is imported and
exercised before the first timer is armed: a handler that raises while
CPython compiles (an import, pytest's assertion rewriting) breaks the
compiler itself ("SystemError: AST constructor recursion depth mismatch"),
which would be a flaky test, not a loop bug.  Assertions run with the
timer disarmed.

ELOOP_SIGNAL_STRESS=N runs N rounds per test instead of the default (a
longer, opt-in run).  Run it under the sanitizer build too
(tools/asan-test.sh).
"""

import asyncio
import concurrent.futures.thread  # noqa: F401  (run_in_executor imports it)
import gc
# Imported on first use by warnings and pytest when they format a warning
# or an unraisable exception, which may happen in the armed window; a raise
# in the middle of an import leaves a half-initialised module behind.
import linecache  # noqa: F401
import traceback  # noqa: F401
import tracemalloc  # noqa: F401
import os
import queue
import signal
import sys
import threading

import pytest

ROUNDS = int(os.environ.get("ELOOP_SIGNAL_STRESS", "80"))
ROUNDS_PER_LOOP = 20
# A safety net, not a timing assertion: a round whose raise got lost
# (e.g. swallowed as unraisable inside a finalizer) ends here instead.
WATCHDOG = 0.25

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"),
                                reason="needs signal.setitimer")


class Alarm(BaseException):
    """Not an Exception: like pytest-timeout's Failed, it escapes
    everything but a bare except."""


class Oops(Exception):
    """An Exception: the loop reports it where it lands in a callback."""


KINDS = {"KeyboardInterrupt": KeyboardInterrupt, "BaseException": Alarm,
         "Exception": Oops}


def intervals(n):
    # Log-uniform over 30 us .. 3 ms (golden-ratio stepping, so any prefix
    # covers the range evenly); deterministic across runs.
    return [30e-6 * 100 ** ((i * 0.6180339887) % 1.0) for i in range(n)]


# Stdlib code that a raise can leave holding a lock (threading.Condition's
# `with` between acquire and the block, the executor's queues), after which
# the next run_in_executor() deadlocks, with any loop; a known CPython
# limitation, not what this test is about.  The trigger waits until the
# main thread is out of it.
_LOCK_CODE = tuple(os.path.join(os.path.dirname(m.__file__), "")
                   if m.__file__.endswith("__init__.py") else m.__file__
                   for m in (threading, queue, concurrent.futures))


def _in_lock_code(frame):
    while frame is not None:
        if frame.f_code.co_filename.startswith(_LOCK_CODE):
            return True
        frame = frame.f_back
    return False


class Trigger:
    """The SIGALRM handler: raises once per arm()."""

    def __init__(self, exc_type):
        self.exc_type = exc_type
        self.armed = False
        self.fired = 0
        self.late = 0

    def __call__(self, signum, frame):
        if self.armed and _in_lock_code(frame):
            signal.setitimer(signal.ITIMER_REAL, 20e-6)     # a bit later
        elif self.armed:
            self.armed = False
            self.fired += 1
            raise self.exc_type("raised by a signal handler")

    def arm(self, delay):
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, delay)

    def disarm(self):
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


@pytest.fixture
def trigger_for():
    saved = signal.getsignal(signal.SIGALRM)
    made = []

    def make(exc_type):
        t = Trigger(exc_type)
        signal.signal(signal.SIGALRM, t)
        made.append(t)
        return t

    yield make
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, saved)


class EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Client(asyncio.Protocol):
    """Round trips over one connection; a lost connection fails them."""

    def __init__(self, loop):
        self.loop = loop
        self.buf = bytearray()
        self.want = 0
        self.waiter = None
        self.closed = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        if self.waiter is not None and len(self.buf) >= self.want:
            w, self.waiter = self.waiter, None
            if not w.done():
                w.set_result(None)

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("lost"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def roundtrip(self, payload):
        if self.transport is None:      # connection_made() was cut short
            raise ConnectionResetError("no transport")
        self.buf.clear()
        self.want = len(payload)
        self.waiter = self.loop.create_future()
        self.transport.write(payload)
        await self.waiter


def _work(x):
    return sum(range(x))


class Workload:
    """Background activity that runs until cancelled.  Each task restarts
    after a connection error; anything else ends it and is handed to
    `self.failed`, which run_until_complete() waits on."""

    def __init__(self, loop, server_addr):
        self.loop = loop
        self.addr = server_addr
        self.tasks = []
        self.failed = loop.create_future()
        self.chain_left = 0
        self.ticks = 0

    def start(self):
        loop = self.loop
        for coro_fn in (self.pinger, self.pinger, self.connector,
                        self.executor_user, self.sleeper):
            t = loop.create_task(coro_fn())
            t.add_done_callback(self._task_done)
            self.tasks.append(t)
        loop.call_soon(self.chain)

    def _task_done(self, t):
        if t.cancelled():
            return
        exc = t.exception()
        if exc is not None and not self.failed.done():
            self.failed.set_exception(exc)

    def restart_dead(self):
        if self.failed.done():
            self.failed.exception()     # retrieved: not logged when freed
            self.failed = self.loop.create_future()
        for i, t in enumerate(self.tasks):
            if t.done():
                fn = (self.pinger, self.pinger, self.connector,
                      self.executor_user, self.sleeper)[i]
                nt = self.loop.create_task(fn())
                nt.add_done_callback(self._task_done)
                self.tasks[i] = nt

    # Plain callbacks: bursts of call_soon separated by short timers, so
    # the loop alternates between busy iterations and blocking polls.
    def chain(self):
        self.ticks += 1
        if self.chain_left > 0:
            self.chain_left -= 1
            self.loop.call_soon(self.chain)
        else:
            self.chain_left = self.ticks % 17
            self.loop.call_later(0.0003, self.chain)

    async def pinger(self):
        loop = self.loop
        payload = b"p" * 300
        while True:
            tr = None
            try:
                tr, pr = await loop.create_connection(
                    lambda: Client(loop), *self.addr)
                while True:
                    await pr.roundtrip(payload)
            except (ConnectionError, OSError):
                pass
            finally:
                if tr is not None:
                    tr.abort()

    async def connector(self):
        # Keeps the server accepting.
        loop = self.loop
        while True:
            tr = None
            try:
                tr, pr = await loop.create_connection(
                    lambda: Client(loop), *self.addr)
                await pr.roundtrip(b"hello")
                tr.close()
                await pr.closed
            except (ConnectionError, OSError):
                pass
            finally:
                if tr is not None:
                    tr.abort()

    async def executor_user(self):
        while True:
            await self.loop.run_in_executor(None, _work, 200)

    async def sleeper(self):
        n = 0
        while True:
            n += 1
            await asyncio.sleep((n % 5) * 0.0002)

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        # Bounded: a raise that landed in the futures machinery itself
        # (asyncio's or eloop's alike: both use asyncio's C Future) can
        # lose the wakeup of a task, which then never finishes.
        await asyncio.wait(self.tasks, timeout=WATCHDOG)


class Recorder:
    """Exception handler: records, and stops the loop when our exception
    reaches it (a raise inside a callback), ending the round."""

    def __init__(self, kind):
        self.kind = kind
        self.contexts = []

    def __call__(self, loop, context):
        self.contexts.append(context)
        # Not when the report comes from outside a run (a future that
        # failed with our exception, collected later): a stop then would
        # end the next run at once.
        if isinstance(context.get("exception"), self.kind) and \
                loop.is_running():
            loop.stop()


def _expected_outcome(exc, kind):
    # The raise itself, or the loop stopped by the recorder or watchdog.
    return isinstance(exc, kind) or (
        isinstance(exc, RuntimeError)
        and "stopped before Future completed" in str(exc))


def _run_round(loop, work, trigger, delay):
    """One armed run; returns the exception it ended with."""
    dog = loop.call_later(WATCHDOG, loop.stop)
    outcome = None
    try:
        trigger.arm(delay)
        loop.run_until_complete(work.failed)
    except BaseException as exc:
        outcome = exc
    # The run may end before the timer fires (a stop left queued by the
    # previous round): then the raise may land here, once at most.
    try:
        trigger.disarm()
    except trigger.exc_type:
        trigger.late += 1
    dog.cancel()
    return outcome


def _new_loop(loop_factory, kind):
    loop = loop_factory()
    rec = Recorder(kind)
    loop.set_exception_handler(rec)
    server = loop.run_until_complete(
        loop.create_server(EchoServer, "127.0.0.1", 0))
    addr = server.sockets[0].getsockname()[:2]
    work = Workload(loop, addr)
    work.start()
    return loop, rec, server, work


def _complete(loop, aw):
    """run_until_complete(aw) with the timer disarmed.  A stop that an
    interrupted run left queued may end the first try early (asyncio's
    run_until_complete() removes its done callback from the future, not
    the call of it already queued), so try again."""
    fut = asyncio.ensure_future(aw, loop=loop)
    for _ in range(3):
        try:
            return loop.run_until_complete(fut)
        except RuntimeError as exc:
            if "stopped before Future completed" not in str(exc):
                raise
    return fut.result()


def _close_loop(loop, server, work):
    _complete(loop, work.stop())
    server.close()
    _complete(loop, asyncio.sleep(0))
    _complete(loop, loop.shutdown_default_executor())
    loop.close()


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_raise_from_signal_handler(impl, loop_factory, trigger_for,
                                   kind_name):
    kind = KINDS[kind_name]
    trigger = trigger_for(kind)

    # Warm up with the timer disarmed: every path the workload takes
    # imports and compiles what it needs now, not in the timed window.
    loop, rec, server, work = _new_loop(loop_factory, kind)
    loop.call_later(0.05, loop.stop)
    with pytest.raises(RuntimeError):
        loop.run_until_complete(work.failed)
    _close_loop(loop, server, work)
    gc.collect()

    outcomes = []
    recorders = []
    stuck = 0
    loop = None
    # Objects that die in the window may report unraisable exceptions
    # (ours, raised in a finalizer); pytest's hook formats them and imports
    # on first use, which a raise must not interrupt: count them instead.
    unraisable = []
    saved_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(u.exc_type)
    try:
        for i, delay in enumerate(intervals(ROUNDS)):
            if loop is None:
                loop, rec, server, work = _new_loop(loop_factory, kind)
                recorders.append(rec)
            work.restart_dead()
            outcome = _run_round(loop, work, trigger, delay)
            outcomes.append(type(outcome).__name__)
            assert _expected_outcome(outcome, kind), repr(outcome)
            if loop.is_running():
                # Stock asyncio's run_forever() resets its running state in a
                # Python `finally:`; a raise landing there leaves the loop
                # marked running for good.  eloop does that part in C.
                assert impl.name == "asyncio"
                stuck += 1
                loop = None
                continue
            # Still usable: a plain run works (the timer is disarmed now).
            assert _complete(loop, asyncio.sleep(0, "ok")) == "ok"
            if (i + 1) % ROUNDS_PER_LOOP == 0 or i + 1 == ROUNDS:
                _close_loop(loop, server, work)
                loop = None
    finally:
        sys.unraisablehook = saved_hook
    assert loop is None
    # What reached the exception handlers is not checked: besides our
    # exception, it is whatever its consequences were (a connection torn
    # down, a connection_made() cut short, asyncio's own state damaged),
    # which varies with where the raise landed.
    assert trigger.fired > 0
    # For -s runs: how the rounds ended (RuntimeError: the loop was
    # stopped, by the exception handler or the watchdog).
    print(f"{impl.name} {kind_name}: fired={trigger.fired} late="
          f"{trigger.late} stuck={stuck} unraisable={len(unraisable)}",
          {o: outcomes.count(o) for o in sorted(set(outcomes))})


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_accepted_socket_init_interrupted(loop, loop_errors, run_briefly,
                                          monkeypatch):
    # What the stress test found: a raise inside socket.socket.__init__
    # for an accepted connection, after _socket.socket.__init__ took the
    # fd.  The half-built socket owns the fd and closes it when it dies,
    # which the exception's traceback delays; eloop closed the fd at once
    # as well, so the later close hit whatever reused the number.
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    server = loop.run_until_complete(
        loop.create_server(asyncio.Protocol, sock=srv))
    orig_init = socket.socket.__init__
    armed = [True]

    def init(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        adopting = len(args) > 3 or kwargs.get("fileno") is not None
        if armed[0] and adopting:
            armed[0] = False
            raise Oops("raised after the fd was taken")

    monkeypatch.setattr(socket.socket, "__init__", init)
    client = socket.create_connection(srv.getsockname())
    for _ in range(50):
        run_briefly(loop)
        if loop_errors.calls:
            break
    monkeypatch.undo()
    assert any(isinstance(c.get("exception"), Oops)
               for c in loop_errors.calls)
    # Numbers freed now are reused by this pair; then the half-built
    # socket dies with the exception.
    a, b = socket.socketpair()
    loop_errors.calls.clear()
    gc.collect()
    try:
        a.sendall(b"ok")
        assert b.recv(2) == b"ok"
    finally:
        a.close()
        b.close()
        client.close()
        server.close()
        loop.run_until_complete(server.wait_closed())
