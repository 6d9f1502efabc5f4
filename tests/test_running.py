"""run_forever / run_until_complete / stop / close / is_running / Runner."""

import asyncio
import threading

import pytest


def test_initial_state(loop):
    assert not loop.is_running()
    assert not loop.is_closed()
    assert loop.get_debug() is False


def test_is_running_inside_callback(loop, run_briefly):
    seen = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    run_briefly(loop)
    assert seen == [True]
    assert not loop.is_running()


def test_get_running_loop_inside_callback(loop, run_briefly):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
    run_briefly(loop)
    assert seen == [loop]
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()


def test_get_event_loop_inside_callback_returns_running_loop(loop,
                                                             run_briefly):
    seen = []
    loop.call_soon(lambda: seen.append(asyncio.get_event_loop()))
    run_briefly(loop)
    assert seen[0] is loop


def test_stop_before_run_forever_runs_one_iteration(loop):
    out = []

    def a():
        out.append("a")
        loop.call_soon(out.append, "next-iteration")

    loop.call_soon(a)
    loop.stop()
    loop.run_forever()
    assert out == ["a"]
    assert not loop.is_running()
    # stopping flag was reset: the next stop()+run also runs one iteration
    loop.stop()
    loop.run_forever()
    assert out == ["a", "next-iteration"]


def test_stop_before_run_forever_with_nothing_scheduled(loop):
    loop.stop()
    loop.run_forever()  # must not block
    assert not loop.is_running()


def test_stop_twice(loop):
    out = []
    loop.call_soon(loop.stop)
    loop.call_soon(loop.stop)
    loop.call_soon(out.append, 1)
    loop.run_forever()
    assert out == [1]


def test_run_forever_can_be_restarted(loop, run_briefly):
    out = []
    for i in range(5):
        loop.call_soon(out.append, i)
        run_briefly(loop)
    assert out == list(range(5))


def test_run_until_complete_coroutine(loop):
    async def coro(x):
        await asyncio.sleep(0)
        return x * 2

    assert loop.run_until_complete(coro(21)) == 42
    assert not loop.is_running()


def test_run_until_complete_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_done_future(loop):
    fut = loop.create_future()
    fut.set_result(5)
    assert loop.run_until_complete(fut) == 5


def test_run_until_complete_task(loop):
    async def coro():
        return "t"

    task = loop.create_task(coro())
    assert loop.run_until_complete(task) == "t"


def test_run_until_complete_awaitable(loop):
    class Awaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return "awaited"

    assert loop.run_until_complete(Awaitable()) == "awaited"


def test_run_until_complete_exception(loop):
    async def coro():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        loop.run_until_complete(coro())


def test_run_until_complete_cancelled(loop):
    fut = loop.create_future()
    loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(fut)


def test_run_until_complete_base_exception_propagates(loop):
    async def coro():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(coro())
    assert not loop.is_running()

    async def ok():
        return 1

    assert loop.run_until_complete(ok()) == 1


def test_run_until_complete_bad_argument(loop):
    with pytest.raises(TypeError, match="An asyncio.Future, a coroutine or "
                                        "an awaitable is required"):
        loop.run_until_complete(1)


def test_run_until_complete_future_of_other_loop(loop, make_loop):
    other = make_loop()
    fut = other.create_future()
    with pytest.raises(ValueError, match="The future belongs to a different "
                                         "loop than the one specified as "
                                         "the loop argument"):
        loop.run_until_complete(fut)


def test_run_until_complete_stopped(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError,
                       match=r"^Event loop stopped before Future completed\.$"):
        loop.run_until_complete(fut)
    # The future can still complete later.
    loop.call_soon(fut.set_result, 1)
    assert loop.run_until_complete(fut) == 1


def test_stop_before_run_until_complete(loop):
    fut = loop.create_future()
    loop.stop()
    with pytest.raises(RuntimeError,
                       match=r"^Event loop stopped before Future completed\.$"):
        loop.run_until_complete(fut)
    fut2 = loop.create_future()
    loop.call_soon(fut2.set_result, "ok")
    loop.stop()  # one iteration is enough
    assert loop.run_until_complete(fut2) == "ok"
    fut.cancel()


def test_run_until_complete_stop_inside_coroutine(loop):
    async def coro():
        loop.stop()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return 1

    task = loop.create_task(coro())
    with pytest.raises(RuntimeError,
                       match="Event loop stopped before Future completed"):
        loop.run_until_complete(task)
    assert loop.run_until_complete(task) == 1


def errors_running_inside(loop, target):
    """What target.run_until_complete() and target.run_forever() raise when
    called from a coroutine running on loop."""
    errors = []

    async def inner():
        return 1

    async def outer():
        coro = inner()
        try:
            target.run_until_complete(coro)
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            coro.close()
        try:
            target.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))

    loop.run_until_complete(outer())
    return errors


def test_nested_run_until_complete(loop):
    assert errors_running_inside(loop, loop) == [
        "This event loop is already running"] * 2


def test_run_other_loop_while_running(loop, make_loop):
    other = make_loop()
    assert errors_running_inside(loop, other) == [
        "Cannot run the event loop while another loop is running"] * 2
    assert not other.is_running()


def test_running_loop_is_shared_with_stock_asyncio(loop):
    # The loop under test must register itself as asyncio's running loop,
    # and honour a running stock asyncio loop.
    stock = asyncio.SelectorEventLoop()
    try:
        errors = []

        async def run_stock_inside():
            try:
                stock.run_forever()
            except RuntimeError as exc:
                errors.append(str(exc))

        loop.run_until_complete(run_stock_inside())

        async def run_loop_inside():
            try:
                loop.run_forever()
            except RuntimeError as exc:
                errors.append(str(exc))

        stock.run_until_complete(run_loop_inside())
        assert errors == [
            "Cannot run the event loop while another loop is running"] * 2
    finally:
        stock.close()


def test_run_in_other_thread(loop_factory):
    result = []

    def thread_main():
        lp = loop_factory()
        try:
            async def coro():
                return asyncio.get_running_loop() is lp
            result.append(lp.run_until_complete(coro()))
        finally:
            lp.close()

    t = threading.Thread(target=thread_main)
    t.start()
    t.join(30)
    assert result == [True]


def test_close(loop):
    loop.close()
    assert loop.is_closed()
    loop.close()  # twice is fine
    assert loop.is_closed()


def test_close_running_loop(loop, run_briefly):
    errors = []

    def cb():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))

    loop.call_soon(cb)
    run_briefly(loop)
    assert errors == ["Cannot close a running event loop"]
    assert not loop.is_closed()


def test_closed_loop_cannot_run(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.run_forever()

    async def coro():
        pass

    c = coro()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.run_until_complete(c)
    c.close()
    # stop() on a closed loop is harmless
    loop.stop()


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_callback_propagates(loop, run_briefly, exc_type):
    out = []

    def boom():
        raise exc_type()

    loop.call_soon(out.append, "before")
    loop.call_soon(boom)
    loop.call_soon(out.append, "after")
    with pytest.raises(exc_type):
        loop.run_forever()
    assert out == ["before"]
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    # The loop is usable afterwards; the rest of the interrupted iteration
    # is still queued and runs next time.
    run_briefly(loop)
    assert out == ["before", "after"]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_timer_propagates(loop, exc_type):
    def boom():
        raise exc_type()

    loop.call_later(-1, boom)
    with pytest.raises(exc_type):
        loop.run_forever()
    assert not loop.is_running()

    async def ok():
        return "ok"

    assert loop.run_until_complete(ok()) == "ok"


def test_keyboard_interrupt_in_task_propagates(loop):
    async def coro():
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    task = loop.create_task(coro())
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(asyncio.sleep(10))
    assert task.done()
    assert isinstance(task.exception(), KeyboardInterrupt)
    assert not loop.is_running()


# ---------------------------------------------------------------- Runner

def test_runner_with_loop_factory(loop_factory, impl):
    seen = {}

    async def main(x):
        seen["loop"] = asyncio.get_running_loop()
        await asyncio.sleep(0)
        return x + 1

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(main(1)) == 2
        assert runner.run(main(2)) == 3
        lp = runner.get_loop()
        assert seen["loop"] is lp
        assert not lp.is_closed()
    assert lp.is_closed()
    if impl.name == "asyncio":
        assert isinstance(lp, asyncio.SelectorEventLoop)
    else:
        assert type(lp).__module__.startswith("eloop")


def test_runner_debug_flag(loop_factory):
    with asyncio.Runner(loop_factory=loop_factory, debug=True) as runner:
        assert runner.get_loop().get_debug() is True

        async def main():
            return asyncio.get_running_loop().get_debug()

        assert runner.run(main()) is True


def test_runner_cancels_leftover_tasks_and_finalizes(loop_factory):
    events = []

    async def background():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            events.append("agen-finalized")

    gens = []

    async def main():
        asyncio.get_running_loop().create_task(background())
        g = agen()
        gens.append(g)
        await g.__anext__()
        await asyncio.sleep(0)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    assert sorted(events) == ["agen-finalized", "cancelled"]


def test_runner_run_from_running_loop(loop):
    async def inner():
        pass

    async def outer():
        c = inner()
        r = asyncio.Runner()
        try:
            r.run(c)
        finally:
            c.close()
            r.close()

    with pytest.raises(RuntimeError, match="cannot be called from a running "
                                           "event loop"):
        loop.run_until_complete(outer())


def test_asyncio_run_via_policy(loop_factory):
    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self):
            return loop_factory()

    async def main():
        return type(asyncio.get_running_loop())

    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(Policy())
    try:
        cls = asyncio.run(main())
    finally:
        asyncio.set_event_loop_policy(old)
    probe = loop_factory()
    try:
        assert cls is type(probe)
    finally:
        probe.close()


def test_subclass_run_once_drives_run_forever(loop_class, make_loop):
    """run_forever() calls self._run_once(), so a subclass that overrides it
    (loop instrumentation does) sees every iteration."""
    iterations = []

    class CountingLoop(loop_class):
        def _run_once(self):
            iterations.append(len(iterations))
            super()._run_once()

    loop = make_loop(CountingLoop)
    ran = []
    loop.call_soon(ran.append, 1)
    loop.call_soon(lambda: loop.call_soon(loop.stop))
    loop.run_forever()
    assert ran == [1]
    assert len(iterations) == 2
