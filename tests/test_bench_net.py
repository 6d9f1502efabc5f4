"""bench/net.py's listening socket (also bench/tls.py's): the connections a
loop accepts from it must get TCP_NODELAY, as they do from
create_server(host, port).  Runs on both loops: the rule is asyncio's
(_set_nodelay sets it only for proto == IPPROTO_TCP), so a listener made
with proto 0 left the asyncio and eloop servers with Nagle on, and the TLS
64 KiB echo rows measured the client's delayed ACK instead of the loop."""
import asyncio
import importlib.util
import os
import socket
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench_net():
    # net.py puts bench/ on sys.path and turns bytecode writing off for its
    # own process; undo both here.
    saved_path, saved_dwb = list(sys.path), sys.dont_write_bytecode
    try:
        spec = importlib.util.spec_from_file_location(
            "_bench_net", os.path.join(REPO, "bench", "net.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod    # its dataclasses look it up
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.modules.pop("_bench_net", None)
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_dwb


def test_bench_listener_accepts_with_nodelay(loop):
    net = _bench_net()
    lsock = net.listen_socket()

    async def main():
        made = loop.create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, tr):
                sock = tr.get_extra_info("socket")
                made.set_result(sock.getsockopt(socket.IPPROTO_TCP,
                                                socket.TCP_NODELAY))
                tr.close()

        srv = await loop.create_server(Proto, sock=lsock)
        _, w = await asyncio.open_connection(*lsock.getsockname())
        try:
            assert await asyncio.wait_for(made, 10)
        finally:
            w.close()
            await w.wait_closed()
            srv.close()
            await srv.wait_closed()

    loop.run_until_complete(main())
