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

    ping_pong(loop, setup, lambda ct: ct.write(msg), n)
    print(f"echo {loop_name} n={n} size={size} ok")


def ping_pong(loop, setup, send, n):
    """Runs setup(200) for the transports (ct, st, done), warms up, then
    counts the run of n round trips that send(ct) starts (shared with
    udp_callgrind.py)."""
    # Warm up (first connections, freelists), untimed.
    ct, st, done = loop.run_until_complete(setup(200))
    send(ct)
    loop.run_until_complete(done)
    client = ct.get_protocol()
    client.left = n
    client.done = done = loop.create_future()

    async def measured():
        send(ct)
        await done

    operator.call(loop.run_until_complete, measured())
    ct.close()
    st.close()
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()


def counted_script(script, loop_name, n, size, extra=()):
    """Ir of `script --single` for one loop (shared with udp_callgrind.py)."""
    fd, out = tempfile.mkstemp(prefix=f"callgrind.{loop_name}.")
    os.close(fd)
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        r = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             "--toggle-collect=_operator_call",
             f"--callgrind-out-file={out}", sys.executable,
             script, "--single", "--loops", loop_name,
             "--n", str(n), "--size", str(size), *extra],
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


def main(script=__file__, doc=__doc__, run=None, what="round trip"):
    """The command line (shared with udp_callgrind.py)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--loops", default="eloop,asyncio,uvloop")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--single", action="store_true")
    if run is None:
        ap.add_argument("--tls", action="store_true",
                        help="both ends over TLS")
    args = ap.parse_args()
    loops = args.loops.split(",")
    use_tls = getattr(args, "tls", False)
    if args.single:
        if run is None:
            single(loops[0], args.n, args.size, use_tls)
        else:
            run(loops[0], args.n, args.size)
        return
    if use_tls:
        what = "TLS " + what
    print(f"| loop | Ir per {what} ({args.size} B, n={args.n}) |")
    print("|---|---:|")
    for name in loops:
        ir = counted_script(os.path.abspath(script), name, args.n, args.size,
                            ["--tls"] if use_tls else ())
        shown = f"{ir / args.n:,.0f}" if ir else "failed"
        print(f"| {name} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
