"""Shared fixtures for eloop's behavioural test suite.

Every behavioural test runs twice: once against stock asyncio
(``asyncio.SelectorEventLoop``, which is the specification) and once against
eloop (``eloop.new_event_loop``).  The eloop half is skipped while the
package cannot be imported, so the suite can be written and verified against
asyncio alone.

Fixtures
--------
impl          the implementation under test (an ``Impl``), parametrized with
              ids "asyncio" and "eloop".
loop_factory  a zero-argument callable returning a new, *untracked* loop.
loop_class    the loop class, for subclassing tests
              (asyncio.SelectorEventLoop / eloop.Loop).
loop_spec     "module:attr" naming the factory, for subprocess tests.
make_loop     make_loop(cls=None) -> a new tracked loop with a recording
              exception handler installed; closed at teardown.
loop          make_loop() for the common case.
loop_errors   opt in to exception-handler calls on ``loop``: returns the
              recorder (``.calls`` is the list of contexts).
run_loop      run_loop(loop, timeout=10): run_forever() with a watchdog timer
              that stops the loop (and fails the test) if nothing else does.
run_briefly   run_briefly(loop, n=1): run n loop iterations.
child_python  run a ``python -c`` snippet that can build the loop under test.

At teardown every tracked loop is closed (unless still running), gc.collect()
is run, and the test fails if an exception-handler call happened that the
test did not opt in to with ``loop_errors`` (or ``recorder.expect()``).
"""

import asyncio
import gc
import importlib
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest


DEFAULT_TIMEOUT = 60


# --------------------------------------------------------------------------
# pytest-timeout wiring: every test gets a timeout unless one was configured
# on the command line / ini or with an explicit marker.
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "timeout(seconds, method=...): per-test timeout "
        "(pytest-timeout)")


def pytest_collection_finish(session):
    # Everything alive after collection (plugins, test modules) is never
    # garbage: move it out of the collector's way so that the gc.collect()
    # run after every test stays cheap.
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    try:
        cli_timeout = config.getoption("timeout")
    except ValueError:  # pytest-timeout not installed
        return
    if cli_timeout is not None:
        return
    try:
        ini_timeout = config.getini("timeout")
    except ValueError:
        ini_timeout = None
    if ini_timeout not in (None, "", []):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            # The thread method also catches a loop stuck in C code that
            # never runs Python signal handlers.
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT,
                                                method=os.environ.get("ELOOP_TEST_TIMEOUT_METHOD", "thread")))


# --------------------------------------------------------------------------
# Implementations under test
# --------------------------------------------------------------------------

class Impl:
    def __init__(self, name, factory, loop_class, spec, extra_path=None):
        self.name = name
        self.factory = factory
        self.loop_class = loop_class
        self.spec = spec            # "module:attr", for child processes
        self.extra_path = extra_path  # sys.path entry a child process needs

    def __repr__(self):
        return f"<Impl {self.name}>"


def _asyncio_impl():
    return Impl("asyncio", asyncio.SelectorEventLoop,
                asyncio.SelectorEventLoop, "asyncio:SelectorEventLoop")


def _missing(msg):
    # CI (test.sh) sets ELOOP_REQUIRED so a broken build fails loudly
    # instead of silently skipping half the suite.
    if os.environ.get("ELOOP_REQUIRED"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _eloop_impl():
    try:
        eloop = importlib.import_module("eloop")
    except Exception as exc:  # ImportError or a broken build
        _missing(f"eloop is not importable: {exc!r}")
    factory = getattr(eloop, "new_event_loop", None)
    if factory is None:
        # e.g. the bare source directory imported as a namespace package
        _missing("eloop has no new_event_loop (not built yet?)")
    loop_class = getattr(eloop, "Loop", None)
    extra = None
    mod_file = getattr(eloop, "__file__", None)
    if mod_file:
        extra = os.path.dirname(os.path.dirname(os.path.abspath(mod_file)))
    impl = Impl("eloop", factory, loop_class, "eloop:new_event_loop", extra)
    return impl


@pytest.fixture(params=["asyncio", "eloop"])
def impl(request):
    if request.param == "asyncio":
        return _asyncio_impl()
    return _eloop_impl()


@pytest.fixture
def loop_factory(impl):
    return impl.factory


@pytest.fixture
def loop_class(impl):
    if impl.loop_class is None:
        pytest.skip(f"{impl.name} exposes no loop class")
    return impl.loop_class


@pytest.fixture
def loop_spec(impl):
    return impl.spec


# --------------------------------------------------------------------------
# Loops with a recording exception handler
# --------------------------------------------------------------------------

class ExceptionRecorder:
    """A loop exception handler that records every context it gets."""

    def __init__(self):
        self.calls = []
        self.expected = False

    def __call__(self, loop, context):
        self.calls.append(context)

    def expect(self):
        self.expected = True
        return self

    def messages(self):
        return [c.get("message") for c in self.calls]

    def __repr__(self):
        return f"<ExceptionRecorder {self.calls!r}>"


def _close_loop(loop):
    if loop.is_closed() or loop.is_running():
        return
    try:
        loop.close()
    except Exception:
        pass


@pytest.fixture
def make_loop(impl):
    created = []  # (loop, recorder)

    def make(cls=None, *, record=True):
        loop = cls() if cls is not None else impl.factory()
        rec = ExceptionRecorder()
        if record:
            loop.set_exception_handler(rec)
        created.append((loop, rec))
        return loop

    make.recorders = created
    yield make

    for lp, _ in created:
        _close_loop(lp)
    gc.collect()
    unexpected = [(lp, rec.calls) for lp, rec in created
                  if rec.calls and not rec.expected]
    created.clear()
    assert not unexpected, (
        f"unexpected exception handler calls: {unexpected!r}")


def recorder_for(make_loop, loop):
    for lp, rec in make_loop.recorders:
        if lp is loop:
            return rec
    raise LookupError(loop)


@pytest.fixture
def loop(make_loop):
    return make_loop()


@pytest.fixture
def loop_errors(make_loop, loop):
    """Opt in to exception-handler calls on ``loop``; returns the recorder."""
    return recorder_for(make_loop, loop).expect()


@pytest.fixture
def get_recorder(make_loop):
    """get_recorder(loop) -> the ExceptionRecorder installed on that loop."""
    return lambda lp: recorder_for(make_loop, lp)


# --------------------------------------------------------------------------
# Running helpers (hang protection, never timing assertions)
# --------------------------------------------------------------------------

class _Watchdog:
    fired = False

    def __call__(self, loop):
        self.fired = True
        loop.stop()


def _run_loop(loop, timeout=10.0):
    """run_forever() until something stops the loop; fail if the watchdog
    timer had to do it."""
    dog = _Watchdog()
    h = loop.call_later(timeout, dog, loop)
    try:
        loop.run_forever()
    finally:
        h.cancel()
    assert not dog.fired, "loop was not stopped: watchdog timer fired"


def _run_briefly(loop, n=1):
    for _ in range(n):
        loop.call_soon(loop.stop)
        loop.run_forever()


@pytest.fixture
def run_loop():
    return _run_loop


@pytest.fixture
def run_briefly():
    return _run_briefly


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------

CHILD_PRELUDE = """\
import sys as _sys, importlib as _importlib
_spec, _extra = _sys.argv[1], _sys.argv[2]
if _extra:
    _sys.path.insert(0, _extra)
_mod, _attr = _spec.split(":")
loop_factory = getattr(_importlib.import_module(_mod), _attr)
"""



# A shell without job control starts background commands with SIGINT
# ignored; an ignored signal stays ignored across exec, and Python leaves an
# ignored SIGINT alone (no KeyboardInterrupt, no asyncio.Runner handler), so
# the Ctrl-C tests in child Pythons failed on every loop.  A handled signal
# is reset to SIG_DFL by exec, so handling it here gives every child what a
# terminal gives.  Done in this process rather than in a preexec_fn: Python
# code in a fork child can deadlock on a lock another thread held at fork
# (it hung CI's sanitizer run).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# GCC 12's libasan can deadlock a fork child that runs code (allocates,
# starts threads) after fork: a lock inside the runtime may be held by a
# thread that was exiting at the fork.  CPython skips its fork tests under
# ASan for the same bug (gh-89363); the runtime fixed it later (LLVM 18,
# pthread_atfork).  The fork tests still run in the plain run.
def _asan_loaded():
    with open("/proc/self/maps") as f:
        return "asan" in f.read()


# Whether AddressSanitizer's runtime is in this process (tools/asan-test.sh
# preloads it); its children inherit it.
UNDER_ASAN = _asan_loaded()

skip_if_asan_fork = pytest.mark.skipif(
    UNDER_ASAN, reason="libasan fork-child deadlock (CPython gh-89363)")


@pytest.fixture
def child_python(impl):
    """child_python(code, *, args=(), env=None, python_flags=(), timeout=30)
    runs ``python [flags] -c PRELUDE+code SPEC EXTRA *args`` where the prelude
    defines ``loop_factory`` for the implementation under test.  Returns the
    CompletedProcess (text mode)."""

    def run(code, *, args=(), env=None, python_flags=(), timeout=30):
        full_env = dict(os.environ)
        full_env.pop("PYTHONASYNCIODEBUG", None)
        full_env.pop("PYTHONDEVMODE", None)
        if env:
            full_env.update(env)
        src = CHILD_PRELUDE + textwrap.dedent(code)
        cmd = [sys.executable, *python_flags, "-c", src,
               impl.spec, impl.extra_path or "", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True,
                              env=full_env, timeout=timeout,
                              cwd=os.path.dirname(os.path.dirname(
                                  os.path.abspath(__file__))))

    return run


@pytest.fixture
def sockpair():
    """A connected, non-blocking socket.socketpair()."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
