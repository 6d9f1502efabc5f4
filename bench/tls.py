#!/usr/bin/env python3
"""TLS benchmarks: eloop vs asyncio vs uvloop, with a C OpenSSL ceiling.

The machinery is bench/net.py's (separate pinned server process per
measurement, pre-check, rounds with rotating order, best and median, server
CPU from schedstat, exit status 2 on any verification failure); this file
supplies the TLS pieces:

* the servers: each loop's ``create_server(..., ssl=ctx)`` with net.py's
  protocols (echo, source, HTTP) and a length-prefixed sink (TLS has no
  half-close asyncio honours), and the C ceiling ``ctls`` (cserver.c built
  with -DCSERVER_TLS);
* the load: ``tlsgen`` (loadgen.c built with -DLOADGEN_TLS) and ``wrk`` with
  an https URL;
* TLS 1.3 only; the client offers TLS_AES_256_GCM_SHA384 and X25519 only,
  so every server negotiates those; an ECDSA P-256 certificate made with the
  ``openssl`` tool into bench/build/ (no session reuse: every connection of
  the connect rows is a full handshake);
* every row twice: with default malloc, and with glibc's
  MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ raised in the server's
  environment (rows ending in ``_mt``): asyncio's and uvloop's SSL protocols
  call ``SSLObject.read(256 KiB)`` per record, so with the default dynamic
  threshold each read may cost mmap/munmap and page faults; the raised
  thresholds show that cost apart.

OpenSSL's headers come from Debian's libssl-dev: if ``openssl/ssl.h`` is
missing and we are root with apt-get, ``apt-get install -y libssl-dev
openssl`` runs once (``--no-install`` turns this off).

    python bench/tls.py                  # 4 rounds, every row
    python bench/tls.py --quick          # smoke run: 1 round, short windows, 256 MiB bulk
    python bench/tls.py --only echo --loops eloop,asyncio
    python bench/tls.py --single tls_echo_1k --loop C
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.dont_write_bytecode = True
import net  # noqa: E402

CERT = net.BUILD_DIR / "tls-cert.pem"
KEY = net.BUILD_DIR / "tls-key.pem"
# Far above SSLObject.read's 256 KiB buffers, so they come from the heap
# and freeing them does not give the memory back to the kernel each time.
MALLOC_TUNED = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20),
                "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
SSL_HEADER = Path("/usr/include/openssl/ssl.h")


# ==========================================================================
# server side
# ==========================================================================

class LengthSinkProtocol(net.asyncio.Protocol):
    """Reads "<n>\\n" and then n bytes, answers "<n>\\n" and closes."""

    def connection_made(self, transport):
        self.transport = transport
        self.head = b""
        self.want = -1
        self.n = 0

    def data_received(self, data):
        if self.want < 0:
            self.head += data
            if b"\n" not in self.head:
                return
            line, rest = self.head.split(b"\n", 1)
            self.want, self.n = int(line), len(rest)
        else:
            self.n += len(data)
        if self.n >= self.want:
            self.transport.write(b"%d\n" % self.n)
            self.transport.close()
            self.want = 1 << 62      # anything after that is not counted


PROTOCOLS = {"echo": net.EchoProtocol, "sink": LengthSinkProtocol,
             "source": net.SourceProtocol, "http": net.HttpProtocol}


def server_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(CERT, KEY)
    return ctx


# ==========================================================================
# orchestrator pieces plugged into net.py
# ==========================================================================

@dataclass
class TlsBench(net.Bench):
    malloc_tuned: bool = False


def _benches():
    base = [
        ("tls_echo_1k", "echo", "echo", 1024, "TLS echo round trips, 1 KiB messages"),
        ("tls_echo_64k", "echo", "echo", 65536, "TLS echo round trips, 64 KiB messages"),
        ("tls_bulk_up", "bulk", "sink", 0, "client sends over TLS, server discards"),
        ("tls_bulk_down", "bulk", "source", 0, "server streams over TLS to the client"),
        ("tls_connect", "connect", "echo", 64,
         "new TLS connection: full handshake, 64 B echo, close_notify both ways"),
        ("tls_http", "http", "http", 0, "HTTP/1.1 keep-alive over TLS (wrk https)"),
    ]
    out = {}
    for tuned in (False, True):
        for name, group, kind, size, desc in base:
            sfx = "_mt" if tuned else ""
            out[name + sfx] = TlsBench(name + sfx, group, kind, "protocol", size, name + sfx,
                                       desc + (" (malloc thresholds raised)" if tuned else ""),
                                       tuned)
    return out


TABLES = [
    ("echo", "rt_per_sec", "TLS echo: round trips/s ({conns} connections, one message in "
     "flight each, tlsgen)", "ops", True),
    ("echo", "cpu_us_per_op", "TLS echo: server CPU us per round trip (lower is better)",
     "f2", False),
    ("bulk", "gib_per_sec", "TLS bulk, 1 connection: GiB/s (up: client sends {bulk}; down: "
     "server streams {bulk})", "f2", True),
    ("bulk", "cpu_per_gib", "TLS bulk: server CPU-seconds per GiB (lower is better)",
     "f3", False),
    ("connect", "conns_per_sec", "New TLS connections/s (full handshake, 64 B echo, "
     "close_notify; {connect_conns} concurrent)", "ops", True),
    ("connect", "cpu_us_per_op", "New TLS connections: server CPU us per connection "
     "(lower is better)", "f2", False),
    ("http", "req_per_sec", "HTTP/1.1 over TLS: requests/s (wrk -t1 -c{http_conns} "
     "-d{http_duration}s, https)", "ops", True),
    ("http", "cpu_us_per_op", "HTTP/1.1 over TLS: server CPU us per request (lower is "
     "better)", "f2", False),
]


class TlsServer(net.Server):
    def command(self):
        cfg, bench = self.cfg, self.bench
        if self.runner == net.C_NAME:
            return [str(net.BUILD_DIR / "ctls"), "-m", bench.kind, "-c", str(CERT),
                    "-k", str(KEY), "-t", str(int(cfg.max_life))]
        return [sys.executable, str(Path(__file__).resolve()), "--serve", bench.kind,
                "--loop", self.runner, "--max-life", str(int(cfg.max_life))]

    def environ(self):
        env = super().environ()
        for k in MALLOC_TUNED:
            env.pop(k, None)
        if self.bench.malloc_tuned:
            env.update(MALLOC_TUNED)
        return env


def _client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def precheck(bench, runner, port):
    """net.py's pre-check over TLS; the sink announces its length."""
    ctx = _client_context()

    def wrap(s):
        return ctx.wrap_socket(s)

    if bench.kind != "sink":
        return _precheck(bench, runner, port, wrap)
    with wrap(socket.create_connection((net.HOST, port), timeout=10)) as s:
        s.sendall(b"100000\n" + b"x" * 100_000)
        got = net._recv_all(s)
    if got != b"100000\n":
        raise net.VerificationError(f"[{bench.name} / {runner}] VERIFICATION FAILED "
                                    f"(pre-check): sink answered {got[:40]!r}")


def ensure_openssl(allow_install):
    """libssl-dev for the C programs, the openssl tool for the certificate."""
    if SSL_HEADER.exists() and shutil.which("openssl"):
        return
    if allow_install and os.geteuid() == 0 and shutil.which("apt-get"):
        net.log("OpenSSL headers or tool missing; trying: apt-get install -y libssl-dev openssl")
        subprocess.run(["apt-get", "install", "-y", "libssl-dev", "openssl"],
                       capture_output=True, timeout=600)
    if not (SSL_HEADER.exists() and shutil.which("openssl")):
        raise net.BenchError("OpenSSL is needed: apt-get install -y libssl-dev openssl")


# net.py's own, kept before main() plugs the TLS versions in
_build_c = net.build_c
_precheck = net.precheck


def build(allow_install=True):
    ensure_openssl(allow_install)
    libs = ["-lssl", "-lcrypto"]
    _build_c((("tlsgen", "loadgen.c", ["-DLOADGEN_TLS"] + libs),
                 ("ctls", "cserver.c", ["-DCSERVER_TLS"] + libs)))
    if not (CERT.exists() and KEY.exists()):
        cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650", "-subj",
               "/CN=localhost", "-keyout", str(KEY), "-out", str(CERT)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise net.BenchError(f"making the certificate failed:\n{' '.join(cmd)}\n{r.stderr}")


def main(argv=None):
    p, args = net.parse_args(argv)
    if args.serve:
        return net.serve_main(args, PROTOCOLS, server_context())
    # Plug the TLS pieces into net.py's orchestration (module globals it
    # looks up at call time).
    net.BENCHES = _benches()
    net.GROUPS = ("echo", "bulk", "http", "connect")
    net.TABLES = TABLES
    net.Server = TlsServer
    net.precheck = precheck
    net.build_c = lambda: build(not args.no_install)
    config = net.Config

    class TlsConfig(config):
        def __init__(self, a):
            super().__init__(a)
            self.loadgen_exe = "tlsgen"
            self.url_scheme = "https"

    net.Config = TlsConfig
    if args.list:
        for b in net.BENCHES.values():
            print(f"{b.name:18s} {b.group:8s} {b.desc}")
        return 0
    net.signal.signal(net.signal.SIGTERM, net._on_sigterm)
    try:
        return net.orchestrate(p, args, argv)
    except KeyboardInterrupt:
        net.log("\ninterrupted; stopping child processes")
        return 130
    finally:
        net.reap_all()


if __name__ == "__main__":
    sys.exit(main())
