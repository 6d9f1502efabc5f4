/*
 * backend.h -- internal interface between loop.c and the poller backends.
 *
 * Not installed and not for the binding: it exposes the fd table helpers a
 * backend needs while dispatching, and the backends loop.c can choose from.
 */
#ifndef EL_BACKEND_H
#define EL_BACKEND_H

#include <limits.h>

#include "el.h"

extern const el_backend_ops el__backend_epoll;

/* Queues fd for the lazy resync that el_loop_prepare() runs before a poll.
 * A backend calls it when the kernel reports an fd that no watcher wants
 * any more, so a stale registration is dropped.  Never fails: if the queue
 * cannot grow, the resync is done at once instead. */
void el__fd_defer(el_loop_t *loop, int fd);

/* The owner of fd or NULL; fd may be outside the table. */
static inline el_io_t *
el__fd_owner(const el_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nfds) {
        return NULL;
    }
    return loop->fds[fd].io;
}

/* Converts a timeout to the milliseconds of epoll_wait() and friends.
 * Rounds up: waking before a timer is due would only make the caller spin
 * through zero-timeout polls until it is (asyncio rounds up too).  Any
 * negative value means forever; huge values are clamped to INT_MAX ms
 * (about 24 days), after which the caller simply waits again. */
static inline int
el__timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0) {
        return -1;
    }
    int64_t ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

#endif /* EL_BACKEND_H */
