"""What a burst of callbacks leaves in memory once its loop is closed.

Each loop runs in its own fresh process: after the imports, the process's
VmRSS is read; then a loop is made, runs BURSTS bursts of N pending
call_soon(cb) (as bench/micro.py's call_soon benchmark: all N queued by one
callback, then run in one iteration), is closed, gc.collect() runs, and
VmRSS is read again.  Reported: that growth (MiB), and the peak (VmHWM)
growth, best (lowest) and median over --rounds fresh processes per loop,
loops interleaved.

    python bench/burst_rss.py [--loops eloop,asyncio,uvloop] [--n 200000]
    python bench/burst_rss.py --eloop-path /some/other/checkout   # "before"
"""
import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, gc, itertools, sys
name, n, bursts, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if name == "eloop":
    sys.path.insert(0, path)
    import eloop
    factory = eloop.new_event_loop
elif name == "uvloop":
    import uvloop
    factory = uvloop.new_event_loop
else:
    factory = asyncio.new_event_loop

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB

gc.collect()
before = status("VmRSS")
loop = factory()
cb = itertools.count().__next__

def driver():
    call_soon = loop.call_soon
    for _ in range(n):
        call_soon(cb)
    call_soon(loop.stop)

for _ in range(bursts):
    loop.call_soon(driver)
    loop.run_forever()
loop.close()
del loop
gc.collect()
print(before, status("VmRSS"), status("VmHWM"))
"""


def measure(name, n, bursts, path):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(n), str(bursts), path],
        check=True, capture_output=True, text=True).stdout.split()
    before, after, hwm = map(int, out)
    return (after - before) / 1024, (hwm - before) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default="eloop,asyncio,uvloop")
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--bursts", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--eloop-path", default=str(REPO_ROOT),
                    help="directory holding the eloop package to measure")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    loops = args.loops.split(",")
    res = {name: [] for name in loops}
    for r in range(args.rounds):
        order = loops[r % len(loops):] + loops[:r % len(loops)]
        for name in order:
            res[name].append(measure(name, args.n, args.bursts,
                                     args.eloop_path))
    print(f"{args.bursts} bursts of {args.n} call_soon, then loop.close() "
          f"and gc.collect(); {args.rounds} fresh processes per loop; MiB")
    print("| loop | RSS kept, best | RSS kept, median | peak growth, best "
          "| peak growth, median |")
    print("|---|---:|---:|---:|---:|")
    for name in loops:
        kept = [k for k, _ in res[name]]
        peak = [p for _, p in res[name]]
        print(f"| {name} | {min(kept):.1f} | {statistics.median(kept):.1f} "
              f"| {min(peak):.1f} | {statistics.median(peak):.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": res}, f, indent=1)


if __name__ == "__main__":
    main()
