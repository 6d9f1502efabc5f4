"""Pipe throughput (issue 10): a child writes --mib MiB into a pipe that
the loop reads with connect_read_pipe() ("read" rows); and the loop writes
--mib MiB with connect_write_pipe() into a child that reads them ("write"
rows).

    python bench/pipe.py                        # 1 GiB, 3 rounds, 3 loops
    python bench/pipe.py --mib 256 --rounds 5 --loops eloop,uvloop
    python bench/pipe.py --modes read

The child is `python -c` writing one pre-built 1 MiB buffer in a loop
(blocking os.write: the kernel copy is all it does), or for "write" rows
reading 1 MiB at a time with os.readinto() into one buffer.  The loop's
writer writes 1 MiB bytes objects while its protocol is not paused
(pause_writing()/resume_writing(), asyncio's flow control).  Each measurement runs
in a fresh reader process, loops interleaved round by round.  The reader's
protocol only counts bytes.  Reported per loop: MiB/s (best and median of
the rounds), the reader's CPU seconds per GiB (user+system, its process
only: the figure that compares loops when the writer saturates its core)
and the mean data_received() size.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from stream_in import new_loop  # bench/ is sys.path[0]

WRITER = """
import os, sys
buf = b"x" * (1 << 20)
for _ in range(int(sys.argv[1])):
    os.write(1, buf)
"""

READER = """
import os, sys
buf = bytearray(1 << 20)
n = 0
with open(0, "rb", buffering=0) as f:
    while True:
        k = f.readinto(buf)
        if not k:
            break
        n += k
sys.exit(0 if n == int(sys.argv[1]) << 20 else 1)
"""


def single_write(args):
    import asyncio
    loop = new_loop(args.loops)
    done = loop.create_future()
    resumed = None
    chunk = b"y" * (1 << 20)

    class Feed(asyncio.Protocol):
        paused = False

        def pause_writing(self):
            self.paused = True

        def resume_writing(self):
            self.paused = False
            if resumed is not None and not resumed.done():
                resumed.set_result(None)

        def connection_lost(self, exc):
            done.set_result(exc)

    proc = subprocess.Popen([sys.executable, "-c", READER, str(args.mib)],
                            stdin=subprocess.PIPE)

    async def main():
        nonlocal resumed
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        tr, proto = await loop.connect_write_pipe(Feed, proc.stdin)
        for _ in range(args.mib):
            if proto.paused:
                resumed = loop.create_future()
                await resumed
            tr.write(chunk)
        tr.close()
        await done
        t1 = time.perf_counter()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return t1 - t0, cpu

    seconds, cpu = loop.run_until_complete(main())
    loop.close()
    if proc.wait() != 0:
        raise SystemExit("VERIFICATION FAILED: the reader got another size")
    print(json.dumps({"seconds": seconds, "cpu": cpu}))


def single(args):
    import asyncio
    loop = new_loop(args.loops)
    done = loop.create_future()

    class Count(asyncio.Protocol):
        nbytes = 0
        reads = 0

        def data_received(self, data):
            self.reads += 1
            self.nbytes += len(data)

        def connection_lost(self, exc):
            done.set_result(exc)

    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(args.mib)],
                            stdout=subprocess.PIPE)

    async def main():
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        _, proto = await loop.connect_read_pipe(Count, proc.stdout)
        await done
        t1 = time.perf_counter()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return proto, t1 - t0, cpu

    proto, seconds, cpu = loop.run_until_complete(main())
    loop.close()
    proc.wait()
    if proto.nbytes != args.mib << 20:
        raise SystemExit(f"VERIFICATION FAILED: {proto.nbytes} bytes")
    print(json.dumps({"seconds": seconds, "cpu": cpu,
                      "read_mean": proto.nbytes / proto.reads}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loops", default="eloop,asyncio,uvloop")
    ap.add_argument("--modes", default="read,write")
    ap.add_argument("--single", choices=("read", "write"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.single:
        return single(args) if args.single == "read" else single_write(args)
    loops = args.loops.split(",")
    modes = args.modes.split(",")
    res = {(m, name): [] for m in modes for name in loops}
    for _ in range(args.rounds):
        for m in modes:
            for name in loops:
                out = subprocess.run(
                    [sys.executable, __file__, "--single", m, "--loops",
                     name, "--mib", str(args.mib)],
                    check=True, capture_output=True, text=True).stdout
                res[m, name].append(json.loads(out))
    gib = args.mib / 1024
    print(f"{args.mib} MiB through a pipe, {args.rounds} rounds, "
          f"Python {sys.version.split()[0]}")
    print(f"{'mode':6} {'loop':8} {'MiB/s best':>11} {'MiB/s median':>13} "
          f"{'CPU s/GiB best':>15} {'CPU s/GiB median':>17} "
          f"{'read mean':>10}")
    for m in modes:
        for name in loops:
            rates = [args.mib / r["seconds"] for r in res[m, name]]
            cpus = [r["cpu"] / gib for r in res[m, name]]
            mean = (f"{statistics.mean(r['read_mean'] for r in res[m, name]):10.0f}"
                    if m == "read" else f"{'-':>10}")
            print(f"{m:6} {name:8} {max(rates):11.0f} "
                  f"{statistics.median(rates):13.0f} "
                  f"{min(cpus):15.3f} {statistics.median(cpus):17.3f} "
                  f"{mean}")


if __name__ == "__main__":
    main()
