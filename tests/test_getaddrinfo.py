"""loop.getaddrinfo()/getnameinfo() against the socket module, around the
inputs a loop may answer without a lookup (numeric hosts and ports).

eloop builds those answers itself, so every case compares the exact type
and repr of every part of the result -- which tells AddressFamily.AF_INET
from 2 and '80' from 80 -- or the exception's exact type and args, with socket.getaddrinfo()
called directly as the reference.  Hosts that need a lookup are left to
test_sock.py; None is here as a neighbour of the numeric cases (it
resolves to loopback or the wildcard address, with no lookup).
"""

import asyncio
import itertools
import socket

import pytest

from _netutil import run


class _Str(str):
    pass


# Hosts glibc answers without a lookup.
HOSTS = [
    "127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3", b"127.0.0.1",
    _Str("127.0.0.1"),
    # glibc parses these as IPv4 too (inet_aton), inet_pton does not.
    "127.1", "0x7f.0.0.1", "010.0.0.1", "1.2.3",
    # IPv6
    "::", "::1", "::ffff:127.0.0.1", "::FFFF:7F00:1", "0:0:0:0:0:0:0:1",
    "FE80::1", "2001:db8::1:0:0:1", "::1.2.3.4", b"::1",
    "fe80::1%lo", "fe80::1%1", "::1%1",
    # loopback; not an accepted type
    None, 123, bytearray(b"127.0.0.1"),
]

# Not addresses: with flags=0 the resolver would ask DNS (which may time
# out here), so these are tried with AI_NUMERICHOST, which fails at once.
NOT_NUMERIC = [
    "256.1.1.1", "1.2.3.4.5", " 1.2.3.4", "1.2.3.4 ", "", "1.2.3.4\x00",
    "\u0661.2.3.4", "::1%", "1::2::3", ":::", "[::1]", "localhost", b"",
]

PORTS = [
    None, 0, 1, 80, 65535, 65536, 70000, -1, 2 ** 70, True, 80.0,
    socket.AF_INET,   # an int subclass: OSError in socket.getaddrinfo
    "80", "080", "0", "65535", "65536", "99999", "123456", "+80", " 80",
    "80 ", "", "http", "\u0668\u0660", b"80", b"http", b"",
]

FAMILIES = [0, socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, -1]
TYPES = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW,
         socket.SOCK_SEQPACKET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK]
PROTOS = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP, socket.IPPROTO_SCTP,
          socket.IPPROTO_ICMP]
FLAGS = [0, socket.AI_PASSIVE, socket.AI_NUMERICHOST, socket.AI_NUMERICSERV,
         socket.AI_PASSIVE | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
         socket.AI_CANONNAME, socket.AI_ADDRCONFIG, socket.AI_V4MAPPED,
         socket.AI_V4MAPPED | socket.AI_ALL, 0x10000]


def _typed(x):
    """x with the exact type of every part (IntEnum members compare equal
    to ints, a str subclass to str)."""
    if type(x) in (list, tuple):
        return type(x), [_typed(item) for item in x]
    return type(x), repr(x)


def _outcome(fn, *args, **kwargs):
    try:
        return ("ok", _typed(fn(*args, **kwargs)))
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return ("error", type(exc), exc.args)


async def _aoutcome(fn, *args, **kwargs):
    try:
        return ("ok", _typed(await fn(*args, **kwargs)))
    except Exception as exc:  # noqa: BLE001
        return ("error", type(exc), exc.args)


def _check_getaddrinfo(loop, cases):
    async def main():
        # Concurrently: on asyncio every call is a trip to the executor.
        return await asyncio.gather(*[
            _aoutcome(loop.getaddrinfo, h, p, family=f, type=t, proto=pr,
                      flags=fl)
            for h, p, f, t, pr, fl in cases])

    got = run(loop, main(), timeout=60)
    expected = [_outcome(socket.getaddrinfo, *case) for case in cases]
    bad = [(c, g, e) for c, g, e in zip(cases, got, expected) if g != e]
    assert not bad, f"{len(bad)} of {len(cases)} differ, first: {bad[:3]}"
    loop.run_until_complete(loop.shutdown_default_executor())


def test_hosts_and_ports(loop):
    _check_getaddrinfo(loop, [(h, p, 0, 0, 0, 0)
                              for h, p in itertools.product(HOSTS, PORTS)])


def test_not_numeric_hosts(loop):
    _check_getaddrinfo(loop, [
        (h, p, 0, t, 0, socket.AI_NUMERICHOST)
        for h, p, t in itertools.product(NOT_NUMERIC, (None, 80, "80"),
                                         (0, socket.SOCK_STREAM))])


def test_hosts_and_ports_stream(loop):
    # The benchmark's call, over every host and port.
    _check_getaddrinfo(loop, [(h, p, 0, socket.SOCK_STREAM, 0, 0)
                              for h, p in itertools.product(HOSTS, PORTS)])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:1.2.3.4",
                                  b"0.0.0.0", None, "fe80::1%1"])
def test_family_type_proto_flags(loop, host):
    _check_getaddrinfo(loop, [
        (host, port, f, t, pr, fl)
        for port, f, t, pr, fl in itertools.product(
            (None, 8080, "8080"), FAMILIES, TYPES, PROTOS, FLAGS)])


def test_argument_types(loop):
    # Non-int family/type/proto/flags, as socket.getaddrinfo() sees them.
    odd = [None, "2", 2.0, 2 ** 40, True]
    cases = []
    for i, value in itertools.product(range(4), odd):
        args = [0, 0, 0, 0]
        args[i] = value
        cases.append(("127.0.0.1", 80, *args))
    _check_getaddrinfo(loop, cases)


def test_result_objects(loop):
    async def main():
        return await loop.getaddrinfo("::1", "80", type=socket.SOCK_DGRAM)

    [(family, type_, proto, canon, addr)] = run(loop, main())
    assert family is socket.AF_INET6 and type_ is socket.SOCK_DGRAM
    assert type(proto) is int and type(canon) is str
    assert addr == ("::1", 80, 0, 0)
    assert [type(x) for x in addr] == [str, int, int, int]


def test_closed_loop(make_loop):
    loop = make_loop()
    loop.close()
    for host in ("127.0.0.1", "localhost"):
        coro = loop.getaddrinfo(host, 80)
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            coro.send(None)


def test_awaitable_starts_when_awaited(loop):
    # The method is `async def` in asyncio: calling it does nothing yet,
    # and the coroutine can be given to create_task().
    async def main():
        coro = loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert asyncio.iscoroutine(coro)
        task = loop.create_task(coro)
        return await task

    assert run(loop, main()) == socket.getaddrinfo(
        "127.0.0.1", 80, type=socket.SOCK_STREAM)


NI_FLAGS = [0, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV,
            socket.NI_NUMERICHOST | socket.NI_NUMERICSERV | socket.NI_DGRAM,
            socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
            | socket.NI_NAMEREQD]
SOCKADDRS = [("127.0.0.1", 80), ("127.0.0.1", 0), ("::1", 443),
             ("::1", 443, 0, 0), ("::1", 443, 0, 1), ("fe80::1%1", 80),
             ("127.0.0.1", 70000), ("127.0.0.1", -1), ("127.0.0.1", "80"),
             ("1.2.3", 80), ("127.0.0.1",), [], "x",
             ("127.0.0.1", 80, 1, 2, 3)]


def test_getnameinfo_numeric(loop):
    # Numeric flags only (no reverse lookup), and bad inputs, whose errors
    # must match socket.getnameinfo()'s.
    cases = [(sa, fl) for sa, fl in itertools.product(SOCKADDRS, NI_FLAGS)
             if fl]
    cases += [(("127.0.0.1", 80), "x"), (("127.0.0.1", 80), 2 ** 40)]

    async def main():
        return await asyncio.gather(*[_aoutcome(loop.getnameinfo, sa, fl)
                                      for sa, fl in cases])

    got = run(loop, main())
    expected = [_outcome(socket.getnameinfo, sa, fl) for sa, fl in cases]
    bad = [(c, g, e) for c, g, e in zip(cases, got, expected) if g != e]
    assert not bad, bad[:3]
    loop.run_until_complete(loop.shutdown_default_executor())


def test_numeric_answers_need_no_thread(impl, loop):
    # eloop-only by nature: asyncio sends every call to its executor.  The
    # results themselves are compared above, on both loops.
    if impl.name != "eloop":
        pytest.skip("asyncio resolves in its executor by design")

    async def main():
        await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        await loop.getaddrinfo(b"::1", "443", family=socket.AF_INET6)
        await loop.getaddrinfo(None, 80, flags=socket.AI_PASSIVE)
        await loop.getnameinfo(("::1", 80),
                               socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)

    run(loop, main())
    assert loop._default_executor is None
