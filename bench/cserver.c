/*
 * cserver: a plain single-threaded C epoll server for bench/net.py, shown
 * beside the Python event loops as the ceiling of one core of this machine.
 *
 * Level-triggered epoll, non-blocking sockets, TCP_NODELAY, one 256 KiB
 * scratch buffer shared by all connections (an idle connection costs only
 * its small state struct, so the RSS-per-connection figure is fair).
 *
 *   cserver -m MODE [-p port] [-s close_after] [-t max_seconds]
 *
 * Modes, matching the Python servers of net.py:
 *   echo       write back everything received
 *   echo_close echo, and close once -s bytes have been echoed
 *   sink       discard; at EOF answer "<bytes received>\n" and close
 *   source     read "<n>\n", send n bytes of byte[k] = k & 0xff, close
 *   http       HTTP/1.1 keep-alive: for each request (up to \r\n\r\n)
 *              answer 200 "Hello, World!"
 *
 * Listens on 127.0.0.1 (port 0 = any) and prints "READY <port>" on stdout.
 * Exits after -t seconds (default 600) in any case.
 *
 * Built with -DCSERVER_TLS (bench/tls.py builds it as "ctls", linked with
 * OpenSSL), it is the ceiling of bench/tls.py: every connection is TLS 1.3
 * with the certificate and key of -c/-k, driven straight on the socket
 * (SSL_set_fd, read-ahead into a 256 KiB buffer, so one recv brings many
 * records as asyncio's 256 KiB reads do).  Closing sends close_notify.  As
 * TLS has no half-close asyncio honours, sink reads "<n>\n" first and
 * answers "<n>\n" once n bytes have come (see loadgen.c's TLS notes).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef CSERVER_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define SCRATCH (256 * 1024)
#define MAXEV 512

enum { M_ECHO, M_ECHO_CLOSE, M_SINK, M_SOURCE, M_HTTP };

static const char RESP[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: bench\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";
#define RESP_LEN (sizeof RESP - 1)

typedef struct {
    unsigned char *pend;    /* unsent output (malloc'ed), or NULL */
    size_t pend_len, pend_off;
    char *in;               /* sink/source/http: partial input (malloc'ed) */
    size_t in_len;
    long long count;        /* echo_close: echoed; sink: received; source: left */
    long long sent;         /* source: bytes sent; TLS sink: bytes announced */
    int active;
#ifdef CSERVER_TLS
    SSL *ssl;
    int handshaken;
#endif
} conn_t;

static int mode, ep, lfd;
static long long close_after;
static conn_t *conns;
static int maxfd;
static unsigned char scratch[SCRATCH];
static unsigned char outbuf[SCRATCH];
static unsigned char pattern[SCRATCH + 256];

static void die(const char *what)
{
    fprintf(stderr, "cserver: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void set_events(int fd, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) < 0)
        die("epoll_ctl mod");
}

#ifdef CSERVER_TLS
static SSL_CTX *tls_ctx;
#define TLS_BUILD 1
#else
#define TLS_BUILD 0
#endif

/* send() on the connection's byte stream: -1 with errno EAGAIN to wait,
 * another errno for a dead connection */
static ssize_t io_send(int fd, const void *buf, size_t n)
{
#ifdef CSERVER_TLS
    size_t done;
    int r = SSL_write_ex(conns[fd].ssl, buf, n, &done);
    if (r == 1)
        return (ssize_t)done;
    int e = SSL_get_error(conns[fd].ssl, r);
    errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
#else
    return send(fd, buf, n, MSG_NOSIGNAL);
#endif
}

static void drop(int fd)
{
    conn_t *c = &conns[fd];
#ifdef CSERVER_TLS
    /* close_notify, one try: the peer reads it as the end of the stream */
    if (c->handshaken)
        SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
#endif
    free(c->pend);
    free(c->in);
    memset(c, 0, sizeof *c);
    close(fd);
}

/* write buf; keep what does not fit as pending and wait for EPOLLOUT.
 * returns -1 if the connection was dropped */
static int out(int fd, const void *buf, size_t len)
{
    conn_t *c = &conns[fd];
    size_t off = 0;
    while (off < len) {
        ssize_t n = io_send(fd, (const char *)buf + off, len - off);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            drop(fd);
            return -1;
        }
        off += n;
    }
    if (off < len) {
        c->pend = malloc(len - off);
        if (!c->pend)
            die("malloc");
        memcpy(c->pend, (const char *)buf + off, len - off);
        c->pend_len = len - off;
        c->pend_off = 0;
        set_events(fd, EPOLLOUT);   /* stop reading until flushed */
    }
    return 0;
}

/* source mode: send pattern bytes while the socket takes them; byte k of
 * the stream is k & 0xff, so each send starts at pattern + (sent & 255) */
static void pump(int fd)
{
    conn_t *c = &conns[fd];
    while (c->count > 0) {
        size_t want = c->count < SCRATCH ? (size_t)c->count : SCRATCH;
        ssize_t n = io_send(fd, pattern + (c->sent & 255), want);
        if (n < 0) {
            if (errno == EAGAIN)
                return;     /* EPOLLOUT is set */
            if (errno == EINTR)
                continue;
            drop(fd);
            return;
        }
        c->count -= n;
        c->sent += n;
    }
    drop(fd);   /* all sent: close (the kernel still delivers the queued data) */
}

static void on_readable(int fd);

/* source/sink: append to the partial input line; its '\n' or NULL */
static char *add_input(conn_t *c, const unsigned char *data, size_t n)
{
    char *nb = realloc(c->in, c->in_len + n + 1);
    if (!nb)
        die("realloc");
    memcpy(nb + c->in_len, data, n);
    c->in = nb;
    c->in_len += n;
    c->in[c->in_len] = 0;
    return memchr(c->in, '\n', c->in_len);
}

static void flush_pending(int fd)
{
    conn_t *c = &conns[fd];
    while (c->pend_off < c->pend_len) {
        ssize_t n = io_send(fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            if (errno == EINTR)
                continue;
            drop(fd);
            return;
        }
        c->pend_off += n;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = 0;
    if (mode == M_ECHO_CLOSE && c->count >= close_after) {
        drop(fd);
        return;
    }
    set_events(fd, EPOLLIN);
#ifdef CSERVER_TLS
    /* read-ahead may hold records the socket no longer signals */
    if (SSL_has_pending(c->ssl))
        on_readable(fd);
#endif
}

static void on_http(int fd, const unsigned char *data, size_t n)
{
    conn_t *c = &conns[fd];
    const char *buf = (const char *)data;
    size_t len = n;
    if (c->in_len) {
        char *nb = realloc(c->in, c->in_len + n);
        if (!nb)
            die("realloc");
        memcpy(nb + c->in_len, data, n);
        c->in = nb;
        c->in_len += n;
        buf = c->in;
        len = c->in_len;
    }
    size_t pos = 0, olen = 0;
    for (;;) {
        const char *end = memmem(buf + pos, len - pos, "\r\n\r\n", 4);
        if (!end)
            break;
        if (len - pos < 4 || memcmp(buf + pos, "GET ", 4) != 0) {
            drop(fd);
            return;
        }
        if (olen + RESP_LEN > sizeof outbuf) {
            if (out(fd, outbuf, olen) < 0)
                return;
            olen = 0;
        }
        memcpy(outbuf + olen, RESP, RESP_LEN);
        olen += RESP_LEN;
        pos = (end - buf) + 4;
    }
    size_t rest = len - pos;
    if (rest) {
        char *nb = malloc(rest);
        if (!nb)
            die("malloc");
        memcpy(nb, buf + pos, rest);
        free(c->in);
        c->in = nb;
        c->in_len = rest;
    } else {
        free(c->in);
        c->in = NULL;
        c->in_len = 0;
    }
    if (olen)
        out(fd, outbuf, olen);
}

#ifdef CSERVER_TLS
/* TLS sink: "<n>\n", then n bytes; answer "<n>\n" and close */
static void on_sink_tls(int fd, const unsigned char *data, size_t n)
{
    conn_t *c = &conns[fd];
    if (!c->sent) {
        char *nl = add_input(c, data, n);
        if (!nl) {
            if (c->in_len > 64)
                drop(fd);
            return;
        }
        c->sent = atoll(c->in);
        c->count = c->in + c->in_len - (nl + 1);
    } else {
        c->count += n;
    }
    if (c->sent > 0 && c->count >= c->sent) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "%lld\n", c->count);
        if (out(fd, msg, len) == 0)
            drop(fd);   /* an 8-byte answer on an idle socket is never left pending */
    }
}

/* Read what the TLS layer has, up to the scratch buffer: the byte count,
 * 0 at close_notify/EOF, -1 with errno EAGAIN if nothing yet, -1 with
 * another errno when the connection is dead.  The handshake comes first. */
static ssize_t tls_read(int fd)
{
    conn_t *c = &conns[fd];
    if (!c->handshaken) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                set_events(fd, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
                errno = EAGAIN;
            } else {
                errno = EPROTO;
            }
            return -1;
        }
        c->handshaken = 1;
        set_events(fd, EPOLLIN);
    }
    size_t got = 0;
    while (got + 16384 <= SCRATCH) {
        size_t k;
        int r = SSL_read_ex(c->ssl, scratch + got, SCRATCH - got, &k);
        if (r == 1) {
            got += k;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (got)
                break;
            errno = EAGAIN;
            return -1;
        }
        if (got)
            break;      /* the end comes on the next call */
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        errno = EPIPE;
        return -1;
    }
    return (ssize_t)got;
}
#endif

static void on_data(int fd, ssize_t n);

static void on_readable(int fd)
{
#ifdef CSERVER_TLS
    /* Until the socket and the read-ahead buffer are both empty: level-
     * triggered epoll only knows about the socket. */
    for (;;) {
        ssize_t n = tls_read(fd);
        if (n < 0 && errno == EAGAIN)
            return;
        on_data(fd, n);
        if (n <= 0 || !conns[fd].active || conns[fd].pend)
            return;
    }
#else
    on_data(fd, recv(fd, scratch, SCRATCH, 0));
#endif
}

/* n bytes of scratch from the stream (0: EOF, -1: errno) */
static void on_data(int fd, ssize_t n)
{
    conn_t *c = &conns[fd];
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        drop(fd);
        return;
    }
    if (n == 0) {
        if (mode == M_SINK && !TLS_BUILD) {
            char msg[32];
            int len = snprintf(msg, sizeof msg, "%lld\n", c->count);
            send(fd, msg, len, MSG_NOSIGNAL);
        }
        drop(fd);
        return;
    }
    switch (mode) {
    case M_ECHO:
        out(fd, scratch, n);
        break;
    case M_ECHO_CLOSE:
        c->count += n;
        if (out(fd, scratch, n) == 0 && !conns[fd].pend && c->count >= close_after)
            drop(fd);
        break;
    case M_SINK:
#ifdef CSERVER_TLS
        on_sink_tls(fd, scratch, n);
#else
        c->count += n;
#endif
        break;
    case M_SOURCE: {
        char *nl = add_input(c, scratch, n);
        if (nl) {
            c->count = atoll(c->in);
            set_events(fd, EPOLLOUT);
            pump(fd);
        } else if (c->in_len > 64) {
            drop(fd);
        }
        break;
    }
    case M_HTTP:
        on_http(fd, scratch, n);
        break;
    }
}

int main(int argc, char **argv)
{
    int opt, port = 0, max_seconds = 600;
    const char *m = "echo";
    const char *cert = NULL, *key = NULL;
    while ((opt = getopt(argc, argv, "m:p:s:t:c:k:")) != -1) {
        switch (opt) {
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'm': m = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': close_after = atoll(optarg); break;
        case 't': max_seconds = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: cserver -m echo|echo_close|sink|source|http [-p port] "
                            "[-s close_after] [-t max_seconds]\n");
            return 2;
        }
    }
    if (!strcmp(m, "echo")) mode = M_ECHO;
    else if (!strcmp(m, "echo_close")) mode = M_ECHO_CLOSE;
    else if (!strcmp(m, "sink")) mode = M_SINK;
    else if (!strcmp(m, "source")) mode = M_SOURCE;
    else if (!strcmp(m, "http")) mode = M_HTTP;
    else {
        fprintf(stderr, "cserver: unknown mode %s\n", m);
        return 2;
    }
    if (mode == M_ECHO_CLOSE && close_after <= 0) {
        fprintf(stderr, "cserver: echo_close needs -s\n");
        return 2;
    }
#ifdef CSERVER_TLS
    tls_ctx = SSL_CTX_new(TLS_server_method());
    if (!tls_ctx || !cert || !key ||
        !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) ||
        SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "cserver: TLS set-up (-c cert -k key): %s\n",
                ERR_error_string(ERR_get_error(), NULL));
        return 2;
    }
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(tls_ctx, 1);
    SSL_CTX_set_default_read_buffer_len(tls_ctx, SCRATCH);
    SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#else
    (void)cert;
    (void)key;
#endif
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    alarm(max_seconds);     /* default action: terminate */
    for (size_t k = 0; k < sizeof pattern; k++)
        pattern[k] = (unsigned char)k;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    maxfd = (int)(rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur);
    conns = calloc(maxfd, sizeof *conns);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(lfd, 1024) < 0)
        die("listen");
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    printf("READY %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    struct epoll_event evs[MAXEV];
    for (;;) {
        int n = epoll_wait(ep, evs, MAXEV, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                            break;
                        die("accept4");
                    }
                    if (cfd >= maxfd) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[cfd].active = 1;
#ifdef CSERVER_TLS
                    conns[cfd].ssl = SSL_new(tls_ctx);
                    if (!conns[cfd].ssl || !SSL_set_fd(conns[cfd].ssl, cfd))
                        die("SSL_new");
                    SSL_set_accept_state(conns[cfd].ssl);
#endif
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = cfd};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ce) < 0)
                        die("epoll_ctl add");
                }
                continue;
            }
            if (!conns[fd].active)
                continue;
            if (conns[fd].pend || (mode == M_SOURCE && conns[fd].count > 0 &&
                                   (evs[k].events & EPOLLOUT))) {
                if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                    if (conns[fd].pend)
                        flush_pending(fd);
                    else
                        pump(fd);
                }
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP) ||
                (TLS_BUILD && (evs[k].events & EPOLLOUT)))   /* handshake */
                on_readable(fd);
        }
    }
}
