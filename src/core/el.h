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
#include <sys/types.h>

#define el_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct el_loop_s el_loop_t;

/* ---- clock -------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds: the clock behind Python's time.monotonic(),
 * so loop.time() agrees with asyncio's. */
int64_t el_now_ns(void);

/* ---- ready queue -------------------------------------------------------- */

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

/* ---- timer heap --------------------------------------------------------- */

#define EL_TIMER_UNLINKED ((size_t)-1)

/* Embedded in the caller's timer object, so kept small: the tie-breaking
 * sequence number lives only in the timer's heap slot. */
typedef struct {
    int64_t when;       /* deadline, ns on the loop's clock */
    size_t index;       /* position in the heap, EL_TIMER_UNLINKED if none */
} el_timer_t;

/* One heap slot.  The ordering key is copied next to the pointer so that
 * sifting compares within the array and only touches the timers it moves:
 * with 100k armed timers the node reads were a cache miss per level.
 * `seq` breaks ties so that equal deadlines fire in scheduling order
 * (call_at stays FIFO). */
typedef struct {
    int64_t when;
    uint64_t seq;       /* assigned by el_heap_push */
    el_timer_t *t;
} el_heap_entry_t;

/* An array-backed 4-ary min-heap (half the depth of a binary heap; a
 * node's four children share adjacent slots).  Each timer knows its index,
 * so removing any timer is O(log n) and immediate; cancelling one leaves a
 * tombstone (an entry whose t is NULL) and is O(1) (see heap.c). */
typedef struct {
    el_heap_entry_t *nodes;
    size_t len;         /* slots in use, tombstones included */
    size_t cap;
    size_t ntomb;       /* tombstones among them */
    uint64_t next_seq;
} el_heap_t;

static inline void
el_timer_init(el_timer_t *t)
{
    t->when = 0;
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
void el_heap_cancel(el_heap_t *h, el_timer_t *t);      /* t must be linked */
void el_heap_compact(el_heap_t *h);                    /* drops tombstones */
void el_heap_tidy(el_heap_t *h);    /* compacts if tombstones are the most */
el_timer_t *el_heap_pop(el_heap_t *h);                 /* NULL if empty */
el_timer_t *el_heap_min(el_heap_t *h);  /* NULL if empty; pops tombstones */

/* Live timers in the heap. */
static inline size_t
el_heap_count(const el_heap_t *h)
{
    return h->len - h->ntomb;
}

/* ---- I/O watchers ------------------------------------------------------- */

enum {
    EL_READABLE = 1,
    EL_WRITABLE = 2,
};

typedef struct el_io_s el_io_t;

/* Called from el_loop_dispatch() with the subset of the watcher's mask that
 * is ready.  An error or hang-up on the fd reports as readiness in every
 * direction that is watched (the rule of Python's selectors module), so the
 * callback's read or write sees the error.  Returns 0, or a negative value
 * (the owner's failure, -errno or -1) that stops the dispatch and is
 * returned by el_loop_dispatch(): a failure is reported where it happens,
 * never left in a side channel for the caller to find. */
typedef int (*el_io_cb)(el_loop_t *loop, el_io_t *io, unsigned revents);

struct el_io_s {
    int fd;
    unsigned mask;      /* EL_READABLE | EL_WRITABLE wanted by the owner */
    el_io_cb cb;
    /* Optional (NULL: never stale): where the owner's file object keeps
     * its fd.  Once *fd_src differs from fd (-1 after the file object was
     * closed behind the watcher's back), fd may name some other file that
     * reused the number: the watcher is stale, and no syscall is made on
     * fd for it (see el_io_stale). */
    const int *fd_src;
};

static inline void
el_io_init(el_io_t *io, int fd, el_io_cb cb)
{
    io->fd = fd;
    io->mask = 0;
    io->cb = cb;
    io->fd_src = NULL;
}

/* The file the watcher was made for was closed: fd is not its any more. */
static inline int
el_io_stale(const el_io_t *io)
{
    return io->fd_src != NULL && *io->fd_src != io->fd;
}

/* Sets the watcher's mask.  A mask that adds interest is applied to the
 * kernel at once, so errors (EBADF, EPERM for regular files, EEXIST when
 * another watcher owns the fd) are returned to the caller as -errno; a
 * stale watcher (el_io_stale) gets -EBADF.  Only one watcher may own an fd
 * at a time; a stale owner is evicted (its mask set to 0, as by
 * el_loop_close), since its fd now belongs to the file being watched.  A mask that drops interest is
 * applied lazily before the next wait, so dropping and re-adding one
 * direction within a loop iteration costs no syscall.  Mask 0 detaches the
 * watcher and unregisters the fd at once (the owner may close it next, and
 * a registration orphaned by close() on a dup'd file could never be
 * removed); the caller may then free the watcher. */
int el_io_set(el_loop_t *loop, el_io_t *io, unsigned mask);

/* Drops all interest but stays the fd's owner, for a watcher that expects
 * to be re-armed soon (a paused reader): the kernel's interest goes lazily,
 * before the next wait that can block, so re-arming before then costs no
 * syscall.  Another watcher may take the fd meanwhile (the idle one is
 * then detached, mask 0).  An owner must still detach with mask 0 before
 * its fd closes. */
void el_io_idle(el_loop_t *loop, el_io_t *io);

/* The watcher that owns fd, or NULL (also for an idle owner, which
 * yields the fd to the next watcher that el_io_set() attaches). */
el_io_t *el_io_lookup(const el_loop_t *loop, int fd);

/* ---- backends ----------------------------------------------------------- */

/* A poller backend: a readiness backend (epoll) or, later, a completion
 * backend (io_uring) that also serves readiness through poll requests.
 * Selected at run time by el_loop_init. */
typedef struct el_backend_ops {
    const char *name;
    int (*init)(el_loop_t *loop);
    void (*free)(el_loop_t *loop);
    /* Change the kernel's interest for fd from `old` to `new` mask. */
    int (*modify)(el_loop_t *loop, int fd, unsigned old, unsigned new_);
    /* Block up to timeout_ns (-1: forever, 0: poll) and collect events
     * into the backend's own buffer.  Called WITHOUT the GIL by the
     * binding, while another thread (misusing the loop) may change
     * watchers, the fd table and the backend's dispatch state: it touches
     * nothing but the kernel and that buffer, which only dispatch reads.
     * Returns the number collected or -errno (-EINTR included). */
    int (*poll)(el_loop_t *loop, int64_t timeout_ns);
    /* Take the n >= 0 events the last poll collected as pending (from now
     * on invalidate_fd sees them). */
    void (*collect)(el_loop_t *loop, int n);
    /* Deliver the pending events.  Stops at the first watcher callback
     * that fails and returns its value (the events left are dropped;
     * level-triggered, the next poll reports them again). */
    int (*dispatch)(el_loop_t *loop);
    /* Optional (may be NULL): drop collected, not yet dispatched events for
     * fd.  Called when fd's watcher is detached, because the fd may then be
     * closed and reused by a new watcher before dispatch reaches them. */
    void (*invalidate_fd)(el_loop_t *loop, int fd);
    /* Closes the backend's fds without unregistering anything, for the
     * child of a fork (el_loop_abandon); afterwards modify() fails with
     * -EBADF and free() only releases memory. */
    void (*abandon)(el_loop_t *loop);
} el_backend_ops;

/* ---- the loop ----------------------------------------------------------- */

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
/* For the child of a fork(): closes this process's copies of the backend's
 * fds and of the wakeup fd without touching the kernel's interest sets,
 * which the parent still uses (an epoll set is shared across fork, so a
 * DEL from the child would silence the parent's fds).  The loop can no
 * longer wait: el_io_set() fails with -EBADF when adding interest and only
 * forgets when detaching, and el_loop_wakeup() does nothing.  Watchers
 * stay attached for their owners to detach; el_loop_close() still frees
 * the rest.  Idempotent. */
void el_loop_abandon(el_loop_t *loop);
/*
 * One wait is three steps, so that a binding can release its lock (the
 * GIL) around the blocking part alone:
 *   el_loop_prepare()   applies lazy mask changes: the fd table work;
 *   el_loop_poll()      blocks; touches no table (no lock needed);
 *   el_loop_deliver()   runs watcher callbacks for what the poll got.
 * Everything but el_loop_poll() needs the lock, because other threads
 * that misuse the loop may change watchers while the poll blocks.
 */
void el_loop_prepare(el_loop_t *loop);
/* Returns the number of events collected, or -errno (-EINTR included). */
int el_loop_poll(el_loop_t *loop, int64_t timeout_ns);
/* n is what el_loop_poll() returned; nothing happens unless n > 0.  0, or
 * the first failing callback's value (see el_loop_dispatch). */
int el_loop_deliver(el_loop_t *loop, int n);
/* prepare + poll for a caller that holds the lock throughout; the events
 * wait for el_loop_dispatch(). */
int el_loop_wait(el_loop_t *loop, int64_t timeout_ns);
/* Runs watcher callbacks for the events collected by el_loop_wait.  0, or
 * the first failing callback's value: the events not yet delivered are
 * dropped then (level-triggered, the next wait reports them again). */
int el_loop_dispatch(el_loop_t *loop);
/* Thread-safe and async-signal-safe: makes a blocked poll return.
 * A wakeup racing with the dispatch of an earlier one may be merged into
 * it, so the loop must look for work posted by other threads after
 * delivery, before it picks the next wait's timeout. */
void el_loop_wakeup(el_loop_t *loop);
/* Name of the active backend, e.g. "epoll". */
const char *el_loop_backend_name(const el_loop_t *loop);

/* ---- byte streams ------------------------------------------------------- */

/*
 * A connected byte stream (TCP or Unix socket, or a pipe) driven by the
 * loop: reads into buffers its owner lends, and a write queue of chunks its
 * owner keeps alive until each is reported done.
 *
 * The API is made of requests and completions, not of readiness, so that a
 * completion backend (io_uring) can implement the same operations with
 * submissions: read_start arms a recv, el_stream_flush submits a writev,
 * el_stream_shutdown queues a shutdown behind the writes.  The epoll
 * implementation in stream.c serves them from el_io_t readiness: it reads
 * once per readable event (never in a loop, as asyncio does) and writes
 * with sendmsg()/writev() in batches of up to IOV_MAX chunks, at most a
 * few batches per event.
 *
 * Deferral: when notify_cb is set, readiness (or, later, a completion)
 * only records the events as pending and calls notify_cb; the owner calls
 * el_stream_process() when it wants the I/O and the callbacks to happen.
 * The Python binding uses this to run them in asyncio's callback phase, in
 * asyncio's order.  Without notify_cb the stream processes events at once,
 * inside el_loop_dispatch().
 *
 * Callbacks may call any el_stream_* function on their own stream,
 * el_stream_close() included, but must not free it before the call that
 * invoked them returns.  The stream never closes its fd: the owner does,
 * after el_stream_close().
 */
typedef struct el_stream_s el_stream_t;

typedef struct {
    char *base;
    size_t len;
} el_buf_t;

/* Suggested read size (asyncio's max_size). */
#define EL_STREAM_READ_SIZE (256 * 1024)

/* Lends the buffer for the next read.  Leaving buf->len at 0 declines:
 * nothing is read and read_cb is not called (the owner reports why).
 * The epoll implementation calls it right before reading, when data is
 * (said to be) there; a completion backend calls it when it submits the
 * read, so the buffer may stay lent until data arrives. */
typedef int (*el_stream_alloc_cb)(el_stream_t *s, size_t suggested,
                                  el_buf_t *buf);
/* The result of a read into the buffer alloc_cb lent, which the owner
 * gets back here in every case: nread > 0 bytes of data; 0 end of file;
 * -EAGAIN nothing to read after all (spurious wakeup); -ECANCELED the
 * stream was closed before the read; any other -errno is a read error.
 * Reading stays enabled in every case; the owner decides. */
typedef int (*el_stream_read_cb)(el_stream_t *s, ssize_t nread,
                                 const el_buf_t *buf);
/* A queued chunk is done with: status 0 when fully sent, -ECANCELED when
 * dropped by el_stream_write_clear() or el_stream_close().  The owner may
 * release the chunk's memory here.  Called in queue order. */
typedef void (*el_stream_write_cb)(el_stream_t *s, void *token, int status);
/* An asynchronous write pass finished (one that el_stream_flush() could
 * not complete, continued by the loop): status 0 with progress made, and
 * el_stream_write_queue_size() tells what is left (0: drained, writing is
 * disarmed); or -errno on a write error, after which writing is disarmed
 * and the queue is left as it was for the owner to clear. */
typedef int (*el_stream_written_cb)(el_stream_t *s, int status);
/* A shutdown that el_stream_shutdown() queued behind the writes was done:
 * 0 or -errno from shutdown(2). */
typedef int (*el_stream_shutdown_cb)(el_stream_t *s, int status);
/* Events became ready (EL_READABLE, EL_WRITABLE): call el_stream_process()
 * for them soon.  Set this to defer I/O; see above.  Returns 0, or a
 * negative value that the dispatch passes on (see el_io_cb); the events
 * stay pending and are noted again by the next readiness. */
typedef int (*el_stream_notify_cb)(el_stream_t *s, unsigned events);

typedef struct {
    const char *base;
    size_t len;
    void *token;        /* the owner's, handed back to write_cb */
} el_wchunk_t;

enum {
    EL_STREAM_READING = 1,      /* read_start'ed */
    EL_STREAM_WRITING = 2,      /* a write is continuing asynchronously */
    EL_STREAM_SHUT_PENDING = 4, /* shutdown queued behind the writes */
    EL_STREAM_SHUT_DONE = 8,
    EL_STREAM_CLOSED = 16,
    EL_STREAM_NOTSOCK = 32,     /* fd is not a socket: read()/writev() */
};

/* Queue slots inside the stream itself (a power of two). */
#define EL_STREAM_WQ_INLINE 2

struct el_stream_s {
    el_io_t io;                 /* embedded watcher; io.fd is the stream */
    el_loop_t *loop;
    unsigned flags;             /* EL_STREAM_* */
    unsigned pending;           /* events noted, not yet processed */
    el_stream_alloc_cb alloc_cb;
    el_stream_read_cb read_cb;
    el_stream_write_cb write_cb;        /* the owner sets these four */
    el_stream_written_cb written_cb;    /* after el_stream_init(); */
    el_stream_shutdown_cb shutdown_cb;  /* each may be NULL */
    el_stream_notify_cb notify_cb;
    /* The write queue: a ring of chunks, oldest at wq_head.  wq_off bytes
     * of the oldest are sent already; wq_bytes counts what is not.  wq is
     * wq_inline until more than EL_STREAM_WQ_INLINE chunks wait, then a
     * heap array, freed again once the queue drains: an idle stream holds
     * no allocation, and a typical burst (one or two writes) needs none. */
    el_wchunk_t *wq;
    uint32_t wq_cap;            /* a power of two */
    uint32_t wq_head;
    uint32_t wq_len;
    size_t wq_off;
    size_t wq_bytes;
    unsigned long nwrites;      /* write syscalls made (tests, benchmarks) */
    el_wchunk_t wq_inline[EL_STREAM_WQ_INLINE];
};

/* Initialises s for fd on loop: not reading, empty queue, no callbacks.
 * Nothing is registered with the kernel until reading or writing needs
 * it.  Never fails.  s must not move afterwards (wq may point into it). */
void el_stream_init(el_stream_t *s, el_loop_t *loop, int fd);
/* Starts reading: alloc_cb then read_cb for each read.  -errno if the fd
 * cannot be watched (-EEXIST: another watcher owns it; -ESHUTDOWN: the
 * loop is closed); -EBADF on a closed stream. */
int el_stream_read_start(el_stream_t *s, el_stream_alloc_cb alloc_cb,
                         el_stream_read_cb read_cb);
/* el_stream_read_stop() for a pause: if nothing else is watched the
 * stream stays the fd's owner (el_io_idle), so a read_start soon after
 * costs no syscall.  Use read_stop when the stream is done reading. */
void el_stream_read_pause(el_stream_t *s);
/* Stops reading: no read_cb until the next read_start.  A readable event
 * noted but not yet processed is dropped (asyncio cancels its reader
 * handle); no data is lost: it stays in the kernel, or a completion
 * backend keeps what it already read until reading restarts.  Never
 * fails. */
void el_stream_read_stop(el_stream_t *s);
/* Appends a chunk to the write queue without sending anything.  The
 * memory must stay valid until write_cb reports the token.  -ENOMEM;
 * -EPIPE after el_stream_shutdown(); -EBADF on a closed stream. */
int el_stream_write(el_stream_t *s, const void *base, size_t len,
                    void *token);
/* Makes room in the write queue for n more chunks, so that the next n
 * el_stream_write() calls cannot fail with -ENOMEM: a caller queueing
 * several chunks reserves first, and queues all of them or none.  -ENOMEM
 * (the queue unchanged); -EBADF on a closed stream.  The room lasts until
 * the queue next drains. */
int el_stream_write_reserve(el_stream_t *s, size_t n);
/* Sends queued chunks now, as far as the fd accepts them without
 * blocking.  Returns 0 when the queue is empty; 1 when data is left, in
 * which case the stream continues writing on its own and reports through
 * written_cb (while such a write is under way, flushing again returns 1
 * at once); or -errno: a write error (queue left as it was), or
 * -ESHUTDOWN when writing should continue but the loop is closed. */
int el_stream_flush(el_stream_t *s);
/* Shuts down the write side (SHUT_WR) once the queue is empty: at once
 * if it is (returns 0 or -errno from shutdown(2)), else after the queued
 * writes complete, reported by shutdown_cb (returns 1).  Later writes
 * fail with -EPIPE.  -EALREADY if already requested. */
int el_stream_shutdown(el_stream_t *s);
/* Drops every queued chunk (write_cb with -ECANCELED) and disarms
 * writing; a queued shutdown is dropped too. */
void el_stream_write_clear(el_stream_t *s);
/* Stops everything: no more callbacks except write_cb for the chunks it
 * drops; the watcher is detached so the owner may close the fd next.
 * Idempotent. */
void el_stream_close(el_stream_t *s);
/* Performs the I/O for `events` that are pending (see notify_cb): one
 * read if reading, one write pass if a write is under way.  Returns 0,
 * or the first negative value an owner's callback returned (alloc_cb,
 * read_cb, written_cb, shutdown_cb all return 0 or a failure of the
 * owner's, e.g. -1 with a Python exception set), which ends the call. */
int el_stream_process(el_stream_t *s, unsigned events);
/* One more read now, as a readable event would make (if reading): for an
 * owner that knows more data may be there and that reading it now is
 * what it wants.  Returns what el_stream_process() would. */
int el_stream_read_now(el_stream_t *s);

static inline size_t
el_stream_write_queue_size(const el_stream_t *s)
{
    return s->wq_bytes;
}

static inline size_t
el_stream_write_queue_len(const el_stream_t *s)
{
    return s->wq_len;
}

/* The token of the i-th oldest queued chunk (GC traversal). */
static inline void *
el_stream_write_queue_token(const el_stream_t *s, size_t i)
{
    return s->wq[(s->wq_head + i) & (s->wq_cap - 1)].token;
}

static inline int
el_stream_is_reading(const el_stream_t *s)
{
    return (s->flags & EL_STREAM_READING) != 0;
}

static inline int
el_stream_is_writing(const el_stream_t *s)
{
    return (s->flags & EL_STREAM_WRITING) != 0;
}

#endif /* EL_H */
