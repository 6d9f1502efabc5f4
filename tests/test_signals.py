"""add_signal_handler / remove_signal_handler, and SIGINT under Runner."""

import asyncio
import os
import signal
import threading
import time

import pytest


@pytest.fixture(autouse=True)
def restore_signals():
    saved = {s: signal.getsignal(s)
             for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(-1)


def test_signal_delivered_to_handler(loop, run_loop):
    got = []

    def handler(*args):
        got.append((args, asyncio.get_running_loop() is loop))
        loop.stop()

    assert loop.add_signal_handler(signal.SIGUSR1, handler, "a", 1) is None
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_loop(loop)
    assert got == [(("a", 1), True)]


def test_signal_from_other_thread_wakes_loop(loop, run_loop):
    got = []

    def handler():
        got.append("sig")
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR2, handler)

    def killer():
        time.sleep(0.05)  # let the loop block in its poll
        os.kill(os.getpid(), signal.SIGUSR2)

    t = threading.Thread(target=killer)
    loop.call_soon(t.start)
    try:
        run_loop(loop, timeout=20)
    finally:
        t.join()
    assert got == ["sig"]


def test_signal_while_not_running_is_delivered_later(loop, run_loop):
    got = []

    def handler():
        got.append("sig")
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler)
    os.kill(os.getpid(), signal.SIGUSR1)
    assert got == []
    run_loop(loop)
    assert got == ["sig"]


def test_signal_handler_replaced(loop, run_loop):
    got = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, "old")

    def new():
        got.append("new")
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, new)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_loop(loop)
    assert got == ["new"]


def test_signal_handler_multiple_deliveries(loop, run_loop):
    count = 0

    def handler():
        nonlocal count
        count += 1
        if count < 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        else:
            loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_loop(loop)
    assert count == 3


def test_remove_signal_handler(loop):
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL,
                                                    signal.SIG_IGN)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    # Nothing is left installed: the wakeup fd is reset.
    assert signal.set_wakeup_fd(-1) == -1


def test_remove_sigint_restores_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_close_removes_signal_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGUSR2, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1


def test_signal_enum_accepted(loop):
    loop.add_signal_handler(signal.Signals.SIGUSR1, lambda: None)
    assert loop.remove_signal_handler(signal.Signals.SIGUSR1) is True


@pytest.mark.parametrize("sig", [0, -1, 1000, signal.NSIG])
def test_invalid_signal_number(loop, sig):
    with pytest.raises(ValueError) as ei:
        loop.add_signal_handler(sig, lambda: None)
    assert str(ei.value) == f"invalid signal number {sig}"
    with pytest.raises(ValueError) as ei:
        loop.remove_signal_handler(sig)
    assert str(ei.value) == f"invalid signal number {sig}"


@pytest.mark.parametrize("sig", ["SIGUSR1", 1.5, None])
def test_signal_wrong_type(loop, sig):
    with pytest.raises(TypeError) as ei:
        loop.add_signal_handler(sig, lambda: None)
    assert str(ei.value) == f"sig must be an int, not {sig!r}"
    with pytest.raises(TypeError) as ei:
        loop.remove_signal_handler(sig)
    assert str(ei.value) == f"sig must be an int, not {sig!r}"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signal(loop, sig):
    with pytest.raises(RuntimeError) as ei:
        loop.add_signal_handler(sig, lambda: None)
    assert str(ei.value) == f"sig {int(sig)} cannot be caught"
    assert loop.remove_signal_handler(sig) is False
    assert signal.set_wakeup_fd(-1) == -1


def test_signal_handler_coroutine_rejected(loop):
    async def coro():
        pass

    msg = "^coroutines cannot be used with add_signal_handler\\(\\)$"
    with pytest.raises(TypeError, match=msg):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    c = coro()
    with pytest.raises(TypeError, match=msg):
        loop.add_signal_handler(signal.SIGUSR1, c)
    c.close()
    # The coroutine check comes before the signal check.
    with pytest.raises(TypeError, match=msg):
        loop.add_signal_handler("bad", coro)


def test_add_signal_handler_closed_loop(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    # signal validation comes first
    with pytest.raises(ValueError):
        loop.add_signal_handler(0, lambda: None)


def test_add_signal_handler_from_other_thread(loop):
    errors = []

    def other():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except RuntimeError as exc:
            errors.append(exc)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_exception_reported(loop, loop_errors, run_loop):
    def handler():
        loop.call_soon(loop.stop)
        raise ValueError("in signal handler")

    loop.add_signal_handler(signal.SIGUSR1, handler)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_loop(loop)
    assert len(loop_errors.calls) == 1
    assert isinstance(loop_errors.calls[0]["exception"], ValueError)
    assert loop_errors.calls[0]["message"].startswith("Exception in callback")


# ---------------------------------------------------------------- SIGINT

SIGINT_CHILD = r"""
import asyncio, os, signal, sys, threading, time

mode = sys.argv[3]

async def main():
    loop = asyncio.get_running_loop()
    if mode == "thread":
        main_ident = threading.get_ident()
        def killer():
            time.sleep(0.1)  # let the loop block in its poll
            signal.pthread_kill(main_ident, signal.SIGINT)
        loop.call_soon(threading.Thread(target=killer, daemon=True).start)
    elif mode == "callback":
        loop.call_later(0.01, os.kill, os.getpid(), signal.SIGINT)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print("MAIN-CANCELLED", flush=True)
        raise
    print("MAIN-FINISHED", flush=True)

try:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
except KeyboardInterrupt:
    print("KEYBOARD-INTERRUPT", flush=True)
    sys.exit(0)
print("NO-INTERRUPT", flush=True)
sys.exit(3)
"""


@pytest.mark.parametrize("mode", ["thread", "callback"])
def test_sigint_under_runner_cancels_main_task(child_python, mode):
    proc = child_python(SIGINT_CHILD, args=[mode])
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.split() == ["MAIN-CANCELLED", "KEYBOARD-INTERRUPT"]


SIGINT_HANDLER_CHILD = r"""
import asyncio, os, signal, sys

async def main():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGINT, fut.set_result, "handled")
    loop.call_later(0.01, os.kill, os.getpid(), signal.SIGINT)
    print(await fut, flush=True)
    loop.remove_signal_handler(signal.SIGINT)

with asyncio.Runner(loop_factory=loop_factory) as runner:
    runner.run(main())
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def test_sigint_with_loop_signal_handler(child_python):
    proc = child_python(SIGINT_HANDLER_CHILD)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.split() == ["handled", "True"]
