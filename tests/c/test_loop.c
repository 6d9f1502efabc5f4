/*
 * test_loop.c -- loop life cycle, the clock, wakeups and wait timeouts.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "test.h"

static int
count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL) {
        SKIP("no /proc/self/fd");
    }
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void
test_clock_monotonic(void)
{
    struct timespec ts;
    int64_t prev = el_now_ns();

    CHECK_OK(clock_gettime(CLOCK_MONOTONIC, &ts));
    int64_t ref = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    CHECK(prev > 0);
    CHECK(ref - prev >= 0 && ref - prev < 1000000000);
    for (int i = 0; i < 100000; i++) {
        int64_t now = el_now_ns();
        CHECK(now >= prev);
        prev = now;
    }
    sleep_ms(10);
    CHECK(el_now_ns() - prev >= 10000000);
}

void
test_loop_init_close(void)
{
    el_loop_t loop;
    int before = count_open_fds();

    CHECK_OK(el_loop_init(&loop));
    CHECK(strcmp(el_loop_backend_name(&loop), "epoll") == 0);
    CHECK(loop.wake_fd >= 0);
    CHECK(el_io_lookup(&loop, loop.wake_fd) == &loop.wake_io);
    CHECK_EQ(count_open_fds(), before + 2);     /* epoll + eventfd */
    CHECK(fcntl(loop.wake_fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(el_loop_close(&loop), 0);
    CHECK_EQ(count_open_fds(), before);
    CHECK(el_loop_backend_name(&loop) == NULL);
    /* Closing twice is harmless. */
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_loop_close_detaches(void)
{
    el_loop_t loop;
    watcher w;
    int p[2];

    CHECK_OK(el_loop_init(&loop));
    CHECK_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
    watcher_init(&w, p[0]);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    CHECK_EQ(el_loop_close(&loop), 0);
    CHECK_EQ(w.io.mask, 0);
    CHECK(loop.fds == NULL && loop.dirty_fds == NULL);
    close(p[0]);
    close(p[1]);
}

/* ---- wakeup ------------------------------------------------------------- */

static void *
wake_later(void *arg)
{
    sleep_ms(50);
    el_loop_wakeup(arg);
    return NULL;
}

void
test_wakeup_from_thread(void)
{
    el_loop_t loop;
    pthread_t th;

    CHECK_OK(el_loop_init(&loop));
    int64_t t0 = el_now_ns();
    CHECK_EQ(pthread_create(&th, NULL, wake_later, &loop), 0);
    CHECK_EQ(el_loop_wait(&loop, -1), 1);
    CHECK(el_now_ns() - t0 >= 40000000);
    CHECK_EQ(atomic_load(&loop.wake_pending), 1);
    el_loop_dispatch(&loop);
    CHECK_EQ(atomic_load(&loop.wake_pending), 0);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_wakeup_coalesces(void)
{
    el_loop_t loop;
    uint64_t count;

    CHECK_OK(el_loop_init(&loop));
    for (int i = 0; i < 1000; i++) {
        el_loop_wakeup(&loop);
    }
    /* One write(2) in all: the eventfd counter says how many. */
    CHECK_EQ(read(loop.wake_fd, &count, sizeof(count)), sizeof(count));
    CHECK_EQ(count, 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 0);

    /* Once the loop has drained it, the next wakeup writes again. */
    atomic_store(&loop.wake_pending, 0);
    for (int round = 0; round < 3; round++) {
        el_loop_wakeup(&loop);
        el_loop_wakeup(&loop);
        CHECK_EQ(el_loop_wait(&loop, 0), 1);
        el_loop_dispatch(&loop);
        CHECK_EQ(atomic_load(&loop.wake_pending), 0);
        CHECK_EQ(el_loop_wait(&loop, 0), 0);
    }
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Producers post work then wake the loop, as call_soon_threadsafe does.
 * A lost wakeup leaves the loop blocked forever (the alarm fails us). */
enum { PRODUCERS = 4, POSTS = 20000 };

static struct {
    el_loop_t loop;
    atomic_int posted;
} stress;

static void *
producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < POSTS; i++) {
        atomic_fetch_add(&stress.posted, 1);
        el_loop_wakeup(&stress.loop);
        if (i % 1000 == 0) {
            sleep_ms(1);
        }
    }
    return NULL;
}

void
test_wakeup_stress(void)
{
    pthread_t th[PRODUCERS];
    long iterations = 0;

    CHECK_OK(el_loop_init(&stress.loop));
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(pthread_create(&th[i], NULL, producer, NULL), 0);
    }
    /* The binding's order: wait, dispatch, then look at posted work. */
    while (atomic_load(&stress.posted) < PRODUCERS * POSTS) {
        int n = el_loop_wait(&stress.loop, -1);
        CHECK(n >= 0);
        el_loop_dispatch(&stress.loop);
        iterations++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    }
    CHECK(iterations < PRODUCERS * POSTS);
    CHECK_EQ(el_loop_close(&stress.loop), 0);
}

static el_loop_t *signal_loop;

static void
wake_from_handler(int sig)
{
    (void)sig;
    el_loop_wakeup(signal_loop);
}

void
test_wakeup_preserves_errno(void)
{
    el_loop_t loop;
    struct sigaction sa = {.sa_handler = wake_from_handler};

    CHECK_OK(el_loop_init(&loop));
    signal_loop = &loop;
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    errno = EDOM;
    raise(SIGUSR1);
    CHECK_EQ(errno, EDOM);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    el_loop_dispatch(&loop);
    /* Even when write(2) fails. */
    int wake_fd = loop.wake_fd;
    loop.wake_fd = -1;
    el_loop_wakeup(&loop);
    CHECK_EQ(errno, EDOM);
    loop.wake_fd = wake_fd;
    atomic_store(&loop.wake_pending, 0);
    CHECK_EQ(el_loop_close(&loop), 0);
}

void
test_wakeup_loops_independent(void)
{
    el_loop_t a, b;

    CHECK_OK(el_loop_init(&a));
    CHECK_OK(el_loop_init(&b));
    el_loop_wakeup(&a);
    CHECK_EQ(el_loop_wait(&b, 0), 0);
    CHECK_EQ(el_loop_wait(&a, 0), 1);
    el_loop_dispatch(&a);
    CHECK_EQ(el_loop_close(&a), 0);
    el_loop_wakeup(&b);
    CHECK_EQ(el_loop_wait(&b, 0), 1);
    CHECK_EQ(el_loop_close(&b), 0);
}

/* ---- wait --------------------------------------------------------------- */

void
test_wait_timeout_rounding(void)
{
    static const int64_t waits[] = {1, 999999, 1000000, 1000001, 2500000};
    el_loop_t loop;

    CHECK_EQ(el__timeout_ms(-1), -1);
    CHECK_EQ(el__timeout_ms(-5), -1);
    CHECK_EQ(el__timeout_ms(INT64_MIN), -1);
    CHECK_EQ(el__timeout_ms(0), 0);
    CHECK_EQ(el__timeout_ms(1), 1);
    CHECK_EQ(el__timeout_ms(999999), 1);
    CHECK_EQ(el__timeout_ms(1000000), 1);
    CHECK_EQ(el__timeout_ms(1000001), 2);
    CHECK_EQ(el__timeout_ms((int64_t)INT_MAX * 1000000), INT_MAX);
    CHECK_EQ(el__timeout_ms((int64_t)INT_MAX * 1000000 + 1), INT_MAX);
    CHECK_EQ(el__timeout_ms(INT64_MAX), INT_MAX);

    /* Never return before the timeout: the caller would spin on 0 ms
     * polls until its timer is due. */
    CHECK_OK(el_loop_init(&loop));
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        int64_t t0 = el_now_ns();
        CHECK_EQ(el_loop_wait(&loop, waits[i]), 0);
        CHECK(el_now_ns() - t0 >= waits[i]);
    }
    CHECK_EQ(el_loop_close(&loop), 0);
}

static void
ignore_signal(int sig)
{
    (void)sig;
}

static atomic_int eintr_done;

static void *
interrupt_main(void *arg)
{
    pthread_t main_thread = *(pthread_t *)arg;

    /* Repeat in case the first signal lands before the wait starts. */
    while (!atomic_load(&eintr_done)) {
        pthread_kill(main_thread, SIGUSR1);
        sleep_ms(20);
    }
    return NULL;
}

void
test_wait_eintr(void)
{
    el_loop_t loop;
    pthread_t self = pthread_self(), th;
    struct sigaction sa = {.sa_handler = ignore_signal};

    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    CHECK_OK(el_loop_init(&loop));
    CHECK_EQ(pthread_create(&th, NULL, interrupt_main, &self), 0);
    /* A signal handler ran: report it, do not retry. */
    CHECK_EQ(el_loop_wait(&loop, 5000000000), -EINTR);
    atomic_store(&eintr_done, 1);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(el_loop_close(&loop), 0);
}

/* Fails on the first call; later calls succeed. */
static int nfail_calls;

static int
fail_once(el_loop_t *loop, el_io_t *io, unsigned revents)
{
    (void)loop;
    (void)io;
    (void)revents;
    return nfail_calls++ == 0 ? -EIO : 0;
}

void
test_loop_dispatch_stops_at_failure(void)
{
    el_loop_t loop;
    int p[2], q[2];
    el_io_t a, b;

    CHECK_OK(el_loop_init(&loop));
    CHECK_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
    CHECK_OK(pipe2(q, O_NONBLOCK | O_CLOEXEC));
    el_io_init(&a, p[0], fail_once);
    el_io_init(&b, q[0], fail_once);
    CHECK_OK(el_io_set(&loop, &a, EL_READABLE));
    CHECK_OK(el_io_set(&loop, &b, EL_READABLE));
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(write(q[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 2);
    /* The failure is returned and the other event is not delivered... */
    CHECK_EQ(el_loop_dispatch(&loop), -EIO);
    CHECK_EQ(nfail_calls, 1);
    CHECK_EQ(el_loop_dispatch(&loop), 0);
    CHECK_EQ(nfail_calls, 1);
    /* ...but level-triggered, the next wait reports both again. */
    CHECK_EQ(el_loop_wait(&loop, 0), 2);
    CHECK_EQ(el_loop_dispatch(&loop), 0);
    CHECK_EQ(nfail_calls, 3);
    CHECK_EQ(el_loop_close(&loop), 0);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* The child of a fork abandons its copy of the loop: detaching and closing
 * there leaves the parent's registrations and wakeup working. */
void
test_loop_abandon_after_fork(void)
{
    el_loop_t loop;
    int p[2];
    watcher w;

    CHECK_OK(el_loop_init(&loop));
    CHECK_OK(pipe2(p, O_NONBLOCK | O_CLOEXEC));
    watcher_init(&w, p[0]);
    CHECK_OK(el_io_set(&loop, &w.io, EL_READABLE));
    int before = count_open_fds();

    pid_t pid = fork();
    CHECK_OK(pid);
    if (pid == 0) {
        el_loop_abandon(&loop);
        /* Both fds of the loop are gone in the child. */
        CHECK_EQ(count_open_fds(), before - 2);
        el_loop_wakeup(&loop);                      /* a no-op now */
        CHECK_EQ(el_io_set(&loop, &w.io, EL_READABLE | EL_WRITABLE),
                 -EBADF);
        CHECK_OK(el_io_set(&loop, &w.io, 0));       /* no DEL reaches */
        el_loop_abandon(&loop);                     /* idempotent */
        CHECK_EQ(el_loop_close(&loop), 0);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);

    /* The parent's registration survived, and so did its wakeup. */
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(el_loop_wait(&loop, 0), 1);
    CHECK_EQ(el_loop_dispatch(&loop), 0);
    CHECK_EQ(w.calls, 1);
    el_loop_wakeup(&loop);
    CHECK_EQ(el_loop_wait(&loop, 0), 2);
    CHECK_EQ(el_loop_dispatch(&loop), 0);
    CHECK_EQ(atomic_load(&loop.wake_pending), 0);
    CHECK_OK(el_io_set(&loop, &w.io, 0));
    CHECK_EQ(el_loop_close(&loop), 0);
    close(p[0]);
    close(p[1]);
}
