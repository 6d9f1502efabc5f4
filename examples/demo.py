"""eloop demo: the same asyncio program on stock asyncio, eloop and uvloop.

The program mixes what real services do on a loop: many tasks talking
through queues, timeouts, timers, callbacks from threads, executors and
async generators.  Each loop must produce the identical result; the
wall time of each is printed beside it.

    python examples/demo.py
"""
import asyncio
import hashlib
import sys
import time


async def worker(wid, inbox, outbox):
    while True:
        item = await inbox.get()
        if item is None:
            inbox.task_done()
            return
        await asyncio.sleep(0)
        outbox.put_nowait((wid, item, hashlib.sha1(b"%d" % item).hexdigest()))
        inbox.task_done()


async def ticker(n):
    async def gen():
        for i in range(n):
            await asyncio.sleep(0)
            yield i
    return sum([i async for i in gen()])


async def program(nworkers=200, nitems=20000):
    loop = asyncio.get_running_loop()
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    workers = [asyncio.create_task(worker(w, inbox, outbox))
               for w in range(nworkers)]
    for i in range(nitems):
        inbox.put_nowait(i)
    for _ in workers:
        inbox.put_nowait(None)
    await inbox.join()
    await asyncio.gather(*workers)
    digest = hashlib.sha1()
    for _, item, h in sorted(outbox.get_nowait()
                             for _ in range(outbox.qsize())):
        digest.update(h.encode())

    fired = []
    for i in range(5000):
        loop.call_later(i * 1e-6, fired.append, i)
    await asyncio.sleep(0.05)

    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)
        timed_out = False
    except TimeoutError:
        timed_out = True

    done = loop.create_future()
    threads_seen = []

    def from_thread(k):
        threads_seen.append(k)
        if len(threads_seen) == 100:
            done.set_result(True)

    def poke():
        for k in range(100):
            loop.call_soon_threadsafe(from_thread, k)
    await loop.run_in_executor(None, poke)
    await done
    total = await ticker(10000)
    return (digest.hexdigest()[:16], len(fired), fired == sorted(fired),
            timed_out, sorted(threads_seen) == list(range(100)), total)


def main():
    import eloop
    loops = [("asyncio", asyncio.SelectorEventLoop),
             ("eloop", eloop.new_event_loop)]
    try:
        import uvloop
        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        print("(uvloop not installed: pip install uvloop to compare)")
    results = {}
    print(f"{'loop':8} {'seconds':>8}  result")
    for name, factory in loops:
        t0 = time.perf_counter()
        with asyncio.Runner(loop_factory=factory) as runner:
            results[name] = runner.run(program())
        dt = time.perf_counter() - t0
        print(f"{name:8} {dt:8.3f}  {results[name]}")
    same = results["eloop"] == results["asyncio"]
    print("eloop's result identical to stock asyncio's:", same)
    if "uvloop" in results and results["uvloop"] != results["asyncio"]:
        print("uvloop differs from stock asyncio (its timers have "
              "millisecond resolution, so close deadlines fire out of "
              "order)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
