/*
 * el.h -- the public API of eloop's pure-C core.
 *
 * The core owns the data structures and kernel plumbing of an asyncio-style
 * event loop: a ready queue, a timer heap, a monotonic clock, I/O watchers
 * over a pluggable poller backend (epoll now, io_uring later) and a
 * cross-thread wakeup.  It must never include Python.h: the CPython binding
 * layer in src/ext/ sits on top and owns every PyObject.
 *
 * Conventions: functions return 0 (or a count) on success and -errno on
 * failure; nothing here prints or aborts on an error the kernel can report.
 * The core never allocates watchers or timers: callers embed el_io_t and
 * el_timer_t in their own objects and get back to them with
 * el_container_of().
 *
 * Threading: one thread drives a loop.  el_loop_wakeup() is the only
 * function that may be called from another thread.  The binding serialises
 * everything else with the GIL.
 */
#ifndef EL_H
#define EL_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#define el_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct el_loop_s el_loop_t;

/* ---- clock -------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds: the clock behind Python's time.monotonic(),
 * so loop.time() agrees with asyncio's. */
int64_t el_now_ns(void);

/* ---- ready queue ---------------------------------------------------------- */

/* A growable FIFO ring of opaque pointers.  The binding stores handle objects
 * here; a ring (not an intrusive list) lets one handle be queued more than
 * once and keeps the hot path to one cache line per item. */
typedef struct {
    void **buf;
    size_t cap;     /* always a power of two, or 0 before the first push */
    size_t head;    /* index of the oldest item */
    size_t len;
} el_ring_t;

void el_ring_init(el_ring_t *r);
void el_ring_free(el_ring_t *r);
int el_ring_push(el_ring_t *r, void *item);            /* 0 or -ENOMEM */

static inline size_t
el_ring_len(const el_ring_t *r)
{
    return r->len;
}

/* Removes and returns the oldest item; the ring must not be empty. */
static inline void *
el_ring_pop(el_ring_t *r)
{
    void *item = r->buf[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    return item;
}

/* The i-th oldest item, 0 <= i < len (for GC traversal and clearing). */
static inline void *
el_ring_at(const el_ring_t *r, size_t i)
{
    return r->buf[(r->head + i) & (r->cap - 1)];
}

/* ---- timer heap ------------------------------------------------------------- */

#define EL_TIMER_UNLINKED ((size_t)-1)

/* Embedded in the caller's timer object.  `seq` breaks ties so that equal
 * deadlines fire in scheduling order (call_at stays FIFO). */
typedef struct {
    int64_t when;       /* deadline, ns on the loop's clock */
    uint64_t seq;       /* assigned by el_heap_push */
    size_t index;       /* position in the heap, EL_TIMER_UNLINKED if none */
} el_timer_t;

/* An array-backed binary min-heap of el_timer_t pointers.  Each node knows
 * its index, so removing any timer (cancel) is O(log n) and immediate. */
typedef struct {
    el_timer_t **nodes;
    size_t len;
    size_t cap;
    uint64_t next_seq;
} el_heap_t;

static inline void
el_timer_init(el_timer_t *t)
{
    t->when = 0;
    t->seq = 0;
    t->index = EL_TIMER_UNLINKED;
}

static inline int
el_timer_linked(const el_timer_t *t)
{
    return t->index != EL_TIMER_UNLINKED;
}

void el_heap_init(el_heap_t *h);
void el_heap_free(el_heap_t *h);                       /* nodes untouched */
int el_heap_push(el_heap_t *h, el_timer_t *t, int64_t when); /* -ENOMEM */
void el_heap_remove(el_heap_t *h, el_timer_t *t);      /* t must be linked */
el_timer_t *el_heap_pop(el_heap_t *h);                 /* NULL if empty */

static inline el_timer_t *
el_heap_min(const el_heap_t *h)
{
    return h->len ? h->nodes[0] : NULL;
}

/* ---- I/O watchers ----------------------------------------------------------- */

enum {
    EL_READABLE = 1,
    EL_WRITABLE = 2,
};

typedef struct el_io_s el_io_t;

/* Called from el_loop_dispatch() with the subset of the watcher's mask that
 * is ready.  An error or hang-up on the fd reports as readiness in every
 * direction that is watched (the rule of Python's selectors module), so the
 * callback's read or write sees the error. */
typedef void (*el_io_cb)(el_loop_t *loop, el_io_t *io, unsigned revents);

struct el_io_s {
    int fd;
    unsigned mask;      /* EL_READABLE | EL_WRITABLE wanted by the owner */
    el_io_cb cb;
};

static inline void
el_io_init(el_io_t *io, int fd, el_io_cb cb)
{
    io->fd = fd;
    io->mask = 0;
    io->cb = cb;
}

/* Sets the watcher's mask.  A mask that adds interest is applied to the
 * kernel at once, so errors (EBADF, EPERM for regular files, EEXIST when
 * another watcher owns the fd) are returned to the caller as -errno.  Only
 * one watcher may own an fd at a time.  A mask that drops interest is
 * applied lazily before the next wait, so dropping and re-adding one
 * direction within a loop iteration costs no syscall.  Mask 0 detaches the
 * watcher and unregisters the fd at once (the owner may close it next, and
 * a registration orphaned by close() on a dup'd file could never be
 * removed); the caller may then free the watcher. */
int el_io_set(el_loop_t *loop, el_io_t *io, unsigned mask);

/* The watcher that owns fd, or NULL. */
el_io_t *el_io_lookup(const el_loop_t *loop, int fd);

/* ---- backends ---------------------------------------------------------------- */

/* A poller backend: a readiness backend (epoll) or, later, a completion
 * backend (io_uring) that also serves readiness through poll requests.
 * Selected at run time by el_loop_init. */
typedef struct el_backend_ops {
    const char *name;
    int (*init)(el_loop_t *loop);
    void (*free)(el_loop_t *loop);
    /* Change the kernel's interest for fd from `old` to `new` mask. */
    int (*modify)(el_loop_t *loop, int fd, unsigned old, unsigned new_);
    /* Block up to timeout_ns (-1: forever, 0: poll).  Called WITHOUT the
     * GIL by the binding, so it must not touch watchers.  Returns the number
     * of collected events or -errno (-EINTR included). */
    int (*wait)(el_loop_t *loop, int64_t timeout_ns);
    /* Deliver the events collected by the last wait. */
    void (*dispatch)(el_loop_t *loop);
    /* Optional (may be NULL): drop collected, not yet dispatched events for
     * fd.  Called when fd's watcher is detached, because the fd may then be
     * closed and reused by a new watcher before dispatch reaches them. */
    void (*invalidate_fd)(el_loop_t *loop, int fd);
} el_backend_ops;

/* ---- the loop ------------------------------------------------------------------- */

typedef struct {
    el_io_t *io;        /* owner, or NULL */
    unsigned kmask;     /* interest currently registered with the kernel */
    unsigned dirty;     /* on loop->dirty_fds, awaiting lazy narrowing */
} el_fdslot_t;

struct el_loop_s {
    const el_backend_ops *backend;
    void *backend_data;

    el_fdslot_t *fds;   /* indexed by fd */
    size_t nfds;
    int *dirty_fds;     /* fds whose kernel mask may be wider than wanted */
    size_t ndirty;
    size_t dirty_cap;

    el_heap_t timers;

    /* Cross-thread wakeup: an eventfd watched like any fd.  wake_pending
     * coalesces wakeups so that a storm of call_soon_threadsafe() costs
     * one write(2) per loop iteration, not one per call. */
    int wake_fd;
    el_io_t wake_io;
    atomic_int wake_pending;
};

/* Opens the backend and the wakeup fd.  -errno on failure. */
int el_loop_init(el_loop_t *loop);
/* Releases kernel resources.  Watchers still attached are detached, not
 * freed (the caller owns them).  Returns 0. */
int el_loop_close(el_loop_t *loop);
/* Applies lazy mask changes, then waits.  No GIL needed. */
int el_loop_wait(el_loop_t *loop, int64_t timeout_ns);
/* Runs watcher callbacks for the events collected by el_loop_wait. */
void el_loop_dispatch(el_loop_t *loop);
/* Thread-safe and async-signal-safe: makes a blocked el_loop_wait return.
 * A wakeup racing with the dispatch of an earlier one may be merged into
 * it, so the loop must look for work posted by other threads after
 * el_loop_dispatch(), before it picks the next wait's timeout. */
void el_loop_wakeup(el_loop_t *loop);
/* Name of the active backend, e.g. "epoll". */
const char *el_loop_backend_name(const el_loop_t *loop);

#endif /* EL_H */
