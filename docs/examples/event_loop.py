"""What is an event loop?  The scheduler under every coroutine: it keeps a
queue of callbacks that are ready, a heap of timers, and a set of file
descriptors to watch.  Each iteration it waits for I/O (no longer than the
next timer), moves what became ready into the queue, and runs it.
eloop is that loop written in C; everything above it is asyncio's."""
import eloop

loop = eloop.new_event_loop()
order = []

loop.call_later(0.02, order.append, "timer 20 ms")
loop.call_later(0.01, order.append, "timer 10 ms")
loop.call_soon(order.append, "soon 1")
loop.call_soon(order.append, "soon 2")
loop.call_later(0.03, loop.stop)

loop.run_forever()              # runs until loop.stop() is called
print(order)
print("running:", loop.is_running())
loop.close()
print("closed:", loop.is_closed())
