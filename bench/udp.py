#!/usr/bin/env python3
"""UDP echo benchmark: eloop vs asyncio vs uvloop, with a plain C ceiling.

    python bench/udp.py                    # 5 rounds, 8 clients, 64 B
    python bench/udp.py --rounds 3 --clients 1 --size 512 --duration 2

The server under test is a separate process running ONE loop (this file
with --serve LOOP), or bench/cudp.c (plain C: epoll, recvfrom/sendto until
EAGAIN), pinned to CPU 0.  Its protocol is the minimal asyncio echo:
``datagram_received(data, addr)`` calls ``transport.sendto(data, addr)``.
The load comes from bench/loadgen.c in its UDP mode (-u), pinned to CPU 1:
--clients connected UDP sockets, each with one --size byte datagram in
flight, every echo compared byte for byte.  Within a round every server is
measured once, back to back, in an order rotating with the round; each
measurement starts a fresh server, warms up, then counts round trips for
--duration seconds.  Reported per server: datagrams/s (round trips/s) and
the server's CPU time per datagram (from /proc/<pid>/task/*/schedstat),
best and median over the rounds.  On this 2-core machine the load generator
keeps its own core busy, so CPU per datagram is the figure that compares
the servers.

C programs are compiled with ``gcc -O2`` into bench/build/.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BUILD_DIR = BENCH_DIR / "build"
LOOPS = ("eloop", "asyncio", "uvloop")
C_NAME = "C"


# ---------------------------------------------------------------- server

class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)

    def error_received(self, exc):
        pass    # a client that went away between rounds


def new_loop(name):
    if name == "asyncio":
        return asyncio.SelectorEventLoop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    # The in-place build of this tree, never an installed copy.
    sys.path.insert(0, str(REPO_ROOT))
    import eloop
    if Path(eloop.__file__).resolve().parent.parent != REPO_ROOT:
        raise SystemExit(f"eloop imported from {eloop.__file__}, not from "
                         f"{REPO_ROOT}")
    return eloop.new_event_loop()


def serve(name):
    loop = new_loop(name)
    asyncio.set_event_loop(loop)
    t, _ = loop.run_until_complete(loop.create_datagram_endpoint(
        Echo, local_addr=("127.0.0.1", 0)))
    print("READY", t.get_extra_info("sockname")[1], flush=True)
    loop.run_forever()


# ---------------------------------------------------------- orchestration

def build():
    BUILD_DIR.mkdir(exist_ok=True)
    for name in ("loadgen", "cudp"):
        src, exe = BENCH_DIR / f"{name}.c", BUILD_DIR / name
        if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
            continue
        subprocess.run([os.environ.get("CC", "gcc"), "-O2", "-Wall", "-o",
                        str(exe), str(src)], check=True)


def pinned(cpu):
    def pin():
        os.sched_setaffinity(0, {cpu})
    return pin


def start_server(name, cpu):
    cmd = ([str(BUILD_DIR / "cudp")] if name == C_NAME
           else [sys.executable, __file__, "--serve", name])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                         preexec_fn=pinned(cpu))
    line = p.stdout.readline().split()
    if line[:1] != ["READY"]:
        p.kill()
        raise SystemExit(f"{name} server did not start: {line}")
    return p, int(line[1])


def measure(name, args):
    srv, port = start_server(name, args.server_cpu)
    try:
        out = subprocess.run(
            [str(BUILD_DIR / "loadgen"), "-u", "-m", "echo", "-p", str(port),
             "-c", str(args.clients), "-s", str(args.size),
             "-w", str(args.warmup), "-d", str(args.duration),
             "-P", str(srv.pid), "-T", "5"],
            capture_output=True, text=True, timeout=args.duration + 60,
            preexec_fn=pinned(args.client_cpu))
        if out.returncode != 0:
            raise SystemExit(f"loadgen against {name} failed: {out.stderr}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        srv.kill()
        srv.wait()
    return {"dgrams_per_s": r["per_sec"],
            "cpu_us": r["server_cpu"] / r["count"] * 1e6,
            "cpu_util": r["server_cpu"] / r["seconds"]}


def available(names):
    ok = []
    for name in names:
        if name == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                print("uvloop not importable: left out", file=sys.stderr)
                continue
        ok.append(name)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", metavar="LOOP", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--loops", default=",".join(LOOPS + (C_NAME,)))
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    if args.serve:
        return serve(args.serve)

    build()
    names = available(args.loops.split(","))
    os.sched_setaffinity(0, {args.client_cpu})
    samples = {n: [] for n in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for name in order:
            s = measure(name, args)
            samples[name].append(s)
            print(f"round {rnd + 1}: {name:8s} {s['dgrams_per_s']:10.0f} "
                  f"dgram/s  {s['cpu_us']:6.2f} us/dgram  "
                  f"(server {s['cpu_util'] * 100:.0f}% busy)",
                  file=sys.stderr)
        time.sleep(0.2)

    print(f"\nUDP echo, {args.size} B, {args.clients} clients, "
          f"{args.rounds} rounds x {args.duration:g} s\n")
    print("| server | dgram/s best | dgram/s median | CPU us/dgram best "
          "| CPU us/dgram median |")
    print("|---|---:|---:|---:|---:|")
    summary = {}
    for name in names:
        rate = [s["dgrams_per_s"] for s in samples[name]]
        cpu = [s["cpu_us"] for s in samples[name]]
        summary[name] = {"rate_best": max(rate),
                         "rate_median": statistics.median(rate),
                         "cpu_best": min(cpu),
                         "cpu_median": statistics.median(cpu)}
        m = summary[name]
        print(f"| {name} | {m['rate_best']:.0f} | {m['rate_median']:.0f} | "
              f"{m['cpu_best']:.2f} | {m['cpu_median']:.2f} |")
    if "eloop" in summary:
        e = summary["eloop"]["cpu_median"]
        print("\nCPU per datagram (median), relative to eloop: " + ", ".join(
            f"{n} {summary[n]['cpu_median'] / e:.2f}x"
            for n in names if n != "eloop"))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "samples": samples, "summary": summary},
            indent=1))


if __name__ == "__main__":
    main()
