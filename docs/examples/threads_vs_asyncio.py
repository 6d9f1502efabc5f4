"""Why choose asyncio instead of many threads?  A thread costs an OS
stack and a kernel scheduling entity, and every switch between threads goes
through the kernel and the GIL.  A task is a Python object of a few hundred
bytes, and a switch between tasks is a function return in one thread.  For
work that mostly waits (network I/O), tasks scale further and switch
faster.  This measures both on the same jobs; the numbers vary by machine.
"""
import asyncio
import queue
import threading
import time

import eloop

WAITERS, WAIT = 1000, 0.05      # 1,000 concurrent waits of 50 ms
HANDOFFS = 20_000               # messages passed between two workers


async def waiters_asyncio():
    await asyncio.gather(*(asyncio.sleep(WAIT) for _ in range(WAITERS)))


def waiters_threads():
    threads = [threading.Thread(target=time.sleep, args=(WAIT,))
               for _ in range(WAITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


async def handoff_asyncio():
    q1, q2 = asyncio.Queue(), asyncio.Queue()

    async def echo():
        for _ in range(HANDOFFS):
            q2.put_nowait(await q1.get())

    task = asyncio.create_task(echo())
    total = 0
    for i in range(HANDOFFS):
        q1.put_nowait(i)
        total += await q2.get()
    await task
    return total


def handoff_threads():
    q1, q2 = queue.Queue(), queue.Queue()

    def echo():
        for _ in range(HANDOFFS):
            q2.put(q1.get())

    t = threading.Thread(target=echo)
    t.start()
    total = 0
    for i in range(HANDOFFS):
        q1.put(i)
        total += q2.get()
    t.join()
    return total


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - t0) * 1e3


_, ms_tasks = timed(eloop.run, waiters_asyncio())
_, ms_threads = timed(waiters_threads)
print(f"{WAITERS} concurrent waits of {WAIT * 1e3:.0f} ms:")
print(f"  tasks:   {ms_tasks:.1f} ms")
print(f"  threads: {ms_threads:.1f} ms")

sum_tasks, ms_tasks = timed(eloop.run, handoff_asyncio())
sum_threads, ms_threads = timed(handoff_threads)
print(f"{HANDOFFS} round trips between two workers:")
print(f"  tasks:   {ms_tasks:.1f} ms ({ms_tasks * 1e3 / HANDOFFS:.2f} us each)")
print(f"  threads: {ms_threads:.1f} ms ({ms_threads * 1e3 / HANDOFFS:.2f} us each)")
print("same results:", sum_tasks == sum_threads == sum(range(HANDOFFS)))
