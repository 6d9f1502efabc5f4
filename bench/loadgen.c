/*
 * loadgen: a small epoll-based TCP load generator for bench/net.py.
 *
 * Single-threaded, level-triggered epoll, non-blocking sockets, IPv4 only.
 * Every mode is bounded in time and in count, verifies what it receives and
 * exits with status 1 (message on stderr) on any error.  The result is one
 * JSON object on stdout.
 *
 * Modes (-m):
 *   echo      -c N connections, each sends a -s byte message and waits for
 *             the whole message to come back (one message in flight per
 *             connection), byte-for-byte compared, then sends the next.
 *             Runs -w warm-up seconds, then counts round trips completed in
 *             a -d second window (or until -n round trips).
 *   connect   -c concurrent slots; each opens a connection, sends -s bytes,
 *             reads them back, and closes (-E: the server closes first,
 *             we wait for EOF), then opens the next one.  Reports conns/s
 *             in the window, as for echo.
 *   bulkup    one connection sends -b bytes, shuts down its write side and
 *             expects the server to answer "<bytes received>\n" and close.
 *   bulkdown  one connection sends "<-b>\n"; the server streams -b bytes of
 *             the pattern byte[k] = k & 0xff and closes; all bytes checked.
 *   hold      opens -c connections (at most -i connecting at once), each
 *             does one -s byte echo round trip and then stays idle.  When
 *             all are up it prints "HELD <n> <seconds>" on stdout and waits
 *             until stdin is readable/closed (or -d seconds pass: error),
 *             then closes them all.  stdin must be a pipe or a terminal
 *             (epoll cannot watch /dev/null).
 *
 * Common options: -H host (127.0.0.1)  -p port  -A k (rotate source
 * addresses 127.0.0.1 .. 127.0.0.k, IP_BIND_ADDRESS_NO_PORT; for many
 * connections when one address runs out of ephemeral ports)  -P pid (report
 * the CPU time that process used during the measured window, from
 * /proc/<pid>/task/<tid>/schedstat, else utime+stime of /proc/<pid>/stat)
 * -T s (error if no progress for s seconds)  -u (echo only: connected UDP
 * sockets instead of TCP connections, one -s byte datagram in flight per
 * socket, each echoed datagram compared; bench/udp.py).
 *
 * Built with -DLOADGEN_TLS (bench/tls.py builds it as "tlsgen", linked with
 * OpenSSL), every connection speaks TLS 1.3 (TLS_AES_256_GCM_SHA384, X25519,
 * no session reuse: each connection makes a full handshake, the server's
 * certificate is not verified) over the same modes, except hold and -u.
 * TLS has no half-close that every server honours (asyncio refuses
 * write_eof on SSL transports), so there:
 *   bulkup    sends "<-b>\n" first, then the bytes; the server answers
 *             "<bytes received>\n" once it has them all, and closes;
 *   connect   after the echo the client sends close_notify and waits for
 *             the server's close_notify or EOF before it closes the socket
 *             (so the server's shutdown is part of each connection).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define RBUF (256 * 1024)
#define MAXEV 256

#ifdef LOADGEN_TLS
#define TLS_BUILD 1
#else
#define TLS_BUILD 0
#endif

static const char *mode = NULL;
static const char *host = "127.0.0.1";
static int port = 0;
static int nconns = 10;
static size_t msgsize = 1024;
static double duration = 1.0, warmup = 0.2, stall_timeout = 10.0;
static long long maxcount = 0;   /* 0 = unlimited (duration bounds) */
static long long nbytes = 1LL << 30;
static int nsrc = 1;
static int cpu_pid = 0;
static int server_closes = 0;
static int max_inflight = 128;
static int udp = 0;              /* -u: echo over connected UDP sockets */

static int ep;
static unsigned char *pat;       /* pattern, msgsize + 256 bytes */
static unsigned char rbuf[RBUF];
static struct sockaddr_in dst;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen %s: ", mode ? mode : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---------------------------------------------------------------- */
/* the byte stream: plain TCP, or TLS in the LOADGEN_TLS build       */

#ifdef LOADGEN_TLS
static SSL_CTX *tls_ctx;

static void tls_init(void)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx ||
        !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_ciphersuites(tls_ctx, "TLS_AES_256_GCM_SHA384") ||
        !SSL_CTX_set1_groups_list(tls_ctx, "X25519"))
        die("TLS context: %s", ERR_error_string(ERR_get_error(), NULL));
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    /* A server that closes without close_notify reads as EOF: the checks
     * on the byte counts catch a truncated stream anyway. */
    SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static SSL *tls_new(int fd)
{
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl || !SSL_set_fd(ssl, fd))
        die("SSL_new: %s", ERR_error_string(ERR_get_error(), NULL));
    SSL_set_connect_state(ssl);
    return ssl;
}

/* r from an SSL_* call: 0 for "wait" (*want_out says for what), else die */
static int tls_wait(SSL *ssl, int r, const char *what, int *want_out)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (want_out)
            *want_out = e == SSL_ERROR_WANT_WRITE;
        errno = EAGAIN;
        return 0;
    }
    if (e == SSL_ERROR_SYSCALL && errno)
        die("%s: %s", what, strerror(errno));
    die("%s: TLS error %d: %s", what, e, ERR_error_string(ERR_get_error(), NULL));
    return -1;
}

/* 1 when the handshake is done, 0 to wait (*want_out: for EPOLLOUT) */
static int tls_handshake(SSL *ssl, int *want_out)
{
    int r = SSL_do_handshake(ssl);
    return r == 1 ? 1 : tls_wait(ssl, r, "TLS handshake", want_out);
}

/* send close_notify (the answer is read as EOF by io_recv) */
static void tls_close_notify(SSL *ssl)
{
    int r = SSL_shutdown(ssl);
    if (r < 0)
        tls_wait(ssl, r, "SSL_shutdown", NULL);
}
typedef SSL io_t;
#else
typedef void io_t;
#endif

/* send()/recv() on the connection's byte stream: -1 with errno EAGAIN to
 * wait, 0 from io_recv at EOF (or close_notify) */
static ssize_t io_send(io_t *ssl, int fd, const void *buf, size_t n)
{
#ifdef LOADGEN_TLS
    size_t done;
    int r = SSL_write_ex(ssl, buf, n, &done);
    (void)fd;
    return r == 1 ? (ssize_t)done : (tls_wait(ssl, r, "SSL_write", NULL), -1);
#else
    (void)ssl;
    return send(fd, buf, n, MSG_NOSIGNAL);
#endif
}

static ssize_t io_recv(io_t *ssl, int fd, void *buf, size_t n)
{
#ifdef LOADGEN_TLS
    size_t done;
    int r = SSL_read_ex(ssl, buf, n, &done);
    (void)fd;
    if (r == 1)
        return (ssize_t)done;
    if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN)
        return 0;
    tls_wait(ssl, r, "SSL_read", NULL);
    return -1;
#else
    (void)ssl;
    return recv(fd, buf, n, 0);
#endif
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* utime + stime of cpu_pid from /proc/<pid>/stat, in seconds (10 ms ticks) */
static double proc_cpu_stat(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", cpu_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ")": state(3) ppid(4) ... utime(14) stime(15) */
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (char *s = p + 1; *s && field < 15; s++) {
        if (*s == ' ') {
            field++;
            if (field == 14)
                ut = strtoull(s + 1, NULL, 10);
            else if (field == 15)
                st = strtoull(s + 1, NULL, 10);
        }
    }
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/* CPU time of cpu_pid in seconds, -1 if not asked / unreadable: the sum
 * over its threads of the on-CPU time in /proc/<pid>/task/<tid>/schedstat
 * (ns resolution; the same total as utime+stime, which /proc/<pid>/stat
 * only gives in 10 ms ticks).  Falls back to /proc/<pid>/stat. */
static double proc_cpu(void)
{
    if (!cpu_pid)
        return -1;
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/task", cpu_pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    unsigned long long ns = 0;
    int ok = 1, nt = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", cpu_pid, de->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long v;
        if (!f)
            continue;       /* thread just exited */
        if (fscanf(f, "%llu", &v) == 1)
            ns += v, nt++;
        else
            ok = 0;
        fclose(f);
    }
    closedir(d);
    if (!ok || nt == 0)
        return proc_cpu_stat();
    return ns * 1e-9;
}

static void raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (long long)rl.rlim_cur < need)
        die("RLIMIT_NOFILE %llu is too small for %d connections",
            (unsigned long long)rl.rlim_cur, need);
}

static void ep_ctl(int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die("epoll_ctl(%d, fd %d): %s", op, fd, strerror(errno));
}

/* Non-blocking socket connecting to dst from source address #k.
 * *done = 1 if connected already. */
static int open_conn(unsigned k, int *done)
{
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    if (!udp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (nsrc > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (k % nsrc));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
            die("bind 127.0.0.%u: %s", 1 + k % nsrc, strerror(errno));
    }
    *done = 0;
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0)
        *done = 1;
    else if (errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    return fd;
}

static void check_connected(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err)
        die("connect: %s", strerror(err));
}

/* ---------------------------------------------------------------- */
/* message connections: echo, connect and hold modes                 */

enum { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_MSG, C_EOF, C_HELD };

typedef struct {
    int fd;
    int state;
    io_t *ssl;          /* LOADGEN_TLS: the connection's TLS state */
    uint32_t gen;
    unsigned off;       /* pattern offset of the current message */
    size_t sent, recvd;
    int want_out;
    uint64_t seq;
} conn_t;

static conn_t *conns;
static long long done_in_window, total_done;
static int in_window, stopping;
static double last_progress;

static uint64_t tag(int i) { return ((uint64_t)conns[i].gen << 32) | (uint32_t)i; }

static void set_out(int i, int on)
{
    conn_t *c = &conns[i];
    if (c->want_out == on)
        return;
    c->want_out = on;
    ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | (on ? EPOLLOUT : 0), tag(i));
}

static void try_send(int i)
{
    conn_t *c = &conns[i];
    while (c->sent < msgsize) {
        ssize_t n = io_send(c->ssl, c->fd, pat + c->off + c->sent, msgsize - c->sent);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            die("send (conn %d): %s", i, strerror(errno));
        }
        c->sent += n;
    }
    set_out(i, c->sent < msgsize);
}

static void start_msg(int i)
{
    conn_t *c = &conns[i];
    c->state = C_MSG;
    c->off = (unsigned)((i * 17 + c->seq * 7) % 251);
    c->sent = c->recvd = 0;
    try_send(i);
}

/* returns 1 when the current message is complete */
static int on_readable(int i)
{
    conn_t *c = &conns[i];
    for (int rounds = 0; rounds < 4; rounds++) {
        ssize_t n = io_recv(c->ssl, c->fd, rbuf, RBUF);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            die("recv (conn %d): %s", i, strerror(errno));
        }
        if (n == 0) {
            if (c->state == C_EOF)
                return 1;
            die("server closed connection %d unexpectedly (%zu of %zu bytes back)",
                i, c->recvd, msgsize);
        }
        if (c->state != C_MSG)
            die("conn %d: %zd unexpected bytes (state %d)", i, n, c->state);
        if (c->recvd + n > msgsize)
            die("conn %d: server sent %zu bytes for a %zu byte message",
                i, c->recvd + n, msgsize);
        if (memcmp(rbuf, pat + c->off + c->recvd, n) != 0)
            die("conn %d: echoed bytes differ from what was sent (offset %zu)", i, c->recvd);
        c->recvd += n;
        if (c->recvd == msgsize)
            return 1;
    }
    return 0;
}

/* the connection is up (or an event came during the TLS handshake):
 * handshake if TLS, then start the first message */
static void on_connected(int i)
{
    conn_t *c = &conns[i];
    if (c->state == C_CONNECTING) {
        check_connected(c->fd);
#ifdef LOADGEN_TLS
        c->ssl = tls_new(c->fd);
        c->state = C_HANDSHAKE;
#endif
    }
#ifdef LOADGEN_TLS
    int want_out = 0;
    if (!tls_handshake(c->ssl, &want_out)) {
        set_out(i, want_out);
        return;
    }
#endif
    start_msg(i);
}

/* close a connection's socket (and free its TLS state) */
static void conn_close(conn_t *c)
{
#ifdef LOADGEN_TLS
    SSL_free(c->ssl);
    c->ssl = NULL;
#endif
    close(c->fd);
}

static void mk_pattern(void)
{
    pat = malloc(msgsize + 256);
    if (!pat)
        die("out of memory");
    uint32_t x = 2463534242u;
    for (size_t k = 0; k < msgsize + 256; k++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        pat[k] = (unsigned char)x;
    }
}

static void print_window(const char *extra, double t0, double t1, double cpu0, double cpu1,
                         long long count, long long bytes)
{
    double secs = t1 - t0;
    printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"count\":%lld,\"bytes\":%lld,"
           "\"seconds\":%.6f,\"per_sec\":%.3f,\"bytes_per_sec\":%.3f,"
           "\"total_count\":%lld,\"server_cpu\":%.3f%s}\n",
           mode, nconns, msgsize, count, bytes, secs, count / secs, bytes / secs,
           total_done, (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0, extra);
}

/* common window bookkeeping for echo and connect; returns 1 to stop */
static double w_start, w_end, cpu_start, cpu_end, t_begin;

static int window_tick(double t)
{
    if (!in_window && !stopping && t >= t_begin + warmup) {
        in_window = 1;
        done_in_window = 0;
        w_start = t;
        cpu_start = proc_cpu();
    }
    if (in_window && (t >= w_start + duration || (maxcount && done_in_window >= maxcount))) {
        in_window = 0;
        stopping = 1;
        w_end = t;
        cpu_end = proc_cpu();
    }
    if (t - last_progress > stall_timeout)
        die("no progress for %.1f s (%lld done, window %s)", stall_timeout, total_done,
            stopping ? "over" : in_window ? "open" : "not yet open");
    return 0;
}

static int wait_ms(double t)
{
    double next = !in_window && !stopping ? t_begin + warmup : in_window ? w_start + duration : t + 0.05;
    double ms = (next - t) * 1e3;
    if (ms < 0)
        ms = 0;
    if (ms > 50)
        ms = 50;
    return (int)(ms + 0.999);
}

static void mode_echo(void)
{
    raise_nofile(nconns + 16);
    conns = calloc(nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) {
        int done;
        conns[i].fd = open_conn(i, &done);
        ep_ctl(EPOLL_CTL_ADD, conns[i].fd, EPOLLIN | EPOLLOUT, tag(i));
        conns[i].want_out = 1;
        conns[i].state = C_CONNECTING;
    }
    struct epoll_event evs[MAXEV];
    int active = nconns;
    t_begin = last_progress = now();
    while (active > 0) {
        int n = epoll_wait(ep, evs, MAXEV, wait_ms(now()));
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            int i = (int)(uint32_t)evs[k].data.u64;
            conn_t *c = &conns[i];
            if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
                on_connected(i);
                continue;
            }
            if (c->state != C_MSG)
                continue;
            if ((evs[k].events & EPOLLOUT) && c->sent < msgsize)
                try_send(i);
            if ((evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && on_readable(i)) {
                if (c->sent != msgsize)
                    die("conn %d: message echoed before it was sent", i);
                c->seq++;
                total_done++;
                last_progress = now();
                if (in_window)
                    done_in_window++;
                if (stopping) {
                    c->state = C_IDLE;
                    active--;
                } else {
                    start_msg(i);
                }
            }
        }
        window_tick(now());
    }
    for (int i = 0; i < nconns; i++)
        conn_close(&conns[i]);
    print_window("", w_start, w_end, cpu_start, cpu_end, done_in_window,
                 done_in_window * (long long)msgsize);
}

static unsigned next_src;

static void conn_open(int i)
{
    conn_t *c = &conns[i];
    int done;
    c->gen++;
    c->fd = open_conn(next_src++, &done);
    c->seq++;
    c->want_out = 1;
    c->state = C_CONNECTING;
    ep_ctl(EPOLL_CTL_ADD, c->fd, EPOLLIN | EPOLLOUT, tag(i));
}

static void mode_connect(void)
{
    raise_nofile(nconns + 16);
    conns = calloc(nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++)
        conn_open(i);
    struct epoll_event evs[MAXEV];
    int active = nconns;
    t_begin = last_progress = now();
    while (active > 0) {
        int n = epoll_wait(ep, evs, MAXEV, wait_ms(now()));
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            int i = (int)(uint32_t)evs[k].data.u64;
            conn_t *c = &conns[i];
            if ((uint32_t)(evs[k].data.u64 >> 32) != c->gen)
                continue;   /* stale event of a closed socket */
            if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
                on_connected(i);
                continue;
            }
            if (c->state == C_MSG && (evs[k].events & EPOLLOUT) && c->sent < msgsize)
                try_send(i);
            if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            if (!on_readable(i))
                continue;
            if (c->state == C_MSG && (server_closes || TLS_BUILD)) {
#ifdef LOADGEN_TLS
                if (!server_closes)
                    tls_close_notify(c->ssl);
#endif
                c->state = C_EOF;  /* echo complete, now wait for the server's FIN */
                set_out(i, 0);
                if (!on_readable(i))
                    continue;
            }
            conn_close(c);
            c->state = C_IDLE;
            total_done++;
            last_progress = now();
            if (in_window)
                done_in_window++;
            if (stopping)
                active--;
            else
                conn_open(i);
        }
        window_tick(now());
    }
    print_window(server_closes ? ",\"server_closes\":true" : ",\"server_closes\":false",
                 w_start, w_end, cpu_start, cpu_end, done_in_window, done_in_window);
}

static void mode_hold(void)
{
    raise_nofile(nconns + 16);
    conns = calloc(nconns, sizeof *conns);
    struct epoll_event evs[MAXEV];
    int opened = 0, inflight = 0, held = 0;
    double t0 = now();
    last_progress = t0;
    int flags = fcntl(0, F_GETFL);
    fcntl(0, F_SETFL, flags | O_NONBLOCK);
    while (held < nconns) {
        while (opened < nconns && inflight < max_inflight) {
            conn_open(opened);
            conns[opened].seq = 0;
            opened++;
            inflight++;
        }
        int n = epoll_wait(ep, evs, MAXEV, 50);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            int i = (int)(uint32_t)evs[k].data.u64;
            conn_t *c = &conns[i];
            if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
                on_connected(i);
                continue;
            }
            if (c->state == C_HELD)
                die("held connection %d: unexpected event 0x%x (server closed it?)", i,
                    evs[k].events);
            if ((evs[k].events & EPOLLOUT) && c->sent < msgsize)
                try_send(i);
            if ((evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && on_readable(i)) {
                c->state = C_HELD;
                set_out(i, 0);
                held++;
                inflight--;
                last_progress = now();
            }
        }
        if (now() - last_progress > stall_timeout)
            die("no progress for %.1f s (%d of %d connections up)", stall_timeout, held, nconns);
    }
    double t_up = now() - t0;
    printf("HELD %d %.6f\n", held, t_up);
    fflush(stdout);
    /* wait for stdin (release) while watching the held connections */
    ep_ctl(EPOLL_CTL_ADD, 0, EPOLLIN, UINT64_MAX);
    double t_hold = now();
    int released = 0;
    while (!released) {
        int n = epoll_wait(ep, evs, MAXEV, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u64 == UINT64_MAX) {
                released = 1;
                continue;
            }
            int i = (int)(uint32_t)evs[k].data.u64;
            die("held connection %d: unexpected event 0x%x (server closed it?)", i,
                evs[k].events);
        }
        if (now() - t_hold > duration)
            die("not released within %.1f s", duration);
    }
    for (int i = 0; i < nconns; i++)
        close(conns[i].fd);
    printf("{\"mode\":\"hold\",\"conns\":%d,\"size\":%zu,\"connect_seconds\":%.6f,"
           "\"held_seconds\":%.6f}\n", held, msgsize, t_up, now() - t_hold);
}

/* ---------------------------------------------------------------- */
/* bulk modes                                                        */

static io_t *bulk_io;     /* LOADGEN_TLS: the bulk connection's TLS state */

static int bulk_connect(void)
{
    int done;
    int fd = open_conn(0, &done);
    if (!done) {
        struct epoll_event ev;
        ep_ctl(EPOLL_CTL_ADD, fd, EPOLLOUT, 0);
        if (epoll_wait(ep, &ev, 1, (int)(stall_timeout * 1000)) != 1)
            die("connect timed out");
        check_connected(fd);
        ep_ctl(EPOLL_CTL_DEL, fd, 0, 0);
    }
#ifdef LOADGEN_TLS
    bulk_io = tls_new(fd);
    int want_out = 1;
    ep_ctl(EPOLL_CTL_ADD, fd, EPOLLOUT, 0);
    while (!tls_handshake(bulk_io, &want_out)) {
        struct epoll_event ev;
        ep_ctl(EPOLL_CTL_MOD, fd, want_out ? EPOLLOUT : EPOLLIN, 0);
        if (epoll_wait(ep, &ev, 1, (int)(stall_timeout * 1000)) != 1)
            die("TLS handshake timed out");
    }
    ep_ctl(EPOLL_CTL_DEL, fd, 0, 0);
#endif
    return fd;
}

static void bulk_close(int fd)
{
#ifdef LOADGEN_TLS
    SSL_free(bulk_io);
    bulk_io = NULL;
#endif
    close(fd);
}

static void mode_bulkup(void)
{
    int fd = bulk_connect();
    /* send buffer: a 256 KiB pattern chunk */
    msgsize = RBUF;
    mk_pattern();
#ifdef LOADGEN_TLS
    char hdr[32];
    int hlen = snprintf(hdr, sizeof hdr, "%lld\n", nbytes);
    if (io_send(bulk_io, fd, hdr, hlen) != hlen)   /* a fresh connection takes it */
        die("send the length: %s", strerror(errno));
#endif
    ep_ctl(EPOLL_CTL_ADD, fd, EPOLLOUT | EPOLLIN, 0);
    long long sent = 0;
    int wr_open = 1;
    char reply[64];
    size_t rlen = 0;
    double t0 = now(), cpu0 = proc_cpu();
    last_progress = t0;
    struct epoll_event ev;
    for (;;) {
        int n = epoll_wait(ep, &ev, 1, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        double t = now();
        if (n > 0 && (ev.events & EPOLLOUT) && wr_open) {
            while (sent < nbytes) {
                size_t want = nbytes - sent < RBUF ? (size_t)(nbytes - sent) : RBUF;
                ssize_t w = io_send(bulk_io, fd, pat + (sent & 127), want);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        break;
                    die("send: %s", strerror(errno));
                }
                sent += w;
                last_progress = t;
            }
            if (sent == nbytes) {
                if (!TLS_BUILD)
                    shutdown(fd, SHUT_WR);
                wr_open = 0;
                ep_ctl(EPOLL_CTL_MOD, fd, EPOLLIN, 0);
            }
        }
        if (n > 0 && (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
            ssize_t r = io_recv(bulk_io, fd, reply + rlen, sizeof reply - 1 - rlen);
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                die("recv: %s", strerror(errno));
            if (r == 0) {
                double t1 = now(), cpu1 = proc_cpu();
                reply[rlen] = 0;
                if (wr_open)
                    die("server closed after %lld of %lld bytes", sent, nbytes);
                char *end;
                long long got = strtoll(reply, &end, 10);
                if (end == reply || *end != '\n')
                    die("bad reply from server: '%s'", reply);
                if (got != nbytes)
                    die("server received %lld bytes, %lld were sent", got, nbytes);
                bulk_close(fd);
                total_done = 1;
                print_window("", t0, t1, cpu0, cpu1, 1, nbytes);
                return;
            }
            if (r > 0) {
                rlen += r;
                if (rlen >= sizeof reply - 1)
                    die("reply too long");
            }
        }
        if (t - last_progress > stall_timeout)
            die("no progress for %.1f s (%lld of %lld bytes sent)", stall_timeout, sent, nbytes);
    }
}

static void mode_bulkdown(void)
{
    int fd = bulk_connect();
    unsigned char ref[RBUF + 256];
    for (size_t k = 0; k < sizeof ref; k++)
        ref[k] = (unsigned char)k;
    char req[64];
    int len = snprintf(req, sizeof req, "%lld\n", nbytes);
    double t0 = now(), cpu0 = proc_cpu();
    if (io_send(bulk_io, fd, req, len) != len)
        die("send request: %s", strerror(errno));
    ep_ctl(EPOLL_CTL_ADD, fd, EPOLLIN, 0);
    long long got = 0;
    last_progress = t0;
    struct epoll_event ev;
    for (;;) {
        int n = epoll_wait(ep, &ev, 1, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        double t = now();
        if (n > 0) {
            for (int rounds = 0; rounds < 8; rounds++) {
                ssize_t r = io_recv(bulk_io, fd, rbuf, RBUF);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        break;
                    die("recv: %s", strerror(errno));
                }
                if (r == 0) {
                    double t1 = now(), cpu1 = proc_cpu();
                    if (got != nbytes)
                        die("server sent %lld bytes, %lld were asked for", got, nbytes);
                    bulk_close(fd);
                    total_done = 1;
                    print_window("", t0, t1, cpu0, cpu1, 1, nbytes);
                    return;
                }
                if (got + r > nbytes)
                    die("server sent more than %lld bytes", nbytes);
                if (memcmp(rbuf, ref + (got & 255), r) != 0)
                    die("received bytes differ from the pattern near offset %lld", got);
                got += r;
                last_progress = t;
            }
        }
        if (t - last_progress > stall_timeout)
            die("no progress for %.1f s (%lld of %lld bytes received)", stall_timeout, got, nbytes);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen -m echo|connect|bulkup|bulkdown|hold -p port [-H host]\n"
            "  [-c conns] [-s msgsize] [-d seconds] [-w warmup] [-n maxcount] [-b bytes]\n"
            "  [-A srcaddrs] [-P server_pid] [-T stall_timeout] [-E] [-i max_inflight]\n"
            "  [-u (echo over UDP)]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "m:H:p:c:s:d:w:n:b:A:P:T:Ei:u")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 's': msgsize = strtoull(optarg, NULL, 10); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'n': maxcount = atoll(optarg); break;
        case 'b': nbytes = atoll(optarg); break;
        case 'A': nsrc = atoi(optarg); break;
        case 'P': cpu_pid = atoi(optarg); break;
        case 'T': stall_timeout = atof(optarg); break;
        case 'E': server_closes = 1; break;
        case 'i': max_inflight = atoi(optarg); break;
        case 'u': udp = 1; break;
        default: usage();
        }
    }
    if (!mode || port <= 0 || nconns < 1 || msgsize < 1 || nsrc < 1 || nsrc > 254 ||
        duration <= 0 || max_inflight < 1 || (udp && strcmp(mode, "echo")))
        usage();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1)
        die("bad host %s (IPv4 address expected)", host);
    if ((ntohl(dst.sin_addr.s_addr) >> 24) != 127)
        die("refusing a non-loopback destination %s", host);
    if (TLS_BUILD && (udp || !strcmp(mode, "hold")))
        die("hold and -u are not supported over TLS");
#ifdef LOADGEN_TLS
    tls_init();
#endif
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    if (!strcmp(mode, "echo")) {
        mk_pattern();
        mode_echo();
    } else if (!strcmp(mode, "connect")) {
        mk_pattern();
        mode_connect();
    } else if (!strcmp(mode, "hold")) {
        mk_pattern();
        mode_hold();
    } else if (!strcmp(mode, "bulkup")) {
        mode_bulkup();
    } else if (!strcmp(mode, "bulkdown")) {
        mode_bulkdown();
    } else {
        usage();
    }
    fflush(stdout);
    return 0;
}
