"""Async generator hooks and shutdown_asyncgens."""

import asyncio
import gc
import sys

import pytest


@pytest.fixture
def restore_asyncgen_hooks():
    saved = sys.get_asyncgen_hooks()
    yield
    sys.set_asyncgen_hooks(*saved)


def test_hooks_installed_only_while_running(loop, restore_asyncgen_hooks):
    def my_firstiter(agen):
        pass

    def my_finalizer(agen):
        pass

    sys.set_asyncgen_hooks(firstiter=my_firstiter, finalizer=my_finalizer)
    inside = []

    async def main():
        inside.append(sys.get_asyncgen_hooks())

    loop.run_until_complete(main())
    hooks = inside[0]
    assert hooks.firstiter is not None and hooks.finalizer is not None
    assert hooks.firstiter is not my_firstiter
    assert hooks.finalizer is not my_finalizer
    after = sys.get_asyncgen_hooks()
    assert after.firstiter is my_firstiter
    assert after.finalizer is my_finalizer


def test_hooks_restored_after_exception(loop, restore_asyncgen_hooks):
    sys.set_asyncgen_hooks(firstiter=None, finalizer=None)

    def boom():
        raise KeyboardInterrupt

    loop.call_soon(boom)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert sys.get_asyncgen_hooks() == (None, None)


def test_shutdown_asyncgens_finalizes_pending(loop):
    finalized = []

    async def agen(tag):
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)
            finalized.append(tag)

    gens = [agen(i) for i in range(3)]

    async def main():
        for g in gens:
            assert await g.__anext__() == 1

    loop.run_until_complete(main())
    assert finalized == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert sorted(finalized) == [0, 1, 2]


def test_shutdown_asyncgens_ignores_unstarted_and_finished(loop):
    finalized = []

    async def agen():
        try:
            yield 1
        finally:
            finalized.append(True)

    unstarted = agen()  # never iterated: not tracked by the loop

    async def main():
        async for _ in agen():
            pass

    loop.run_until_complete(main())
    assert finalized == [True]
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == [True]
    del unstarted


def test_shutdown_asyncgens_without_generators(loop):
    assert loop.run_until_complete(loop.shutdown_asyncgens()) is None


def test_asyncgen_aclose_error_reported(loop, loop_errors):
    async def agen():
        try:
            yield 1
        finally:
            raise ZeroDivisionError("in finally")

    g = agen()

    async def main():
        await g.__anext__()

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(loop_errors.calls) == 1
    ctx = loop_errors.calls[0]
    assert ctx["message"] == (f"an error occurred during closing of "
                              f"asynchronous generator {g!r}")
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["asyncgen"] is g


def test_firstiter_after_shutdown_warns(loop):
    loop.run_until_complete(loop.shutdown_asyncgens())

    async def agen():
        yield 1

    async def main():
        g = agen()
        with pytest.warns(ResourceWarning,
                          match=r"^asynchronous generator <async_generator "
                                r"object .*> was scheduled after "
                                r"loop.shutdown_asyncgens\(\) call$"):
            await g.__anext__()
        await g.aclose()

    loop.run_until_complete(main())


def test_gc_of_running_asyncgen_schedules_aclose(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(asyncio.get_running_loop())

    async def main():
        g = agen()
        await g.__anext__()
        del g
        gc.collect()
        for _ in range(10):
            if finalized:
                break
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert finalized == [loop]


def test_asyncgen_iterated_in_other_loop_not_tracked(loop, make_loop):
    other = make_loop()
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(True)

    g = agen()

    async def first():
        await g.__anext__()

    other.run_until_complete(first())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == []
    other.run_until_complete(other.shutdown_asyncgens())
    assert finalized == [True]
