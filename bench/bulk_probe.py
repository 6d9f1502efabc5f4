#!/usr/bin/env python3
"""Where a bulk transfer's server CPU goes: system calls per GiB, and
user-space instructions per GiB under callgrind.

bench/net.py and bench/tls.py time bulk rows, and on a shared machine their
CPU-seconds per GiB swing with the host's speed.  This tool counts what does
not swing: how many sends, receives, epoll calls and page faults the server
makes per GiB (perf's syscall tracepoints, attached to the server process
only), and with --callgrind how many instructions it runs in user space per
GiB.  Servers and load generators are net.py's and tls.py's (the same
protocols, loadgen/tlsgen, the C ceilings).

    python bench/bulk_probe.py                        # bulk down, protocol, every loop and C
    python bench/bulk_probe.py --dir up --style sock
    python bench/bulk_probe.py --tls --loops eloop,uvloop --bytes 1073741824
    python bench/bulk_probe.py --tls --callgrind --loops eloop,uvloop --cg-bytes 67108864

--callgrind runs each Python server under `valgrind --tool=callgrind` twice,
for --cg-bytes and for 1 MiB, and reports the difference per GiB, so start-up
and the handshake cancel out (to some 1M instructions); the output files stay
in the printed directory for callgrind_annotate.  The load generator runs
outside valgrind.  A server slowed down by valgrind finds its socket full
more often than a real one: the instruction counts are a floor for paths
whose work depends on how much each recv() gets; --reads shows how much
that is outside valgrind (the sizes the server's receive calls returned,
from perf's syscall exit tracepoints).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.dont_write_bytecode = True
import net  # noqa: E402

GIB = 1 << 30
SEND = ("sendto", "sendmsg", "write", "writev")
RECV = ("recvfrom", "recvmsg", "read", "readv")
OTHER = ("epoll_wait", "epoll_pwait", "epoll_ctl", "brk", "mmap", "munmap")
EVENTS = SEND + RECV + OTHER


def server_cmd(loop, kind, style, tls):
    if loop == net.C_NAME:
        if tls:
            import tls as tlsmod
            return [str(net.BUILD_DIR / "ctls"), "-m", kind, "-c", str(tlsmod.CERT),
                    "-k", str(tlsmod.KEY), "-t", "300"]
        return [str(net.BUILD_DIR / "cserver"), "-m", kind, "-t", "300"]
    script = BENCH_DIR / ("tls.py" if tls else "net.py")
    # the interpreter itself, not a wrapper script valgrind would follow
    exe = os.path.realpath(sys.executable)
    return [exe, str(script), "--serve", kind, "--style", style, "--loop", loop,
            "--max-life", "300"]


def start(cmd, prefix=()):
    proc = subprocess.Popen(list(prefix) + cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        proc.wait()
        raise SystemExit(f"server did not start: {' '.join(cmd)} said {line!r}")
    return proc, int(line.split()[1])


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load(args, port, nbytes, pin=True):
    exe = net.BUILD_DIR / ("tlsgen" if args.tls else "loadgen")
    mode = "bulkup" if args.dir == "up" else "bulkdown"
    cmd = [str(exe), "-m", mode, "-p", str(port), "-c", "1", "-b", str(nbytes), "-T", "120"]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"load generator failed: {r.stderr.strip()}")


def cpu_seconds(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def syscalls(args, loop, kind):
    proc, port = start(server_cmd(loop, kind, args.style, args.tls), ["taskset", "-c", "0"])
    try:
        ev = ",".join("syscalls:sys_enter_" + e for e in EVENTS) + ",page-faults"
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", ev, "-p", str(proc.pid)],
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)         # perf attached
        c0 = cpu_seconds(proc.pid)
        load(args, port, args.bytes)
        c1 = cpu_seconds(proc.pid)
        perf.send_signal(signal.SIGINT)
        _, err = perf.communicate()
    finally:
        stop(proc)
    counts = {}
    for ln in err.splitlines():
        f = ln.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            counts[f[2].replace("syscalls:sys_enter_", "")] = int(f[0])
    gib = args.bytes / GIB
    sends = sum(counts.get(e, 0) for e in SEND)
    recvs = sum(counts.get(e, 0) for e in RECV)
    data = sends if args.dir == "down" else recvs
    return {"cpu": (c1 - c0) / gib, "sends": sends / gib, "recvs": recvs / gib,
            "kib": args.bytes / max(1, data) / 1024,
            "epoll": sum(counts.get(e, 0) for e in ("epoll_wait", "epoll_pwait")) / gib,
            "ctl": counts.get("epoll_ctl", 0) / gib,
            "mem": sum(counts.get(e, 0) for e in ("brk", "mmap", "munmap")) / gib,
            "faults": counts.get("page-faults", 0) / gib}


def read_sizes(args, loop, kind):
    """What the server's receive calls returned: (count, bytes, bytes in
    reads that filled 256 KiB, bytes in reads of 128 KiB or more)."""
    proc, port = start(server_cmd(loop, kind, args.style, args.tls), ["taskset", "-c", "0"])
    data = tempfile.mktemp(prefix="bulk-reads-", suffix=".data")
    try:
        ev = ",".join("syscalls:sys_exit_" + e for e in RECV)
        perf = subprocess.Popen(["perf", "record", "-q", "-e", ev, "-o", data,
                                 "-p", str(proc.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        load(args, port, args.bytes)
        perf.send_signal(signal.SIGINT)
        perf.wait()
        out = subprocess.run(["perf", "script", "-i", data], capture_output=True,
                             text=True).stdout
    finally:
        stop(proc)
        if os.path.exists(data):
            os.unlink(data)
    sizes = []
    for ln in out.splitlines():
        f = ln.split()
        if f and f[-1].startswith("0x"):
            v = int(f[-1], 16)
            if 0 < v < 1 << 40:         # not an error (a negative errno)
                sizes.append(v)
    total = sum(sizes)
    return (len(sizes), total, sum(v for v in sizes if v >= 256 << 10),
            sum(v for v in sizes if v >= 128 << 10))


def callgrind_ir(args, loop, kind, nbytes, out):
    cmd = server_cmd(loop, kind, args.style, args.tls)
    proc, port = start(cmd, ["valgrind", "--tool=callgrind", "--dump-instr=no",
                             f"--callgrind-out-file={out}"])
    try:
        load(args, port, nbytes, pin=False)
        # dump now: the server is stopped by a signal afterwards
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True)
        time.sleep(1)
    finally:
        stop(proc)
    total = 0
    for p in Path(out).parent.glob(Path(out).name + "*"):
        with open(p) as f:
            for ln in f:
                if ln.startswith(("summary:", "totals:")):
                    total = max(total, int(ln.split()[1]))
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", choices=("down", "up"), default="down")
    p.add_argument("--style", choices=("protocol", "streams", "sock"), default="protocol")
    p.add_argument("--tls", action="store_true", help="bench/tls.py's servers (protocol only)")
    p.add_argument("--loops", default="eloop,asyncio,uvloop,C")
    p.add_argument("--bytes", type=int, default=GIB, help="bytes per transfer (default 1 GiB)")
    p.add_argument("--callgrind", action="store_true",
                   help="also user-space instructions per GiB (Python servers)")
    p.add_argument("--reads", action="store_true",
                   help="also the sizes the server's receive calls returned")
    p.add_argument("--cg-bytes", type=int, default=256 << 20,
                   help="transfer under callgrind (default 256 MiB: the start-up of "
                        "two runs differs by some 1M instructions, which a short "
                        "transfer would blow up into the per-GiB figure)")
    args = p.parse_args()
    if args.tls and args.style != "protocol":
        p.error("--tls has the protocol style only")
    kind = ("sink" if args.dir == "up" else "source")
    if args.tls:
        import tls as tlsmod
        tlsmod.build()
    else:
        net.build_c()
    loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    have_perf = shutil.which("perf") is not None
    name = f"{'tls_' if args.tls else ''}bulk_{args.dir}_{args.style}"
    print(f"{name}: {net._fmt_bytes(args.bytes)} per transfer; per GiB of payload")
    print()
    if have_perf:
        print("| loop | CPU s/GiB | sends | recvs | KiB per data call | epoll waits "
              "| epoll_ctl | brk/mmap/munmap | page faults |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for loop in loops:
            r = syscalls(args, loop, kind)
            print(f"| {loop} | {r['cpu']:.3f} | {r['sends']:,.0f} | {r['recvs']:,.0f} "
                  f"| {r['kib']:.1f} | {r['epoll']:,.0f} | {r['ctl']:,.0f} | {r['mem']:,.0f} "
                  f"| {r['faults']:,.0f} |", flush=True)
        print("\n(CPU s/GiB is one run on a possibly shared machine; the counts repeat)")
    else:
        print("perf not found: no system call counts")
    if args.reads and have_perf:
        print("\n| loop | receives | average KiB | bytes in 256 KiB reads "
              "| bytes in reads >= 128 KiB |")
        print("|---|---:|---:|---:|---:|")
        for loop in loops:
            n, total, full, big = read_sizes(args, loop, kind)
            if n:
                print(f"| {loop} | {n:,} | {total / n / 1024:.1f} | {100 * full / total:.0f}% "
                      f"| {100 * big / total:.0f}% |", flush=True)
    if args.callgrind:
        tmp = tempfile.mkdtemp(prefix="bulk-cg-")
        print(f"\ncallgrind files in {tmp}\n")
        print("| loop | user-space instructions per GiB |")
        print("|---|---:|")
        for loop in loops:
            if loop == net.C_NAME:
                continue
            big = callgrind_ir(args, loop, kind, args.cg_bytes, f"{tmp}/{loop}.big")
            small = callgrind_ir(args, loop, kind, 1 << 20, f"{tmp}/{loop}.small")
            per = (big - small) / ((args.cg_bytes - (1 << 20)) / GIB)
            print(f"| {loop} | {per / 1e9:.3f} G |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
