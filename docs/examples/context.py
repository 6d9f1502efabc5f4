"""Why would I use a context?  A ``contextvars.ContextVar`` is like a
thread-local, but per task: each Task runs in a copy of the context it was
created in, so a request id set in one task is never seen by another, even
though all of them share one thread.  Every callback the loop runs carries
the context it was scheduled with."""
import asyncio
import contextvars

import eloop

request_id = contextvars.ContextVar("request_id", default="-")


def log(msg):
    print(f"[{request_id.get()}] {msg}")


async def handle(rid, delay):
    request_id.set(rid)
    log("start")
    await asyncio.sleep(delay)      # other tasks run meanwhile
    log("end")


async def main():
    await asyncio.gather(handle("req-1", 0.02), handle("req-2", 0.01))
    log("main sees no request id")

    # Callbacks run in the context they were given.
    ctx = contextvars.copy_context()
    ctx.run(request_id.set, "from-context")
    asyncio.get_running_loop().call_soon(log, "callback", context=ctx)
    await asyncio.sleep(0)


eloop.run(main())
