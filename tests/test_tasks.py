"""Futures and tasks on the loop: create_future, create_task, task
factories, gather, TaskGroup, timeout, wait_for, sleep, and
run_coroutine_threadsafe."""

import asyncio
import contextvars
import math
import threading

import pytest


var = contextvars.ContextVar("var", default="default")


# ---------------------------------------------------------------- futures

def test_create_future(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop
    assert not fut.done()
    fut.set_result(3)
    assert loop.run_until_complete(fut) == 3


def test_create_future_on_closed_loop_is_allowed(loop):
    # asyncio does not check for a closed loop here.
    loop.close()
    fut = loop.create_future()
    assert fut.get_loop() is loop
    fut.cancel()


def test_future_callbacks_run_via_loop(loop, run_briefly):
    fut = loop.create_future()
    out = []
    fut.add_done_callback(lambda f: out.append(f.result()))
    fut.set_result("r")
    assert out == []  # scheduled with call_soon, not called synchronously
    run_briefly(loop)
    assert out == ["r"]


def test_future_callback_context(loop, run_briefly):
    fut = loop.create_future()
    ctx = contextvars.Context()
    ctx.run(var.set, "ctx")
    out = []
    fut.add_done_callback(lambda f: out.append(var.get()), context=ctx)
    fut.set_result(None)
    run_briefly(loop)
    assert out == ["ctx"]


# ---------------------------------------------------------------- tasks

def test_create_task(loop):
    async def coro():
        assert asyncio.current_task() is task
        return "ok"

    task = loop.create_task(coro())
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert task in asyncio.all_tasks(loop)
    assert loop.run_until_complete(task) == "ok"
    assert task not in asyncio.all_tasks(loop)


def test_create_task_name(loop):
    async def coro():
        pass

    task = loop.create_task(coro(), name="my-task")
    assert task.get_name() == "my-task"
    task2 = loop.create_task(coro())
    assert task2.get_name().startswith("Task-")
    loop.run_until_complete(asyncio.gather(task, task2))


def test_create_task_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "task-ctx")

    async def coro():
        before = var.get()
        var.set("changed")
        await asyncio.sleep(0)
        return before, var.get()

    task = loop.create_task(coro(), context=ctx)
    assert loop.run_until_complete(task) == ("task-ctx", "changed")
    assert ctx[var] == "changed"
    assert var.get() == "default"


def test_create_task_copies_current_context(loop):
    token = var.set("outer")
    try:
        async def coro():
            return var.get()
        task = loop.create_task(coro())
    finally:
        var.reset(token)
    assert loop.run_until_complete(task) == "outer"


def test_create_task_on_closed_loop(loop):
    loop.close()

    async def coro():
        pass

    c = coro()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.create_task(c)
    c.close()


def test_create_task_rejects_non_coroutine(loop):
    with pytest.raises(TypeError):
        loop.create_task(lambda: None)


def test_task_factory(loop):
    calls = []

    def factory(lp, coro, **kwargs):
        calls.append((lp, kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def coro():
        return 7

    task = loop.create_task(coro(), name="named")
    assert task.get_name() == "named"
    assert loop.run_until_complete(task) == 7
    ctx = contextvars.Context()
    task = loop.create_task(coro(), context=ctx)
    loop.run_until_complete(task)
    # Legacy 2-argument call when no context is given.
    assert calls == [(loop, {}), (loop, {"context": ctx})]
    # Coroutines passed to run_until_complete go through the factory too.
    assert loop.run_until_complete(coro()) == 7
    assert len(calls) == 3
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    loop.run_until_complete(coro())
    assert len(calls) == 3


def test_task_factory_not_callable(loop):
    with pytest.raises(TypeError,
                       match="^task factory must be a callable or None$"):
        loop.set_task_factory(1)
    assert loop.get_task_factory() is None


def test_gather_many_tasks(loop):
    async def work(i):
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return i

    async def main():
        return await asyncio.gather(*(work(i) for i in range(10_000)))

    assert loop.run_until_complete(main()) == list(range(10_000))


def test_gather_return_exceptions(loop):
    async def bad():
        raise ValueError("x")

    async def good():
        return 1

    async def main():
        return await asyncio.gather(good(), bad(), return_exceptions=True)

    res = loop.run_until_complete(main())
    assert res[0] == 1 and isinstance(res[1], ValueError)


def test_task_group(loop):
    async def child(i):
        await asyncio.sleep(0)
        return i * i

    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(child(i)) for i in range(100)]
        return [t.result() for t in tasks]

    assert loop.run_until_complete(main()) == [i * i for i in range(100)]


def test_task_group_failure_cancels_siblings(loop):
    cancelled = []

    async def sleeper():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def failer():
        await asyncio.sleep(0)
        raise ValueError("fail")

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper())
            tg.create_task(sleeper())
            tg.create_task(failer())

    with pytest.raises(ExceptionGroup) as ei:
        loop.run_until_complete(main())
    assert [type(e) for e in ei.value.exceptions] == [ValueError]
    assert cancelled == [True, True]


def test_timeout_expires(loop):
    async def main():
        async with asyncio.timeout(0.01) as cm:
            await asyncio.sleep(3600)
        return cm

    with pytest.raises(TimeoutError):
        loop.run_until_complete(main())


def test_timeout_not_expired_and_reschedule(loop):
    async def main():
        async with asyncio.timeout(None) as cm:
            assert cm.when() is None
            cm.reschedule(asyncio.get_running_loop().time() + 3600)
            await asyncio.sleep(0)
        return cm.expired()

    assert loop.run_until_complete(main()) is False


def test_timeout_in_the_past(loop):
    async def main():
        lp = asyncio.get_running_loop()
        async with asyncio.timeout_at(lp.time() - 10):
            await asyncio.sleep(3600)

    with pytest.raises(TimeoutError):
        loop.run_until_complete(main())


def test_wait_for(loop):
    async def slow():
        await asyncio.sleep(3600)

    async def fast():
        await asyncio.sleep(0)
        return "fast"

    async def main():
        assert await asyncio.wait_for(fast(), 10) == "fast"
        assert await asyncio.wait_for(fast(), None) == "fast"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), 0.01)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), 0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), -1)
        return True

    assert loop.run_until_complete(main())


def test_sleep_variants(loop):
    async def main():
        assert await asyncio.sleep(0) is None
        assert await asyncio.sleep(0, result="r0") == "r0"
        assert await asyncio.sleep(-1, result="neg") == "neg"
        assert await asyncio.sleep(0.001, result="short") == "short"
        return True

    assert loop.run_until_complete(main())


def test_sleep_ordering(loop):
    out = []

    async def sleeper(delay, tag):
        await asyncio.sleep(delay)
        out.append(tag)

    async def main():
        await asyncio.gather(sleeper(0.03, "c"), sleeper(0.01, "a"),
                             sleeper(0.02, "b"), sleeper(0, "zero"))

    loop.run_until_complete(main())
    assert out == ["zero", "a", "b", "c"]


def test_sleep_inf_can_be_cancelled(loop):
    async def main():
        task = asyncio.get_running_loop().create_task(
            asyncio.sleep(math.inf))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return True

    assert loop.run_until_complete(main())


def test_sleep_zero_yields(loop):
    out = []

    async def a():
        out.append("a1")
        await asyncio.sleep(0)
        out.append("a2")

    async def b():
        out.append("b1")
        await asyncio.sleep(0)
        out.append("b2")

    async def main():
        await asyncio.gather(a(), b())

    loop.run_until_complete(main())
    assert out == ["a1", "b1", "a2", "b2"]


def test_task_cancel(loop):
    async def sleeper():
        await asyncio.sleep(3600)

    async def main():
        t = asyncio.get_running_loop().create_task(sleeper())
        await asyncio.sleep(0)
        t.cancel("why")
        try:
            await t
        except asyncio.CancelledError as exc:
            return exc.args

    assert loop.run_until_complete(main()) == ("why",)


def test_run_coroutine_threadsafe(loop, run_loop):
    results = []
    errors = []

    async def add(a, b):
        await asyncio.sleep(0)
        assert asyncio.get_running_loop() is loop
        return a + b

    async def fail():
        raise KeyError("k")

    def thread_main():
        try:
            results.append(
                asyncio.run_coroutine_threadsafe(add(1, 2), loop)
                .result(timeout=10))
            try:
                asyncio.run_coroutine_threadsafe(fail(), loop).result(10)
            except KeyError as exc:
                errors.append(exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=thread_main)
    loop.call_soon(t.start)
    try:
        run_loop(loop, timeout=30)
    finally:
        t.join()
    assert results == [3]
    assert len(errors) == 1


def test_run_coroutine_threadsafe_cancel_from_thread(loop, run_loop):
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    def thread_main():
        try:
            cf = asyncio.run_coroutine_threadsafe(forever(), loop)
            cf.cancel()
        finally:
            loop.call_soon_threadsafe(loop.call_later, 0.01, loop.stop)

    t = threading.Thread(target=thread_main)
    loop.call_soon(t.start)
    try:
        run_loop(loop, timeout=30)
    finally:
        t.join()
    # Either it was cancelled before starting or while sleeping; in both
    # cases no task is left pending.
    assert not [t for t in asyncio.all_tasks(loop) if not t.done()]


def test_unretrieved_task_exception_reported(loop, loop_errors):
    async def fail():
        raise ZeroDivisionError

    task = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    del task
    import gc
    gc.collect()
    assert loop_errors.messages() == ["Task exception was never retrieved"]
    ctx = loop_errors.calls[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert isinstance(ctx["future"], asyncio.Task)
