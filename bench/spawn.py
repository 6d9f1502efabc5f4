"""Subprocess spawn + wait (issue 10): asyncio.create_subprocess_exec('true')
then wait(), back to back, on each loop.

    python bench/spawn.py                       # 2000 spawns, 5 rounds
    python bench/spawn.py --n 500 --concurrency 8 --pipes

(Not bench/subprocess.py: bench/ is sys.path[0] for every script here, and
that name would shadow the stdlib module they import.)

Each measurement runs in a fresh process, loops interleaved round by round;
--concurrency keeps that many children in flight.  --pipes gives the child
stdin/stdout/stderr pipes and uses communicate().  Reported per loop:
spawns/s (best and median of the rounds) and the parent's CPU per spawn
(user+system of the measuring process and its threads, not the children:
fork/exec is charged to the parent up to the exec).  --profile prints where
the parent's time goes (cProfile, eloop only).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from stream_in import new_loop  # bench/ is sys.path[0]


def single(args):
    import asyncio
    loop = new_loop(args.loops)
    asyncio.set_event_loop(loop)
    pipe = asyncio.subprocess.PIPE if args.pipes else None

    async def one():
        p = await asyncio.create_subprocess_exec(
            "true", stdin=pipe, stdout=pipe, stderr=pipe)
        if args.pipes:
            await p.communicate()
        else:
            await p.wait()
        if p.returncode != 0:
            raise SystemExit(f"VERIFICATION FAILED: returncode "
                             f"{p.returncode}")

    async def worker(count):
        for _ in range(count):
            await one()

    async def main():
        await worker(20)        # warm-up: imports, first thread, caches
        per, extra = divmod(args.n, args.concurrency)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(per + (i < extra))
                               for i in range(args.concurrency)))
        t1 = time.perf_counter()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return t1 - t0, cpu

    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
    seconds, cpu = loop.run_until_complete(main())
    if args.profile:
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats(
            "tottime").print_stats(25)
    asyncio.set_event_loop(None)
    loop.close()
    print(json.dumps({"seconds": seconds, "cpu": cpu}))


def measure(name, args):
    cmd = [sys.executable, __file__, "--single", "--loops", name,
           "--n", str(args.n), "--concurrency", str(args.concurrency)]
    cmd += ["--pipes"] * args.pipes + ["--profile"] * args.profile
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    if args.profile:
        print(f"== {name}\n{proc.stderr}")
    return json.loads(proc.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--pipes", action="store_true")
    ap.add_argument("--loops", default="eloop,asyncio,uvloop")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.single:
        return single(args)
    # A fresh process per measurement, the loops interleaved round by
    # round: each gets the same share of whatever else the machine runs.
    res = {}
    for _ in range(args.rounds):
        for name in args.loops.split(","):
            res.setdefault(name, []).append(measure(name, args))
    print(f"create_subprocess_exec('true') + "
          f"{'communicate() with 3 pipes' if args.pipes else 'wait()'}, "
          f"{args.n} spawns x {args.rounds} rounds, concurrency "
          f"{args.concurrency}, Python {sys.version.split()[0]}")
    print(f"{'loop':8} {'spawns/s best':>14} {'spawns/s median':>16} "
          f"{'CPU us/spawn best':>18} {'CPU us/spawn median':>20}")
    for name, runs in res.items():
        rates = [args.n / r["seconds"] for r in runs]
        cpus = [r["cpu"] / args.n * 1e6 for r in runs]
        print(f"{name:8} {max(rates):14.0f} {statistics.median(rates):16.0f} "
              f"{min(cpus):18.0f} {statistics.median(cpus):20.0f}")


if __name__ == "__main__":
    main()
