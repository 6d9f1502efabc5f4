"""call_soon / call_later / call_at / time / call_soon_threadsafe and the
Handle / TimerHandle objects they return."""

import asyncio
import contextvars
import functools
import math
import random
import re
import sys
import threading
import time

import pytest


# ---------------------------------------------------------------- time()

def test_time_uses_monotonic_clock(loop):
    for _ in range(100):
        before = time.monotonic()
        now = loop.time()
        after = time.monotonic()
        assert isinstance(now, float)
        assert before <= now <= after


def test_time_is_monotonic_inside_callbacks(loop, run_briefly):
    seen = []

    def cb():
        seen.append(loop.time())

    for _ in range(50):
        loop.call_soon(cb)
    run_briefly(loop)
    assert len(seen) == 50
    assert seen == sorted(seen)


# ---------------------------------------------------------------- call_soon

def test_call_soon_fifo_and_args(loop, run_briefly):
    out = []
    for i in range(100):
        loop.call_soon(out.append, i)
    loop.call_soon(lambda *a: out.append(a), 1, "x", None)
    run_briefly(loop)
    assert out == list(range(100)) + [(1, "x", None)]


def test_call_soon_returns_handle(loop, run_briefly):
    out = []
    h = loop.call_soon(out.append, 1)
    assert not h.cancelled()
    run_briefly(loop)
    assert out == [1]
    # A handle that ran is not "cancelled".
    assert not h.cancelled()


def test_call_soon_rejects_unknown_kwargs(loop):
    with pytest.raises(TypeError):
        loop.call_soon(print, foo=1)


def test_callbacks_scheduled_by_callbacks_run_next_iteration(loop, run_briefly):
    out = []

    def a():
        out.append("a")
        loop.call_soon(out.append, "c")  # queued after b

    loop.call_soon(a)
    loop.call_soon(out.append, "b")
    run_briefly(loop)
    assert out == ["a", "b"]
    run_briefly(loop)
    assert out == ["a", "b", "c"]


def test_self_rescheduling_callback_does_not_starve_timers(loop, run_loop):
    count = 0

    def spin():
        nonlocal count
        count += 1
        loop.call_soon(spin)

    loop.call_soon(spin)
    loop.call_later(0.01, loop.stop)  # must still get a chance to run
    run_loop(loop)
    assert count >= 1


def test_cancel_later_handle_from_earlier_callback(loop, run_briefly):
    out = []
    h2 = None

    def first():
        out.append(1)
        h2.cancel()

    loop.call_soon(first)
    h2 = loop.call_soon(out.append, 2)
    loop.call_soon(out.append, 3)
    run_briefly(loop)
    assert out == [1, 3]
    assert h2.cancelled()


def test_cancel_timer_from_earlier_timer_same_iteration(loop, run_briefly):
    out = []
    now = loop.time()
    h2 = None

    def first():
        out.append(1)
        h2.cancel()

    loop.call_at(now - 2, first)
    h2 = loop.call_at(now - 1, out.append, 2)
    loop.call_at(now - 0.5, out.append, 3)
    run_briefly(loop)
    assert out == [1, 3]


def test_cancel_is_idempotent(loop, run_briefly):
    out = []
    h = loop.call_soon(out.append, 1)
    h.cancel()
    h.cancel()
    assert h.cancelled()
    th = loop.call_later(0, out.append, 2)
    th.cancel()
    th.cancel()
    assert th.cancelled()
    run_briefly(loop, 2)
    assert out == []


def test_callback_cancels_its_own_handle(loop, run_briefly):
    out = []
    handles = []

    def cb():
        handles[0].cancel()
        out.append("ran")

    handles.append(loop.call_soon(cb))
    handles.append(loop.call_later(-1, lambda: handles[1].cancel()))
    run_briefly(loop)
    assert out == ["ran"]
    assert handles[0].cancelled() and handles[1].cancelled()


def test_cancel_after_run_is_harmless(loop, run_briefly):
    out = []
    h = loop.call_soon(out.append, 1)
    th = loop.call_later(-1, out.append, 2)
    run_briefly(loop)
    assert out == [1, 2]
    h.cancel()
    th.cancel()
    assert h.cancelled() and th.cancelled()
    run_briefly(loop)
    assert out == [1, 2]


def test_stop_runs_rest_of_iteration_only(loop, run_briefly):
    out = []

    def a():
        out.append("a")
        loop.call_soon(out.append, "c")

    loop.call_soon(a)
    loop.call_soon(loop.stop)
    loop.call_soon(out.append, "b")
    loop.run_forever()
    assert out == ["a", "b"]
    run_briefly(loop)
    assert out == ["a", "b", "c"]


# ---------------------------------------------------------------- timers

def test_call_later_order_by_deadline(loop, run_loop):
    out = []
    loop.call_later(0.03, out.append, 3)
    loop.call_later(0.01, out.append, 1)
    loop.call_later(0.02, out.append, 2)
    loop.call_later(0.04, loop.stop)
    run_loop(loop)
    assert out == [1, 2, 3]


def test_timer_does_not_fire_before_its_deadline(loop, run_loop):
    fired = []

    def cb():
        fired.append(loop.time())
        loop.stop()

    h = loop.call_later(0.02, cb)
    run_loop(loop)
    assert len(fired) == 1
    assert fired[0] >= h.when() - 1e-6


def test_call_at_uses_loop_time(loop, run_loop):
    out = []
    now = loop.time()
    loop.call_at(now + 0.02, out.append, "b")
    loop.call_at(now + 0.01, out.append, "a")
    loop.call_at(now + 0.03, loop.stop)
    run_loop(loop)
    assert out == ["a", "b"]


def test_timers_in_past_run_in_deadline_order(loop, run_briefly):
    out = []
    now = loop.time()
    loop.call_at(now - 1, out.append, 2)
    loop.call_at(now - 3, out.append, 0)
    loop.call_at(now - 2, out.append, 1)
    run_briefly(loop)
    assert out == [0, 1, 2]


def test_two_equal_deadlines_fire_in_scheduling_order(loop, run_briefly):
    # asyncio only guarantees this for 2 timers (heap property): its docs
    # say the order of equal deadlines is undefined in general.
    out = []
    when = loop.time() - 1
    loop.call_at(when, out.append, "first")
    loop.call_at(when, out.append, "second")
    run_briefly(loop)
    assert out == ["first", "second"]


def test_many_equal_deadlines_all_fire_once(loop, run_briefly):
    out = []
    when = loop.time() - 1
    for i in range(1000):
        loop.call_at(when, out.append, i)
    loop.call_at(when + 0.5, out.append, "later")
    run_briefly(loop)
    assert sorted(out[:-1]) == list(range(1000))
    assert out[-1] == "later"


def test_ready_timers_run_after_already_ready_callbacks(loop, run_briefly):
    out = []
    loop.call_later(-1, out.append, "timer")
    loop.call_soon(out.append, "soon")
    run_briefly(loop)
    assert out == ["soon", "timer"]


def test_due_timer_runs_in_same_iteration_as_stop(loop):
    out = []
    loop.call_later(-1, out.append, "timer")
    loop.stop()
    loop.run_forever()
    assert out == ["timer"]


def test_call_later_zero_and_negative_fire_promptly(loop, run_briefly):
    out = []
    loop.call_later(0, out.append, "zero")
    loop.call_later(-5, out.append, "neg")
    run_briefly(loop)
    assert out == ["neg", "zero"]


def test_call_later_none_delay(loop):
    with pytest.raises(TypeError, match="^delay must not be None$"):
        loop.call_later(None, print)


def test_call_at_none_when(loop):
    with pytest.raises(TypeError, match="^when cannot be None$"):
        loop.call_at(None, print)


def test_call_later_non_number_delay(loop):
    with pytest.raises(TypeError):
        loop.call_later("1", print)


def test_call_later_int_too_large_for_float(loop):
    with pytest.raises(OverflowError):
        loop.call_later(10 ** 400, print)


def test_call_later_nan_delay_fires(loop, run_briefly):
    # asyncio: when=nan never compares >= the current time, so it is
    # treated as already due.
    out = []
    h = loop.call_later(math.nan, out.append, "nan")
    assert math.isnan(h.when())
    run_briefly(loop)
    assert out == ["nan"]


@pytest.mark.parametrize("delay", [math.inf, 1e300, 10 ** 30, 86400 * 365])
def test_huge_delays_never_fire_and_can_be_cancelled(loop, run_loop, delay):
    out = []
    h = loop.call_later(delay, out.append, "never")
    assert h.when() > loop.time()
    loop.call_later(0.01, loop.stop)
    run_loop(loop)
    assert out == []
    h.cancel()
    assert h.cancelled()
    loop.call_later(0.001, loop.stop)
    run_loop(loop)
    assert out == []


def test_call_at_infinite_deadline(loop, run_loop):
    out = []
    h = loop.call_at(math.inf, out.append, 1)
    assert h.when() == math.inf
    loop.call_soon(loop.stop)
    run_loop(loop)
    h.cancel()
    assert out == []


def test_call_at_negative_infinite_deadline_fires(loop, run_briefly):
    out = []
    loop.call_at(-math.inf, out.append, 1)
    run_briefly(loop)
    assert out == [1]


def test_timer_when_returns_value_given(loop):
    h = loop.call_at(10, print)
    assert h.when() == 10 and type(h.when()) is int
    h.cancel()
    h = loop.call_at(10 ** 30, print)
    assert h.when() == 10 ** 30 and type(h.when()) is int
    h.cancel()
    h = loop.call_at(12.5, print)
    assert h.when() == 12.5 and type(h.when()) is float
    h.cancel()
    before = loop.time()
    h = loop.call_later(5, print)
    after = loop.time()
    assert isinstance(h.when(), float)
    assert before + 5 <= h.when() <= after + 5
    h.cancel()


def test_when_survives_cancel(loop):
    h = loop.call_at(42, print)
    h.cancel()
    assert h.when() == 42


def test_timer_handles_compare_and_hash_by_deadline(loop):
    a = loop.call_at(1.5, print)
    b = loop.call_at(1.5, print)
    c = loop.call_at(2, print)
    d = loop.call_later(1000.0, print)
    assert a == b and not (a != b) and a is not b
    assert hash(a) == hash(b) == hash(1.5) and hash(c) == hash(2)
    assert a < c and a <= c and c > a and c >= a and a <= b and a >= b
    assert not (c < a) and a < d
    assert a._when == 1.5 and c._when == 2 and type(c._when) is int
    assert d._when == d.when()
    assert a != loop.call_at(1.5, print, 1)
    b.cancel()
    # same deadline, no longer equal: asyncio then says neither <= nor <
    assert a != b and not (a <= b) and not (a < b)
    for h in (a, c, d):
        h.cancel()
    assert a == b


def test_cancel_drops_callback_and_args(loop):
    for debug in (False, True):
        loop.set_debug(debug)
        h = loop.call_soon(print, 1, 2)
        assert h._callback is print and h._args == (1, 2)
        assert not h.cancelled() and not h._cancelled
        h.cancel()
        assert h.cancelled() and h._cancelled
        assert h._callback is None and h._args is None
        h.cancel()                   # idempotent
        assert h.cancelled()
        t = loop.call_later(100.0, print, 3)
        t.cancel()
        assert t._callback is None and t._args is None and t.cancelled()
    loop.set_debug(False)


def test_many_timers_half_cancelled(loop, run_briefly):
    n = 200_000
    out = []
    base = loop.time() - 10
    order = list(range(n))
    random.Random(12345).shuffle(order)
    handles = {}
    for i in order:
        handles[i] = loop.call_at(base + i * 1e-6, out.append, i)
    for i in range(1, n, 2):
        handles[i].cancel()
    run_briefly(loop)
    assert out == list(range(0, n, 2))


def test_a_million_timers(loop, run_briefly):
    n = 1_000_000
    out = []
    base = loop.time() - 100
    # Deadlines in the past, inserted in a scrambled (but deterministic)
    # order: all are due at the first iteration and fire sorted.
    step = 7919  # prime, coprime with n: i -> i*step % n is a permutation
    call_at, append = loop.call_at, out.append
    for k in range(n):
        i = k * step % n
        call_at(base + i * 1e-5, append, i)
    run_briefly(loop)
    assert len(out) == n
    assert out == sorted(out)


def test_many_future_timers_cancelled_then_loop_idles(loop, run_loop):
    out = []
    now = loop.time()
    handles = [loop.call_at(now + 1000 + i, out.append, i)
               for i in range(10_000)]
    for h in handles:
        h.cancel()
    loop.call_later(0.005, loop.stop)
    run_loop(loop)
    assert out == []


def test_timer_scheduled_from_callback(loop, run_loop):
    out = []

    def cb(n):
        out.append(n)
        if n < 5:
            loop.call_later(0, cb, n + 1)
        else:
            loop.stop()

    loop.call_soon(cb, 0)
    run_loop(loop)
    assert out == [0, 1, 2, 3, 4, 5]


# ---------------------------------------------------------------- time() override

def test_subclass_time_override_drives_timers(loop_class, make_loop,
                                              run_loop):
    class FakeClockLoop(loop_class):
        fake_now = 1000.0

        def time(self):
            return self.fake_now

    loop = make_loop(FakeClockLoop)
    out = []
    h = loop.call_later(1000, out.append, "late")
    assert h.when() == 2000.0

    def jump():
        loop.fake_now += 1000.0

    loop.call_soon(jump)
    loop.call_later(1000, loop.stop)  # same fake deadline
    run_loop(loop, timeout=10 ** 6)  # the watchdog runs on the fake clock
    assert out == ["late"]


def test_subclass_time_override_drives_asyncio_sleep(loop_class, make_loop):
    class FakeClockLoop(loop_class):
        fake_now = 0.0

        def time(self):
            return self.fake_now

    loop = make_loop(FakeClockLoop)

    async def main():
        def jump():
            loop.fake_now += 3600.0
        loop.call_soon(jump)
        await asyncio.sleep(3600)
        return loop.time()

    assert loop.run_until_complete(asyncio.wait_for(main(), 3600 * 10)) \
        == 3600.0


# ---------------------------------------------------------------- contexts

var = contextvars.ContextVar("var", default="default")


def test_callback_runs_in_copied_context(loop, run_briefly):
    seen = []
    token = var.set("outer")
    try:
        loop.call_soon(lambda: seen.append(var.get()))
        var.set("changed-after-scheduling")
        loop.call_later(-1, lambda: seen.append(var.get()))
        loop.call_at(loop.time() - 1, lambda: seen.append(var.get()))
    finally:
        var.reset(token)
    run_briefly(loop)
    assert seen == ["outer", "changed-after-scheduling",
                    "changed-after-scheduling"]


def test_mutations_in_callback_do_not_leak(loop, run_briefly):
    seen = []

    def writer():
        var.set("written")
        seen.append(var.get())

    loop.call_soon(writer)
    loop.call_soon(lambda: seen.append(var.get()))
    run_briefly(loop)
    assert seen == ["written", "default"]
    assert var.get() == "default"


def test_explicit_context_is_used_and_mutated(loop, run_briefly):
    ctx = contextvars.Context()
    ctx.run(var.set, "in-ctx")
    seen = []

    def writer():
        seen.append(var.get())
        var.set("mutated")

    loop.call_soon(writer, context=ctx)
    loop.call_later(-1, lambda: seen.append(var.get()), context=ctx)
    loop.call_at(loop.time() - 0.5, lambda: seen.append(var.get()),
                 context=ctx)
    loop.call_soon_threadsafe(lambda: seen.append(var.get()), context=ctx)
    run_briefly(loop)
    # call_soon callbacks first, then the timers in deadline order
    assert seen == ["in-ctx", "mutated", "mutated", "mutated"]
    assert ctx[var] == "mutated"
    assert var.get() == "default"


def test_handle_get_context(loop):
    ctx = contextvars.Context()
    h = loop.call_soon(print, context=ctx)
    th = loop.call_later(10, print, context=ctx)
    if not hasattr(h, "get_context"):
        pytest.skip("Handle.get_context() is new in Python 3.12")
    assert h.get_context() is ctx
    assert th.get_context() is ctx
    h2 = loop.call_soon(print)
    assert isinstance(h2.get_context(), contextvars.Context)
    th.cancel()
    h.cancel()
    h2.cancel()


# ---------------------------------------------------------------- reprs

def _cb(*args):
    pass


THIS_FILE = re.escape(__file__)


def shown(args):
    """How a callback's arguments appear in a repr: 3.13 shows them only in
    debug mode (they may hold secrets), as ``()``."""
    return args if sys.version_info < (3, 13) else ""


def test_handle_repr(loop):
    h = loop.call_soon(_cb)
    assert re.fullmatch(rf"<Handle _cb\(\) at {THIS_FILE}:\d+>", repr(h))
    h = loop.call_soon(_cb, 1, "a")
    args = re.escape(shown("1, 'a'"))
    assert re.fullmatch(rf"<Handle _cb\({args}\) at {THIS_FILE}:\d+>",
                        repr(h))
    h.cancel()
    assert repr(h) == "<Handle cancelled>"


def test_handle_repr_builtin_and_partial_and_callable(loop):
    h = loop.call_soon(print, 1)
    assert repr(h) == f"<Handle print({shown('1')})>"
    h = loop.call_soon(functools.partial(_cb, 1), 2)
    assert re.fullmatch(
        rf"<Handle _cb\({shown('1')}\)\({shown('2')}\) at {THIS_FILE}:\d+>",
        repr(h))

    class C:
        def __call__(self):
            pass

        def meth(self):
            pass

    h = loop.call_soon(C())
    assert re.fullmatch(r"<Handle <.*C object at 0x[0-9a-f]+>\(\)>", repr(h))
    h = loop.call_soon(C().meth)
    # asyncio only adds "at file:line" for plain functions (and partials
    # of them), not for bound methods.
    assert repr(h) == ("<Handle test_handle_repr_builtin_and_partial_and_"
                       "callable.<locals>.C.meth()>")
    h = loop.call_soon(lambda: None)
    assert re.fullmatch(rf"<Handle .*<lambda>\(\) at {THIS_FILE}:\d+>",
                        repr(h))


def test_handle_repr_truncates_long_args(loop):
    loop.set_debug(True)    # 3.13 shows arguments only in debug mode
    h = loop.call_soon(print, list(range(100)), "a" * 100)
    assert repr(h).startswith("<Handle print([0, 1, 2, 3, 4, 5, ...], "
                              "'aaaaaaaaaaaa...aaaaaaaaaaaaa')")
    h.cancel()


def test_timer_handle_repr(loop):
    h = loop.call_at(100, _cb, 1)
    assert re.fullmatch(
        rf"<TimerHandle when=100 _cb\({shown('1')}\) at {THIS_FILE}:\d+>",
        repr(h))
    h.cancel()
    assert repr(h) == "<TimerHandle cancelled when=100>"
    h = loop.call_later(5, print)
    assert re.fullmatch(r"<TimerHandle when=[0-9.e+]+ print\(\)>", repr(h))
    h.cancel()


def test_loop_repr(loop):
    assert re.fullmatch(r"<\w+ running=False closed=False debug=False>",
                        repr(loop))
    reprs = []
    loop.call_soon(lambda: reprs.append(repr(loop)))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert re.fullmatch(r"<\w+ running=True closed=False debug=False>",
                        reprs[0])
    loop.set_debug(True)
    loop.close()
    assert re.fullmatch(r"<\w+ running=False closed=True debug=True>",
                        repr(loop))


# ---------------------------------------------------------------- bad callbacks

def test_non_callable_accepted_without_debug(loop, loop_errors, run_briefly):
    h = loop.call_soon(1)
    assert repr(h) == "<Handle 1()>"
    th = loop.call_later(-1, "notcallable")
    assert repr(th).startswith("<TimerHandle when=")
    run_briefly(loop)
    msgs = loop_errors.messages()
    assert msgs == ["Exception in callback 1()",
                    "Exception in callback 'notcallable'()"]
    for ctx in loop_errors.calls:
        assert isinstance(ctx["exception"], TypeError)
    assert loop_errors.calls[0]["handle"] is h
    assert loop_errors.calls[1]["handle"] is th


def test_coroutine_function_accepted_without_debug(loop, run_briefly):
    # Without debug mode asyncio just calls it: that creates a coroutine
    # object that is never awaited -> RuntimeWarning, no handler call.
    async def coro():
        pass

    with pytest.warns(RuntimeWarning, match="was never awaited"):
        loop.call_soon(coro)
        run_briefly(loop)
        import gc
        gc.collect()


@pytest.mark.parametrize("method", ["call_soon", "call_soon_threadsafe",
                                    "call_later", "call_at"])
def test_debug_rejects_non_callable(loop, method):
    loop.set_debug(True)
    expected = {"call_later": "call_at"}.get(method, method)
    args = {"call_later": (1,), "call_at": (1,)}.get(method, ())
    fn = getattr(loop, method)
    with pytest.raises(TypeError) as ei:
        fn(*args, 1)
    assert str(ei.value) == (
        f"a callable object was expected by {expected}(), got 1")

    async def coro():
        pass

    with pytest.raises(TypeError) as ei:
        fn(*args, coro)
    assert str(ei.value) == f"coroutines cannot be used with {expected}()"
    c = coro()
    with pytest.raises(TypeError) as ei:
        fn(*args, c)
    c.close()
    assert str(ei.value) == f"coroutines cannot be used with {expected}()"


# ---------------------------------------------------------------- closed loop

def test_closed_loop_rejects_scheduling(loop):
    loop.close()
    for fn, args in [(loop.call_soon, (print,)),
                     (loop.call_soon_threadsafe, (print,)),
                     (loop.call_later, (1, print)),
                     (loop.call_at, (1, print))]:
        with pytest.raises(RuntimeError, match="^Event loop is closed$"):
            fn(*args)
    # argument checks that come first in asyncio
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)


def test_close_discards_pending_callbacks(loop_factory):
    loop = loop_factory()
    out = []
    loop.call_soon(out.append, 1)
    loop.call_later(-1, out.append, 2)
    loop.close()
    assert out == []


# ---------------------------------------------------------------- threads

def test_call_soon_threadsafe_many_threads(loop, run_loop):
    n_threads, per_thread = 8, 10_000
    counts = [0] * n_threads
    done = []
    start = threading.Barrier(n_threads)

    def inc(i):
        counts[i] += 1

    def worker(i):
        start.wait()
        for _ in range(per_thread):
            loop.call_soon_threadsafe(inc, i)
        loop.call_soon_threadsafe(finished, i)

    def finished(i):
        done.append(i)
        if len(done) == n_threads:
            loop.stop()

    threads = [threading.Thread(target=worker, args=(i,))
               for i in range(n_threads)]

    def start_threads():
        for t in threads:
            t.start()

    loop.call_soon(start_threads)
    try:
        run_loop(loop, timeout=30)
    finally:
        for t in threads:
            t.join()
    assert counts == [per_thread] * n_threads
    assert sorted(done) == list(range(n_threads))


def test_call_soon_threadsafe_wakes_idle_loop(loop, run_loop):
    ready = threading.Event()
    out = []

    def other_thread():
        ready.wait(10)
        time.sleep(0.05)  # let the loop block in its poll
        loop.call_soon_threadsafe(out.append, "woken")
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=other_thread)
    t.start()
    loop.call_soon(ready.set)
    try:
        run_loop(loop, timeout=20)
    finally:
        t.join()
    assert out == ["woken"]


def test_call_soon_threadsafe_wakes_loop_waiting_on_far_timer(loop, run_loop):
    out = []
    far = loop.call_later(3600, out.append, "far")

    def other_thread():
        time.sleep(0.02)
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=other_thread)
    loop.call_soon(t.start)
    try:
        run_loop(loop, timeout=20)
    finally:
        t.join()
    far.cancel()
    assert out == []


def test_call_soon_threadsafe_before_run(loop, run_briefly):
    out = []
    t = threading.Thread(
        target=lambda: loop.call_soon_threadsafe(out.append, 1))
    t.start()
    t.join()
    run_briefly(loop)
    assert out == [1]


def test_debug_call_soon_from_other_thread_raises(loop, run_loop):
    loop.set_debug(True)
    errors = []

    def other_thread():
        for fn, args in [(loop.call_soon, (print,)),
                         (loop.call_later, (1, print)),
                         (loop.call_at, (1, print))]:
            try:
                fn(*args)
            except RuntimeError as exc:
                errors.append(str(exc))
        loop.call_soon_threadsafe(loop.stop)  # allowed

    t = threading.Thread(target=other_thread)
    loop.call_soon(t.start)
    try:
        run_loop(loop, timeout=20)
    finally:
        t.join()
    assert errors == [
        "Non-thread-safe operation invoked on an event loop other than "
        "the current one"] * 3


def test_debug_call_soon_from_other_thread_ok_when_not_running(loop,
                                                               run_briefly):
    loop.set_debug(True)
    out = []
    t = threading.Thread(target=lambda: loop.call_soon(out.append, 1))
    t.start()
    t.join()
    run_briefly(loop)
    assert out == [1]
