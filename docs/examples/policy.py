"""Why would I set a policy?  A policy decides which loop
``asyncio.new_event_loop()`` and ``asyncio.run()`` create, so setting one
switches a whole program, including libraries that create their own loop.
Policies are deprecated from Python 3.14 on; what replaces them is passing
a loop factory where the loop is made: ``asyncio.Runner(loop_factory=...)``
(3.11+), ``asyncio.run(..., loop_factory=...)`` (3.12+), or ``eloop.run``."""
import asyncio

import eloop


async def which():
    return isinstance(asyncio.get_running_loop(), eloop.Loop)


# The old way: a policy (what eloop.install() and python -m eloop do).
old = asyncio.get_event_loop_policy()
asyncio.set_event_loop_policy(eloop.EventLoopPolicy())
print("policy:", asyncio.run(which()))
asyncio.set_event_loop_policy(old)

# The new way: name the factory where the loop is made.
with asyncio.Runner(loop_factory=eloop.new_event_loop) as runner:
    print("Runner(loop_factory=...):", runner.run(which()))
print("eloop.run:", eloop.run(which()))
