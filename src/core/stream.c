/*
 * stream.c -- byte streams over I/O watchers: the epoll (readiness)
 * implementation of the el_stream_* requests declared in el.h.
 *
 * Pure C, no Python.h.  The stream owns its write queue's array but never
 * the chunks in it, nor the fd.  Every request has a completion-shaped
 * result (read_cb, write_cb, written_cb, shutdown_cb) so that a completion
 * backend can serve the same API; here a request is served from readiness,
 * and a write that the kernel accepts at once completes synchronously
 * (el_stream_flush returns 0).
 *
 * Bounded work: one read per readable event (asyncio's rule; a busy
 * stream cannot starve the others) and at most WRITE_PASSES write calls
 * per flush or writable event (libuv's starvation cap).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "el.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* iovecs per write call.  1024 of them take 16 KiB of stack. */
#define IOV_BATCH (IOV_MAX < 1024 ? IOV_MAX : 1024)

/* Write calls per flush or writable event.  A call that does not take
 * everything it was offered ends the flush at once (the kernel buffer is
 * full, and another call would only see EAGAIN), so this bounds only a
 * queue of more than IOV_BATCH chunks feeding a fast reader. */
#define WRITE_PASSES 16

#define WQ_MIN_CAP 16

static int stream_io_cb(el_loop_t *loop, el_io_t *io, unsigned revents);

void
el_stream_init(el_stream_t *s, el_loop_t *loop, int fd)
{
    memset(s, 0, sizeof(*s));
    el_io_init(&s->io, fd, stream_io_cb);
    s->loop = loop;
    s->wq = s->wq_inline;
    s->wq_cap = EL_STREAM_WQ_INLINE;
}

/* Brings the watcher's mask in line with the flags.  Widening can fail
 * (-errno from the kernel, -ESHUTDOWN once the loop is closed); narrowing
 * never does. */
static int
stream_sync_mask(el_stream_t *s)
{
    unsigned want = ((s->flags & EL_STREAM_READING) ? EL_READABLE : 0)
                    | ((s->flags & EL_STREAM_WRITING) ? EL_WRITABLE : 0);

    if (want == s->io.mask) {
        return 0;
    }
    if (s->loop->backend == NULL) {
        /* el_loop_close() detached every watcher and freed the fd table;
         * el_io_set() must not build a new one. */
        if (want & ~s->io.mask) {
            return -ESHUTDOWN;
        }
        s->io.mask = want;
        return 0;
    }
    return el_io_set(s->loop, &s->io, want);
}

int
el_stream_read_start(el_stream_t *s, el_stream_alloc_cb alloc_cb,
                     el_stream_read_cb read_cb)
{
    if (s->flags & EL_STREAM_CLOSED) {
        return -EBADF;
    }
    s->alloc_cb = alloc_cb;
    s->read_cb = read_cb;
    if (s->flags & EL_STREAM_READING) {
        return 0;
    }
    s->flags |= EL_STREAM_READING;
    int err = stream_sync_mask(s);
    if (err < 0) {
        s->flags &= ~(unsigned)EL_STREAM_READING;
    }
    return err;
}

void
el_stream_read_stop(el_stream_t *s)
{
    s->flags &= ~(unsigned)EL_STREAM_READING;
    /* A stop must also cancel a read that readiness already promised:
     * asyncio cancels the reader handle, which then never runs. */
    s->pending &= ~(unsigned)EL_READABLE;
    (void)stream_sync_mask(s);
}

void
el_stream_read_pause(el_stream_t *s)
{
    s->flags &= ~(unsigned)EL_STREAM_READING;
    s->pending &= ~(unsigned)EL_READABLE;
    if (!(s->flags & EL_STREAM_WRITING) && s->io.mask != 0
        && s->loop->backend != NULL) {
        el_io_idle(s->loop, &s->io);
        return;
    }
    (void)stream_sync_mask(s);
}

static int
wq_grow(el_stream_t *s)
{
    if (s->wq == s->wq_inline) {
        el_wchunk_t *wq = malloc(WQ_MIN_CAP * sizeof(*wq));
        if (wq == NULL) {
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < s->wq_len; i++) {
            wq[i] = s->wq_inline[(s->wq_head + i) & (s->wq_cap - 1)];
        }
        s->wq = wq;
        s->wq_cap = WQ_MIN_CAP;
        s->wq_head = 0;
        return 0;
    }
    /* 2^31 chunks of 24 bytes also fit any 64-bit size_t. */
    if (s->wq_cap > UINT32_MAX / 2) {
        return -ENOMEM;
    }
    uint32_t cap = s->wq_cap * 2;
    el_wchunk_t *wq = realloc(s->wq, (size_t)cap * sizeof(*wq));
    if (wq == NULL) {
        return -ENOMEM;
    }
    /* As in ring.c: the wrapped part [0, head) moves past the old end so
     * the sequence is contiguous from head again. */
    memcpy(wq + s->wq_cap, wq, s->wq_head * sizeof(*wq));
    s->wq = wq;
    s->wq_cap = cap;
    return 0;
}

/* Back to the inline slots once the queue is empty, so that a connection
 * that once queued a burst does not keep the array while it idles. */
static void
wq_release(el_stream_t *s)
{
    if (s->wq != s->wq_inline) {
        free(s->wq);
        s->wq = s->wq_inline;
        s->wq_cap = EL_STREAM_WQ_INLINE;
    }
    s->wq_head = 0;
}

static inline el_wchunk_t *
wq_at(el_stream_t *s, size_t i)
{
    return &s->wq[(s->wq_head + i) & (s->wq_cap - 1)];
}

/* Removes the oldest chunk and reports it.  The queue is consistent
 * before write_cb runs, so the callback may queue or clear. */
static void
wq_pop(el_stream_t *s, int status)
{
    el_wchunk_t c = *wq_at(s, 0);

    s->wq_head = (s->wq_head + 1) & (s->wq_cap - 1);
    s->wq_len--;
    s->wq_bytes -= c.len - s->wq_off;
    s->wq_off = 0;
    if (s->wq_len == 0) {
        wq_release(s);
    }
    if (s->write_cb != NULL) {
        s->write_cb(s, c.token, status);
    }
}

int
el_stream_write_reserve(el_stream_t *s, size_t n)
{
    if (s->flags & EL_STREAM_CLOSED) {
        return -EBADF;
    }
    if (n > UINT32_MAX - s->wq_len) {
        return -ENOMEM;
    }
    while (s->wq_cap - s->wq_len < n) {
        int err = wq_grow(s);
        if (err < 0) {
            return err;
        }
    }
    return 0;
}

int
el_stream_write(el_stream_t *s, const void *base, size_t len, void *token)
{
    if (s->flags & EL_STREAM_CLOSED) {
        return -EBADF;
    }
    if (s->flags & (EL_STREAM_SHUT_PENDING | EL_STREAM_SHUT_DONE)) {
        return -EPIPE;
    }
    if (s->wq_len == s->wq_cap) {
        int err = wq_grow(s);
        if (err < 0) {
            return err;
        }
    }
    el_wchunk_t *c = wq_at(s, s->wq_len);
    c->base = base;
    c->len = len;
    c->token = token;
    s->wq_len++;
    s->wq_bytes += len;
    return 0;
}

/* One gathered write.  MSG_NOSIGNAL: a peer that went away is an EPIPE
 * for the owner to handle, not a SIGPIPE that kills the process.
 * MSG_DONTWAIT: never block the loop, even if the owner left the fd in
 * blocking mode.  Returns bytes written or -errno. */
static ssize_t
stream_sendv(el_stream_t *s, struct iovec *iov, size_t n)
{
    ssize_t w;

    if (el_io_stale(&s->io)) {
        return -EBADF;
    }
    for (;;) {
        if (!(s->flags & EL_STREAM_NOTSOCK)) {
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
            w = sendmsg(s->io.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno == ENOTSOCK) {
                s->flags |= EL_STREAM_NOTSOCK;
                continue;
            }
        }
        else {
            w = writev(s->io.fd, iov, (int)n);
        }
        if (w >= 0) {
            return w;
        }
        if (errno != EINTR) {
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
}

/* Completes the chunks that n written bytes covered. */
static void
wq_consume(el_stream_t *s, size_t n)
{
    while (s->wq_len > 0) {
        el_wchunk_t *c = wq_at(s, 0);
        size_t left = c->len - s->wq_off;
        if (n < left) {
            s->wq_off += n;
            s->wq_bytes -= n;
            return;
        }
        n -= left;
        wq_pop(s, 0);
        if (s->flags & EL_STREAM_CLOSED) {
            return;     /* write_cb closed the stream */
        }
    }
}

/* Writes as much of the queue as the fd takes, in at most WRITE_PASSES
 * calls.  Returns 0 when the queue is empty, 1 when data is left, or
 * -errno.  *progress is set when anything was written or completed. */
static int
stream_write_passes(el_stream_t *s, int *progress)
{
    struct iovec iov[IOV_BATCH];

    *progress = 0;
    for (int pass = 0; pass < WRITE_PASSES; pass++) {
        size_t n = 0, total = 0;

        if (s->flags & EL_STREAM_CLOSED) {
            return -ECANCELED;
        }
        if (s->wq_len == 0) {
            return 0;
        }
        for (size_t i = 0; i < s->wq_len && n < IOV_BATCH; i++) {
            el_wchunk_t *c = wq_at(s, i);
            size_t off = i == 0 ? s->wq_off : 0;
            iov[n].iov_base = (char *)c->base + off;
            iov[n].iov_len = c->len - off;
            total += c->len - off;
            n++;
        }
        ssize_t w = stream_sendv(s, iov, n);
        s->nwrites++;
        if (w < 0) {
            return w == -EAGAIN ? 1 : (int)w;
        }
        *progress = 1;
        wq_consume(s, (size_t)w);
        if ((size_t)w < total) {
            /* Short write: the kernel buffer is full. */
            return (s->flags & EL_STREAM_CLOSED) ? -ECANCELED : 1;
        }
    }
    return s->wq_len ? 1 : 0;
}

int
el_stream_flush(el_stream_t *s)
{
    int progress;

    if (s->flags & EL_STREAM_CLOSED) {
        return -EBADF;
    }
    if (s->flags & EL_STREAM_WRITING) {
        return 1;
    }
    int r = stream_write_passes(s, &progress);
    if (r == 1) {
        s->flags |= EL_STREAM_WRITING;
        int err = stream_sync_mask(s);
        if (err < 0) {
            s->flags &= ~(unsigned)EL_STREAM_WRITING;
            return err;
        }
    }
    return r == -ECANCELED ? -EBADF : r;
}

static int
do_shutdown(el_stream_t *s)
{
    s->flags &= ~(unsigned)EL_STREAM_SHUT_PENDING;
    s->flags |= EL_STREAM_SHUT_DONE;
    if (el_io_stale(&s->io)) {
        return -EBADF;
    }
    return shutdown(s->io.fd, SHUT_WR) < 0 ? -errno : 0;
}

int
el_stream_shutdown(el_stream_t *s)
{
    if (s->flags & EL_STREAM_CLOSED) {
        return -EBADF;
    }
    if (s->flags & (EL_STREAM_SHUT_PENDING | EL_STREAM_SHUT_DONE)) {
        return -EALREADY;
    }
    if (s->wq_len == 0) {
        return do_shutdown(s);
    }
    s->flags |= EL_STREAM_SHUT_PENDING;
    if (!(s->flags & EL_STREAM_WRITING)) {
        /* Start the writes the shutdown waits for. */
        s->flags |= EL_STREAM_WRITING;
        int err = stream_sync_mask(s);
        if (err < 0) {
            s->flags &= ~(unsigned)(EL_STREAM_WRITING
                                    | EL_STREAM_SHUT_PENDING);
            return err;
        }
    }
    return 1;
}

static void
stream_stop_writing(el_stream_t *s)
{
    s->flags &= ~(unsigned)EL_STREAM_WRITING;
    s->pending &= ~(unsigned)EL_WRITABLE;
    (void)stream_sync_mask(s);
}

void
el_stream_write_clear(el_stream_t *s)
{
    s->flags &= ~(unsigned)EL_STREAM_SHUT_PENDING;
    if (!(s->flags & EL_STREAM_CLOSED)) {
        stream_stop_writing(s);
    }
    while (s->wq_len > 0) {
        wq_pop(s, -ECANCELED);
    }
}

void
el_stream_close(el_stream_t *s)
{
    if (s->flags & EL_STREAM_CLOSED) {
        return;
    }
    /* Closed first, so that write_cb below sees a closed stream. */
    s->flags = (s->flags & EL_STREAM_NOTSOCK) | EL_STREAM_CLOSED;
    s->pending = 0;
    if (s->loop->backend != NULL) {
        (void)el_io_set(s->loop, &s->io, 0);
    }
    s->io.mask = 0;
    while (s->wq_len > 0) {
        wq_pop(s, -ECANCELED);
    }
}

static ssize_t
stream_recv(el_stream_t *s, char *buf, size_t len)
{
    ssize_t n;

    if (el_io_stale(&s->io)) {
        return -EBADF;
    }
    for (;;) {
        if (!(s->flags & EL_STREAM_NOTSOCK)) {
            n = recv(s->io.fd, buf, len, MSG_DONTWAIT);
            if (n < 0 && errno == ENOTSOCK) {
                s->flags |= EL_STREAM_NOTSOCK;
                continue;
            }
        }
        else {
            n = read(s->io.fd, buf, len);
        }
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    }
}

static int
stream_on_readable(el_stream_t *s)
{
    el_stream_alloc_cb alloc_cb = s->alloc_cb;
    el_stream_read_cb read_cb = s->read_cb;
    el_buf_t buf = {NULL, 0};

    int err = alloc_cb(s, EL_STREAM_READ_SIZE, &buf);
    if (err < 0) {
        return err;
    }
    if (buf.base == NULL || buf.len == 0) {
        return 0;
    }
    /* Once the buffer is lent the read happens even if alloc_cb stopped
     * reading (asyncio calls recv_into() after get_buffer() whatever
     * get_buffer() did); only a closed stream has no fd to read. */
    ssize_t n = (s->flags & EL_STREAM_CLOSED)
                    ? -ECANCELED : stream_recv(s, buf.base, buf.len);
    return read_cb(s, n, &buf);
}

static int
stream_on_writable(el_stream_t *s)
{
    int progress;

    if (!(s->flags & EL_STREAM_WRITING)) {
        return 0;
    }
    int r = stream_write_passes(s, &progress);
    if (r == -ECANCELED) {
        return 0;   /* closed by write_cb */
    }
    if (r != 1) {
        stream_stop_writing(s);
    }
    if ((progress || r != 1) && s->written_cb != NULL) {
        int err = s->written_cb(s, r < 0 ? r : 0);
        if (err < 0) {
            return err;
        }
    }
    /* Re-check everything: written_cb may have queued, cleared, closed. */
    if (r == 0 && s->wq_len == 0 && (s->flags & EL_STREAM_SHUT_PENDING)
        && !(s->flags & (EL_STREAM_CLOSED | EL_STREAM_WRITING))) {
        int err = do_shutdown(s);
        if (s->shutdown_cb != NULL) {
            return s->shutdown_cb(s, err);
        }
    }
    return 0;
}

int
el_stream_read_now(el_stream_t *s)
{
    /* Through el_stream_process(), whose only caller stream_on_readable()
     * then stays (inlined in it, on every read's path). */
    s->pending |= EL_READABLE;
    return el_stream_process(s, EL_READABLE);
}

int
el_stream_process(el_stream_t *s, unsigned events)
{
    unsigned ev = events & s->pending;

    s->pending &= ~ev;
    if ((ev & EL_READABLE) && (s->flags & EL_STREAM_READING)) {
        int err = stream_on_readable(s);
        if (err < 0) {
            return err;
        }
    }
    if ((ev & EL_WRITABLE) && !(s->flags & EL_STREAM_CLOSED)) {
        return stream_on_writable(s);
    }
    return 0;
}

static int
stream_io_cb(el_loop_t *loop, el_io_t *io, unsigned revents)
{
    el_stream_t *s = el_container_of(io, el_stream_t, io);

    (void)loop;
    s->pending |= revents;
    if (s->notify_cb != NULL) {
        return s->notify_cb(s, revents);
    }
    return el_stream_process(s, revents);
}
