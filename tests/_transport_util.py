"""Helpers shared by the transport tests that build a transport over a
socket of their own with create_connection(sock=) (not a test module)."""
import asyncio


class Proto(asyncio.Protocol):
    """Keeps what it receives; `lost` is a future of connection_lost()'s
    argument."""

    def __init__(self, loop):
        self.data = bytearray()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def connect(loop, sock):
    """(transport, Proto) over sock."""
    proto = Proto(loop)
    tr, _ = await loop.create_connection(lambda: proto, sock=sock)
    return tr, proto


async def spin(n=5):
    """n loop iterations."""
    for _ in range(n):
        await asyncio.sleep(0)


def pending(sock):
    """What is waiting on the non-blocking sock, b'' at EOF, None if
    nothing."""
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(out) if out else None
        if not chunk:
            return bytes(out)
        out += chunk
