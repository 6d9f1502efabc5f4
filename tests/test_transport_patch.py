"""Transports accept instance patching (issue 9, point 10).

asyncio's transports have an instance __dict__: test suites (uvicorn's,
for one) replace `transport.write` on one instance, and `del` brings the
method back.  Every test runs on both loops.
"""

import asyncio
import gc
import socket
import sys
import weakref

import pytest

from _netutil import run
from _transport_util import connect, pending, spin


@pytest.fixture
def pairs():
    made = []

    def make():
        a, b = socket.socketpair()
        b.setblocking(False)
        made.extend((a, b))
        return a, b

    yield make
    for s in made:
        s.close()


def test_patch_write_and_restore(loop, pairs):
    a, b = pairs()
    a2, b2 = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        other, _ = await connect(loop, a2)
        calls = []
        tr.write = calls.append
        tr.write(b"to the fake")
        other.write(b"other")          # other instances keep the method
        await spin()
        patched = (calls, (pending(b) or b''), (pending(b2) or b''), "write" in vars(tr))
        del tr.write
        tr.write(b"real")
        await spin()
        restored = ((pending(b) or b''), "write" in vars(tr))
        with pytest.raises(AttributeError):
            del tr.write               # the method itself stays
        tr.close()
        other.close()
        await proto.lost
        return patched, restored

    patched, restored = run(loop, main())
    assert patched == ([b"to the fake"], b"", b"other", True)
    assert restored == (b"real", False)


def test_patched_write_and_writelines(loop, pairs):
    a, b = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        calls = []
        tr.write = calls.append
        tr.writelines([b"ab", bytearray(b"cd")])
        await spin()
        got = (pending(b) or b'')
        tr.close()
        await proto.lost
        return calls, got

    calls, got = run(loop, main())
    if sys.version_info < (3, 12):
        # WriteTransport.writelines(): self.write(b''.join(data))
        assert (calls, got) == ([b"abcd"], b"")
    else:
        # _SelectorSocketTransport.writelines() sends by itself.
        assert (calls, got) == ([], b"abcd")


def test_loop_paths_ignore_patched_write(loop, pairs):
    # Data the loop sends for the transport (queued before the patch,
    # the close that flushes it) never goes through a patched write().
    a, b = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        tr.write(b"before")
        tr.write = lambda data: pytest.fail("called write")
        tr.close()
        exc = await proto.lost
        return exc, (pending(b) or b'')

    assert run(loop, main()) == (None, b"before")


def test_patched_method_is_called_back(loop, pairs):
    # The loop looks up _call_connection_lost on the transport, as
    # asyncio's close() does with call_soon(self._call_connection_lost).
    a, b = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        seen = []
        real = tr._call_connection_lost

        def spy(exc):
            seen.append(exc)
            real(exc)

        tr._call_connection_lost = spy
        tr.close()
        await proto.lost
        return seen

    assert run(loop, main()) == [None]


def test_instance_attributes(loop, pairs):
    a, b = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        tr.custom = 42
        d = vars(tr)
        tr.close()
        await proto.lost
        return tr.custom, d.get("custom"), hasattr(tr, "__dict__")

    assert run(loop, main()) == (42, 42, True)


def test_dict_cycle_is_collected(loop, pairs):
    a, b = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        tr.me = tr                      # a cycle through the dict
        tr.write = proto.data_received  # and through a bound method
        tr.close()
        await proto.lost
        return weakref.ref(tr)

    ref = run(loop, main())
    gc.collect()
    assert ref() is None


def test_patched_transport_keeps_its_identity(loop, pairs):
    # Still an asyncio.Transport, and the loop still knows the fd is used
    # by it (add_reader() refuses, as for any open transport).
    a, b = pairs()

    async def main():
        tr, proto = await connect(loop, a)
        tr.write = lambda data: None
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(a.fileno(), lambda: None)
        ok = isinstance(tr, asyncio.Transport)
        tr.close()
        await proto.lost
        return ok

    assert run(loop, main())
