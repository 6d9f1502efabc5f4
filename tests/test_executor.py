"""run_in_executor / set_default_executor / shutdown_default_executor."""

import asyncio
import concurrent.futures
import threading

import pytest


def _work(a, b):
    return a + b, threading.current_thread().name


def test_run_in_default_executor(loop):
    async def main():
        fut = loop.run_in_executor(None, _work, 1, 2)
        assert isinstance(fut, asyncio.Future)
        return await fut

    result, thread_name = loop.run_until_complete(main())
    assert result == 3
    assert thread_name != threading.current_thread().name
    assert thread_name.startswith("asyncio_")
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_in_executor_exception(loop):
    def fail():
        raise KeyError("in thread")

    async def main():
        with pytest.raises(KeyError):
            await loop.run_in_executor(None, fail)
        return True

    assert loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_default_executor())


def test_run_in_custom_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(
            thread_name_prefix="custom") as ex:
        result, name = loop.run_until_complete(
            loop.run_in_executor(ex, _work, "a", "b"))
    assert result == "ab"
    assert name.startswith("custom")


def test_run_in_executor_many(loop):
    async def main():
        futs = [loop.run_in_executor(None, _work, i, i) for i in range(200)]
        return [r for r, _ in await asyncio.gather(*futs)]

    assert loop.run_until_complete(main()) == [2 * i for i in range(200)]
    loop.run_until_complete(loop.shutdown_default_executor())


def test_set_default_executor(loop):
    ex = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="mine")
    try:
        loop.set_default_executor(ex)
        _, name = loop.run_until_complete(
            loop.run_in_executor(None, _work, 0, 0))
        assert name.startswith("mine")
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
    # shutdown_default_executor shut the custom default down too
    with pytest.raises(RuntimeError):
        ex.submit(_work, 1, 1)


@pytest.mark.parametrize("bad", [None, 1, object()])
def test_set_default_executor_wrong_type(loop, bad):
    with pytest.raises(TypeError,
                       match="^executor must be ThreadPoolExecutor instance$"):
        loop.set_default_executor(bad)


def test_set_default_executor_process_pool_rejected(loop):
    ex = concurrent.futures.ProcessPoolExecutor(max_workers=1)
    try:
        with pytest.raises(TypeError, match="executor must be "
                                            "ThreadPoolExecutor instance"):
            loop.set_default_executor(ex)
    finally:
        ex.shutdown(wait=True)


def test_shutdown_default_executor_without_executor(loop):
    assert loop.run_until_complete(loop.shutdown_default_executor()) is None
    with pytest.raises(RuntimeError,
                       match="^Executor shutdown has been called$"):
        loop.run_in_executor(None, _work, 1, 1)


def test_run_in_executor_after_shutdown(loop):
    loop.run_until_complete(loop.run_in_executor(None, _work, 1, 1))
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError,
                       match="^Executor shutdown has been called$"):
        loop.run_in_executor(None, _work, 1, 1)
    # A new default executor does not lift the ban.
    ex = concurrent.futures.ThreadPoolExecutor()
    try:
        loop.set_default_executor(ex)
        with pytest.raises(RuntimeError,
                           match="^Executor shutdown has been called$"):
            loop.run_in_executor(None, _work, 1, 1)
    finally:
        ex.shutdown()
    # Explicit executors still work.
    with concurrent.futures.ThreadPoolExecutor() as ex2:
        res, _ = loop.run_until_complete(loop.run_in_executor(ex2, _work,
                                                              2, 3))
    assert res == 5


def test_shutdown_default_executor_waits_for_work(loop):
    started = threading.Event()
    release = threading.Event()
    finished = []

    def slow():
        started.set()
        release.wait(10)
        finished.append(True)

    async def main():
        fut = loop.run_in_executor(None, slow)
        assert await loop.run_in_executor(None, started.wait, 10)
        release.set()
        await loop.shutdown_default_executor()
        assert finished == [True]
        await fut

    loop.run_until_complete(main())


def test_run_in_executor_closed_loop(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.run_in_executor(None, _work, 1, 1)
    with concurrent.futures.ThreadPoolExecutor() as ex:
        with pytest.raises(RuntimeError, match="^Event loop is closed$"):
            loop.run_in_executor(ex, _work, 1, 1)


def test_close_shuts_down_default_executor(loop_factory):
    loop = loop_factory()
    ex = concurrent.futures.ThreadPoolExecutor()
    loop.set_default_executor(ex)
    loop.close()
    with pytest.raises(RuntimeError):
        ex.submit(_work, 1, 1)


def test_debug_run_in_executor_rejects_coroutine_function(loop):
    loop.set_debug(True)

    async def coro():
        pass

    with pytest.raises(TypeError, match="^coroutines cannot be used with "
                                        "run_in_executor\\(\\)$"):
        loop.run_in_executor(None, coro)
    with pytest.raises(TypeError, match="^a callable object was expected by "
                                        "run_in_executor\\(\\), got 1$"):
        loop.run_in_executor(None, 1)
