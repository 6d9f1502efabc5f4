"""eloop's freelists of dead handles (src/ext/handle.c): bounded like
CPython's own freelists, handed out again as fresh handles, emptied when a
loop closes, and absent from the AddressSanitizer build (bound 0).  An eloop
internal, so unlike the behavioural tests it has no asyncio twin."""
import asyncio
import contextvars
import gc
import os
import subprocess
import sys
import textwrap
import weakref

import pytest

eloop = pytest.importorskip("eloop")
_eloop = pytest.importorskip("eloop._eloop")

BOUND = _eloop._handle_freelists()[2]


def _burst(loop, n):
    done = []
    for i in range(n):
        loop.call_soon(done.append, i)
    loop.run_until_complete(asyncio.sleep(0))
    assert done == list(range(n))


def test_bound_is_a_few_hundred_or_none_under_asan():
    assert BOUND == 0 or 100 <= BOUND <= 1000


def test_freelists_stay_bounded_and_close_empties_them():
    loop = eloop.new_event_loop()
    try:
        _burst(loop, 5000)
        hs = [loop.call_later(100.0, print) for _ in range(2000)]
        for h in hs:
            h.cancel()
        del hs, h
        loop.run_until_complete(asyncio.sleep(0))
        handles, timers, _ = _eloop._handle_freelists()
        assert handles == BOUND and timers == BOUND
    finally:
        loop.close()
    assert _eloop._handle_freelists()[:2] == (0, 0)


def test_reused_handles_are_fresh():
    n = BOUND + 10
    loop = eloop.new_event_loop()
    var = contextvars.ContextVar("var", default="unset")
    try:
        loop.set_debug(True)
        old = [loop.call_soon(print, i) for i in range(n)]
        refs = [weakref.ref(h) for h in old]
        for h in old:
            h.cancel()
        del old, h
        loop.set_debug(False)
        loop.run_until_complete(asyncio.sleep(0))
        gc.collect()
        assert all(r() is None for r in refs)
        assert _eloop._handle_freelists()[0] == BOUND
        seen = []
        var.set("new")
        new = [loop.call_soon(lambda i=i: seen.append((i, var.get())))
               for i in range(n)]
        for h in new:
            assert not h.cancelled() and h._source_traceback is None
            assert "cancelled" not in repr(h) and h.get_context()[var] == "new"
        assert all(r() is None for r in refs)
        loop.run_until_complete(asyncio.sleep(0))
        assert seen == [(i, "new") for i in range(n)]
    finally:
        loop.close()


@pytest.mark.skipif(BOUND == 0, reason="the sanitizer's quarantine keeps "
                    "freed memory resident, so RSS says nothing there")
def test_bursts_leave_little_memory_after_close():
    # Three bursts of 200k pending callbacks once kept ~29 MiB resident
    # after close() (a cache sized for bursts); asyncio keeps ~3 MiB.
    code = textwrap.dedent("""
        import gc, itertools, eloop
        def rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f
                            if l.startswith("VmRSS:"))
        gc.collect()
        before = rss()
        loop = eloop.new_event_loop()
        cb = itertools.count().__next__
        def driver():
            for _ in range(200000):
                loop.call_soon(cb)
            loop.call_soon(loop.stop)
        for _ in range(3):
            loop.call_soon(driver)
            loop.run_forever()
        loop.close()
        del loop
        gc.collect()
        print(rss() - before)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(eloop.__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    assert int(out) < 10 * 1024, f"{int(out)} KiB kept"
