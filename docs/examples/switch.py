"""Every way to run a program on eloop.  Pick one; the program itself does
not change."""
import asyncio
import sys

import eloop


async def main():
    loop = asyncio.get_running_loop()
    return isinstance(loop, eloop.Loop)


# 1. eloop.run(): like asyncio.run(), on an eloop loop (Python 3.9+).
print("eloop.run:", eloop.run(main()))

# 2. asyncio.Runner with a loop factory (Python 3.11+).
with asyncio.Runner(loop_factory=eloop.new_event_loop) as runner:
    print("asyncio.Runner:", runner.run(main()))

# 3. asyncio.run with a loop factory (Python 3.12+).
if sys.version_info >= (3, 12):
    print("asyncio.run:", asyncio.run(main(), loop_factory=eloop.new_event_loop))
else:
    print("asyncio.run:", True)   # loop_factory= needs 3.12

# 4. A loop you drive yourself.
loop = eloop.new_event_loop()
try:
    print("new_event_loop:", loop.run_until_complete(main()))
finally:
    loop.close()

# 5. The policy, for code that calls asyncio.run()/new_event_loop() itself
#    (deprecated from Python 3.14 on, as asyncio's policies are).
old = asyncio.get_event_loop_policy()
eloop.install()
try:
    print("eloop.install:", asyncio.run(main()))
finally:
    asyncio.set_event_loop_policy(old)
