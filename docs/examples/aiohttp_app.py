"""aiohttp on eloop.  ``web.run_app(app, loop=eloop.new_event_loop())``
serves until interrupted; this example uses aiohttp's AppRunner instead so
that it can start, answer one request and stop."""
import asyncio

import aiohttp
from aiohttp import web

import eloop


async def hello(request):
    loop = asyncio.get_running_loop()
    return web.Response(text=f"hello; eloop: {isinstance(loop, eloop.Loop)}")


def make_app():
    app = web.Application()
    app.router.add_get("/", hello)
    return app


async def main():
    runner = web.AppRunner(make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)   # port 0: any free port
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as resp:
                print(resp.status, await resp.text())
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    eloop.run(main())
    # To serve until Ctrl-C instead:
    #     web.run_app(make_app(), loop=eloop.new_event_loop())
