"""What is a coroutine?  A function defined with ``async def``: calling it
runs nothing yet, it returns a coroutine object.  The body runs when the
object is awaited (or wrapped in a Task), and every ``await`` is a point
where it may pause and let the event loop run something else."""
import asyncio

import eloop


async def greet(name):
    print(f"greet({name!r}) starts")
    await asyncio.sleep(0)          # a pause point: the loop may switch here
    print(f"greet({name!r}) resumes")
    return f"hello, {name}"


async def main():
    coro = greet("eloop")           # nothing printed yet
    print(type(coro).__name__, asyncio.iscoroutine(coro))
    result = await coro             # now the body runs
    print(result)


eloop.run(main())
