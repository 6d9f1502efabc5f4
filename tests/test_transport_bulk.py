"""A bulk flow into data_received(): eloop reads into a buffer that it
hands over as the bytes object itself and refills once the protocol has
let go of it.  Whatever the protocol does with its bytes (keeps them,
hashes them, drops them), each keeps its content and its hash.  Every test
runs on both loops.
"""

import asyncio
import socket
import threading
import zlib

from _netutil import run

SIZE = 8 << 20


def payload():
    block = bytes(range(256)) * 1024
    return b"".join(block[i:] + block[:i] for i in range(0, SIZE // len(block)))


class Bulk(asyncio.Protocol):
    def __init__(self, loop, keep):
        self.keep = keep
        self.kept = []
        self.crc = 0
        self.sizes = []
        self.bad_hash = 0
        self.done = loop.create_future()

    def data_received(self, data):
        self.sizes.append(len(data))
        self.crc = zlib.crc32(data, self.crc)
        # The hash cached in a reused buffer must not outlive its content.
        if hash(data) != hash(bytes(bytearray(data))):
            self.bad_hash += 1
        if self.keep:
            self.kept.append((data, bytes(bytearray(data))))

    def eof_received(self):
        self.done.set_result(None)


def tcp_pair():
    # Loopback TCP: a bulk flow there fills whole 256 KiB reads (a Unix
    # socketpair's buffer stops short of that).
    with socket.create_server(("127.0.0.1", 0)) as srv:
        a = socket.create_connection(srv.getsockname())
        b, _ = srv.accept()
    return a, b


def receive(loop, keep):
    a, b = tcp_pair()
    data = payload()
    sender = threading.Thread(target=lambda: (b.sendall(data),
                                              b.shutdown(socket.SHUT_WR)))

    async def main():
        proto = Bulk(loop, keep)
        tr, _ = await loop.create_connection(lambda: proto, sock=a)
        sender.start()
        await proto.done
        tr.close()
        return proto

    try:
        return run(loop, main(), timeout=60), data
    finally:
        sender.join()
        a.close()
        b.close()


def test_bulk_dropped_chunks(loop):
    proto, data = receive(loop, keep=False)
    assert proto.crc == zlib.crc32(data)
    assert sum(proto.sizes) == len(data)
    assert proto.bad_hash == 0


def test_bulk_kept_chunks_keep_their_content(loop):
    proto, data = receive(loop, keep=True)
    assert b"".join(d for d, _ in proto.kept) == data
    assert all(d == copy for d, copy in proto.kept)
    assert proto.bad_hash == 0
