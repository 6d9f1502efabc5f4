"""Where does an idle connection's memory go?

Runs bench/net.py's echo server (protocol or streams style) in this process
on the chosen loop, lets bench/build/loadgen (hold mode, as bench/net.py's
rss_* benchmarks) open N connections that each echo one message and then
sit idle, and reports per connection:

- VmRSS growth (what bench/net.py measures);
- C malloc growth (mallinfo2: arena bytes in use + mmapped bytes), which
  tracemalloc does not see;
- tracemalloc growth, grouped by allocation site (--top lines);
- live objects by type (gc), and the sizes of one connection's objects.

    python tools/memprobe.py --loop eloop --style protocol -n 5000
"""
import argparse
import asyncio
import collections
import ctypes
import gc
import os
import socket
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.dont_write_bytecode = True
import net  # noqa: E402


class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
        "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2


def c_heap():
    m = libc.mallinfo2()
    return m.uordblks + m.hblkhd


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def type_counts():
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def make_loop(name):
    if name == "eloop":
        import eloop
        return eloop.new_event_loop()
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop", default="eloop")
    ap.add_argument("--style", default="protocol")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--frames", type=int, default=1)
    ap.add_argument("--no-trace", action="store_true",
                    help="RSS and malloc only (tracemalloc costs memory)")
    args = ap.parse_args()

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    loop = make_loop(args.loop)
    asyncio.set_event_loop(loop)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1024)
    lsock.setblocking(False)
    conns = []
    if args.style == "protocol":
        class Echo(net.EchoProtocol):
            def connection_made(self, transport):
                super().connection_made(transport)
                conns.append(self)
        srv = loop.run_until_complete(
            loop.create_server(Echo, sock=lsock, backlog=1024))
    else:
        async def handler(r, w):
            conns.append((r, w))
            await net.echo_streams(r, w)
        srv = loop.run_until_complete(
            asyncio.start_server(handler, sock=lsock, backlog=1024))
    port = lsock.getsockname()[1]

    gc.collect()
    if not args.no_trace:
        tracemalloc.start(args.frames)
    snap0 = tracemalloc.take_snapshot() if not args.no_trace else None
    t0 = type_counts()
    rss0, heap0 = rss_kib(), c_heap()

    p = subprocess.Popen(
        [str(ROOT / "bench/build/loadgen"), "-m", "hold", "-p", str(port),
         "-c", str(args.n), "-s", "16", "-d", "60", "-A", "8", "-i", "128",
         "-T", "10"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    held = threading.Event()

    def reader():
        for line in p.stdout:
            if line.startswith("HELD"):
                loop.call_soon_threadsafe(loop.stop)
                held.set()
                return
        loop.call_soon_threadsafe(loop.stop)
    threading.Thread(target=reader, daemon=True).start()
    loop.run_forever()
    assert held.is_set(), "loadgen failed"
    # settle: a few iterations for any pending callbacks
    for _ in range(5):
        loop.run_until_complete(asyncio.sleep(0.01))
    gc.collect()
    rss1, heap1 = rss_kib(), c_heap()
    n = args.n
    print(f"{args.loop}/{args.style}: {len(conns)} conns")
    print(f"  RSS        {(rss1 - rss0) / n:8.3f} KiB/conn")
    print(f"  C malloc   {(heap1 - heap0) / n / 1024:8.3f} KiB/conn "
          f"(mallinfo2, not traced)")
    if snap0 is not None:
        snap1 = tracemalloc.take_snapshot()
        # tracemalloc's own bookkeeping is excluded by the filter.
        flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        stats = snap1.filter_traces(flt).compare_to(
            snap0.filter_traces(flt), "traceback")
        total = sum(s.size_diff for s in stats)
        print(f"  tracemalloc{total / n / 1024:8.3f} KiB/conn")
        for s in stats[:args.top]:
            if abs(s.size_diff) < n * 8:
                break
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}"
                                for f in s.traceback)
            print(f"    {s.size_diff / n:8.1f} B/conn  "
                  f"{s.count_diff / n:5.2f} blocks/conn  {where}")
    t1 = type_counts()
    print("  objects/conn by type:")
    for name, d in sorted(((k, t1[k] - t0[k]) for k in t1),
                          key=lambda kv: -kv[1])[:12]:
        if d >= n // 2:
            print(f"    {d / n:5.2f} {name}")
    # One connection, object by object.
    if args.style == "protocol":
        tr = conns[0].transport
        objs = {"transport": tr, "protocol": conns[0],
                "protocol.__dict__": conns[0].__dict__}
    else:
        r, w = conns[0]
        tr = w.transport
        objs = {"transport": tr, "reader": r, "writer": w,
                "reader.__dict__": r.__dict__, "writer.__dict__": w.__dict__,
                "stream protocol": tr.get_protocol(),
                "stream protocol.__dict__": tr.get_protocol().__dict__}
    extra = getattr(tr, "_extra", None)
    if extra is not None:
        objs["_extra"] = extra
        for k, v in extra.items():
            objs[f"_extra[{k}]"] = v
    sock = getattr(tr, "_sock", None)
    if sock is not None:
        objs["_sock"] = sock
    for k, v in objs.items():
        print(f"    {sys.getsizeof(v):6d} B  {k}: {type(v).__name__}")
    p.stdin.write("release\n")
    p.stdin.flush()
    p.communicate(timeout=30)
    srv.close()
    loop.close()


if __name__ == "__main__":
    main()
