"""Real frameworks on each loop: an aiohttp server and client exchanging
requests, and uvicorn serving an ASGI app (smoke tests); both again over
TLS (tests/certs).

Skipped where the framework is not installed; test.sh installs both."""
import asyncio
import json
import socket

import pytest


def _run(loop_factory, coro):
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


def test_aiohttp_server_and_client(loop_factory):
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    async def hello(request):
        return web.Response(text="hello " + request.match_info["name"])

    async def echo_json(request):
        body = await request.json()
        return web.json_response({"got": body, "n": len(body["items"])})

    async def ws_echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(msg.data.upper())
        return ws

    async def main():
        app = web.Application()
        app.router.add_get("/hello/{name}", hello)
        app.router.add_post("/json", echo_json)
        app.router.add_get("/ws", ws_echo)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        results = []
        try:
            async with aiohttp.ClientSession() as session:
                for i in range(20):  # keep-alive reuse
                    async with session.get(f"{base}/hello/n{i}") as r:
                        results.append((r.status, await r.text()))
                payload = {"items": list(range(1000)), "s": "x" * 100_000}
                async with session.post(f"{base}/json", json=payload) as r:
                    got = await r.json()
                async with session.ws_connect(f"{base}/ws") as ws:
                    await ws.send_str("ping")
                    pong = (await ws.receive()).data
        finally:
            await runner.cleanup()
        return results, got, payload, pong

    results, got, payload, pong = _run(loop_factory, main())
    assert results == [(200, f"hello n{i}") for i in range(20)]
    assert got == {"got": payload, "n": 1000}
    assert pong == "PING"


def test_uvicorn_serves_asgi_app(loop_factory):
    uvicorn = pytest.importorskip("uvicorn")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        data = json.dumps({"path": scope["path"], "len": len(body)}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(data))]})
        await send({"type": "http.response.body", "body": data})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def request(path, body):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % (path.encode(), len(body))
                     + body)
        await writer.drain()
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        head, _, payload = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0], json.loads(payload)

    async def main():
        config = uvicorn.Config(app, loop="none", log_level="warning",
                                lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return [await request(f"/p{i}", b"x" * (i * 1000))
                    for i in range(5)]
        finally:
            server.should_exit = True
            await serving

    try:
        got = _run(loop_factory, main())
    finally:
        sock.close()
    assert got == [(b"HTTP/1.1 200 OK", {"path": f"/p{i}", "len": i * 1000})
                   for i in range(5)]


# ------------------------------------------------------------ over TLS

def _certs():
    import os
    import ssl
    certs = os.path.join(os.path.dirname(__file__), "certs")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(os.path.join(certs, "server.pem"))
    client = ssl.create_default_context(
        cafile=os.path.join(certs, "ca.pem"))
    return certs, server, client


def test_aiohttp_https_server_and_client(loop_factory):
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web
    _, sctx, cctx = _certs()

    async def hello(request):
        return web.Response(text="hello " + request.match_info["name"])

    async def upload(request):
        return web.json_response({"len": len(await request.read())})

    async def main():
        app = web.Application()
        app.router.add_get("/hello/{name}", hello)
        app.router.add_post("/upload", upload)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=sctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        base = f"https://localhost:{port}"
        results = []
        try:
            connector = aiohttp.TCPConnector(ssl=cctx)
            async with aiohttp.ClientSession(connector=connector) as session:
                for i in range(10):  # keep-alive reuse over one TLS session
                    async with session.get(f"{base}/hello/n{i}") as r:
                        results.append((r.status, await r.text()))
                async with session.post(f"{base}/upload",
                                        data=b"z" * 1_000_000) as r:
                    got = await r.json()
            # A client without the CA refuses the server.
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await session.get(f"{base}/hello/x")
        finally:
            await runner.cleanup()
        return results, got

    results, got = _run(loop_factory, main())
    assert results == [(200, f"hello n{i}") for i in range(10)]
    assert got == {"len": 1_000_000}


def test_uvicorn_https(loop_factory):
    uvicorn = pytest.importorskip("uvicorn")
    import os
    certs, _, cctx = _certs()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(
                        scope["scheme"]))]})
        await send({"type": "http.response.body",
                    "body": scope["scheme"].encode()})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def request():
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=cctx, server_hostname="localhost")
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        head, _, body = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0], body

    async def main():
        pem = os.path.join(certs, "server.pem")
        config = uvicorn.Config(app, loop="none", log_level="warning",
                                lifespan="off", ssl_certfile=pem,
                                ssl_keyfile=pem)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return [await request() for _ in range(3)]
        finally:
            server.should_exit = True
            await serving

    try:
        got = _run(loop_factory, main())
    finally:
        sock.close()
    assert got == [(b"HTTP/1.1 200 OK", b"https")] * 3
