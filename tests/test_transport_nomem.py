"""writelines() under MemoryError queues all of the data or none of it
(issue 9, point 6).

After a writelines() that raised MemoryError, the transport's buffer is
what it was and the peer receives nothing of that call; after one that
returned, the peer receives all of it.
"""

import asyncio
import socket
import sys

import pytest

from _netutil import run
from _transport_util import Proto, pending, spin
from conftest import UNDER_ASAN

_testcapi = pytest.importorskip("_testcapi")


def test_writelines_nomem_all_or_nothing(impl, loop, loop_errors):
    # The n-th allocation of the call fails, for every n up to the first
    # that lets the call through; bytearray and memoryview pieces are
    # copied, 20 of them need an array of references: several allocations.
    # eloop-only: stock asyncio 3.12+ can spin forever when an allocation
    # fails inside its writelines() send (_adjust_leftover_buffer), and
    # 3.11's fails only at the join; the test is about eloop's failure
    # paths, the rlimit test below compares both loops.
    if impl.name != "eloop":
        pytest.skip("eloop's allocation failure paths")
    pieces = [bytearray(b"%02d" % i) if i % 2 else memoryview(b"m%d" % i)
              for i in range(20)]
    payload = b"".join(pieces)

    async def attempt(n):
        a, b = socket.socketpair()
        b.setblocking(False)
        try:
            proto = Proto(loop)
            tr, _ = await loop.create_connection(lambda: proto, sock=a)
            tr.write(b"<")
            before = tr.get_write_buffer_size()
            raised = False
            _testcapi.set_nomemory(n)
            try:
                tr.writelines(pieces)
            except MemoryError:
                raised = True
            finally:
                _testcapi.remove_mem_hooks()
            if raised:
                assert tr.get_write_buffer_size() == before
            tr.write(b">")
            await spin()
            tr.close()
            await asyncio.wait_for(proto.lost, 5)
            return raised, pending(b)
        finally:
            a.close()
            b.close()

    async def main():
        results = []
        for n in range(0, 200):
            raised, got = await attempt(n)
            results.append((n, raised, got))
            if not raised and got == b"<" + payload + b">":
                break
        return results

    results = run(loop, main(), timeout=60)
    assert results[-1][1:] == (False, b"<" + payload + b">")
    for n, raised, got in results:
        # Nothing of a failed call; all of one that returned.
        expected = b"<>" if raised else b"<" + payload + b">"
        assert got == expected, (n, raised, got)


CHILD = r"""
import asyncio, resource, socket, sys

N = 1 << 22
loop = loop_factory()
a, b = socket.socketpair()
b.setblocking(False)
pieces = [b"x"] * N       # one object, N references: 8 bytes each

async def main():
    proto = asyncio.Protocol()
    tr, _ = await loop.create_connection(lambda: proto, sock=a)
    with open("/proc/self/status") as f:
        vm = [l for l in f if l.startswith("VmSize:")][0]
    used = int(vm.split()[1]) * 1024
    # Room for a copy of the list of references and a little more, not
    # for a queue entry (24 bytes or more) per piece.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used + (100 << 20), hard))
    try:
        tr.writelines(pieces)
    except MemoryError:
        outcome = "raised"
    else:
        outcome = "queued"
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    size = tr.get_write_buffer_size()
    got = 0
    for _ in range(2000):
        await asyncio.sleep(0)
        try:
            got += len(b.recv(1 << 20))
        except BlockingIOError:
            if tr.get_write_buffer_size() == 0:
                break
    tr.abort()
    print(outcome, size, got)

loop.run_until_complete(main())
loop.close()
"""


def test_writelines_many_pieces_rlimit(child_python):
    # The write queue's own array (C malloc, out of reach of
    # _testcapi.set_nomemory) failing to grow half way through the
    # pieces: with an address-space limit in a child process.
    if UNDER_ASAN:
        pytest.skip("AddressSanitizer reserves more address space")
    r = child_python(CHILD, timeout=120)
    assert r.returncode == 0, r.stderr
    outcome, size, got = r.stdout.split()
    size, got = int(size), int(got)
    if outcome == "raised":
        assert (size, got) == (0, 0)
    else:
        assert size + got == 1 << 22
