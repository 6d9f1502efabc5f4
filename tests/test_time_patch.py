"""Methods patched on the loop *instance* (``loop.time = ...``), as test
suites do to fast-forward time: asyncio's own code calls ``self.time()``,
``self._run_once()`` and ``self.call_soon()``, so the patch reroutes
call_later, the due-timer check, asyncio.sleep/wait_for and the loop's own
callbacks; ``del loop.time`` puts the real clock back."""

import asyncio
import logging
import socket

import pytest


def patch_clock(loop, offset):
    """loop.time() returns the real clock plus offset[0]."""
    real = loop.time
    loop.time = lambda: real() + offset[0]


def test_call_later_and_due_timers_follow_patched_time(loop, run_loop):
    out = []
    loop.call_later(0.5, out.append, "a")
    patch_clock(loop, [1.0])
    loop.call_soon(out.append, "c")

    def b():
        out.append("b")
        loop.stop()

    loop.call_later(0.005, b)
    run_loop(loop)
    assert out == ["c", "a", "b"]


def test_del_time_restores_the_real_clock(loop, run_briefly):
    out = []
    patch_clock(loop, [100.0])
    assert "time" in vars(loop)
    loop.call_later(50, out.append, "patched")      # due at real + 150
    del loop.time
    assert "time" not in vars(loop)
    loop.call_later(50, out.append, "real")         # due at real + 50
    loop.call_later(0, out.append, "now")
    run_briefly(loop, 2)
    assert out == ["now"]
    # Timers fire by the clock now in force: a jump past both deadlines.
    patch_clock(loop, [120.0])
    run_briefly(loop)
    assert out == ["now", "real"]
    del loop.time


def test_call_at_with_a_fake_clock(loop, run_briefly):
    now = [1000.0]
    loop.time = lambda: now[0]
    out = []
    h = loop.call_at(1001.0, out.append, "later")
    loop.call_at(999.0, out.append, "due")
    assert loop.call_later(5, out.append, "x").when() == 1005.0
    run_briefly(loop)
    assert out == ["due"]
    now[0] = 1002.0
    run_briefly(loop)
    assert out == ["due", "later"] and not h.cancelled()
    now[0] = 1005.0
    run_briefly(loop)
    assert out == ["due", "later", "x"]


def test_asyncio_sleep_follows_patched_time(loop, run_briefly):
    offset = [0.0]
    patch_clock(loop, offset)
    out = []

    async def sleeper():
        await asyncio.sleep(3600)
        out.append("woke")

    task = loop.create_task(sleeper())
    run_briefly(loop, 2)
    assert out == []
    offset[0] = 3601.0
    loop.run_until_complete(task)
    assert out == ["woke"]


def test_wait_for_times_out_by_patched_time(loop, run_briefly):
    offset = [0.0]
    patch_clock(loop, offset)

    async def waiter():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.create_future(), 3600)
        return "timed out"

    task = loop.create_task(waiter())
    run_briefly(loop, 2)
    assert not task.done()
    offset[0] = 3601.0
    assert loop.run_until_complete(task) == "timed out"


def test_debug_slow_callback_timing_follows_patched_time(loop, run_briefly,
                                                       caplog):
    offset = [0.0]
    patch_clock(loop, offset)
    loop.set_debug(True)

    def slow():
        offset[0] += 2.0

    loop.call_soon(slow)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run_briefly(loop)
    assert [r.getMessage() for r in caplog.records
            if "slow" in r.getMessage()][0].endswith("took 2.000 seconds")


def test_run_once_patched_on_the_instance(loop, run_briefly):
    calls = []
    real = loop._run_once

    def run_once():
        calls.append(1)
        real()

    loop._run_once = run_once
    run_briefly(loop, 3)
    assert len(calls) == 3
    del loop._run_once
    run_briefly(loop)
    assert len(calls) == 3


def test_call_soon_patched_on_the_instance_sees_transport_calls(loop):
    seen = []
    real = loop.call_soon

    def call_soon(callback, *args, **kwargs):
        seen.append(getattr(callback, "__name__", None))
        return real(callback, *args, **kwargs)

    loop.call_soon = call_soon
    a, b = socket.socketpair()
    try:
        async def main():
            tr, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            tr.close()
            await asyncio.sleep(0)

        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    del loop.call_soon
    assert "connection_made" in seen and "_call_connection_lost" in seen


def test_call_later_goes_through_call_at_patched_on_the_instance(
        loop, run_briefly):
    seen = []
    real = loop.call_at

    def call_at(when, callback, *args, **kwargs):
        seen.append((when, callback, args, sorted(kwargs)))
        return real(when, callback, *args, **kwargs)

    loop.time = lambda: 500.0
    loop.call_at = call_at
    out = []
    h = loop.call_later(1.5, out.append, "x", context=None)
    assert seen == [(501.5, out.append, ("x",), ["context"])]
    assert h.when() == 501.5
    del loop.call_at
    loop.call_later(0, out.append, "y")
    assert len(seen) == 1
    loop.time = lambda: 502.0
    run_briefly(loop)
    assert out == ["y", "x"]


def test_call_later_goes_through_call_at_of_a_subclass(loop_class,
                                                       make_loop,
                                                       run_briefly):
    seen = []

    class Loop(loop_class):
        def call_at(self, when, callback, *args, context=None):
            seen.append(callback)
            return super().call_at(when, callback, *args, context=context)

    loop = make_loop(Loop)
    out = []
    loop.call_later(-1, out.append, 1)
    run_briefly(loop)
    assert seen == [out.append] and out == [1]
