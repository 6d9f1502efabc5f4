"""When to use a Future or a Task?  A Future is a placeholder for a result
that something else will set: use one to bridge a callback-style API into
``await``.  A Task is a Future that drives a coroutine: use
``asyncio.create_task`` to run coroutines concurrently.  eloop uses
CPython's own ``asyncio.Future`` and ``asyncio.Task``."""
import asyncio

import eloop


async def work(name, delay):
    await asyncio.sleep(delay)
    return f"{name} done"


async def main():
    loop = asyncio.get_running_loop()

    # A Future, completed by a plain callback 10 ms from now.
    fut = loop.create_future()
    loop.call_later(0.01, fut.set_result, "set by a callback")
    print(await fut)

    # Tasks: both coroutines run at the same time, so this takes ~20 ms,
    # not 30 ms.
    slow = asyncio.create_task(work("slow", 0.02))
    fast = asyncio.create_task(work("fast", 0.01))
    print(isinstance(slow, asyncio.Future), slow.done())
    print(await asyncio.gather(slow, fast))

    # A task can be cancelled; awaiting it raises CancelledError.
    t = asyncio.create_task(work("never", 10))
    await asyncio.sleep(0)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        print("cancelled:", t.cancelled())


eloop.run(main())
