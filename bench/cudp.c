/*
 * cudp: a plain single-threaded C UDP echo server for bench/udp.py, the
 * ceiling beside the Python event loops.
 *
 * Level-triggered epoll on one non-blocking socket bound to 127.0.0.1;
 * on each readable event it echoes datagrams (recvfrom + sendto) until
 * EAGAIN, as a hand-written C server would.  A datagram the kernel will
 * not take back right away is dropped (the load generator then reports a
 * stall): on loopback with one datagram in flight per client it does not
 * happen.
 *
 *   cudp [-p port] [-t max_seconds]
 *
 * Prints "READY <port>" on stdout.  Exits after -t seconds (default 600).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "cudp: %s: %s\n", what, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    int port = 0, max_seconds = 600, opt;
    while ((opt = getopt(argc, argv, "p:t:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 't': max_seconds = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: cudp [-p port] [-t max_seconds]\n");
            return 2;
        }
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(max_seconds);     /* default action: terminate */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
        die("epoll");
    printf("READY %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    static char buf[65536];
    for (;;) {
        struct epoll_event ev;
        int n = epoll_wait(ep, &ev, 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (;;) {
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t got = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                if (errno == ECONNREFUSED)
                    continue;   /* ICMP from a client that went away */
                die("recvfrom");
            }
            if (sendto(fd, buf, got, 0, (struct sockaddr *)&from, fl) < 0 &&
                errno != EAGAIN && errno != ECONNREFUSED)
                die("sendto");
        }
    }
}
