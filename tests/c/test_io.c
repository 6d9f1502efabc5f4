/*
 * test_io.c -- I/O watchers over the epoll backend.
 *
 * Besides callbacks, these tests look at what the kernel really has
 * registered (/proc/self/fdinfo of the epoll fd) and count the backend's
 * modify() calls, since "no syscall" and "stale registration" are
 * invisible from the callbacks alone.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

#define RW (EL_READABLE | EL_WRITABLE)

/* ---- spying on the backend (each test runs in its own process) ---------- */

static el_backend_ops spy_ops;
static int (*real_modify)(el_loop_t *, int, unsigned, unsigned);
static int nmodify;
static int fail_next_del;

static int
spy_modify(el_loop_t *loop, int fd, unsigned old, unsigned new_)
{
    nmodify++;
    if (new_ == 0 && fail_next_del) {
        fail_next_del = 0;
        return -ENOMEM;
    }
    return real_modify(loop, fd, old, new_);
}

static void
spy_on(el_loop_t *loop)
{
    spy_ops = *loop->backend;
    real_modify = spy_ops.modify;
    spy_ops.modify = spy_modify;
    loop->backend = &spy_ops;
}

/* The interest the kernel has for fd in this process's only epoll set, as
 * EL_ bits, or -1 if fd is not registered at all. */
static int
kernel_interest(int fd)
{
    char path[64], line[256], link[64];
    int epfd = -1, found = -1;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (d == NULL) {
        SKIP("no /proc/self/fd");
    }
    while ((e = readdir(d)) != NULL) {
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(link, "anon_inode:[eventpoll]") == 0) {
                epfd = atoi(e->d_name);
            }
        }
    }
    closedir(d);
    CHECK(epfd >= 0);
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL) {
        int tfd;
        unsigned events;
        if (sscanf(line, "tfd: %d events: %x", &tfd, &events) == 2
            && tfd == fd) {
            found = ((events & EPOLLIN) ? EL_READABLE : 0)
                    | ((events & EPOLLOUT) ? EL_WRITABLE : 0);
        }
    }
    fclose(f);
    return found;
}

static void
nonblocking_pipe(int p[2])
{
    CHECK_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
}

static void
nonblocking_socketpair(int s[2])
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0, s));
}

/* ---- tests -------------------------------------------------------------- */

void
test_io_pipe_readable(void)
{
    el_loop_t loop;
    watcher w;
    int p[2];
    char c;

    CHECK_OK(el_loop_init(&loop));
    nonblocking_pipe(p);
    watcher_init(&w, p[0]);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK(el_io_lookup(&loop, p[0]) == &w.io);
    CHECK_EQ(w.io.mask, EL_READABLE);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);

    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, -1), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(w.revents, EL_READABLE);
    /* Level-triggered: unread data keeps reporting. */
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(w.calls, 2);
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);

    CHECK_OK(el_io_set(&loop, &w.io, 0));
    CHECK(el_io_lookup(&loop, p[0]) == NULL);
    CHECK_EQ(w.io.mask, 0);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_io_pipe_writable(void)
{
    el_loop_t loop;
    watcher w;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    nonblocking_pipe(p);
    watcher_init(&w, p[1]);
    /* A pipe's write end never turns readable, so only W is reported. */
    CHECK_OK(el_io_set(&loop, &w.io, RW));
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(w.revents, EL_WRITABLE);

    /* Fill the pipe: no longer writable. */
    static char buf[65536];
    while (write(p[1], buf, sizeof(buf)) > 0) {
    }
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    close(p[0]);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Errors and hang-ups are reported in every watched direction, like
 * selectors.EpollSelector, and never in an unwatched one. */
void
test_io_hangup_and_error(void)
{
    el_loop_t loop;
    watcher r, w, odd;
    int p[2], q[2], s[2];

    CHECK_OK(el_loop_init(&loop));

    nonblocking_pipe(p);            /* EPOLLHUP on the read end */
    watcher_init(&r, p[0]);
    CHECK_OK(el_io_set(&loop, &r.io, EL_READABLE));
    close(p[1]);

    nonblocking_pipe(q);            /* EPOLLERR on the write end */
    watcher_init(&w, q[1]);
    CHECK_OK(el_io_set(&loop, &w.io, EL_WRITABLE));
    close(q[0]);

    nonblocking_socketpair(s);      /* peer gone, watched for W only */
    watcher_init(&odd, s[0]);
    CHECK_OK(el_io_set(&loop, &odd.io, EL_WRITABLE));
    close(s[1]);

    CHECK_EQ(el_loop_wait(&loop, 0), 3);
    el_loop_dispatch(&loop);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.revents, EL_READABLE);
    CHECK_EQ(w.calls, 1);
    CHECK_EQ(w.revents, EL_WRITABLE);
    CHECK_EQ(odd.calls, 1);
    CHECK_EQ(odd.revents, EL_WRITABLE);

    CHECK_OK(el_io_set(&loop, &r.io, 0));
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    CHECK_OK(el_io_set(&loop, &odd.io, 0));
    close(p[0]);
    close(q[1]);
    close(s[0]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_io_narrowing_is_lazy(void)
{
    el_loop_t loop;
    watcher w;
    int s[2];

    CHECK_OK(el_loop_init(&loop));
    spy_on(&loop);
    nonblocking_socketpair(s);     /* s[0] is writable, not readable */
    watcher_init(&w, s[0]);

    CHECK_OK(el_io_set(&loop, &w.io, RW));
    CHECK_EQ(nmodify, 1);
    CHECK_EQ(kernel_interest(s[0]), RW);

    /* Narrow, widen back, flip: all within what the kernel has. */
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK_OK(el_io_set(&loop, &w.io, RW));
    CHECK_OK(el_io_set(&loop, &w.io, EL_WRITABLE));
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK_EQ(nmodify, 1);
    CHECK_EQ(kernel_interest(s[0]), RW);
    CHECK_EQ(w.io.mask, EL_READABLE);
    CHECK(loop.fds[s[0]].dirty);
    CHECK_EQ(loop.ndirty, 1);

    /* The wait applies it first, so writability is not even collected. */
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(nmodify, 2);
    CHECK_EQ(kernel_interest(s[0]), EL_READABLE);
    CHECK_EQ(loop.ndirty, 0);

    /* Widening is immediate. */
    CHECK_OK(el_io_set(&loop, &w.io, RW));
    CHECK_EQ(nmodify, 3);
    CHECK_EQ(kernel_interest(s[0]), RW);

    /* Narrowed between wait and dispatch: the event is filtered out. */
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    el_loop_dispatch(&loop);
    CHECK_EQ(w.calls, 0);

    /* Detaching is not lazy: the owner may close the fd next. */
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    CHECK_EQ(nmodify, 4);
    CHECK(el_io_lookup(&loop, s[0]) == NULL);
    CHECK_EQ(kernel_interest(s[0]), -1);
    CHECK_EQ(loop.fds[s[0]].kmask, 0);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(nmodify, 4);

    close(s[0]);
    close(s[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* prepare / poll / deliver, as the binding runs them around a GIL
 * release: the table work is all in prepare, and what other threads do to
 * watchers between poll and deliver is seen by deliver. */
void
test_io_poll_split(void)
{
    el_loop_t loop;
    watcher r, w;
    int p[2], s[2];

    CHECK_OK(el_loop_init(&loop));
    spy_on(&loop);
    nonblocking_pipe(p);
    nonblocking_socketpair(s);      /* s[0] is writable, not readable */
    watcher_init(&r, p[0]);
    watcher_init(&w, s[0]);
    CHECK_OK(el_io_set(&loop, &r.io, EL_READABLE));
    CHECK_OK(el_io_set(&loop, &w.io, RW));
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));     /* lazy */
    CHECK_EQ(kernel_interest(s[0]), RW);
    int before = nmodify;

    /* The lazy narrowing is applied by prepare, never by poll. */
    CHECK_EQ(el_loop_poll(&loop, 0), 1);                /* s[0] writable */
    CHECK_EQ(nmodify, before);
    el_loop_prepare(&loop);
    CHECK_EQ(nmodify, before + 1);
    CHECK_EQ(kernel_interest(s[0]), EL_READABLE);
    CHECK_EQ(loop.ndirty, 0);
    CHECK_EQ(el_loop_poll(&loop, 0), 0);

    /* A watcher detached after the poll (by another thread, say) is not
     * called by the delivery of that poll's events. */
    CHECK_EQ(write(p[1], "x", 1), 1);
    el_loop_prepare(&loop);
    int n = el_loop_poll(&loop, -1);
    CHECK_EQ(n, 1);
    CHECK_OK(el_io_set(&loop, &r.io, 0));
    el_loop_deliver(&loop, n);
    CHECK_EQ(r.calls, 0);

    /* Attached again: delivered.  Errors and empty polls deliver nothing. */
    CHECK_OK(el_io_set(&loop, &r.io, EL_READABLE));
    el_loop_prepare(&loop);
    n = el_loop_poll(&loop, -1);
    CHECK_EQ(n, 1);
    el_loop_deliver(&loop, n);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.revents, EL_READABLE);
    el_loop_deliver(&loop, 0);
    el_loop_deliver(&loop, -EINTR);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(w.calls, 0);

    CHECK_OK(el_loop_close(&loop));
    close(p[0]);
    close(p[1]);
    close(s[0]);
    close(s[1]);
}

void
test_io_eexist(void)
{
    el_loop_t loop;
    watcher w1, w2;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    nonblocking_pipe(p);
    watcher_init(&w1, p[0]);
    watcher_init(&w2, p[0]);
    CHECK_OK(el_io_set(&loop, &w1.io, EL_READABLE));
    CHECK_EQ(el_io_set(&loop, &w2.io, EL_READABLE), -EEXIST);
    CHECK_EQ(el_io_set(&loop, &w2.io, EL_WRITABLE), -EEXIST);
    CHECK_EQ(w2.io.mask, 0);
    /* Clearing a watcher that does not own the fd leaves the owner. */
    CHECK_OK(el_io_set(&loop, &w2.io, 0));
    CHECK(el_io_lookup(&loop, p[0]) == &w1.io);
    CHECK_EQ(w1.io.mask, EL_READABLE);

    /* Hand-over within one iteration. */
    CHECK_OK(el_io_set(&loop, &w1.io, 0));
    CHECK_OK(el_io_set(&loop, &w2.io, EL_READABLE));
    CHECK(el_io_lookup(&loop, p[0]) == &w2.io);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(w1.calls, 0);
    CHECK_EQ(w2.calls, 1);

    CHECK_OK(el_io_set(&loop, &w2.io, 0));
    close(p[0]);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_io_eperm_regular_file(void)
{
    el_loop_t loop;
    watcher w;
    FILE *f = tmpfile();

    CHECK(f != NULL);
    CHECK_OK(el_loop_init(&loop));
    watcher_init(&w, fileno(f));
    CHECK_EQ(el_io_set(&loop, &w.io, EL_READABLE), -EPERM);
    CHECK_EQ(w.io.mask, 0);
    CHECK(el_io_lookup(&loop, fileno(f)) == NULL);
    CHECK_EQ(loop.fds[fileno(f)].kmask, 0);
    CHECK_EQ(loop.ndirty, 0);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    fclose(f);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_io_bad_args(void)
{
    el_loop_t loop;
    watcher w;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    nonblocking_pipe(p);
    close(p[0]);
    watcher_init(&w, p[0]);
    CHECK_EQ(el_io_set(&loop, &w.io, EL_READABLE), -EBADF);
    CHECK(el_io_lookup(&loop, p[0]) == NULL);
    watcher_init(&w, -1);
    CHECK_EQ(el_io_set(&loop, &w.io, EL_READABLE), -EBADF);
    CHECK(el_io_lookup(&loop, -1) == NULL);
    CHECK(el_io_lookup(&loop, 1 << 30) == NULL);
    watcher_init(&w, p[1]);
    CHECK_EQ(el_io_set(&loop, &w.io, 4), -EINVAL);
    CHECK_EQ(w.io.mask, 0);
    CHECK(el_io_lookup(&loop, p[1]) == NULL);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Closing an fd under a watcher is a caller bug, but one the loop must
 * survive: the close silently drops the kernel registration. */
void
test_io_fd_closed_while_watched(void)
{
    el_loop_t loop;
    watcher a, b, c;
    int p[2], s[2], q[2];

    CHECK_OK(el_loop_init(&loop));
    spy_on(&loop);

    nonblocking_pipe(p);
    watcher_init(&a, p[0]);
    CHECK_OK(el_io_set(&loop, &a.io, EL_READABLE));
    CHECK_EQ(write(p[1], "x", 1), 1);
    close(p[0]);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(a.calls, 0);
    /* The lazy DEL meets EBADF, which is not an error here. */
    CHECK_OK(el_io_set(&loop, &a.io, 0));
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(loop.fds[p[0]].kmask, 0);
    close(p[1]);

    /* Closed with a narrowing pending: the lazy MOD meets EBADF. */
    nonblocking_socketpair(s);
    watcher_init(&b, s[0]);
    CHECK_OK(el_io_set(&loop, &b.io, RW));
    CHECK_OK(el_io_set(&loop, &b.io, EL_READABLE));
    close(s[0]);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(loop.fds[s[0]].kmask, 0);
    CHECK_OK(el_io_set(&loop, &b.io, 0));
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(b.calls, 0);
    close(s[1]);

    /* The numbers come back, and watching them works again. */
    nonblocking_pipe(q);
    CHECK(q[0] == p[0] || q[0] == s[0]);
    watcher_init(&c, q[0]);
    CHECK_OK(el_io_set(&loop, &c.io, EL_READABLE));
    CHECK_EQ(kernel_interest(q[0]), EL_READABLE);
    CHECK_EQ(write(q[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(c.calls, 1);
    CHECK_OK(el_io_set(&loop, &c.io, 0));
    close(q[0]);
    close(q[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* The asyncio pattern "remove_reader(); close(); accept() -> same number;
 * add_reader()" within one iteration.  The kernel dropped the old
 * registration at close, so the loop must not trust its kmask. */
void
test_io_fd_reused_same_iteration(void)
{
    el_loop_t loop;
    watcher a, b;
    int p[2], q[2];

    CHECK_OK(el_loop_init(&loop));
    spy_on(&loop);
    nonblocking_pipe(p);
    watcher_init(&a, p[0]);
    CHECK_OK(el_io_set(&loop, &a.io, EL_READABLE));
    CHECK_OK(el_io_set(&loop, &a.io, 0));
    close(p[0]);
    close(p[1]);
    nonblocking_pipe(q);
    if (q[0] != p[0]) {
        SKIP("fd number not reused");
    }
    CHECK_EQ(kernel_interest(q[0]), -1);
    int before = nmodify;
    watcher_init(&b, q[0]);
    CHECK_OK(el_io_set(&loop, &b.io, EL_READABLE));
    CHECK_EQ(nmodify, before + 1);
    CHECK_EQ(kernel_interest(q[0]), EL_READABLE);
    CHECK_EQ(write(q[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 1000000000), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(b.calls, 1);
    CHECK_EQ(a.calls, 0);
    CHECK_OK(el_io_set(&loop, &b.io, 0));
    close(q[0]);
    close(q[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Two readable pipes in one batch; whichever callback runs first closes
 * the other pipe and puts a fresh, idle pipe under the same fd number.
 * The other pipe's already collected event must reach nobody. */
static struct {
    watcher w[2];
    watcher fresh;
    int pipes[2][2];
    int fresh_pipe[2];
} swap;

static int
swap_cb(el_loop_t *loop, el_io_t *io, unsigned revents)
{
    watcher_record(loop, io, revents);
    if (swap.fresh_pipe[0] >= 0) {
        return 0;
    }
    int other = io == &swap.w[0].io;
    CHECK_OK(el_io_set(loop, &swap.w[other].io, 0));
    close(swap.pipes[other][0]);
    close(swap.pipes[other][1]);
    nonblocking_pipe(swap.fresh_pipe);
    if (swap.fresh_pipe[0] != swap.pipes[other][0]) {
        SKIP("fd number not reused");
    }
    watcher_init(&swap.fresh, swap.fresh_pipe[0]);
    CHECK_OK(el_io_set(loop, &swap.fresh.io, EL_READABLE));
    return 0;
}

void
test_io_stale_events_after_close(void)
{
    el_loop_t loop;

    CHECK_OK(el_loop_init(&loop));
    swap.fresh_pipe[0] = -1;
    for (int i = 0; i < 2; i++) {
        nonblocking_pipe(swap.pipes[i]);
        el_io_init(&swap.w[i].io, swap.pipes[i][0], swap_cb);
        CHECK_OK(el_io_set(&loop, &swap.w[i].io, EL_READABLE));
        CHECK_EQ(write(swap.pipes[i][1], "x", 1), 1);
    }
    CHECK_EQ(el_loop_wait(&loop, 0), 2);
    el_loop_dispatch(&loop);
    CHECK_EQ(swap.w[0].calls + swap.w[1].calls, 1);
    CHECK_EQ(swap.fresh.calls, 0);

    /* Afterwards, the fresh pipe works normally. */
    int first = swap.w[1].calls;
    CHECK_EQ(write(swap.fresh_pipe[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 2);
    el_loop_dispatch(&loop);
    CHECK_EQ(swap.fresh.calls, 1);
    CHECK_EQ(swap.w[first].calls, 2);

    CHECK_OK(el_io_set(&loop, &swap.w[first].io, 0));
    CHECK_OK(el_io_set(&loop, &swap.fresh.io, 0));
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* If dropping a registration fails, the kernel keeps reporting an fd that
 * nobody owns; dispatch must ignore it and queue the drop again. */
void
test_io_unowned_event_drops_registration(void)
{
    el_loop_t loop;
    watcher w;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    spy_on(&loop);
    nonblocking_pipe(p);
    watcher_init(&w, p[0]);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK_EQ(write(p[1], "x", 1), 1);
    fail_next_del = 1;
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    CHECK_EQ(fail_next_del, 0);
    CHECK_EQ(kernel_interest(p[0]), EL_READABLE);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(w.calls, 0);
    CHECK(loop.fds[p[0]].dirty);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(kernel_interest(p[0]), -1);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Detach then close while the file stays open through a dup: the
 * registration must already be gone, or epoll would report the orphaned
 * file forever (it can no longer be removed by fd number). */
void
test_io_detach_then_close_dup(void)
{
    el_loop_t loop;
    watcher w;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    nonblocking_pipe(p);
    int keep = dup(p[0]);
    CHECK(keep >= 0);
    watcher_init(&w, p[0]);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    close(p[0]);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    close(keep);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Callbacks that detach themselves, re-attach, and grow the fd table
 * (moving it in memory) while later events of the batch are pending. */
static struct {
    watcher a, b, big;
    int big_fd;
} chg;

static int
chg_cb(el_loop_t *loop, el_io_t *io, unsigned revents)
{
    watcher_record(loop, io, revents);
    if (io == &chg.big.io) {
        return 0;
    }
    if (chg.big.io.mask == 0) {
        chg.big_fd = dup2(io->fd, 1000);
        CHECK_OK(chg.big_fd);
        watcher_init(&chg.big, chg.big_fd);
        CHECK_OK(el_io_set(loop, &chg.big.io, EL_WRITABLE));
    }
    /* Detach and re-attach for the other direction. */
    CHECK_OK(el_io_set(loop, io, 0));
    CHECK_OK(el_io_set(loop, io, EL_WRITABLE));
    return 0;
}

void
test_io_callback_changes_watchers(void)
{
    el_loop_t loop;
    int s[2], t[2];
    struct rlimit rl;

    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur <= 1000) {
        SKIP("RLIMIT_NOFILE too low for fd 1000");
    }
    CHECK_OK(el_loop_init(&loop));
    nonblocking_socketpair(s);
    nonblocking_socketpair(t);
    el_io_init(&chg.a.io, s[0], chg_cb);
    el_io_init(&chg.b.io, t[0], chg_cb);
    CHECK_OK(el_io_set(&loop, &chg.a.io, EL_READABLE));
    CHECK_OK(el_io_set(&loop, &chg.b.io, EL_READABLE));
    CHECK_EQ(write(s[1], "x", 1), 1);
    CHECK_EQ(write(t[1], "x", 1), 1);
    CHECK(loop.nfds < 1000);
    CHECK_EQ(el_loop_wait(&loop, 0), 2);
    el_loop_dispatch(&loop);
    CHECK(loop.nfds > 1000);
    CHECK_EQ(chg.a.calls, 1);
    CHECK_EQ(chg.b.calls, 1);
    CHECK_EQ(chg.a.revents, EL_READABLE);
    CHECK_EQ(chg.big.calls, 0);

    /* Now all three want W only, and all are writable. */
    CHECK_EQ(el_loop_wait(&loop, 0), 3);
    el_loop_dispatch(&loop);
    CHECK_EQ(chg.a.calls, 2);
    CHECK_EQ(chg.a.revents, RW);
    CHECK_EQ(chg.big.calls, 1);
    CHECK_EQ(chg.big.revents, EL_WRITABLE);
    CHECK_EQ(el_loop_close(&loop), 0);
    CHECK_EQ(chg.a.io.mask, 0);
    CHECK_EQ(chg.big.io.mask, 0);
}

void
test_io_large_fd(void)
{
    el_loop_t loop;
    watcher w;
    struct rlimit rl;
    int p[2];

    /* Raise the soft limit as far as allowed (this process only). */
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur <= 4096) {
        SKIP("RLIMIT_NOFILE too low for a large fd");
    }
    int fd = rl.rlim_cur > 65538 ? 65537 : (int)rl.rlim_cur - 1;
    CHECK_OK(el_loop_init(&loop));
    nonblocking_pipe(p);
    CHECK_EQ(dup2(p[0], fd), fd);
    watcher_init(&w, fd);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK(loop.nfds > (size_t)fd);
    CHECK_EQ(loop.nfds & (loop.nfds - 1), 0);
    CHECK(el_io_lookup(&loop, fd) == &w.io);
    CHECK(el_io_lookup(&loop, fd - 1) == NULL);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(w.calls, 1);
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    close(fd);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(el_loop_close(&loop), 0);
}
