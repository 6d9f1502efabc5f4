"""How do I use an async comprehension?  Inside a coroutine,
``[x async for x in agen]`` consumes an asynchronous iterator (PEP 530),
and ``[await f(x) for x in xs]`` awaits in a comprehension.  Both run one
item at a time; to run awaits concurrently, use ``asyncio.gather``."""
import asyncio

import eloop


async def ticks(n):
    """An asynchronous generator (PEP 525)."""
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def square(x):
    await asyncio.sleep(0)
    return x * x


async def main():
    print([i async for i in ticks(5)])
    print({i: i % 2 == 0 async for i in ticks(3)})
    print([await square(i) for i in range(4)])
    print([i async for i in ticks(10) if i % 3 == 0])
    print(await asyncio.gather(*(square(i) for i in range(4))))


eloop.run(main())
