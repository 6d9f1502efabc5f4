"""A client receiving a large stream of small messages (issue 9, point 11).

    python bench/stream_in.py                      # 5 rounds, eloop/asyncio/uvloop
    python bench/stream_in.py --rows 200000 --rounds 2 --loops eloop,uvloop

What asyncpg's `COPY ... TO STDOUT` does to a loop: the server sends rows
as fast as the kernel takes them, each framed like PostgreSQL's CopyData
message (b'd', a 4-byte big-endian length that counts itself, the row),
and the client's Protocol accumulates data_received() chunks in a
bytearray and splits the messages off.  A server process (plain Python,
blocking sendall() of a stream built in advance, so it is never the
bottleneck) serves one connection per measurement; each measurement runs
in a fresh client process, loops interleaved round by round.

Two parsers (--parser):
  fixed   rows of one size (--row-bytes); every frame's type and length
          bytes are checked with slice comparisons, so the parse costs C
          speed per row, like asyncpg's Cython parser, and the loop's own
          per-read cost (read size, allocation, copies) shows;
  python  rows of varying size (--row-bytes +/- 25%), split one message
          at a time in Python, as a pure-Python protocol would.

--asyncpg DSN measures asyncpg itself instead: COPY of a table of --rows
rows (created on that server) TO STDOUT into an async sink that counts the
rows; asyncpg must be importable.

Reported per loop: rows/s (best and median of the rounds), the client's
CPU time per row (user+system, its process only) and its minor page
faults per round, and the mean data_received() size.
"""

import argparse
import json
import os
import random
import resource
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- the stream ----------------------------------------------------------

def build_stream(rows, row_bytes, varying, seed=1):
    """rows CopyData messages of about row_bytes each (framing included)."""
    rnd = random.Random(seed)
    out = bytearray()
    body_len = row_bytes - 5
    for i in range(rows):
        n = body_len
        if varying:
            n = max(1, body_len + rnd.randint(-body_len // 4, body_len // 4))
        body = (b"%d\t" % i).ljust(n, b"x")[:n]
        out += b"d" + struct.pack("!i", n + 4) + body
    return bytes(out)


def serve(args):
    """The server process: one complete stream per connection."""
    data = build_stream(args.rows, args.row_bytes, args.parser == "python")
    srv = socket.create_server(("127.0.0.1", 0))
    print(srv.getsockname()[1], len(data), flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            try:
                conn.sendall(data)
            except OSError:
                pass


# ---- the client ----------------------------------------------------------

def new_loop(name):
    import asyncio
    if name == "eloop":
        sys.path.insert(0, os.path.dirname(HERE))
        import eloop
        return eloop.new_event_loop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def make_protocol(asyncio, parser, row_bytes, done):
    class CopyOut(asyncio.Protocol):
        def __init__(self):
            self.buf = bytearray()
            self.rows = 0
            self.reads = 0
            self.nbytes = 0

        def data_received(self, data):
            self.reads += 1
            self.nbytes += len(data)
            self.buf += data
            self.split()

        def connection_lost(self, exc):
            if self.buf:
                done.set_exception(RuntimeError(
                    f"{len(self.buf)} bytes of a partial message left"))
            else:
                done.set_result(self.rows)

    class Fixed(CopyOut):
        frame = b"d" + struct.pack("!i", row_bytes - 1)

        def split(self):
            buf = self.buf
            n = len(buf) // row_bytes
            if not n:
                return
            end = n * row_bytes
            # Every frame header of the n rows, checked at C speed.
            for k, byte in enumerate(self.frame):
                if buf[k:end:row_bytes] != bytes((byte,)) * n:
                    raise ValueError("bad CopyData framing")
            del buf[:end]
            self.rows += n

    class Python(CopyOut):
        def split(self):
            buf = self.buf
            pos, size, rows = 0, len(buf), 0
            unpack = struct.unpack_from
            while size - pos >= 5:
                if buf[pos] != 0x64:
                    raise ValueError("bad CopyData framing")
                n = unpack("!i", buf, pos + 1)[0]
                if size - pos < n + 1:
                    break
                pos += n + 1
                rows += 1
            del buf[:pos]
            self.rows += rows

    return Fixed() if parser == "fixed" else Python()


PG_TABLE = "eloop_stream_in"


def single_asyncpg(args):
    """COPY (a table of args.rows rows) TO STDOUT with asyncpg."""
    import asyncpg
    loop = new_loop(args.loops)
    seen = {"rows": 0, "chunks": 0, "bytes": 0}

    async def sink(data):
        seen["chunks"] += 1
        seen["bytes"] += len(data)
        seen["rows"] += data.count(b"\n")

    async def main():
        conn = await asyncpg.connect(args.asyncpg)
        try:
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            c0, t0 = time.process_time(), time.perf_counter()
            await conn.copy_from_table(PG_TABLE, output=sink)
            t1, c1 = time.perf_counter(), time.process_time()
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            await conn.close()
        return t1 - t0, c1 - c0, ru1.ru_minflt - ru0.ru_minflt

    seconds, cpu, minflt = loop.run_until_complete(main())
    loop.close()
    if seen["rows"] != args.rows:
        raise SystemExit(f"VERIFICATION FAILED: {seen['rows']} rows, "
                         f"expected {args.rows}")
    print(json.dumps({
        "rows": seen["rows"], "seconds": seconds, "cpu": cpu,
        "minflt": minflt, "reads": seen["chunks"],
        "read_mean": seen["bytes"] / seen["chunks"],
    }))


def asyncpg_setup(args):
    """Creates the table COPY reads, unless it has the rows already."""
    import asyncio
    import asyncpg

    async def main():
        conn = await asyncpg.connect(args.asyncpg)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_class WHERE relname = $1", PG_TABLE)
            if n:
                n = await conn.fetchval(f"SELECT count(*) FROM {PG_TABLE}")
            if n != args.rows:
                await conn.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")
                await conn.execute(
                    f"CREATE TABLE {PG_TABLE} AS SELECT i, "
                    f"md5(i::text) AS h, i * 0.5 AS f "
                    f"FROM generate_series(1, {args.rows}) i")
        finally:
            await conn.close()

    asyncio.run(main())


def single(args):
    if args.asyncpg:
        return single_asyncpg(args)
    import asyncio
    loop = new_loop(args.loops)
    done = loop.create_future()
    proto = make_protocol(asyncio, args.parser, args.row_bytes, done)

    async def main():
        await loop.create_connection(lambda: proto, "127.0.0.1", args.port)
        return await done

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    c0, t0 = time.process_time(), time.perf_counter()
    rows = loop.run_until_complete(main())
    t1, c1 = time.perf_counter(), time.process_time()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    loop.close()
    if rows != args.rows:
        raise SystemExit(f"VERIFICATION FAILED: {rows} rows, "
                         f"expected {args.rows}")
    print(json.dumps({
        "rows": rows, "seconds": t1 - t0, "cpu": c1 - c0,
        "minflt": ru1.ru_minflt - ru0.ru_minflt,
        "reads": proto.reads, "read_mean": proto.nbytes / proto.reads,
    }))


# ---- the driver ----------------------------------------------------------

def loop_available(name):
    if name == "eloop":
        sys.path.insert(0, os.path.dirname(HERE))
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", default="eloop,asyncio,uvloop")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--row-bytes", type=int, default=64)
    ap.add_argument("--parser", choices=("fixed", "python"), default="fixed")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--asyncpg", metavar="DSN",
                    help="measure asyncpg's COPY ... TO STDOUT from this "
                         "PostgreSQL server instead (a table of --rows "
                         "rows is created there)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args)
    if args.single:
        return single(args)

    loops = [name for name in args.loops.split(",") if loop_available(name)]
    common = ["--rows", str(args.rows), "--row-bytes", str(args.row_bytes),
              "--parser", args.parser]
    if args.asyncpg:
        asyncpg_setup(args)
        common += ["--asyncpg", args.asyncpg]
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", *common],
        stdout=subprocess.PIPE, text=True)
    try:
        port, nbytes = map(int, server.stdout.readline().split())
        samples = {name: [] for name in loops}
        for _ in range(args.rounds):
            for name in loops:
                r = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--single",
                     "--loops", name, "--port", str(port), *common],
                    capture_output=True, text=True, check=False)
                if r.returncode != 0:
                    sys.exit(f"{name} failed:\n{r.stdout}{r.stderr}")
                samples[name].append(json.loads(r.stdout))
    finally:
        server.kill()
        server.wait()

    if args.asyncpg:
        print(f"asyncpg COPY {PG_TABLE} TO STDOUT, {args.rows:,} rows, "
              f"{args.rounds} rounds, Python {sys.version.split()[0]} "
              f"(mean read: the sink's chunk size)")
    else:
        print(f"{args.rows:,} rows of {args.row_bytes} B "
              f"({nbytes / 1e6:.0f} MB), parser={args.parser}, "
              f"{args.rounds} rounds, Python {sys.version.split()[0]}")
    print()
    print("| loop | rows/s best | rows/s median | client CPU ns/row (best) "
          "| minor faults (median) | mean read (KiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in loops:
        s = samples[name]
        rates = [x["rows"] / x["seconds"] for x in s]
        cpu = min(x["cpu"] / x["rows"] for x in s) * 1e9
        flt = statistics.median(x["minflt"] for x in s)
        rd = statistics.median(x["read_mean"] for x in s) / 1024
        print(f"| {name} | {max(rates) / 1e6:.2f}M | "
              f"{statistics.median(rates) / 1e6:.2f}M | {cpu:.0f} | "
              f"{flt:,.0f} | {rd:.0f} |")


if __name__ == "__main__":
    main()
