/*
 * loop.c -- the loop: backend selection, the fd table, watcher masks and
 * the cross-thread wakeup.
 *
 * Pure C, no Python.h, no process-wide state.  The fd table records, per
 * fd, the owning watcher and the interest currently registered with the
 * kernel (kmask).  Interest is widened at once, so errors reach the caller,
 * and narrowed lazily: the fd goes on dirty_fds and is synced by
 * el_loop_prepare(), so toggling a writer on and off within one iteration
 * (the transport pattern) costs no syscall.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend.h"

#define FD_TABLE_MIN 64

/* Backends in order of preference.  el_loop_init() takes the first whose
 * init succeeds, so an io_uring backend can go first later and probe the
 * kernel at run time (old kernel, seccomp, kernel.io_uring_disabled),
 * falling back to epoll quietly. */
static const el_backend_ops *const backends[] = {
    &el__backend_epoll,
};

/* Makes fds[fd] exist.  New slots are zeroed: no owner, nothing in the
 * kernel. */
static int
fd_reserve(el_loop_t *loop, int fd)
{
    size_t n = loop->nfds ? loop->nfds : FD_TABLE_MIN;

    if ((size_t)fd < loop->nfds) {
        return 0;
    }
    while (n <= (size_t)fd) {
        n *= 2;
    }
    el_fdslot_t *fds = realloc(loop->fds, n * sizeof(*fds));
    if (fds == NULL) {
        return -ENOMEM;
    }
    memset(fds + loop->nfds, 0, (n - loop->nfds) * sizeof(*fds));
    loop->fds = fds;
    loop->nfds = n;
    return 0;
}

/* Brings the kernel's interest for fd in line with its owner's mask.
 * Errors cannot be reported from here (the caller is a wait, or a detach
 * that must succeed), so this only keeps kmask truthful. */
static void
fd_sync(el_loop_t *loop, int fd)
{
    el_fdslot_t *slot = &loop->fds[fd];
    unsigned want = slot->io != NULL ? slot->io->mask : 0;

    if (want == slot->kmask) {
        return;
    }
    int err = loop->backend->modify(loop, fd, slot->kmask, want);
    if (err == 0) {
        slot->kmask = want;
    }
    else if (err == -EBADF || err == -ENOENT) {
        /* The fd was closed under a watcher, taking its registration. */
        slot->kmask = 0;
    }
    /* Otherwise the kernel keeps the old, wider interest; the backend
     * defers the fd again if that produces unwanted events. */
}

void
el__fd_defer(el_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].dirty) {
        return;
    }
    if (loop->ndirty == loop->dirty_cap) {
        /* ndirty <= nfds, as each fd is queued at most once. */
        size_t cap = loop->dirty_cap ? loop->dirty_cap * 2 : FD_TABLE_MIN;
        int *dirty = realloc(loop->dirty_fds, cap * sizeof(int));
        if (dirty == NULL) {
            /* Out of memory: pay the syscall now rather than fail a
             * detach, whose caller is about to free the watcher. */
            fd_sync(loop, fd);
            return;
        }
        loop->dirty_fds = dirty;
        loop->dirty_cap = cap;
    }
    loop->dirty_fds[loop->ndirty++] = fd;
    loop->fds[fd].dirty = 1;
}

static void
flush_dirty(el_loop_t *loop)
{
    /* fd_sync() never queues, so the array is stable while we walk it. */
    for (size_t i = 0; i < loop->ndirty; i++) {
        int fd = loop->dirty_fds[i];
        loop->fds[fd].dirty = 0;
        fd_sync(loop, fd);
    }
    loop->ndirty = 0;
}

int
el_io_set(el_loop_t *loop, el_io_t *io, unsigned mask)
{
    int fd = io->fd;

    if (mask & ~(unsigned)(EL_READABLE | EL_WRITABLE)) {
        return -EINVAL;
    }
    if (fd < 0) {
        return -EBADF;
    }
    if (mask == 0) {
        if (el__fd_owner(loop, fd) == io) {
            loop->fds[fd].io = NULL;
            if (loop->backend->invalidate_fd != NULL) {
                loop->backend->invalidate_fd(loop, fd);
            }
            /* Detaching drops the registration now, not lazily: the
             * owner may close the fd next, and if the file stays open
             * elsewhere (dup, fork) a registration left behind can no
             * longer be removed by fd number and would report readiness
             * forever, spinning the loop. */
            fd_sync(loop, fd);
        }
        io->mask = 0;
        return 0;
    }

    if (el_io_stale(io) && (mask & ~io->mask)) {
        return -EBADF;
    }
    int err = fd_reserve(loop, fd);
    if (err < 0) {
        return err;
    }
    el_fdslot_t *slot = &loop->fds[fd];
    if (slot->io != NULL && slot->io != io) {
        if (slot->io->mask != 0 && !el_io_stale(slot->io)) {
            return -EEXIST;
        }
        /* An idle owner (el_io_idle) yields to a watcher that wants the
         * fd now, as if it had detached.  A stale one's file was closed
         * and this fd number reused by the file now being watched: the
         * owner learns from a mask of 0 that it is detached, and its next
         * syscall fails with EBADF. */
        slot->io->mask = 0;
        slot->io = NULL;
        if (loop->backend->invalidate_fd != NULL) {
            loop->backend->invalidate_fd(loop, fd);
        }
    }
    /* Besides widening, taking over an fd whose previous owner left a
     * registration behind needs a syscall too: the fd may have been closed
     * and reused since, and the close silently dropped the registration
     * that kmask still records.  Trusting kmask would leave the new file
     * unwatched forever; the MOD (or ADD after ENOENT) re-arms it. */
    if ((mask & ~slot->kmask) || (slot->io == NULL && slot->kmask != 0)) {
        err = loop->backend->modify(loop, fd, slot->kmask, mask);
        if (err < 0) {
            return err;
        }
        slot->kmask = mask;
    }
    else if (mask != slot->kmask) {
        el__fd_defer(loop, fd);
    }
    slot->io = io;
    io->mask = mask;
    return 0;
}

void
el_io_idle(el_loop_t *loop, el_io_t *io)
{
    io->mask = 0;
    if (el__fd_owner(loop, io->fd) == io) {
        el__fd_defer(loop, io->fd);
    }
}

el_io_t *
el_io_lookup(const el_loop_t *loop, int fd)
{
    el_io_t *io = el__fd_owner(loop, fd);

    return io != NULL && io->mask != 0 ? io : NULL;    /* idle: yields */
}

/* Runs on the loop thread when the eventfd is readable. */
static int
wake_cb(el_loop_t *loop, el_io_t *io, unsigned revents)
{
    uint64_t count;

    (void)io;
    (void)revents;
    /* Drain, then re-arm.  A wakeup() racing in between finds
     * wake_pending still set and skips its write; that is fine because
     * the loop is already awake and the binding checks its queues after
     * dispatch.  Re-arming first could let our read swallow that write
     * while wake_pending stays set, silencing every later wakeup.  The
     * exchange (not a plain store) reads the racer's value, so its writes
     * before wakeup() are visible to us afterwards. */
    while (read(loop->wake_fd, &count, sizeof(count)) < 0
           && errno == EINTR) {
    }
    (void)atomic_exchange(&loop->wake_pending, 0);
    return 0;
}

int
el_loop_init(el_loop_t *loop)
{
    int err = -ENOSYS;

    memset(loop, 0, sizeof(*loop));
    loop->wake_fd = -1;
    atomic_init(&loop->wake_pending, 0);
    el_heap_init(&loop->timers);

    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        err = backends[i]->init(loop);
        if (err == 0) {
            loop->backend = backends[i];
            break;
        }
    }
    if (loop->backend == NULL) {
        return err;
    }

    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        err = -errno;
        goto fail;
    }
    el_io_init(&loop->wake_io, loop->wake_fd, wake_cb);
    err = el_io_set(loop, &loop->wake_io, EL_READABLE);
    if (err < 0) {
        goto fail;
    }
    return 0;

fail:
    el_loop_close(loop);
    return err;
}

int
el_loop_close(el_loop_t *loop)
{
    /* Detaching means forgetting: the table goes away, and a watcher's
     * mask of 0 tells its owner it is no longer attached. */
    for (size_t fd = 0; fd < loop->nfds; fd++) {
        if (loop->fds[fd].io != NULL) {
            loop->fds[fd].io->mask = 0;
        }
    }
    if (loop->backend != NULL) {
        loop->backend->free(loop);
        loop->backend = NULL;
    }
    if (loop->wake_fd >= 0) {
        close(loop->wake_fd);
        loop->wake_fd = -1;
    }
    free(loop->fds);
    loop->fds = NULL;
    loop->nfds = 0;
    free(loop->dirty_fds);
    loop->dirty_fds = NULL;
    loop->ndirty = 0;
    loop->dirty_cap = 0;
    /* Timers still armed are not touched: the binding owns them and must
     * unlink them first (el_heap_free's contract). */
    el_heap_free(&loop->timers);
    return 0;
}

void
el_loop_abandon(el_loop_t *loop)
{
    if (loop->backend != NULL && loop->backend->abandon != NULL) {
        loop->backend->abandon(loop);
    }
    /* -1, not just closed: the number may be reused by a new loop's fd,
     * and a wakeup must not write there. */
    if (loop->wake_fd >= 0) {
        close(loop->wake_fd);
        loop->wake_fd = -1;
    }
    /* This process has no interest set any more: nothing to narrow. */
    for (size_t fd = 0; fd < loop->nfds; fd++) {
        loop->fds[fd].kmask = 0;
        loop->fds[fd].dirty = 0;
    }
    loop->ndirty = 0;
}

void
el_loop_prepare(el_loop_t *loop)
{
    flush_dirty(loop);
}

int
el_loop_poll(el_loop_t *loop, int64_t timeout_ns)
{
    return loop->backend->poll(loop, timeout_ns);
}

int
el_loop_deliver(el_loop_t *loop, int n)
{
    if (n <= 0) {
        return 0;
    }
    loop->backend->collect(loop, n);
    return loop->backend->dispatch(loop);
}

int
el_loop_wait(el_loop_t *loop, int64_t timeout_ns)
{
    flush_dirty(loop);
    int n = loop->backend->poll(loop, timeout_ns);
    loop->backend->collect(loop, n > 0 ? n : 0);
    return n;
}

int
el_loop_dispatch(el_loop_t *loop)
{
    return loop->backend->dispatch(loop);
}

void
el_loop_wakeup(el_loop_t *loop)
{
    static const uint64_t one = 1;

    /* Coalesce: only the first wakeup since the loop last drained the
     * eventfd pays for a write(2). */
    if (atomic_exchange(&loop->wake_pending, 1)) {
        return;
    }
    /* May run in a signal handler, which must leave errno as it was.
     * EAGAIN (counter saturated) means a wakeup is pending anyway. */
    int saved = errno;
    /* wake_fd is -1 once abandoned (fork child): write() fails, EBADF. */
    while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    errno = saved;
}

const char *
el_loop_backend_name(const el_loop_t *loop)
{
    return loop->backend != NULL ? loop->backend->name : NULL;
}
