/*
 * test_stream.c -- byte streams (stream.c) over the epoll backend:
 * reads, the write queue (batching, partial writes, EAGAIN), shutdown
 * after drain, errors (EOF, ECONNRESET, EPIPE), close with pending data
 * and deferred processing (notify_cb).
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

#define MAX_EVENTS 64

/* A stream that records everything its callbacks are told. */
typedef struct {
    el_stream_t s;
    char rbuf[4096];
    size_t rbuf_len;            /* what alloc_cb lends, <= sizeof(rbuf) */
    char got[1 << 16];          /* data read so far */
    size_t ngot;
    int nreads;
    ssize_t last_nread;
    int eof;
    int allocs;
    int ntokens;
    int tokens[4096];           /* token ids in completion order */
    int token_status[4096];
    int nwritten;
    int written_status;
    int nshutdown;
    int shutdown_status;
    int nnotify;
    unsigned notified;
} tstream;

static int
t_alloc(el_stream_t *s, size_t suggested, el_buf_t *buf)
{
    tstream *t = el_container_of(s, tstream, s);

    CHECK_EQ(suggested, EL_STREAM_READ_SIZE);
    t->allocs++;
    buf->base = t->rbuf;
    buf->len = t->rbuf_len;
    return 0;
}

static int
t_read(el_stream_t *s, ssize_t nread, const el_buf_t *buf)
{
    tstream *t = el_container_of(s, tstream, s);

    CHECK(buf->base == t->rbuf);
    t->nreads++;
    t->last_nread = nread;
    if (nread == 0) {
        t->eof++;
    }
    else if (nread > 0) {
        CHECK((size_t)nread <= buf->len);
        CHECK(t->ngot + (size_t)nread <= sizeof(t->got));
        memcpy(t->got + t->ngot, buf->base, (size_t)nread);
        t->ngot += (size_t)nread;
    }
    return 0;
}

static void
t_write_done(el_stream_t *s, void *token, int status)
{
    tstream *t = el_container_of(s, tstream, s);

    CHECK(t->ntokens < 4096);
    t->tokens[t->ntokens] = (int)(intptr_t)token;
    t->token_status[t->ntokens] = status;
    t->ntokens++;
}

static int
t_written(el_stream_t *s, int status)
{
    tstream *t = el_container_of(s, tstream, s);

    t->nwritten++;
    t->written_status = status;
    return 0;
}

static int
t_shutdown(el_stream_t *s, int status)
{
    tstream *t = el_container_of(s, tstream, s);

    t->nshutdown++;
    t->shutdown_status = status;
    return 0;
}

static int
t_notify(el_stream_t *s, unsigned events)
{
    tstream *t = el_container_of(s, tstream, s);

    t->nnotify++;
    t->notified |= events;
    return 0;
}

static void
tstream_init(tstream *t, el_loop_t *loop, int fd)
{
    memset(t, 0, sizeof(*t));
    el_stream_init(&t->s, loop, fd);
    t->rbuf_len = sizeof(t->rbuf);
    t->s.write_cb = t_write_done;
    t->s.written_cb = t_written;
    t->s.shutdown_cb = t_shutdown;
}

static void
sockpair(int sv[2])
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0, sv));
}

static void
small_sndbuf(int fd)
{
    int size = 4096;
    CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)));
}

/* Fills fd's send path until the kernel refuses more. */
static size_t
fill(int fd)
{
    static char junk[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = write(fd, junk, sizeof(junk))) > 0) {
        total += (size_t)n;
    }
    CHECK_EQ(errno, EAGAIN);
    return total;
}

/* Reads and discards everything available on fd; returns the count. */
static size_t
drain(int fd)
{
    static char sink[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = read(fd, sink, sizeof(sink))) > 0) {
        total += (size_t)n;
    }
    return total;
}

static int
poll_once(el_loop_t *loop, int64_t timeout_ns)
{
    int n = el_loop_wait(loop, timeout_ns);
    CHECK(n >= 0);
    el_loop_dispatch(loop);
    return n;
}

static unsigned char
pattern(size_t i)
{
    return (unsigned char)((i * 7 + i / 251) & 0xff);
}

/* ---- reading ---------------------------------------------------------- */

static int
t_read_fails(el_stream_t *s, ssize_t nread, const el_buf_t *buf)
{
    t_read(s, nread, buf);
    return -EIO;
}

/* An owner's callback failing ends the processing and the dispatch with
 * its value: nothing is left for the owner to discover elsewhere. */
void
test_stream_callback_failure(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read_fails));
    CHECK_EQ(write(sv[1], "hello", 5), 5);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    CHECK_EQ(el_loop_dispatch(&loop), -EIO);
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(t.ngot, 5);
    el_stream_close(&t.s);
    CHECK_EQ(el_loop_close(&loop), 0);
    close(sv[0]);
    close(sv[1]);
}

void
test_stream_read_and_eof(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK(el_stream_is_reading(&t.s));
    CHECK(el_io_lookup(&loop, sv[0]) == &t.s.io);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);

    CHECK_EQ(write(sv[1], "hello", 5), 5);
    poll_once(&loop, -1);
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(t.last_nread, 5);
    CHECK(memcmp(t.got, "hello", 5) == 0);

    CHECK_OK(shutdown(sv[1], SHUT_WR));
    poll_once(&loop, -1);
    CHECK_EQ(t.nreads, 2);
    CHECK_EQ(t.eof, 1);
    /* Still reading: the owner decides what EOF means. */
    CHECK(el_stream_is_reading(&t.s));
    el_stream_read_stop(&t.s);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);

    el_stream_close(&t.s);
    CHECK(el_io_lookup(&loop, sv[0]) == NULL);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* One read per readable event, however much is waiting. */
void
test_stream_one_read_per_event(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];
    char data[100];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    t.rbuf_len = 10;
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (char)pattern(i);
    }
    CHECK_EQ(write(sv[1], data, sizeof(data)), (ssize_t)sizeof(data));
    for (int i = 1; i <= 10; i++) {
        poll_once(&loop, -1);
        CHECK_EQ(t.nreads, i);
        CHECK_EQ(t.ngot, (size_t)i * 10);
    }
    CHECK(memcmp(t.got, data, sizeof(data)) == 0);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* An owner that declines to lend a buffer gets no read and no read_cb. */
void
test_stream_alloc_declined(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    t.rbuf_len = 0;
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK_EQ(write(sv[1], "x", 1), 1);
    poll_once(&loop, -1);
    CHECK_EQ(t.allocs, 1);
    CHECK_EQ(t.nreads, 0);
    t.rbuf_len = sizeof(t.rbuf);
    poll_once(&loop, -1);   /* level-triggered: still readable */
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(t.ngot, 1);
    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_stream_econnreset(void)
{
    el_loop_t loop;
    tstream t;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t alen = sizeof(addr);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        SKIP("no AF_INET sockets");
    }
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        SKIP("cannot bind to 127.0.0.1");
    }
    CHECK_OK(listen(lfd, 1));
    CHECK_OK(getsockname(lfd, (struct sockaddr *)&addr, &alen));
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_OK(cfd);
    CHECK_OK(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)));
    int afd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK_OK(afd);

    CHECK_OK(el_loop_init(&loop));
    tstream_init(&t, &loop, afd);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    /* SO_LINGER 0: close() sends RST instead of FIN. */
    CHECK_OK(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
    close(cfd);
    poll_once(&loop, -1);
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(t.last_nread, -ECONNRESET);

    /* Writing to the reset connection fails too, without SIGPIPE. */
    CHECK_OK(el_stream_write(&t.s, "x", 1, (void *)1));
    int r = el_stream_flush(&t.s);
    CHECK(r == -EPIPE || r == -ECONNRESET);
    CHECK_EQ(el_stream_write_queue_len(&t.s), 1);
    el_stream_close(&t.s);
    CHECK_EQ(t.ntokens, 1);
    CHECK_EQ(t.token_status[0], -ECANCELED);
    close(afd);
    close(lfd);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* ---- writing ---------------------------------------------------------- */

/* The queue lives in the stream while short, moves to the heap in order
 * when it grows, and comes back once drained (idle streams hold no
 * allocation). */
void
test_stream_queue_storage(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];
    char got[16];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    CHECK(t.s.wq == t.s.wq_inline);
    for (int i = 0; i < 5; i++) {
        CHECK_OK(el_stream_write(&t.s, "abcde" + i, 1, (void *)(intptr_t)i));
    }
    CHECK(t.s.wq != t.s.wq_inline);
    CHECK_EQ(el_stream_write_queue_len(&t.s), 5);
    CHECK((intptr_t)el_stream_write_queue_token(&t.s, 4) == 4);
    CHECK_EQ(el_stream_flush(&t.s), 0);
    CHECK_EQ(read(sv[1], got, sizeof(got)), 5);
    CHECK(memcmp(got, "abcde", 5) == 0);
    CHECK_EQ(t.ntokens, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(t.tokens[i], i);
    }
    CHECK(t.s.wq == t.s.wq_inline);

    /* A wrapped inline ring (set up by hand: the oldest chunk in the last
     * slot) is unrolled in order when the queue grows. */
    CHECK_OK(el_stream_write(&t.s, "x", 1, (void *)10));
    CHECK_OK(el_stream_write(&t.s, "y", 1, (void *)11));
    t.s.wq_inline[1] = (el_wchunk_t){"w", 1, (void *)9};
    t.s.wq_inline[0] = (el_wchunk_t){"x", 1, (void *)10};
    t.s.wq_head = 1;
    CHECK_OK(el_stream_write(&t.s, "y", 1, (void *)11));
    CHECK_EQ(el_stream_write_queue_len(&t.s), 3);
    CHECK((intptr_t)el_stream_write_queue_token(&t.s, 0) == 9);
    CHECK((intptr_t)el_stream_write_queue_token(&t.s, 1) == 10);
    CHECK((intptr_t)el_stream_write_queue_token(&t.s, 2) == 11);
    el_stream_close(&t.s);
    CHECK_EQ(t.ntokens, 8);
    CHECK_EQ(t.tokens[5], 9);
    CHECK_EQ(t.tokens[7], 11);
    CHECK_EQ(t.token_status[7], -ECANCELED);
    CHECK(t.s.wq == t.s.wq_inline);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_stream_writev_batching(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];
    enum { NCHUNK = 3000, CHUNK = 7 };
    static char data[NCHUNK * CHUNK];
    static char back[NCHUNK * CHUNK];
    int size = 1 << 20;

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    CHECK_OK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)));
    tstream_init(&t, &loop, sv[0]);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (char)pattern(i);
    }
    for (int i = 0; i < NCHUNK; i++) {
        CHECK_OK(el_stream_write(&t.s, data + i * CHUNK, CHUNK,
                                 (void *)(intptr_t)i));
    }
    CHECK_EQ(el_stream_write_queue_len(&t.s), NCHUNK);
    CHECK_EQ(el_stream_write_queue_size(&t.s), sizeof(data));
    CHECK_EQ(t.s.nwrites, 0);   /* queueing sends nothing */
    CHECK_EQ(el_stream_flush(&t.s), 0);
    /* IOV_MAX (1024) chunks per call: 1024 + 1024 + 952. */
    CHECK_EQ(t.s.nwrites, 3);
    CHECK_EQ(el_stream_write_queue_size(&t.s), 0);
    CHECK(!el_stream_is_writing(&t.s));
    CHECK(el_io_lookup(&loop, sv[0]) == NULL);  /* never watched */
    CHECK_EQ(t.ntokens, NCHUNK);
    for (int i = 0; i < NCHUNK; i++) {
        CHECK_EQ(t.tokens[i], i);
        CHECK_EQ(t.token_status[i], 0);
    }
    CHECK_EQ(t.nwritten, 0);    /* synchronous: reported by the return */
    size_t got = 0;
    while (got < sizeof(back)) {
        ssize_t n = read(sv[1], back + got, sizeof(back) - got);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK(memcmp(back, data, sizeof(data)) == 0);
    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* A full socket: flush makes one call, sees EAGAIN, and arms writing. */
void
test_stream_eagain(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    fill(sv[0]);
    CHECK_OK(el_stream_write(&t.s, "abc", 3, (void *)7));
    CHECK_EQ(el_stream_flush(&t.s), 1);
    CHECK_EQ(t.s.nwrites, 1);
    CHECK_EQ(el_stream_write_queue_size(&t.s), 3);
    CHECK_EQ(t.ntokens, 0);
    CHECK(el_stream_is_writing(&t.s));
    CHECK_EQ(t.s.io.mask, EL_WRITABLE);
    /* While a write is under way, flush does not touch the socket. */
    CHECK_EQ(el_stream_flush(&t.s), 1);
    CHECK_EQ(t.s.nwrites, 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);

    drain(sv[1]);
    poll_once(&loop, -1);
    CHECK_EQ(t.nwritten, 1);
    CHECK_EQ(t.written_status, 0);
    CHECK_EQ(t.ntokens, 1);
    CHECK_EQ(t.tokens[0], 7);
    CHECK(!el_stream_is_writing(&t.s));
    CHECK_EQ(t.s.io.mask, 0);
    char buf[4];
    CHECK_EQ(read(sv[1], buf, sizeof(buf)), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Large chunks through a small buffer: partial writes resume at the right
 * offset, chunks complete in order, the bytes arrive intact. */
void
test_stream_partial_writes(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];
    enum { TOTAL = 1 << 20, NCHUNK = 4 };
    static char data[TOTAL];
    static char back[TOTAL];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    small_sndbuf(sv[0]);
    tstream_init(&t, &loop, sv[0]);
    for (size_t i = 0; i < TOTAL; i++) {
        data[i] = (char)pattern(i);
    }
    for (int i = 0; i < NCHUNK; i++) {
        CHECK_OK(el_stream_write(&t.s, data + i * (TOTAL / NCHUNK),
                                 TOTAL / NCHUNK, (void *)(intptr_t)i));
    }
    CHECK_EQ(el_stream_flush(&t.s), 1);
    size_t left = el_stream_write_queue_size(&t.s);
    CHECK(left > 0 && left < TOTAL);
    CHECK(el_stream_is_writing(&t.s));

    size_t got = 0;
    int spins = 0;
    while (got < TOTAL) {
        ssize_t n = read(sv[1], back + got, TOTAL - got);
        if (n > 0) {
            got += (size_t)n;
        }
        poll_once(&loop, 0);
        CHECK(++spins < 10000000);
        /* The queue only shrinks, and what left equals what was read
         * or is still in flight in the kernel. */
        CHECK(el_stream_write_queue_size(&t.s) <= left);
        left = el_stream_write_queue_size(&t.s);
    }
    CHECK(memcmp(back, data, TOTAL) == 0);
    CHECK_EQ(el_stream_write_queue_size(&t.s), 0);
    CHECK(!el_stream_is_writing(&t.s));
    CHECK(t.nwritten >= 1);
    CHECK_EQ(t.written_status, 0);
    CHECK_EQ(t.ntokens, NCHUNK);
    for (int i = 0; i < NCHUNK; i++) {
        CHECK_EQ(t.tokens[i], i);
    }
    CHECK(t.s.nwrites > NCHUNK);
    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_stream_epipe(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    close(sv[1]);
    CHECK_OK(el_stream_write(&t.s, "x", 1, (void *)1));
    /* MSG_NOSIGNAL: an error, not a SIGPIPE that would kill the test. */
    CHECK_EQ(el_stream_flush(&t.s), -EPIPE);
    CHECK_EQ(el_stream_write_queue_len(&t.s), 1);
    CHECK(!el_stream_is_writing(&t.s));
    el_stream_write_clear(&t.s);
    CHECK_EQ(t.ntokens, 1);
    CHECK_EQ(t.token_status[0], -ECANCELED);
    CHECK_EQ(el_stream_write_queue_size(&t.s), 0);
    el_stream_close(&t.s);
    close(sv[0]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* The peer goes away while a write is continuing: written_cb gets the
 * error and the queue is left for the owner. */
void
test_stream_write_error_async(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];
    static char big[1 << 18];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    small_sndbuf(sv[0]);
    tstream_init(&t, &loop, sv[0]);
    CHECK_OK(el_stream_write(&t.s, big, sizeof(big), (void *)1));
    CHECK_OK(el_stream_write(&t.s, big, sizeof(big), (void *)2));
    CHECK_EQ(el_stream_flush(&t.s), 1);
    close(sv[1]);
    poll_once(&loop, -1);
    CHECK_EQ(t.nwritten, 1);
    CHECK(t.written_status == -EPIPE || t.written_status == -ECONNRESET);
    CHECK(!el_stream_is_writing(&t.s));
    CHECK_EQ(el_stream_write_queue_len(&t.s), 2);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);   /* nothing watched any more */
    el_stream_write_clear(&t.s);
    CHECK_EQ(t.ntokens, 2);
    CHECK_EQ(t.tokens[0], 1);
    CHECK_EQ(t.tokens[1], 2);
    el_stream_close(&t.s);
    close(sv[0]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* shutdown(SHUT_WR) waits for the queue: the peer reads every byte, then
 * EOF. */
void
test_stream_shutdown_after_drain(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];
    enum { TOTAL = 1 << 19 };
    static char data[TOTAL];
    static char back[TOTAL];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    small_sndbuf(sv[0]);
    tstream_init(&t, &loop, sv[0]);
    for (size_t i = 0; i < TOTAL; i++) {
        data[i] = (char)pattern(i);
    }
    CHECK_OK(el_stream_write(&t.s, data, TOTAL, (void *)1));
    CHECK_EQ(el_stream_shutdown(&t.s), 1);     /* queued, nothing sent */
    CHECK(el_stream_is_writing(&t.s));
    CHECK_EQ(el_stream_shutdown(&t.s), -EALREADY);
    CHECK_EQ(el_stream_write(&t.s, "x", 1, (void *)2), -EPIPE);

    size_t got = 0;
    int eof = 0, spins = 0;
    while (!eof) {
        ssize_t n = read(sv[1], back + got, TOTAL - got + 1);
        if (n == 0) {
            eof = 1;
        }
        else if (n > 0) {
            got += (size_t)n;
            CHECK(got <= TOTAL);
            /* EOF only after the last byte. */
            CHECK(got == TOTAL || t.nshutdown == 0);
        }
        poll_once(&loop, 0);
        CHECK(++spins < 10000000);
    }
    CHECK_EQ(got, TOTAL);
    CHECK(memcmp(back, data, TOTAL) == 0);
    CHECK_EQ(t.nshutdown, 1);
    CHECK_EQ(t.shutdown_status, 0);
    CHECK_EQ(t.ntokens, 1);

    /* With nothing queued, shutdown happens at once. */
    tstream u;
    int sv2[2];
    sockpair(sv2);
    tstream_init(&u, &loop, sv2[0]);
    CHECK_EQ(el_stream_shutdown(&u.s), 0);
    CHECK_EQ(read(sv2[1], back, 1), 0);
    CHECK_EQ(u.nshutdown, 0);
    el_stream_close(&u.s);
    close(sv2[0]);
    close(sv2[1]);

    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Closing with pending data drops it, reports every chunk, detaches the
 * watcher and leaves the fd to its owner. */
void
test_stream_close_with_pending_data(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    size_t filled = fill(sv[0]);
    for (int i = 0; i < 5; i++) {
        CHECK_OK(el_stream_write(&t.s, "data", 4, (void *)(intptr_t)i));
    }
    CHECK_EQ(el_stream_flush(&t.s), 1);
    CHECK_EQ(t.s.io.mask, EL_READABLE | EL_WRITABLE);
    CHECK_OK(el_stream_shutdown(&t.s));
    el_stream_close(&t.s);
    CHECK_EQ(t.ntokens, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(t.tokens[i], i);
        CHECK_EQ(t.token_status[i], -ECANCELED);
    }
    CHECK(el_io_lookup(&loop, sv[0]) == NULL);
    CHECK_EQ(el_stream_write_queue_size(&t.s), 0);
    CHECK(fcntl(sv[0], F_GETFD) >= 0);      /* still open */
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(t.nshutdown, 0);
    /* The pending data never left; no shutdown either. */
    CHECK_EQ(drain(sv[1]), filled);
    CHECK_EQ(el_stream_write(&t.s, "x", 1, NULL), -EBADF);
    CHECK_EQ(el_stream_flush(&t.s), -EBADF);
    CHECK_EQ(el_stream_read_start(&t.s, t_alloc, t_read), -EBADF);
    el_stream_close(&t.s);  /* idempotent */
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* ---- deferral, pipes, closed loops ------------------------------------ */

void
test_stream_notify_defers(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    t.s.notify_cb = t_notify;
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK_EQ(write(sv[1], "ab", 2), 2);
    poll_once(&loop, -1);
    CHECK_EQ(t.nnotify, 1);
    CHECK_EQ(t.notified, EL_READABLE);
    CHECK_EQ(t.nreads, 0);          /* deferred */
    el_stream_process(&t.s, EL_READABLE);
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(t.ngot, 2);
    el_stream_process(&t.s, EL_READABLE);   /* nothing pending any more */
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(t.allocs, 1);

    /* A stop cancels a read already noted. */
    CHECK_EQ(write(sv[1], "c", 1), 1);
    poll_once(&loop, -1);
    CHECK_EQ(t.nnotify, 2);
    el_stream_read_stop(&t.s);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    el_stream_process(&t.s, EL_READABLE);
    CHECK_EQ(t.nreads, 1);
    poll_once(&loop, -1);
    CHECK_EQ(t.nnotify, 3);
    el_stream_process(&t.s, EL_READABLE | EL_WRITABLE);
    CHECK_EQ(t.nreads, 2);
    CHECK_EQ(t.ngot, 3);

    /* Writable events are deferred the same way. */
    fill(sv[0]);
    CHECK_OK(el_stream_write(&t.s, "z", 1, (void *)9));
    CHECK_EQ(el_stream_flush(&t.s), 1);
    drain(sv[1]);
    t.notified = 0;
    poll_once(&loop, -1);
    CHECK_EQ(t.notified, EL_WRITABLE);
    CHECK_EQ(t.ntokens, 0);
    el_stream_process(&t.s, EL_WRITABLE);
    CHECK_EQ(t.ntokens, 1);
    CHECK_EQ(t.nwritten, 1);
    el_stream_close(&t.s);
    close(sv[0]);
    close(sv[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* A pipe is not a socket: the stream falls back to read()/writev(). */
void
test_stream_pipe(void)
{
    el_loop_t loop;
    tstream r, w;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    CHECK_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
    tstream_init(&r, &loop, p[0]);
    tstream_init(&w, &loop, p[1]);
    CHECK_OK(el_stream_read_start(&r.s, t_alloc, t_read));
    CHECK_OK(el_stream_write(&w.s, "pi", 2, (void *)1));
    CHECK_OK(el_stream_write(&w.s, "pe", 2, (void *)2));
    CHECK_EQ(el_stream_flush(&w.s), 0);
    CHECK(w.s.flags & EL_STREAM_NOTSOCK);
    poll_once(&loop, -1);
    CHECK_EQ(r.ngot, 4);
    CHECK(memcmp(r.got, "pipe", 4) == 0);
    CHECK(r.s.flags & EL_STREAM_NOTSOCK);
    el_stream_close(&w.s);
    close(p[1]);
    poll_once(&loop, -1);
    CHECK_EQ(r.eof, 1);
    el_stream_close(&r.s);
    close(p[0]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* After el_loop_close() nothing can be watched, and nothing crashes. */
void
test_stream_closed_loop(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    CHECK_OK(el_loop_init(&loop));
    sockpair(sv);
    tstream_init(&t, &loop, sv[0]);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK_EQ(el_loop_close(&loop), 0);
    CHECK_EQ(t.s.io.mask, 0);
    el_stream_read_stop(&t.s);
    CHECK_EQ(el_stream_read_start(&t.s, t_alloc, t_read), -ESHUTDOWN);
    fill(sv[0]);
    CHECK_OK(el_stream_write(&t.s, "x", 1, (void *)1));
    CHECK_EQ(el_stream_flush(&t.s), -ESHUTDOWN);
    CHECK_EQ(el_stream_write_queue_len(&t.s), 1);
    el_stream_close(&t.s);
    CHECK_EQ(t.ntokens, 1);
    close(sv[0]);
    close(sv[1]);
}

/* The preamble and ending of the tests below: a loop, a socketpair, and
 * a stream on sv[0]. */
static void
stream_open(el_loop_t *loop, tstream *t, int sv[2])
{
    CHECK_OK(el_loop_init(loop));
    sockpair(sv);
    tstream_init(t, loop, sv[0]);
}

static void
stream_finish(el_loop_t *loop, int fd0, int fd1)
{
    close(fd0);
    close(fd1);
    CHECK_EQ(el_loop_close(loop), 0);
}

/* The file behind the fd was closed (its owner's copy of the fd is -1) and
 * the number reused: the stream makes no syscall on it, and a new watcher
 * for the new file evicts the stale one. */
void
test_stream_stale_fd(void)
{
    el_loop_t loop;
    tstream t, t2;
    int sv[2], nv[2];
    int fd_src;

    stream_open(&loop, &t, sv);
    fd_src = sv[0];
    t.s.io.fd_src = &fd_src;
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));

    /* Closed behind the stream's back, the number taken by a new pair. */
    fd_src = -1;
    close(sv[0]);
    sockpair(nv);
    if (nv[0] != sv[0]) {
        CHECK_EQ(dup2(nv[0], sv[0]), sv[0]);
        close(nv[0]);
        nv[0] = sv[0];
    }
    CHECK(el_stream_write(&t.s, "leak", 4, (void *)1) == 0);
    CHECK_EQ(el_stream_flush(&t.s), -EBADF);
    CHECK_EQ(el_stream_shutdown(&t.s), -EBADF);     /* can't arm writing */
    el_stream_write_clear(&t.s);
    CHECK_EQ(el_stream_shutdown(&t.s), -EBADF);     /* no shutdown(2) */

    /* A read that readiness promised fails too. */
    CHECK_EQ(write(nv[1], "new", 3), 3);
    t.s.pending |= EL_READABLE;
    el_stream_process(&t.s, EL_READABLE);
    CHECK_EQ(t.last_nread, -EBADF);
    CHECK_EQ(t.ngot, 0);

    /* The new file's own watcher takes the fd from the stale one. */
    CHECK(el_io_lookup(&loop, nv[0]) == &t.s.io);
    tstream_init(&t2, &loop, nv[0]);
    CHECK_OK(el_stream_read_start(&t2.s, t_alloc, t_read));
    CHECK(el_io_lookup(&loop, nv[0]) == &t2.s.io);
    CHECK_EQ(t.s.io.mask, 0);
    poll_once(&loop, -1);
    CHECK_EQ(t2.nreads, 1);
    CHECK(memcmp(t2.got, "new", 3) == 0);
    CHECK_EQ(t.nreads, 1);
    CHECK_EQ(drain(nv[1]), 0);      /* nothing of t's reached the peer */
    el_stream_read_stop(&t.s);
    CHECK_EQ(el_stream_read_start(&t.s, t_alloc, t_read), -EBADF);
    CHECK(el_io_lookup(&loop, nv[0]) == &t2.s.io);

    el_stream_close(&t.s);
    CHECK(el_io_lookup(&loop, nv[0]) == &t2.s.io);
    el_stream_close(&t2.s);
    close(sv[1]);
    stream_finish(&loop, nv[0], nv[1]);
}

/* Room reserved for n chunks makes the next n writes succeed; a failed
 * reservation leaves the queue as it was. */
void
test_stream_write_reserve(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    stream_open(&loop, &t, sv);
    CHECK_OK(el_stream_write(&t.s, "a", 1, (void *)1));
    CHECK_EQ(el_stream_write_reserve(&t.s, (size_t)UINT32_MAX), -ENOMEM);
    CHECK_EQ(el_stream_write_queue_len(&t.s), 1);
    CHECK_EQ(el_stream_write_queue_size(&t.s), 1);
    CHECK_OK(el_stream_write_reserve(&t.s, 100));
    CHECK(t.s.wq_cap - t.s.wq_len >= 100);
    for (int i = 0; i < 100; i++) {
        CHECK_OK(el_stream_write(&t.s, "b", 1, (void *)2));
    }
    CHECK_EQ(el_stream_write_queue_len(&t.s), 101);
    CHECK_OK(el_stream_write_reserve(&t.s, 0));
    CHECK_EQ(el_stream_flush(&t.s), 0);
    CHECK_EQ(drain(sv[1]), 101);
    el_stream_close(&t.s);
    CHECK_EQ(el_stream_write_reserve(&t.s, 1), -EBADF);
    stream_finish(&loop, sv[0], sv[1]);
}

/* A paused reader stays the fd's owner; its interest goes only before a
 * wait that can block, so a pause and resume around busy polls cost no
 * epoll_ctl, and a paused reader still gets no read. */
void
test_stream_read_pause_is_lazy(void)
{
    el_loop_t loop;
    tstream t;
    int sv[2];

    stream_open(&loop, &t, sv);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK_EQ(loop.fds[sv[0]].kmask, EL_READABLE);

    CHECK_EQ(write(sv[1], "x", 1), 1);
    el_stream_read_pause(&t.s);
    CHECK(!el_stream_is_reading(&t.s));
    CHECK(loop.fds[sv[0]].io == &t.s.io);       /* still the owner */
    CHECK(el_io_lookup(&loop, sv[0]) == NULL);  /* but yields the fd */
    /* A poll that cannot block, without el_loop_prepare() (as the binding
     * does): reported, nobody wants it. */
    int n = el_loop_poll(&loop, 0);
    CHECK_EQ(n, 1);
    CHECK_OK(el_loop_deliver(&loop, n));
    CHECK_EQ(t.nreads, 0);
    CHECK_EQ(loop.fds[sv[0]].kmask, EL_READABLE);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK_EQ(loop.fds[sv[0]].kmask, EL_READABLE);
    poll_once(&loop, 0);
    CHECK_EQ(t.nreads, 1);

    /* Paused across a wait that may block: the interest goes first. */
    CHECK_EQ(write(sv[1], "y", 1), 1);
    el_stream_read_pause(&t.s);
    CHECK_EQ(el_loop_wait(&loop, 1000000), 0);
    CHECK_EQ(loop.fds[sv[0]].kmask, 0);
    CHECK(loop.fds[sv[0]].io == &t.s.io);
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));
    CHECK_EQ(loop.fds[sv[0]].kmask, EL_READABLE);
    poll_once(&loop, -1);
    CHECK_EQ(t.nreads, 2);

    /* Another watcher may take the fd of a paused one. */
    el_stream_read_pause(&t.s);
    el_io_t other;
    el_io_init(&other, sv[0], NULL);
    CHECK_OK(el_io_set(&loop, &other, EL_WRITABLE));
    CHECK(el_io_lookup(&loop, sv[0]) == &other);
    CHECK_EQ(el_stream_read_start(&t.s, t_alloc, t_read), -EEXIST);
    CHECK_OK(el_io_set(&loop, &other, 0));
    CHECK_OK(el_stream_read_start(&t.s, t_alloc, t_read));

    /* Closing detaches at once, paused or not. */
    el_stream_read_pause(&t.s);
    el_stream_close(&t.s);
    CHECK(el_io_lookup(&loop, sv[0]) == NULL);
    CHECK_EQ(loop.fds[sv[0]].kmask, 0);
    stream_finish(&loop, sv[0], sv[1]);
}
