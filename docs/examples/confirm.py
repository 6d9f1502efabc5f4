"""How to confirm that eloop is the running loop."""
import asyncio

import eloop


async def main():
    loop = asyncio.get_running_loop()
    print("eloop is running:", isinstance(loop, eloop.Loop))
    # Also an asyncio loop: libraries that check for one keep working.
    print("asyncio loop:", isinstance(loop, asyncio.AbstractEventLoop))
    # The class's module names the implementation: 'eloop._loop' on eloop,
    # 'asyncio.unix_events' on stock asyncio.
    print("module:", type(loop).__module__.split(".")[0] in ("eloop", "asyncio"))


eloop.run(main())
