"""Instructions per echo round trip, counted by callgrind.

    python bench/echo_callgrind.py                 # eloop, asyncio, uvloop
    python bench/echo_callgrind.py --loops eloop --n 20000 --size 100

A client and a server protocol, both in one loop, over a socketpair made
into transports (create_connection(sock=) and connect_accepted_socket()):
the client writes SIZE bytes, the server echoes what it gets, the client
writes again once all SIZE came back, N times.  One round trip is two
write() calls, two reads and two data_received() calls, plus the loop
iterations between them: the per-message cost of a transport.

Each loop runs in its own `valgrind --tool=callgrind` process with
collection off at start and on only inside operator.call (the C symbol
_operator_call), which encloses the measured run_until_complete() and
nothing else, as bench/callgrind.sh does for micro.py.  Instruction counts
are deterministic to a fraction of a percent, so Ir per round trip is the
number to compare changes with.  --single runs one measurement without
valgrind (what the valgrind child runs).

--tls makes both ends TLS 1.3 (ssl= on both calls, bench/tls.py's
certificate): the per-message cost of a loop's TLS record path, twice
(client and server), encryption included.
"""

import argparse
import asyncio
import operator
import os
import socket
import subprocess
import sys
import tempfile

from stream_in import new_loop     # bench/ is sys.path[0]


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.write = transport.write

    def data_received(self, data):
        self.write(data)


class Client(asyncio.Protocol):
    def __init__(self, msg, n, done):
        self.msg = msg
        self.left = n
        self.got = 0
        self.done = done

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.got += len(data)
        if self.got < len(self.msg):
            return
        self.got = 0
        self.left -= 1
        if self.left:
            self.transport.write(self.msg)
        else:
            self.done.set_result(None)


def tls_contexts():
    import ssl
    import tls
    tls.build()
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(tls.CERT, tls.KEY)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    return {"ssl": cctx, "server_hostname": "localhost"}, {"ssl": sctx}


def single(loop_name, n, size, use_tls=False):
    loop = new_loop(loop_name)
    a, b = socket.socketpair()
    msg = b"x" * size
    ckw, skw = tls_contexts() if use_tls else ({}, {})

    async def setup(n):
        done = loop.create_future()
        client = Client(msg, n, done)
        # Both at once: each TLS end waits for the other's handshake.
        (ct, _), (st, _) = await asyncio.gather(
            loop.create_connection(lambda: client, sock=a, **ckw),
            loop.connect_accepted_socket(Echo, sock=b, **skw))
        return ct, st, done

    # Warm up (first connections, freelists), untimed.
    ct, st, done = loop.run_until_complete(setup(200))
    ct.write(msg)
    loop.run_until_complete(done)
    client = ct.get_protocol()
    client.left = n
    client.done = done = loop.create_future()

    async def measured():
        ct.write(msg)
        await done

    operator.call(loop.run_until_complete, measured())
    ct.close()
    st.close()
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    print(f"echo {loop_name} n={n} size={size} ok")


def counted(loop_name, n, size, use_tls=False):
    fd, out = tempfile.mkstemp(prefix=f"callgrind.echo.{loop_name}.")
    os.close(fd)
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        r = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             "--toggle-collect=_operator_call",
             f"--callgrind-out-file={out}", sys.executable,
             os.path.abspath(__file__), "--single", "--loops", loop_name,
             "--n", str(n), "--size", str(size)]
            + (["--tls"] if use_tls else []),
            capture_output=True, text=True, env=env)
        if r.returncode != 0 or " ok" not in r.stdout:
            sys.stderr.write(r.stdout + r.stderr)
            return None
        with open(out) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    finally:
        os.unlink(out)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", default="eloop,asyncio,uvloop")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--tls", action="store_true", help="both ends over TLS")
    args = ap.parse_args()
    loops = args.loops.split(",")
    if args.single:
        single(loops[0], args.n, args.size, args.tls)
        return
    what = "TLS " if args.tls else ""
    print(f"| loop | Ir per {what}round trip ({args.size} B, n={args.n}) |")
    print("|---|---:|")
    for name in loops:
        ir = counted(name, args.n, args.size, args.tls)
        shown = f"{ir / args.n:,.0f}" if ir else "failed"
        print(f"| {name} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
