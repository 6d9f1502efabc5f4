"""Callbacks: the loop's lowest layer.  ``call_soon`` queues a callback for
the next iteration (first in, first out), ``call_later``/``call_at`` for a
time, ``call_soon_threadsafe`` from another thread; a Future runs its done
callbacks when it completes.  Coroutines and Tasks are built on exactly
these calls.  A callback that raises does not stop the loop: the error goes
to the loop's exception handler."""
import asyncio
import threading

import eloop


def report(loop, context):
    print("handler got:", repr(context["exception"]))


async def main():
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(report)
    done = loop.create_future()

    loop.call_soon(print, "call_soon", 1)
    loop.call_soon(print, "call_soon", 2)
    handle = loop.call_later(0.01, print, "never printed")
    handle.cancel()
    loop.call_soon(lambda: 1 / 0)           # reported, the loop goes on

    def from_thread():
        loop.call_soon_threadsafe(done.set_result, "from a thread")

    threading.Thread(target=from_thread).start()
    done.add_done_callback(lambda f: print("done callback:", f.result()))
    await done
    await asyncio.sleep(0)                  # let the done callback run
    print("cancelled timer:", handle.cancelled())


eloop.run(main())
