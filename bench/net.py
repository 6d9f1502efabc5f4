#!/usr/bin/env python3
"""Networking benchmarks: eloop vs asyncio vs uvloop, with a C epoll ceiling.

Run ``python bench/net.py --help`` for the options and bench/README.md for
the methodology.  In short:

* the server under test is a separate Python process running ONE loop
  (``net.py --serve ...``), pinned to core 0 with ``taskset``; the load comes
  from outside that process: bench/loadgen.c (epoll, C) or ``wrk``, pinned
  to core 1.  This script only orchestrates (it pins itself to core 1 too and
  sleeps while a measurement runs);
* every measurement starts a fresh server process; before the load, a
  Python-socket pre-check verifies the server's answers byte for byte;
  loadgen verifies every byte it gets back, wrk runs must have no non-2xx
  response and no socket error: anything else aborts the run (exit status 2);
* rounds (--rounds, default 4): within a round every benchmark is measured
  for every loop (and the C server) back to back, the order rotating with
  round and benchmark, so slow phases of the machine hit all alike; best and
  median over the rounds, and eloop/asyncio, eloop/uvloop ratios;
* a loop whose networking raises NotImplementedError (today: eloop) is
  skipped for that benchmark with a note instead of failing the run.

C programs (bench/loadgen.c, bench/cserver.c) are compiled on the fly with
``gcc -O2`` into bench/build/.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fnmatch
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BUILD_DIR = BENCH_DIR / "build"
sys.path.insert(0, str(BENCH_DIR))
sys.dont_write_bytecode = True     # no bench/__pycache__ from importing micro
import micro  # noqa: E402  (shared loop import logic)

LOOP_NAMES = micro.LOOP_NAMES          # ("eloop", "asyncio", "uvloop")
C_NAME = "C"
HOST = "127.0.0.1"
BACKLOG = 1024
READ_SIZE = 256 * 1024                 # what asyncio's selector transport reads per call
CHUNK = bytes(range(256)) * 1024       # 256 KiB, byte k = k & 0xff (bulk download)
HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\n"
                 b"Server: bench\r\n"
                 b"Content-Type: text/plain\r\n"
                 b"Content-Length: 13\r\n"
                 b"\r\n"
                 b"Hello, World!")
EXIT_NOTIMPL = 4
EXIT_SERVER_ERROR = 3
GIB = 1 << 30


class VerificationError(AssertionError):
    """A benchmark's traffic was not what it should be."""


class NotImplementedSkip(Exception):
    """The loop under test raised NotImplementedError (`startup`: while the
    server was starting, i.e. before it could serve anything)."""

    def __init__(self, msg, startup=False):
        super().__init__(msg)
        self.startup = startup


class BenchError(RuntimeError):
    """A server or load generator failed (crash, timeout, ...)."""


# ==========================================================================
# server side: runs in its own process, one loop
# ==========================================================================

def _set_pdeathsig():
    """Die with the parent (the orchestrator), whatever the way it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
    except Exception:
        pass


class _Fatal:
    """Server-side error reporting: NotImplementedError -> exit 4 (skip),
    anything else unexpected -> exit 3 (the orchestrator fails loudly)."""

    @staticmethod
    def notimpl(exc):
        sys.stdout.write(f"NOTIMPL {type(exc).__name__}: {exc}\n")
        sys.stdout.flush()
        os._exit(EXIT_NOTIMPL)

    @staticmethod
    def error(msg, exc=None):
        if isinstance(exc, NotImplementedError):
            _Fatal.notimpl(exc)
        sys.stderr.write(f"SERVER ERROR: {msg}\n")
        if exc is not None:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_SERVER_ERROR)


def _guard(coro_fn):
    """Wrap a per-connection coroutine: peer resets end it quietly,
    NotImplementedError and any other exception end the server."""
    async def wrapper(*args):
        try:
            await coro_fn(*args)
        except (ConnectionError, BrokenPipeError):
            pass
        except Exception as e:
            _Fatal.error(f"{coro_fn.__name__} failed", e)
    wrapper.__name__ = coro_fn.__name__
    return wrapper


# --- protocol style --------------------------------------------------------

class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoCloseProtocol(asyncio.Protocol):
    """Echo, and close once `close_after` bytes have been echoed."""
    close_after = 64

    def connection_made(self, transport):
        self.transport = transport
        self.n = 0

    def data_received(self, data):
        self.transport.write(data)
        self.n += len(data)
        if self.n >= self.close_after:
            self.transport.close()


class SinkProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.n = 0

    def data_received(self, data):
        self.n += len(data)

    def eof_received(self):
        self.transport.write(b"%d\n" % self.n)
        self.transport.close()
        return True


class SourceProtocol(asyncio.Protocol):
    """Reads "<n>\\n", then writes n bytes with flow control, then closes."""

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""
        self.left = -1
        self.paused = False

    def data_received(self, data):
        if self.left != -1:
            return
        self.buf += data
        if b"\n" in self.buf:
            self.left = int(self.buf.split(b"\n", 1)[0])
            self.pump()

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.pump()

    def pump(self):
        write = self.transport.write
        while self.left > 0 and not self.paused:
            n = len(CHUNK) if self.left >= len(CHUNK) else self.left
            write(CHUNK if n == len(CHUNK) else CHUNK[:n])
            self.left -= n
        if self.left == 0:
            self.left = -2
            # not transport.close() here: pump() runs inside resume_writing(),
            # and asyncio 3.11's _write_ready() then calls
            # _call_connection_lost() a second time if the buffer is empty
            # (AttributeError on the protocol, which is None by then).
            # One deferred call per connection costs nothing measurable.
            asyncio.get_running_loop().call_soon(self.transport.close)


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server: every GET gets 'Hello, World!'."""

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        if self.buf:
            data = self.buf + data
        pos = 0
        n = 0
        close = False
        while True:
            end = data.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            eol = data.find(b"\r\n", pos)
            parts = data[pos:eol].split(b" ")
            if len(parts) != 3 or parts[0] != b"GET" or not parts[2].startswith(b"HTTP/1."):
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                self.transport.close()
                return
            n += 1
            pos = end + 4
            if parts[2] == b"HTTP/1.0" or b"connection: close" in data[eol:end].lower():
                close = True
                break
        self.buf = data[pos:]
        if n:
            self.transport.write(HTTP_RESPONSE * n if n > 1 else HTTP_RESPONSE)
        if close:
            self.transport.close()
        elif len(self.buf) > 65536:
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            self.transport.close()


PROTOCOLS = {"echo": EchoProtocol, "echo_close": EchoCloseProtocol, "sink": SinkProtocol,
             "source": SourceProtocol, "http": HttpProtocol}


# --- streams style ---------------------------------------------------------

@_guard
async def echo_streams(reader, writer):
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@_guard
async def sink_streams(reader, writer):
    n = 0
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            n += len(data)
        writer.write(b"%d\n" % n)
        await writer.drain()
    finally:
        writer.close()


@_guard
async def source_streams(reader, writer):
    try:
        left = int(await reader.readline())
        while left > 0:
            n = min(left, len(CHUNK))
            writer.write(CHUNK if n == len(CHUNK) else CHUNK[:n])
            await writer.drain()
            left -= n
    finally:
        writer.close()


STREAM_HANDLERS = {"echo": echo_streams, "sink": sink_streams, "source": source_streams}


# --- sock_* style ----------------------------------------------------------

@_guard
async def echo_sock(loop, conn):
    try:
        while True:
            data = await loop.sock_recv(conn, READ_SIZE)
            if not data:
                break
            await loop.sock_sendall(conn, data)
    finally:
        conn.close()


@_guard
async def sink_sock(loop, conn):
    n = 0
    try:
        while True:
            data = await loop.sock_recv(conn, READ_SIZE)
            if not data:
                break
            n += len(data)
        await loop.sock_sendall(conn, b"%d\n" % n)
    finally:
        conn.close()


@_guard
async def source_sock(loop, conn):
    try:
        buf = b""
        while b"\n" not in buf:
            data = await loop.sock_recv(conn, 64)
            if not data:
                return
            buf += data
        left = int(buf.split(b"\n", 1)[0])
        while left > 0:
            n = min(left, len(CHUNK))
            await loop.sock_sendall(conn, CHUNK if n == len(CHUNK) else CHUNK[:n])
            left -= n
    finally:
        conn.close()


SOCK_HANDLERS = {"echo": echo_sock, "sink": sink_sock, "source": source_sock}


async def _sock_accept_loop(loop, lsock, handler, tasks):
    try:
        while True:
            conn, _ = await loop.sock_accept(lsock)
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as transports do
            t = loop.create_task(handler(loop, conn))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
    except Exception as e:
        _Fatal.error("accept loop failed", e)


async def _start_serving(loop, kind, style, lsock, protocols=None, ssl=None):
    if style == "protocol":
        return await loop.create_server((protocols or PROTOCOLS)[kind], sock=lsock,
                                        backlog=BACKLOG, ssl=ssl)
    if style == "streams":
        return await asyncio.start_server(STREAM_HANDLERS[kind], sock=lsock, backlog=BACKLOG)
    if style == "sock":
        tasks = set()
        t = loop.create_task(_sock_accept_loop(loop, lsock, SOCK_HANDLERS[kind], tasks))
        tasks.add(t)
        await asyncio.sleep(0)      # let the first sock_accept() run (NotImplementedError)
        if t.done() and t.exception() is not None:
            raise t.exception()
        return tasks
    raise ValueError(style)


def listen_socket():
    """The servers' listening socket, made as create_server(host, port)
    makes it (getaddrinfo gives proto=IPPROTO_TCP).  Accepted sockets
    inherit the listener's proto, and asyncio (so eloop) sets TCP_NODELAY
    only when proto == IPPROTO_TCP (base_events._set_nodelay); with proto 0
    the asyncio and eloop servers ran with Nagle on while uvloop (which sets
    it on every TCP socket) did not, and a reply written in several sends
    (TLS echo: one record per send) waited for the client's delayed ACK."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((HOST, 0))
    lsock.listen(BACKLOG)
    lsock.setblocking(False)
    return lsock


def serve_main(args, protocols=None, ssl=None):
    """--serve KIND: the server process under test (one loop); bench/tls.py
    passes its own `protocols` table and an SSLContext."""
    _set_pdeathsig()
    signal.alarm(max(1, int(args.max_life)))       # hard bound on the lifetime
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    factories, _, missing = micro.available_loops([args.loop])
    if args.loop in missing:
        _Fatal.error(f"loop {args.loop} not available: {missing[args.loop]}")
    loop = factories[args.loop]()
    asyncio.set_event_loop(loop)

    def on_error(lp, ctx):
        _Fatal.error(f"exception handler called: {ctx.get('message')}", ctx.get("exception"))

    loop.set_exception_handler(on_error)
    EchoCloseProtocol.close_after = args.close_after
    lsock = listen_socket()
    try:
        server = loop.run_until_complete(_start_serving(loop, args.serve, args.style, lsock,
                                                                 protocols, ssl))
    except NotImplementedError as e:
        _Fatal.notimpl(e)
    except Exception as e:
        _Fatal.error("starting the server failed", e)
    sys.stdout.write(f"READY {lsock.getsockname()[1]}\n")
    sys.stdout.flush()
    try:
        loop.run_forever()
    except NotImplementedError as e:
        _Fatal.notimpl(e)
    del server
    return 0


# ==========================================================================
# orchestrator
# ==========================================================================

def log(*a):
    print(*a, file=sys.stderr, flush=True)


@dataclass
class Bench:
    name: str
    group: str        # echo | bulk | http | connect | rss
    kind: str         # server kind: echo | echo_close | sink | source | http
    style: str        # protocol | streams | sock
    size: int = 0     # message size (echo, connect, rss)
    c_key: str = ""   # C-server measurement shared by benches with the same key
    desc: str = ""


def _benches():
    out = []
    for kib in (1, 10, 100):
        for style in ("protocol", "streams", "sock"):
            out.append(Bench(f"echo_{kib}k_{style}", "echo", "echo", style, kib * 1024,
                             f"echo_{kib}k", f"echo round trips, {kib} KiB messages, {style}"))
    for direction, kind in (("up", "sink"), ("down", "source")):
        for style in ("protocol", "streams", "sock"):
            out.append(Bench(f"bulk_{direction}_{style}", "bulk", kind, style, 0,
                             f"bulk_{direction}",
                             "client sends, server discards" if direction == "up"
                             else "server streams to the client"))
    out.append(Bench("http_plaintext", "http", "http", "protocol", 0, "http",
                     "HTTP/1.1 keep-alive 'Hello, World!' (wrk)"))
    out.append(Bench("connect_client_close", "connect", "echo", "protocol", 64,
                     "connect_client_close",
                     "connect, 64 B echo, client closes, server closes on EOF"))
    out.append(Bench("connect_server_close", "connect", "echo_close", "protocol", 64,
                     "connect_server_close",
                     "connect, 64 B echo, server closes after the echo"))
    for style in ("protocol", "streams"):
        out.append(Bench(f"rss_idle_{style}", "rss", "echo", style, 16, "rss_idle",
                         f"RSS per idle connection ({style} echo server)"))
    return {b.name: b for b in out}


BENCHES = _benches()
GROUPS = ("echo", "bulk", "http", "connect", "rss")

# tables: (group, metric, title, unit formatter, higher_is_better)
TABLES = [
    ("echo", "rt_per_sec", "TCP echo: round trips/s ({conns} connections, one message in "
     "flight each, loadgen)", "ops", True),
    ("bulk", "gib_per_sec", "Bulk transfer, 1 connection: GiB/s (up: client sends {bulk}, "
     "server discards; down: server streams {bulk} to the client)", "f2", True),
    ("bulk", "cpu_per_gib", "Bulk transfer: server process CPU-seconds per GiB "
     "(utime+stime, from schedstat; lower is better, ratios < 1 mean eloop uses less)",
     "f3", False),
    ("http", "req_per_sec", "HTTP/1.1 keep-alive plaintext: requests/s (wrk -t1 "
     "-c{http_conns} -d{http_duration}s)", "ops", True),
    ("connect", "conns_per_sec", "New connections/s (loadgen connect-rate, {connect_conns} "
     "concurrent, 64 B echo per connection)", "ops", True),
    ("rss", "kib_per_conn", "RSS per idle connection at {rss_conns} connections: KiB "
     "(VmRSS after - before, / connections; lower is better)", "f2", False),
]


def fmt_value(x, unit):
    if x is None:
        return "n/a"
    if unit == "ops":
        return micro.fmt_ops(x)
    if unit == "f2":
        return f"{x:.2f}"
    if unit == "f3":
        return f"{x:.3f}"
    return f"{x}"


fmt_ratio = micro.fmt_ratio


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

LIVE = {}      # pid -> Popen: every child we started and have not reaped


def _preexec():
    _set_pdeathsig()


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=_preexec, start_new_session=True, **kw)
    LIVE[p.pid] = p
    return p


def reap(p, grace=2.0):
    """Stop a child we started (by its pid): SIGTERM, then SIGKILL."""
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass
    LIVE.pop(p.pid, None)


def reap_all():
    for p in list(LIVE.values()):
        try:
            reap(p, 1.0)
        except Exception:
            pass


def _children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


LAST_LOAD = {}     # CPU use of the last load generator run (see run_bounded)


def run_bounded(cmd, timeout, stdin=subprocess.DEVNULL):
    """Run a load generator to completion, killing it after `timeout`.

    Also records its CPU utilisation in LAST_LOAD["util"]: the CPU time of
    the children reaped meanwhile (just this one: the server is still
    running) over the wall time of the run."""
    cpu0, t0 = _children_cpu(), time.monotonic()
    p = spawn(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        reap(p)
        raise BenchError(f"did not finish within {timeout:.0f}s: {' '.join(cmd)}")
    LIVE.pop(p.pid, None)
    LAST_LOAD["util"] = (_children_cpu() - cpu0) / max(1e-9, time.monotonic() - t0)
    return p.returncode, out, err


def proc_cpu(pid):
    """CPU time of pid in seconds (None if gone): the sum over its threads of
    the on-CPU time in /proc/<pid>/task/<tid>/schedstat (ns resolution, the
    same total as utime+stime), else utime+stime from /proc/<pid>/stat
    (10 ms ticks).  loadgen -P does the same in C."""
    try:
        total, n = 0, 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
                    n += 1
            except OSError:
                pass
        if n:
            return total * 1e-9
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _user_seconds():
    """user + nice CPU time of the whole machine (/proc/stat)."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return (int(v[1]) + int(v[2])) / os.sysconf("SC_CLK_TCK")


def proc_utime(pid):
    """user CPU time of pid from /proc/<pid>/stat (10 ms ticks), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[11]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class OtherLoad:
    """How busy the machine was with processes other than ours while a load
    ran, in cores: the machine's user-mode time minus that of the server, the
    load generator (reaped children) and this script, over the wall time.
    User time only, so the kernel's own work for our sockets (softirq,
    kworkers tearing down 10,000 connections) does not count as "other".
    This machine is shared: a compiler running meanwhile shows up here."""

    def __init__(self, pid):
        self.pid = pid
        self.t0 = time.monotonic()
        self.user0 = _user_seconds()
        self.srv0 = proc_utime(pid) or 0.0
        self.kids0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        self.self0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime

    def finish(self):
        ours = ((proc_utime(self.pid) or self.srv0) - self.srv0
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - self.kids0
                + resource.getrusage(resource.RUSAGE_SELF).ru_utime - self.self0)
        dt = max(1e-9, time.monotonic() - self.t0)
        return max(0.0, (_user_seconds() - self.user0 - ours) / dt)


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


class Server:
    """A server process under test: a Python loop or the C server."""

    def __init__(self, cfg, bench, runner):
        self.cfg, self.bench, self.runner = cfg, bench, runner
        self.dir = tempfile.mkdtemp(prefix="srv-", dir=cfg.tmpdir)
        self.out_path = os.path.join(self.dir, "out")
        self.err_path = os.path.join(self.dir, "err")
        self.cmd = cfg.pin(cfg.server_cpu) + self.command()
        env = self.environ()
        with open(self.out_path, "w") as o, open(self.err_path, "w") as e:
            self.proc = spawn(self.cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e, env=env)
        self.pid = self.proc.pid      # taskset execs: same pid
        self.port = None
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def command(self):
        """The server's command line (bench/tls.py overrides it)."""
        cfg, bench = self.cfg, self.bench
        if self.runner == C_NAME:
            return [str(BUILD_DIR / "cserver"), "-m", bench.kind, "-s", str(bench.size or 64),
                    "-t", str(int(cfg.max_life))]
        return [sys.executable, str(Path(__file__).resolve()), "--serve", bench.kind,
                "--style", bench.style, "--loop", self.runner, "--close-after",
                str(bench.size or 64), "--max-life", str(int(cfg.max_life))]

    def environ(self):
        env = dict(os.environ)
        env.pop("PYTHONASYNCIODEBUG", None)
        env.pop("PYTHONDEVMODE", None)
        return env

    def _wait_ready(self):
        bench, runner = self.bench, self.runner
        deadline = time.monotonic() + 30
        while True:
            out = self.stdout()
            m = re.search(r"^READY (\d+)$", out, re.M)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                self.check_notimpl()
                raise BenchError(f"{runner} server for {bench.name} exited with status "
                                 f"{self.proc.returncode} before it was ready:\n{self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{runner} server for {bench.name} not ready within 30s")
            time.sleep(0.005)

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stderr_tail(self, n=30):
        with open(self.err_path) as f:
            lines = f.read().splitlines()
        return "\n".join(lines[-n:])

    def check_notimpl(self):
        out = self.stdout()
        m = re.search(r"^NOTIMPL (.*)$", out, re.M)
        if m:
            raise NotImplementedSkip(m.group(1), startup="READY" not in out)

    def after_failure(self, what):
        """The load failed: explain it by the server's fate if we can."""
        try:
            self.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            pass
        self.check_notimpl()
        if self.proc.poll() is not None:
            raise BenchError(f"{self.runner} server for {self.bench.name} died (status "
                             f"{self.proc.returncode}) during the load:\n{self.stderr_tail()}"
                             f"\nload generator: {what}")

    def check_alive(self):
        if self.proc.poll() is not None:
            self.check_notimpl()
            raise BenchError(f"{self.runner} server for {self.bench.name} exited (status "
                             f"{self.proc.returncode}):\n{self.stderr_tail()}")

    def stop(self):
        reap(self.proc)
        try:
            shutil.rmtree(self.dir)
        except OSError:
            pass


# --------------------------------------------------------------------------
# pre-checks: a few exchanges over plain blocking sockets, verified exactly
# --------------------------------------------------------------------------

def _recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return bytes(buf)


def _recv_all(s, limit=1 << 24):
    buf = bytearray()
    while len(buf) <= limit:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return bytes(buf)


def precheck(bench, runner, port, wrap=None):
    """`wrap(sock)`, if given, wraps each connection (bench/tls.py: TLS)."""
    where = f"[{bench.name} / {runner}] VERIFICATION FAILED (pre-check)"

    def conn():
        s = socket.create_connection((HOST, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return wrap(s) if wrap else s

    if bench.kind == "echo":
        msg = os.urandom(1000)
        with conn() as s:
            for _ in range(2):
                s.sendall(msg)
                got = _recv_exact(s, len(msg))
                if got != msg:
                    raise VerificationError(f"{where}: echo returned {len(got)} bytes, "
                                            f"{'equal' if msg.startswith(got) else 'different'}")
    elif bench.kind == "echo_close":
        msg = os.urandom(bench.size)
        with conn() as s:
            s.sendall(msg)
            got = _recv_all(s)
            if got != msg:
                raise VerificationError(f"{where}: expected the {len(msg)} byte echo then EOF, "
                                        f"got {len(got)} bytes")
    elif bench.kind == "sink":
        with conn() as s:
            s.sendall(b"x" * 100_000)
            s.shutdown(socket.SHUT_WR)
            got = _recv_all(s)
            if got != b"100000\n":
                raise VerificationError(f"{where}: sink answered {got[:40]!r}, expected b'100000\\n'")
    elif bench.kind == "source":
        n = 300_001
        with conn() as s:
            s.sendall(b"%d\n" % n)
            got = _recv_all(s)
            if got != (CHUNK * 2)[:n]:
                raise VerificationError(f"{where}: source sent {len(got)} bytes "
                                        f"(expected {n}) or wrong content")
    elif bench.kind == "http":
        req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        with conn() as s:
            s.sendall(req * 2)                     # pipelined
            got = _recv_exact(s, 2 * len(HTTP_RESPONSE))
            s.sendall(req[:20])                    # split across two reads
            time.sleep(0.01)
            s.sendall(req[20:])
            got += _recv_exact(s, len(HTTP_RESPONSE))
            if got != HTTP_RESPONSE * 3:
                raise VerificationError(f"{where}: HTTP responses differ: {got[:120]!r}")
    else:
        raise ValueError(bench.kind)


# --------------------------------------------------------------------------
# one measurement
# --------------------------------------------------------------------------

class Config:
    def __init__(self, args):
        self.args = args
        q = args.quick
        self.duration = args.duration or (0.25 if q else 0.75)
        self.warmup = args.warmup if args.warmup is not None else (0.05 if q else 0.25)
        self.conns = args.conns
        self.bulk_bytes = args.bulk_bytes or ((256 << 20) if q else (1 << 30))
        self.http_duration = args.http_duration or (1 if q else 3)
        self.http_conns = args.http_conns
        self.connect_conns = args.connect_conns
        self.rss_conns = args.rss_conns or (2000 if q else 10_000)
        self.src_addrs = args.src_addrs
        self.stall = 10.0
        self.max_life = 300
        self.tmpdir = None
        self.server_cpu = self.load_cpu = None
        self.wrk = None
        self.loadgen_exe = "loadgen"       # bench/tls.py: "tlsgen"
        self.url_scheme = "http"           # bench/tls.py: "https"

    def pin(self, cpu):
        return ["taskset", "-c", str(cpu)] if cpu is not None else []

    def loadgen(self, *a):
        return self.pin(self.load_cpu) + [str(BUILD_DIR / self.loadgen_exe)] + [str(x) for x in a]


def _loadgen_json(bench, runner, srv, rc, out, err, cmd):
    if rc != 0:
        msg = err.strip() or f"exit status {rc}"
        srv.after_failure(msg)
        raise VerificationError(f"[{bench.name} / {runner}] VERIFICATION FAILED: {msg}\n"
                                f"  command: {' '.join(cmd)}")
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"[{bench.name} / {runner}] no result from loadgen: {out!r} {err!r}")


def run_wrk(cfg, bench, runner, srv):
    d = cfg.http_duration
    cmd = cfg.pin(cfg.load_cpu) + [cfg.wrk, "-t1", f"-c{cfg.http_conns}", f"-d{d}s",
                                   "--timeout", "5s",
                                   f"{cfg.url_scheme}://{HOST}:{srv.port}/"]
    cpu0, t0 = proc_cpu(srv.pid), time.monotonic()
    rc, out, err = run_bounded(cmd, d + 20)
    cpu1, t1 = proc_cpu(srv.pid), time.monotonic()
    where = f"[{bench.name} / {runner}] VERIFICATION FAILED"
    if rc != 0:
        srv.after_failure(err.strip())
        raise BenchError(f"{where}: wrk exit status {rc}: {err.strip()}")
    m_req = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    m_rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not (m_req and m_rps):
        raise BenchError(f"cannot parse wrk output:\n{out}")
    requests = int(m_req.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    sockerr = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    problems = []
    if requests <= 0:
        problems.append("no request completed")
    if non2xx:
        problems.append(f"{non2xx.group(1)} non-2xx/3xx responses")
    if sockerr and any(int(x) for x in sockerr.groups()):
        problems.append(f"socket errors: {sockerr.group(0)}")
    m_read = re.search(r"([\d.]+)([KMGT]?B) read", out)
    if m_read:   # every response is exactly len(HTTP_RESPONSE) bytes
        mult = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m_read.group(2)]
        nbytes = float(m_read.group(1)) * mult
        expect = requests * len(HTTP_RESPONSE)
        if abs(nbytes - expect) > 0.02 * expect + 2 * len(HTTP_RESPONSE) * cfg.http_conns + mult * 0.01:
            problems.append(f"read {nbytes:.0f} bytes for {requests} responses "
                            f"({expect} expected): wrong response size")
    if problems:
        srv.after_failure("; ".join(problems))
        raise VerificationError(f"{where}: " + "; ".join(problems) + f"\n{out}")
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    lat_ms = None
    if lat:
        lat_ms = float(lat.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[lat.group(2)]
    srv.check_alive()
    res = {"req_per_sec": float(m_rps.group(1)), "requests": requests, "latency_avg_ms": lat_ms}
    if cpu0 is not None and cpu1 is not None:   # whole wrk run, connection set-up included
        res["server_cpu_util"] = (cpu1 - cpu0) / (t1 - t0)
        res["cpu_us_per_op"] = (cpu1 - cpu0) / requests * 1e6
    return res


def measure(cfg, bench, runner):
    """One measurement: fresh server, pre-check, load, verify.  Returns metrics."""
    srv = Server(cfg, bench, runner)
    try:
        try:
            precheck(bench, runner, srv.port)
        except (VerificationError, OSError) as e:
            srv.after_failure(str(e))      # NotImplementedSkip if the loop raised it
            if isinstance(e, VerificationError):
                raise
            raise VerificationError(f"[{bench.name} / {runner}] VERIFICATION FAILED "
                                    f"(pre-check): {type(e).__name__}: {e}") from None
        srv.check_alive()
        g = bench.group
        LAST_LOAD.clear()
        other = OtherLoad(srv.pid)
        if g == "echo":
            cmd = cfg.loadgen("-m", "echo", "-p", srv.port, "-c", cfg.conns, "-s", bench.size,
                              "-d", cfg.duration, "-w", cfg.warmup, "-n", 50_000_000,
                              "-P", srv.pid, "-T", cfg.stall)
            r = _loadgen_json(bench, runner, srv, *run_bounded(
                cmd, cfg.duration + cfg.warmup + cfg.stall + 15), cmd)
            res = {"rt_per_sec": r["per_sec"], "mib_per_sec": r["bytes_per_sec"] / (1 << 20),
                   "round_trips": r["count"], "seconds": r["seconds"]}
            if r["server_cpu"] >= 0:
                res["server_cpu_util"] = r["server_cpu"] / r["seconds"]
                res["cpu_us_per_op"] = r["server_cpu"] / max(1, r["count"]) * 1e6
        elif g == "bulk":
            mode = "bulkup" if bench.kind == "sink" else "bulkdown"
            cmd = cfg.loadgen("-m", mode, "-p", srv.port, "-c", 1, "-b", cfg.bulk_bytes,
                              "-P", srv.pid, "-T", cfg.stall)
            r = _loadgen_json(bench, runner, srv, *run_bounded(cmd, 120), cmd)
            gib = r["bytes"] / GIB
            res = {"gib_per_sec": gib / r["seconds"], "seconds": r["seconds"], "bytes": r["bytes"],
                   "cpu_per_gib": r["server_cpu"] / gib if r["server_cpu"] >= 0 else None}
            if r["server_cpu"] >= 0:
                res["server_cpu_util"] = r["server_cpu"] / r["seconds"]
        elif g == "connect":
            cmd = cfg.loadgen("-m", "connect", "-p", srv.port, "-c", cfg.connect_conns,
                              "-s", bench.size, "-d", cfg.duration, "-w", cfg.warmup,
                              "-n", 5_000_000, "-A", cfg.src_addrs, "-P", srv.pid,
                              "-T", cfg.stall, *(["-E"] if bench.kind == "echo_close" else []))
            r = _loadgen_json(bench, runner, srv, *run_bounded(
                cmd, cfg.duration + cfg.warmup + cfg.stall + 15), cmd)
            res = {"conns_per_sec": r["per_sec"], "connections": r["count"],
                   "seconds": r["seconds"]}
            if r["server_cpu"] >= 0:
                res["server_cpu_util"] = r["server_cpu"] / r["seconds"]
                res["cpu_us_per_op"] = r["server_cpu"] / max(1, r["count"]) * 1e6
        elif g == "http":
            res = run_wrk(cfg, bench, runner, srv)
        elif g == "rss":
            res = measure_rss(cfg, bench, runner, srv)
        else:
            raise ValueError(g)
        srv.check_alive()
        if g != "rss" and "util" in LAST_LOAD:
            res["load_cpu_util"] = LAST_LOAD["util"]
        res["other_cpu"] = other.finish()
        err = srv.stderr_tail(3).strip()
        if err:
            res["server_stderr"] = err
        return res
    finally:
        srv.stop()


def measure_rss(cfg, bench, runner, srv):
    time.sleep(0.05)
    before = proc_rss_kib(srv.pid)
    n = cfg.rss_conns
    cmd = cfg.loadgen("-m", "hold", "-p", srv.port, "-c", n, "-s", bench.size, "-d", 60,
                      "-A", cfg.src_addrs, "-i", 128, "-T", cfg.stall)
    p = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              text=True)
    try:
        deadline = time.monotonic() + cfg.stall + 60
        line = ""
        while not line.startswith("HELD"):
            if time.monotonic() > deadline:
                raise BenchError(f"[{bench.name} / {runner}] {n} connections not up in time")
            r, _, _ = select.select([p.stdout], [], [], 0.5)
            if r:
                line = p.stdout.readline()
                if not line:   # loadgen exited
                    out, err = p.communicate(timeout=5)
                    srv.after_failure(err.strip())
                    raise VerificationError(f"[{bench.name} / {runner}] VERIFICATION FAILED: "
                                            f"{err.strip() or 'loadgen exited'}")
        held, up_secs = int(line.split()[1]), float(line.split()[2])
        if held != n:
            raise VerificationError(f"[{bench.name} / {runner}] VERIFICATION FAILED: "
                                    f"{held} of {n} connections held")
        time.sleep(0.2)                # let the server settle
        srv.check_alive()
        after = proc_rss_kib(srv.pid)
        p.stdin.write("release\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=30)
        if p.returncode != 0:
            srv.after_failure(err.strip())
            raise VerificationError(f"[{bench.name} / {runner}] VERIFICATION FAILED: {err.strip()}")
    finally:
        reap(p)
    return {"kib_per_conn": (after - before) / n, "rss_before_kib": before,
            "rss_after_kib": after, "connections": n, "connect_seconds": up_secs}


# --------------------------------------------------------------------------
# setup: build, wrk, pinning, limits
# --------------------------------------------------------------------------

C_PROGRAMS = (("loadgen", "loadgen.c", []), ("cserver", "cserver.c", []))


def build_c(programs=None):
    """Compile each (binary, source, extra gcc args) of `programs` (default
    C_PROGRAMS) into BUILD_DIR when the source is newer than the binary."""
    BUILD_DIR.mkdir(exist_ok=True)
    gi = BENCH_DIR / ".gitignore"
    if not gi.exists():
        gi.write_text("build/\n")
    cc = os.environ.get("CC", "gcc")
    for name, source, extra in programs or C_PROGRAMS:
        src, exe = BENCH_DIR / source, BUILD_DIR / name
        if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
            continue
        cmd = [cc, "-O2", "-Wall", "-o", str(exe), str(src)] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"compiling {src.name} failed:\n{' '.join(cmd)}\n{r.stderr}")


def find_wrk(allow_install):
    path = shutil.which("wrk")
    if path:
        return path, None
    if not allow_install:
        return None, "wrk not found (install it: apt-get install -y wrk)"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found; trying: apt-get install -y wrk")
        try:
            subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, timeout=300)
        except (subprocess.TimeoutExpired, OSError):
            pass
        path = shutil.which("wrk")
        if path:
            return path, None
        return None, "wrk not found and 'apt-get install -y wrk' did not provide it"
    return None, "wrk not found (install it: apt-get install -y wrk)"


def setup_cpus(cfg, args):
    notes = []
    if args.no_pin:
        return notes + ["no CPU pinning (--no-pin)"]
    if not shutil.which("taskset"):
        return notes + ["taskset not found: no CPU pinning"]
    avail = sorted(os.sched_getaffinity(0))
    if args.server_cpu not in avail or args.load_cpu not in avail or args.server_cpu == args.load_cpu:
        return notes + [f"cannot pin server to CPU {args.server_cpu} and load to CPU "
                        f"{args.load_cpu} (available: {avail}): no pinning"]
    cfg.server_cpu, cfg.load_cpu = args.server_cpu, args.load_cpu
    os.sched_setaffinity(0, {cfg.load_cpu})   # the orchestrator stays off the server's core
    return notes


def raise_nofile(cfg, notes):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = hard - 200
    if cfg.rss_conns > limit:
        notes.append(f"RLIMIT_NOFILE hard limit {hard}: RSS test uses {limit} connections "
                     f"instead of {cfg.rss_conns}")
        cfg.rss_conns = limit


# --------------------------------------------------------------------------
# statistics and tables
# --------------------------------------------------------------------------

def summarize(values, higher):
    """values: {runner: [per-round]} -> {runner: {best, median, worst, rounds}}."""
    out = {}
    for rn, v in values.items():
        v = [x for x in v if x is not None]
        if not v:
            continue
        out[rn] = {"rounds": v, "best": max(v) if higher else min(v),
                   "median": statistics.median(v), "worst": min(v) if higher else max(v)}
    return out


def ratios(values, summ, pairs):
    out = {}
    for a, b in pairs:
        if a in summ and b in summ:
            va, vb = values[a], values[b]
            paired = [x / y for x, y in zip(va, vb) if x and y]
            out[f"{a}/{b}"] = {
                "best": micro._ratio(summ[a]["best"], summ[b]["best"]),
                "median": micro._ratio(summ[a]["median"], summ[b]["median"]),
                "paired_median": statistics.median(paired) if paired and len(va) == len(vb) else None,
            }
    return out


def main_table(rows, loops, unit, skipped_note):
    cols = ["benchmark", "eloop", "asyncio", "uvloop", "C ceiling", "eloop/asyncio",
            "eloop/uvloop (best)", "eloop/uvloop (median)"]
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    for name, summ, rat in rows:
        row = [name]
        for ln in ("eloop", "asyncio", "uvloop"):
            if ln not in loops:
                row.append("-")
            elif ln in summ:
                row.append(fmt_value(summ[ln]["best"], unit))
            else:
                row.append(skipped_note(name, ln))
        row.append(fmt_value(summ[C_NAME]["best"], unit) if C_NAME in summ else "-")
        row.append(fmt_ratio(rat.get("eloop/asyncio", {}).get("best")))
        row.append(fmt_ratio(rat.get("eloop/uvloop", {}).get("best")))
        row.append(fmt_ratio(rat.get("eloop/uvloop", {}).get("median")))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _pct(x):
    return "n/a" if x is None else f"{x * 100:.0f}%"


def details_table(rows, runners, unit, cpu_cols=True):
    head = "| benchmark | server | best | median | worst | spread |"
    sep = "|---|---|---:|---:|---:|---:|"
    if cpu_cols:
        head += " server CPU | server CPU us/op | load CPU |"
        sep += "---:|---:|---:|"
    head += " other CPU |"
    sep += "---:|"
    lines = [head, sep]
    for name, summ, _, cpu in rows:
        for rn in runners:
            d = summ.get(rn)
            if not d:
                continue
            spread = abs(d["best"] - d["worst"]) / d["median"] * 100 if d["median"] else 0
            line = (f"| {name} | {rn} | {fmt_value(d['best'], unit)} | "
                    f"{fmt_value(d['median'], unit)} | {fmt_value(d['worst'], unit)} | "
                    f"{spread:.0f}% |")
            util, us, load, oth = cpu.get(rn, (None, None, None, None))
            if cpu_cols:
                line += (f" {_pct(util)} | {'n/a' if us is None else f'{us:.2f}'} | "
                         f"{_pct(load)} |")
            line += f" {'n/a' if oth is None else f'{oth:.2f}'} |"
            lines.append(line)
    return "\n".join(lines)


def ratio_table(rows):
    lines = ["| benchmark | ratio | best/best | median/median | median of per-round ratios |",
             "|---|---|---:|---:|---:|"]
    for name, _, rat, _ in rows:
        for key in ("eloop/asyncio", "eloop/uvloop", "uvloop/asyncio", "uvloop/C", "eloop/C"):
            r = rat.get(key)
            if r:
                lines.append(f"| {name} | {key} | {fmt_ratio(r['best'])} | "
                             f"{fmt_ratio(r['median'])} | {fmt_ratio(r['paired_median'])} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="eloop networking benchmarks (see bench/README.md)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 round, short windows, small transfers (~30 s)")
    p.add_argument("--only", default=None,
                   help="comma-separated benchmark names, groups (echo, bulk, http, connect, "
                        "rss) or shell patterns (echo_*_protocol)")
    p.add_argument("--loops", default=",".join(LOOP_NAMES),
                   help="comma-separated loops (default: eloop,asyncio,uvloop)")
    p.add_argument("--no-ceiling", action="store_true", help="leave out the C server")
    p.add_argument("--keep-going", action="store_true",
                   help="a failing (benchmark, loop) is reported as FAILED and left out for the "
                        "rest of the run instead of aborting it (exit status 2 at the end)")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 4, --quick: 1)")
    p.add_argument("--repeat", type=int, default=1,
                   help="back-to-back repeats per benchmark and loop within a round; a round's "
                        "value is the best of them (default 1)")
    p.add_argument("--duration", type=float, default=None,
                   help="measured window of echo and connect runs in seconds "
                        "(default 0.75, quick 0.25)")
    p.add_argument("--warmup", type=float, default=None,
                   help="untimed load before the window, seconds (default 0.25, quick 0.05)")
    p.add_argument("--conns", type=int, default=10, help="echo connections (default 10)")
    p.add_argument("--bulk-bytes", type=int, default=None,
                   help="bytes per bulk transfer (default 1 GiB, quick 256 MiB)")
    p.add_argument("--http-duration", type=int, default=None, help="wrk -d seconds (default 3, quick 1)")
    p.add_argument("--http-conns", type=int, default=100, help="wrk -c (default 100)")
    p.add_argument("--connect-conns", type=int, default=32,
                   help="concurrent connection attempts in connect mode (default 32)")
    p.add_argument("--rss-conns", type=int, default=None,
                   help="connections held for the RSS test (default 10000, quick 2000)")
    p.add_argument("--src-addrs", type=int, default=8,
                   help="loopback source addresses 127.0.0.1..k for connect/rss (default 8)")
    p.add_argument("--server-cpu", type=int, default=0, help="core of the server (default 0)")
    p.add_argument("--load-cpu", type=int, default=1, help="core of the load generator (default 1)")
    p.add_argument("--no-pin", action="store_true", help="no taskset pinning")
    p.add_argument("--no-install", action="store_true", help="do not try to apt-get install wrk")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    p.add_argument("--list", action="store_true", help="list benchmarks and exit")
    p.add_argument("--single", metavar="BENCH", help="one measurement of BENCH with --loop, no rounds")
    p.add_argument("--loop", metavar="NAME", help="loop for --single (or C)")
    # server process (internal)
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--style", default="protocol", help=argparse.SUPPRESS)
    p.add_argument("--close-after", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--max-life", type=float, default=300, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 4
    if args.rounds < 1 or args.repeat < 1:
        p.error("--rounds and --repeat must be >= 1")
    return p, args


def select_benches(p, only):
    if not only:
        return list(BENCHES)
    out = []
    for tok in (t.strip() for t in only.split(",")):
        if not tok:
            continue
        if tok in GROUPS:
            hit = [b for b in BENCHES if BENCHES[b].group == tok]
        else:
            hit = [b for b in BENCHES if fnmatch.fnmatchcase(b, tok)]
        if not hit:
            p.error(f"--only: {tok!r} matches no benchmark; known: {', '.join(BENCHES)}")
        out += [b for b in hit if b not in out]
    return [b for b in BENCHES if b in out]     # canonical order


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    p, args = parse_args(argv)
    if args.serve:
        return serve_main(args)
    if args.list:
        for b in BENCHES.values():
            print(f"{b.name:24s} {b.group:8s} {b.desc}")
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return orchestrate(p, args, argv)
    except KeyboardInterrupt:
        log("\ninterrupted; stopping child processes")
        return 130
    finally:
        reap_all()


def orchestrate(p, args, argv):
    t_start = time.monotonic()
    cfg = Config(args)
    notes = []
    wanted = [ln.strip() for ln in args.loops.split(",") if ln.strip()]
    bad = [ln for ln in wanted if ln not in LOOP_NAMES]
    if bad:
        p.error(f"unknown loop(s) {bad}; known: {', '.join(LOOP_NAMES)}")
    benches = select_benches(p, args.only)
    factories, infos, missing = micro.available_loops(wanted)
    for ln, why in missing.items():
        notes.append(f"loop '{ln}' not available, skipped ({why})")
    loops = [ln for ln in wanted if ln in factories]

    build_c()
    notes += setup_cpus(cfg, args)
    raise_nofile(cfg, notes)
    if any(BENCHES[b].group == "http" for b in benches):
        cfg.wrk, why = find_wrk(not args.no_install)
        if not cfg.wrk:
            notes.append(f"HTTP benchmark skipped: {why}")
            benches = [b for b in benches if BENCHES[b].group != "http"]
    cfg.tmpdir = tempfile.mkdtemp(prefix="eloop-net-")
    try:
        if args.single:
            return run_single(p, args, cfg, loops)
        if not loops and args.no_ceiling:
            log("no loop available")
            return 3
        return run_rounds(args, argv, cfg, benches, loops, infos, missing, notes, t_start)
    finally:
        reap_all()
        shutil.rmtree(cfg.tmpdir, ignore_errors=True)


def run_single(p, args, cfg, loops):
    if args.single not in BENCHES:
        p.error(f"unknown benchmark {args.single!r}")
    runner = args.loop or "asyncio"
    if runner != C_NAME and runner not in loops:
        p.error(f"--loop must be one of {loops + [C_NAME]}")
    if BENCHES[args.single].group == "http" and not cfg.wrk:
        log("wrk not available")
        return 3
    try:
        res = measure(cfg, BENCHES[args.single], runner)
    except NotImplementedSkip as e:
        print(f"{args.single} {runner}: skipped, {e}")
        return 0
    except VerificationError as e:
        log(f"\n{'!' * 72}\n{e}\n{'!' * 72}")
        return 2
    print(json.dumps({"bench": args.single, "loop": runner, **res}))
    return 0


def run_rounds(args, argv, cfg, benches, loops, infos, missing, notes, t_start):
    ceiling = not args.no_ceiling
    skipped = {}          # (bench, runner) -> reason
    failed = {}           # (bench, runner) -> error (--keep-going)
    samples = {b: {} for b in benches}     # bench -> runner -> [metrics dict per round]
    c_samples = {}                          # c_key -> [metrics per round]

    def primary(bench):
        return {"echo": "rt_per_sec", "bulk": "gib_per_sec", "http": "req_per_sec",
                "connect": "conns_per_sec", "rss": "kib_per_conn"}[BENCHES[bench].group]

    def better(bench, a, b):
        k = primary(bench)
        if a is None:
            return b
        hi = BENCHES[bench].group != "rss"
        return b if (b[k] > a[k]) == hi and b[k] != a[k] else a

    versions = ", ".join(f"{ln} {infos[ln]['version']}" for ln in loops)
    log(f"loops: {versions}"
        f"{', C ceiling' if ceiling else ''}; rounds: {args.rounds}; "
        f"benchmarks: {', '.join(benches)}")
    for n in notes:
        log(f"note: {n}")
    try:
        for r in range(args.rounds):
            c_done = set()
            for bi, b in enumerate(benches):
                bench = BENCHES[b]
                runners = [ln for ln in loops if (b, ln) not in skipped]
                if ceiling and bench.c_key not in c_done:
                    runners.append(C_NAME)
                best = {}
                for rep in range(args.repeat):
                    k = (r + bi + rep) % max(1, len(runners))
                    for pos, rn in enumerate(runners[k:] + runners[:k]):
                        if (b, rn) in skipped:
                            continue
                        try:
                            res = measure(cfg, bench, rn)
                            res.update(round=r, repeat=rep, position=pos)
                        except (VerificationError, BenchError) as e:
                            if not args.keep_going:
                                raise
                            failed[(b, rn)] = str(e)
                            skipped[(b, rn)] = "FAILED"
                            log(f"  {b} / {rn}: FAILED (--keep-going):\n{_indent(str(e))}")
                            continue
                        except NotImplementedSkip as e:
                            skipped[(b, rn)] = str(e)
                            if e.startup:   # the same server will not start for others either
                                for b2 in benches[bi + 1:]:
                                    if (BENCHES[b2].kind, BENCHES[b2].style) == \
                                            (bench.kind, bench.style):
                                        skipped.setdefault((b2, rn), str(e))
                            log(f"  {b} / {rn}: skipped: {e}")
                            continue
                        best[rn] = better(b, best.get(rn), res)
                        log(f"  [{time.monotonic() - t_start:4.0f}s] round {r + 1} {b} / {rn}: "
                            f"{primary(b)} = {res[primary(b)]:.4g}")
                for rn, res in best.items():
                    if rn == C_NAME:
                        c_samples.setdefault(bench.c_key, []).append(res)
                    else:
                        samples[b].setdefault(rn, []).append(res)
                if C_NAME in best:
                    c_done.add(bench.c_key)
            log(f"round {r + 1}/{args.rounds} done [{time.monotonic() - t_start:.0f}s]")
    except VerificationError as e:
        log("")
        log("!" * 72)
        log(str(e))
        log("!" * 72)
        return 2
    except BenchError as e:
        log("")
        log("!" * 72)
        log(f"BENCHMARK FAILED: {e}")
        log("!" * 72)
        return 2

    # ---- report ----
    def skipped_note(bname, ln):
        if (bname, ln) in failed:
            return "FAILED"
        return "skipped" if (bname, ln) in skipped else "n/a"

    fmt = dict(conns=cfg.conns, bulk=_fmt_bytes(cfg.bulk_bytes), http_conns=cfg.http_conns,
               http_duration=cfg.http_duration, connect_conns=cfg.connect_conns,
               rss_conns=f"{cfg.rss_conns:,}")
    pairs = [("eloop", "asyncio"), ("eloop", "uvloop"), ("uvloop", "asyncio"),
             ("eloop", C_NAME), ("uvloop", C_NAME), ("asyncio", C_NAME)]
    runners_all = loops + ([C_NAME] if ceiling else [])
    report = {}
    print()
    print(f"Server on CPU {cfg.server_cpu}, load on CPU {cfg.load_cpu}; best of {args.rounds} "
          f"round(s) x {args.repeat} repeat(s); loops measured back to back in rotating order. "
          f"Ratios are value ratios (first loop / second). Details: medians over the rounds of "
          f"server CPU (utilisation of the server process), server CPU us/op (its CPU time per "
          f"round trip, request or connection), load CPU (utilisation of loadgen/wrk: near "
          f"100% means the client was the limit) and other CPU (cores of user time used by "
          f"other processes meanwhile).")
    for group, metric, title, unit, higher in TABLES:
        gb = [b for b in benches if BENCHES[b].group == group]
        if not gb:
            continue
        rows, drows = [], []
        for b in gb:
            values = {rn: [s.get(metric) for s in samples[b].get(rn, [])] for rn in loops}
            def cpu_of(ss):
                return (_median([s.get("server_cpu_util") for s in ss]),
                        _median([s.get("cpu_us_per_op") for s in ss]),
                        _median([s.get("load_cpu_util") for s in ss]),
                        _median([s.get("other_cpu") for s in ss]))
            cpu = {rn: cpu_of(samples[b].get(rn, [])) for rn in loops}
            if ceiling and BENCHES[b].c_key in c_samples:
                cs = c_samples[BENCHES[b].c_key]
                values[C_NAME] = [s.get(metric) for s in cs]
                cpu[C_NAME] = cpu_of(cs)
            summ = summarize(values, higher)
            rat = ratios(values, summ, pairs)
            rows.append((b, summ, rat))
            drows.append((b, summ, rat, cpu))
            report.setdefault(b, {"group": group, "description": BENCHES[b].desc,
                                  "metrics": {}})["metrics"][metric] = {
                "higher_is_better": higher, "summary": summ, "ratios": rat}
        print()
        print(f"### {title.format(**fmt)}")
        print()
        print(main_table(rows, loops, unit, skipped_note))
        print()
        print("<details><summary>details</summary>")
        print()
        print(details_table(drows, runners_all, unit, cpu_cols=group != "rss"))
        print()
        rt = ratio_table(drows)
        if rt.count("\n") > 1:
            print(rt)
            print()
        print("</details>")
    print()
    shown = set()
    for (b, rn), why in skipped.items():
        if (b, rn) in failed:
            continue
        if (rn, why) not in shown:
            shown.add((rn, why))
            bs = [b2 for (b2, rn2), w2 in skipped.items()
                  if rn2 == rn and w2 == why and (b2, rn2) not in failed]
            print(f"> note: {rn} skipped for {', '.join(bs)}: {why}")
    for (b, rn), err in failed.items():
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        last = f" ... {lines[-1]}" if len(lines) > 1 else ""
        print(f"> FAILED: {b} / {rn}: {lines[0] if lines else err}{last}")
    for n in notes:
        print(f"> note: {n}")
    stderr_notes = {(b, rn): s["server_stderr"] for b in samples for rn in samples[b]
                    for s in samples[b][rn] if s.get("server_stderr")}
    for (b, rn), s in stderr_notes.items():
        print(f"> note: {b} / {rn}: the server wrote to stderr: {s.splitlines()[-1]}")
    others = [s.get("other_cpu") for b in samples for rn in samples[b] for s in samples[b][rn]]
    others += [s.get("other_cpu") for cs in c_samples.values() for s in cs]
    others = [x for x in others if x is not None]
    busy = [x for x in others if x > OTHER_BUSY]
    if busy:
        print(f"> warning: other processes used more than {OTHER_BUSY} of a core during "
              f"{len(busy)} of {len(others)} measurements (median {statistics.median(busy):.2f} "
              f"cores then; 'other CPU' in the details): the machine was shared, absolute "
              f"numbers are depressed and noisy; compare the per-round ratios")
    total = time.monotonic() - t_start
    print(f"echo: {cfg.conns} connections, window {cfg.duration}s after {cfg.warmup}s warm-up; "
          f"bulk: {_fmt_bytes(cfg.bulk_bytes)}; connect: window {cfg.duration}s; "
          f"Python {platform.python_version()}; "
          + "; ".join(f"{ln} {infos[ln]['version']}" for ln in loops))
    print(f"total time {total:.0f}s")

    if args.json:
        doc = {
            "meta": {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "python": sys.version, "platform": platform.platform(),
                "machine": platform.machine(), "cpu_count": os.cpu_count(),
                "rounds": args.rounds, "repeat": args.repeat, "quick": args.quick,
                "server_cpu": cfg.server_cpu, "load_cpu": cfg.load_cpu,
                "loops": {ln: infos[ln] for ln in loops}, "missing_loops": missing,
                "ceiling": ceiling, "wrk": cfg.wrk,
                "params": {"duration": cfg.duration, "warmup": cfg.warmup, "conns": cfg.conns,
                           "bulk_bytes": cfg.bulk_bytes, "http_duration": cfg.http_duration,
                           "http_conns": cfg.http_conns, "connect_conns": cfg.connect_conns,
                           "rss_conns": cfg.rss_conns, "src_addrs": cfg.src_addrs},
                "notes": notes,
                "skipped": [{"bench": b, "loop": rn, "reason": w} for (b, rn), w in skipped.items()
                            if (b, rn) not in failed],
                "failed": [{"bench": b, "loop": rn, "error": w} for (b, rn), w in failed.items()],
                "total_seconds": total,
                "argv": sys.argv[1:] if argv is None else argv,
            },
            "results": {b: dict(report.get(b, {}), samples=samples[b],
                                ceiling_samples=c_samples.get(BENCHES[b].c_key, []))
                        for b in benches},
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        log(f"wrote {args.json}")
    if failed:
        log(f"{len(failed)} measurement(s) FAILED (--keep-going): exit status 2")
        return 2
    return 0


OTHER_BUSY = 0.15     # cores used by other processes that make a measurement suspect


def _indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.splitlines())


def _median(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def _fmt_bytes(n):
    if n >= GIB and n % GIB == 0:
        return f"{n // GIB} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    return f"{n} B"


if __name__ == "__main__":
    sys.exit(main())
