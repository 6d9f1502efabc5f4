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
    long long sent;         /* source: bytes sent */
    int active;
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

static void drop(int fd)
{
    conn_t *c = &conns[fd];
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
        ssize_t n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
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
        ssize_t n = send(fd, pattern + (c->sent & 255), want, MSG_NOSIGNAL);
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

static void flush_pending(int fd)
{
    conn_t *c = &conns[fd];
    while (c->pend_off < c->pend_len) {
        ssize_t n = send(fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
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

static void on_readable(int fd)
{
    conn_t *c = &conns[fd];
    ssize_t n = recv(fd, scratch, SCRATCH, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        drop(fd);
        return;
    }
    if (n == 0) {
        if (mode == M_SINK) {
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
        c->count += n;
        break;
    case M_SOURCE: {
        char *nb = realloc(c->in, c->in_len + n + 1);
        if (!nb)
            die("realloc");
        memcpy(nb + c->in_len, scratch, n);
        c->in = nb;
        c->in_len += n;
        c->in[c->in_len] = 0;
        char *nl = memchr(c->in, '\n', c->in_len);
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
    while ((opt = getopt(argc, argv, "m:p:s:t:")) != -1) {
        switch (opt) {
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
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(fd);
        }
    }
}
