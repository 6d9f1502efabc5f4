"""An ASGI app that says which loop serves it.  Run it on eloop with

    uvicorn uvicorn_app:app --loop eloop:new_event_loop

(uvicorn imports a ``module:callable`` given to ``--loop`` and uses it as
the loop factory)."""
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    loop = asyncio.get_running_loop()
    body = f"{type(loop).__module__}.{type(loop).__qualname__}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
