"""eloop's cache of dead handles (src/ext/handle.c): it grows to what a burst
of callbacks needs, hands the handles out again as new ones, and gives back
what a whole trim period did not use, also while the loop sits idle.  An
eloop internal, so unlike the behavioural tests it has no asyncio twin."""
import asyncio
import contextvars
import gc
import weakref

import pytest

eloop = pytest.importorskip("eloop")
_eloop = pytest.importorskip("eloop._eloop")

KEEP = 256          # HANDLE_CACHE_KEEP
DEFAULT_PERIOD = 1.0


@pytest.fixture
def period():
    """Sets the trim period for one test, and puts the default back."""
    def set_period(p):
        _eloop._handle_cache(p)
    yield set_period
    _eloop._handle_cache(DEFAULT_PERIOD)


def _burst(loop, n):
    done = []
    for i in range(n):
        loop.call_soon(done.append, i)
    loop.run_until_complete(asyncio.sleep(0))
    assert done == list(range(n))


def test_burst_fills_the_cache_and_idle_time_empties_it(period):
    period(0.02)
    loop = eloop.new_event_loop()
    try:
        _burst(loop, 5000)
        handles, timers = _eloop._handle_cache()
        assert handles >= 5000 and timers <= KEEP
        # The loop blocks here: the trim must still come, from the poll
        # timeout the cache sets, with no other event to wake the loop.
        loop.run_until_complete(asyncio.sleep(0.2))
        assert _eloop._handle_cache()[0] <= KEEP
    finally:
        loop.close()


def test_reused_handles_are_fresh():
    loop = eloop.new_event_loop()
    var = contextvars.ContextVar("var", default="unset")
    try:
        loop.set_debug(True)
        old = [loop.call_soon(print, i) for i in range(KEEP + 10)]
        refs = [weakref.ref(h) for h in old]
        for h in old:
            h.cancel()
        del old, h
        loop.set_debug(False)
        loop.run_until_complete(asyncio.sleep(0))
        gc.collect()
        assert all(r() is None for r in refs)
        assert _eloop._handle_cache()[0] >= KEEP
        seen = []
        var.set("new")
        new = [loop.call_soon(lambda i=i: seen.append((i, var.get())))
               for i in range(KEEP + 10)]
        for h in new:
            assert not h.cancelled() and h._source_traceback is None
            assert "cancelled" not in repr(h) and h.get_context()[var] == "new"
        assert all(r() is None for r in refs)
        loop.run_until_complete(asyncio.sleep(0))
        assert seen == [(i, "new") for i in range(KEEP + 10)]
    finally:
        loop.close()


def test_timer_handles_are_cached_only_up_to_the_lasting_size():
    loop = eloop.new_event_loop()
    try:
        hs = [loop.call_later(100.0, print) for _ in range(2000)]
        for h in hs:
            h.cancel()
        del hs, h
        loop.run_until_complete(asyncio.sleep(0))
        assert _eloop._handle_cache()[1] <= KEEP
    finally:
        loop.close()


def test_handle_cache_arguments():
    with pytest.raises(ValueError):
        _eloop._handle_cache(0)
    with pytest.raises(TypeError):
        _eloop._handle_cache("1")
    with pytest.raises(TypeError):
        _eloop._handle_cache(1, 2)
    _eloop._handle_cache(DEFAULT_PERIOD)
