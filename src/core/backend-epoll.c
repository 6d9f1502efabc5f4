/*
 * backend-epoll.c -- the readiness backend for Linux.
 *
 * Pure C, no Python.h; all state hangs off loop->backend_data, never off
 * globals, so loops in different threads stay independent.  Level-triggered
 * on purpose: asyncio callbacks read or write at most once per event, and
 * an edge-triggered registration would lose whatever they leave behind.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend.h"

/* Events collected per wait.  More ready fds than this are simply reported
 * by the next wait (level-triggered), so this only bounds memory (12 KiB). */
#define EPOLL_MAX_EVENTS 1024

typedef struct {
    int epfd;
    int nevents;        /* taken from the last poll by collect */
    int next;           /* next to dispatch; [next, nevents) are pending */
    struct epoll_event events[EPOLL_MAX_EVENTS];
} epoll_state;

static inline uint32_t
to_epoll(unsigned mask)
{
    return ((mask & EL_READABLE) ? EPOLLIN : 0)
           | ((mask & EL_WRITABLE) ? EPOLLOUT : 0);
}

static int
epoll_init(el_loop_t *loop)
{
    epoll_state *st = malloc(sizeof(*st));

    if (st == NULL) {
        return -ENOMEM;
    }
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        int err = -errno;
        free(st);
        return err;
    }
    st->nevents = 0;
    st->next = 0;
    loop->backend_data = st;
    return 0;
}

static void
epoll_free(el_loop_t *loop)
{
    epoll_state *st = loop->backend_data;

    if (st != NULL) {
        if (st->epfd >= 0) {
            close(st->epfd);
        }
        free(st);
        loop->backend_data = NULL;
    }
}

static int
epoll_modify(el_loop_t *loop, int fd, unsigned old, unsigned new_)
{
    epoll_state *st = loop->backend_data;
    struct epoll_event ev = {.events = to_epoll(new_), .data = {.fd = fd}};

    if (new_ == 0) {
        /* Drops are lazy, so the fd may well be closed by now, which
         * already removed it from the set (EBADF), or closed and reused
         * by an unregistered file (ENOENT).  Either way it is gone. */
        if (epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, &ev) < 0
            && errno != EBADF && errno != ENOENT) {
            return -errno;
        }
        return 0;
    }
    int op = old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(st->epfd, op, fd, &ev) == 0) {
        return 0;
    }
    /* Our idea of the kernel's set can be stale: a registration vanishes
     * when its fd is closed (and the number may be reused), so MOD finds
     * nothing; ADD meeting EEXIST is the mirror case.  Retry once with
     * the other operation; any other error is the caller's to see. */
    if ((op == EPOLL_CTL_MOD && errno == ENOENT)
        || (op == EPOLL_CTL_ADD && errno == EEXIST)) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(st->epfd, op, fd, &ev) == 0) {
            return 0;
        }
    }
    return -errno;
}

/* Runs without the GIL: writes the event buffer and nothing else, not
 * even nevents, which epoll_invalidate_fd() reads for a thread that may
 * hold the GIL meanwhile.  The loop delivers every event before it polls
 * again, so [next, nevents) is empty and nobody reads the buffer while
 * the kernel fills it. */
static int
epoll_poll(el_loop_t *loop, int64_t timeout_ns)
{
    epoll_state *st = loop->backend_data;

    /* EINTR is returned, not retried, so the binding can run Python's
     * signal handlers promptly (PEP 475 leaves the retry to it). */
    int n = epoll_wait(st->epfd, st->events, EPOLL_MAX_EVENTS,
                       el__timeout_ms(timeout_ns));
    return n < 0 ? -errno : n;
}

static void
epoll_collect(el_loop_t *loop, int n)
{
    epoll_state *st = loop->backend_data;

    st->nevents = n;
    st->next = 0;
}

static int
epoll_dispatch(el_loop_t *loop)
{
    epoll_state *st = loop->backend_data;

    /* Callbacks may attach, detach or replace watchers (and grow the fd
     * table), so every event looks its owner up afresh and nothing from
     * the fd table is cached across a callback. */
    while (st->next < st->nevents) {
        const struct epoll_event *ev = &st->events[st->next++];
        int fd = ev->data.fd;
        unsigned revents = 0;

        if (fd < 0) {
            continue;   /* invalidated by epoll_invalidate_fd() */
        }
        el_io_t *io = el__fd_owner(loop, fd);
        /* The rule of selectors.EpollSelector: anything but plain EPOLLIN
         * (EPOLLERR, EPOLLHUP) wakes writers, anything but plain EPOLLOUT
         * wakes readers, so the callback's I/O call reports the error. */
        if (ev->events & ~(uint32_t)EPOLLIN) {
            revents |= EL_WRITABLE;
        }
        if (ev->events & ~(uint32_t)EPOLLOUT) {
            revents |= EL_READABLE;
        }
        if (io != NULL) {
            revents &= io->mask;
        }
        if (io == NULL || revents == 0) {
            /* The kernel holds interest nobody wants: a narrowing still
             * pending, or a registration left behind after a failure.
             * Level-triggered, it would fire on every wait until dropped. */
            el__fd_defer(loop, fd);
            continue;
        }
        int err = io->cb(loop, io, revents);
        if (err < 0) {
            st->nevents = 0;
            st->next = 0;
            return err;
        }
    }
    st->nevents = 0;
    st->next = 0;
    return 0;
}

static void
epoll_invalidate_fd(el_loop_t *loop, int fd)
{
    epoll_state *st = loop->backend_data;

    for (int i = st->next; i < st->nevents; i++) {
        if (st->events[i].data.fd == fd) {
            st->events[i].data.fd = -1;
        }
    }
}

/* A fork child's copy of the epoll fd refers to the parent's set: close it
 * without a single EPOLL_CTL_DEL, and make later epoll_ctl() calls fail
 * with EBADF instead of reaching a new file that reuses the number. */
static void
epoll_abandon(el_loop_t *loop)
{
    epoll_state *st = loop->backend_data;

    if (st != NULL && st->epfd >= 0) {
        close(st->epfd);
        st->epfd = -1;
        st->nevents = 0;
        st->next = 0;
    }
}

const el_backend_ops el__backend_epoll = {
    .name = "epoll",
    .init = epoll_init,
    .free = epoll_free,
    .modify = epoll_modify,
    .poll = epoll_poll,
    .collect = epoll_collect,
    .dispatch = epoll_dispatch,
    .invalidate_fd = epoll_invalidate_fd,
    .abandon = epoll_abandon,
};
