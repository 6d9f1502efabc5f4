#!/usr/bin/env python3
"""Where a TLS server's CPU goes per new connection (tls_connect's load:
connect, full handshake, 64 B echo, close_notify both ways, close).

bench/tls.py times the tls_connect row, and on a shared machine its CPU per
connection swings with the host's speed.  This tool counts what does not:
system calls and page faults per connection (perf's syscall tracepoints on
the server process), and with --callgrind the server's user-space
instructions per connection under callgrind, split by object (libcrypto,
libssl, the interpreter, _eloop, uvloop, libc, ...).  Servers and the load
generator (tlsgen -m connect) are tls.py's; the machinery is bulk_probe.py's.

    python bench/connect_probe.py                            # every loop and C
    python bench/connect_probe.py --callgrind --loops eloop,uvloop,asyncio

--callgrind runs each Python server under callgrind twice, for --cg-conns and
for a tenth of them, and reports the difference per connection, so start-up
cancels out; the files stay in the printed directory for callgrind_annotate.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.dont_write_bytecode = True
import bulk_probe  # noqa: E402
import net  # noqa: E402
import tls  # noqa: E402

SYSCALLS = ("accept4", "accept", "sendto", "sendmsg", "recvfrom", "recvmsg", "read", "write",
            "writev", "close", "shutdown", "epoll_pwait",
            "epoll_wait", "epoll_ctl", "setsockopt", "getsockname", "getpeername",
            "ioctl", "fcntl", "brk", "mmap", "munmap", "mprotect", "getrandom")


def load(port, n, slots, pin=True):
    """n connections (plus up to `slots` finishing after the count): the
    number the load generator completed."""
    cmd = [str(net.BUILD_DIR / "tlsgen"), "-m", "connect", "-p", str(port), "-c", str(slots),
           "-s", "64", "-w", "0", "-d", "100000", "-n", str(n), "-T", "120"]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"tlsgen failed: {r.stderr.strip()}")
    return json.loads(r.stdout)["total_count"]


def syscalls(args, loop):
    proc, port = bulk_probe.start(bulk_probe.server_cmd(loop, "echo", "protocol", True),
                                  ["taskset", "-c", "0"])
    try:
        load(port, 200, args.slots)        # warm up: first connections import and allocate
        ev = ",".join("syscalls:sys_enter_" + e for e in SYSCALLS) + ",page-faults"
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", ev, "-p", str(proc.pid)],
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        c0 = bulk_probe.cpu_seconds(proc.pid)
        done = load(port, args.conns, args.slots)
        c1 = bulk_probe.cpu_seconds(proc.pid)
        perf.send_signal(bulk_probe.signal.SIGINT)
        _, err = perf.communicate()
    finally:
        bulk_probe.stop(proc)
    counts = {}
    for ln in err.splitlines():
        f = ln.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            counts[f[2].replace("syscalls:sys_enter_", "")] = int(f[0])
    return (c1 - c0) / done, {k: v / done for k, v in counts.items()}


def by_object(path):
    """Self instructions per object file (shortened) of a callgrind out file."""
    per = defaultdict(int)
    r = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                        "--auto=no", path], capture_output=True, text=True)
    for ln in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+.*\[([^\]]+)\]$", ln)
        if m:
            per[_short(m.group(2))] += int(m.group(1).replace(",", ""))
    return per


def _short(obj):
    o = obj if "uvloop/" in obj else os.path.basename(obj)
    for key, name in (("libcrypto", "libcrypto"), ("libssl", "libssl"), ("_eloop", "_eloop"),
                      ("uvloop/", "uvloop"), ("libuv", "uvloop"), ("libc.so", "libc"),
                      ("libc-", "libc"), ("ld-linux", "ld.so"), ("python", "python"),
                      ("libpython", "python"), ("_ssl", "_ssl"), ("_asyncio", "_asyncio")):
        if key in o:
            return name
    return "other"


def callgrind_run(loop, n, slots, out):
    cmd = bulk_probe.server_cmd(loop, "echo", "protocol", True)
    proc, port = bulk_probe.start(cmd, ["valgrind", "--tool=callgrind", "--dump-instr=no",
                                        f"--callgrind-out-file={out}"])
    try:
        done = load(port, n, slots, pin=False)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True)
        time.sleep(1)
    finally:
        bulk_probe.stop(proc)
    files = sorted(Path(out).parent.glob(Path(out).name + "*"))
    total, objs = 0, defaultdict(int)
    for p in files:
        with open(p) as f:
            t = max((int(ln.split()[1]) for ln in f if ln.startswith(("summary:", "totals:"))),
                    default=0)
        total += t
        for k, v in by_object(str(p)).items():
            objs[k] += v
    return done, total, objs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loops", default="eloop,asyncio,uvloop,C")
    p.add_argument("--conns", type=int, default=5000, help="connections counted (perf)")
    p.add_argument("--slots", type=int, default=32, help="concurrent connections (tls.py's 32)")
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--cg-conns", type=int, default=1000)
    p.add_argument("--no-perf", action="store_true")
    args = p.parse_args()
    tls.build()
    loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    print(f"tls_connect per connection ({args.slots} slots)\n")
    if shutil.which("perf") and not args.no_perf:
        rows = {loop: syscalls(args, loop) for loop in loops}
        names = [s for s in SYSCALLS + ("page-faults",)
                 if any(r[1].get(s, 0) >= 0.005 for r in rows.values())]
        print("| loop | CPU us | " + " | ".join(names) + " |")
        print("|---|---:|" + "---:|" * len(names))
        for loop, (cpu, c) in rows.items():
            print(f"| {loop} | {cpu * 1e6:.0f} | "
                  + " | ".join(f"{c.get(s, 0):.2f}" for s in names) + " |", flush=True)
        print("\n(CPU us is one run on a possibly shared machine; the counts repeat)")
    if args.callgrind:
        tmp = tempfile.mkdtemp(prefix="connect-cg-")
        print(f"\ncallgrind files in {tmp}\n")
        res = {}
        for loop in loops:
            if loop == net.C_NAME:
                continue
            d1, t1, o1 = callgrind_run(loop, args.cg_conns, args.slots, f"{tmp}/{loop}.big")
            d0, t0, o0 = callgrind_run(loop, args.cg_conns // 10, args.slots,
                                       f"{tmp}/{loop}.small")
            n = d1 - d0
            res[loop] = ((t1 - t0) / n, {k: (o1[k] - o0.get(k, 0)) / n for k in o1})
        cols = sorted({k for _, o in res.values() for k, v in o.items() if abs(v) >= 500},
                      key=lambda k: -max(o.get(k, 0) for _, o in res.values()))
        print("| loop | instructions per connection | " + " | ".join(cols) + " |")
        print("|---|---:|" + "---:|" * len(cols))
        for loop, (tot, o) in res.items():
            print(f"| {loop} | {tot / 1e3:,.0f} k | "
                  + " | ".join(f"{o.get(k, 0) / 1e3:,.0f} k" for k in cols) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
