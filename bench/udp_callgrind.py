"""Instructions per UDP echo round trip, counted by callgrind.

    python bench/udp_callgrind.py                  # eloop, asyncio, uvloop
    python bench/udp_callgrind.py --loops eloop --n 20000 --size 100

Two datagram endpoints in one loop over a connected pair of UDP sockets
(create_datagram_endpoint(sock=)): the client sends SIZE bytes, the
server echoes each datagram, the client sends again once it came back, N
times.  One round trip is two sendto() calls and two datagram_received()
calls, plus the loop iterations between them: the per-datagram cost of
the datagram transport.  Measured as bench/echo_callgrind.py measures the
stream echo (collection only inside operator.call).
"""

import asyncio
import socket

from echo_callgrind import main, ping_pong   # bench/ is sys.path[0]
from stream_in import new_loop


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.sendto = transport.sendto

    def datagram_received(self, data, addr):
        self.sendto(data)


class Client(asyncio.DatagramProtocol):
    def __init__(self, msg, n, done):
        self.msg = msg
        self.left = n
        self.done = done

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.left -= 1
        if self.left:
            self.transport.sendto(self.msg)
        else:
            self.done.set_result(None)


def single(loop_name, n, size):
    loop = new_loop(loop_name)
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    msg = b"x" * size

    async def setup(n):
        done = loop.create_future()
        ct, _ = await loop.create_datagram_endpoint(
            lambda: Client(msg, n, done), sock=a)
        st, _ = await loop.create_datagram_endpoint(Echo, sock=b)
        return ct, st, done

    ping_pong(loop, setup, lambda ct: ct.sendto(msg), n)
    print(f"udp {loop_name} n={n} size={size} ok")


if __name__ == "__main__":
    main(__file__, __doc__, single, "UDP round trip")
