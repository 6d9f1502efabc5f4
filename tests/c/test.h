/*
 * test.h -- a tiny test harness for the C core.
 *
 * Every test is a `void test_NAME(void)` listed in TEST_LIST below.  The
 * runner forks each one into its own process with an alarm, so a crash, a
 * sanitizer report or a hang fails that test alone.  A failed check prints
 * where and exits 1; exit 77 means skip (the automake convention).
 */
#ifndef EL_TEST_H
#define EL_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "el.h"

#define TEST_LIST(X)                                                        \
    X(ring_basic)                                                           \
    X(ring_fifo_across_growth)                                              \
    X(ring_million)                                                         \
    X(heap_order)                                                           \
    X(heap_ties_fifo)                                                       \
    X(heap_remove_middle)                                                   \
    X(heap_random_vs_reference)                                             \
    X(heap_million)                                                         \
    X(heap_cancel_compacts)                                                 \
    X(clock_monotonic)                                                      \
    X(loop_init_close)                                                      \
    X(loop_close_detaches)                                                  \
    X(loop_dispatch_stops_at_failure)                                       \
    X(loop_abandon_after_fork)                                              \
    X(io_pipe_readable)                                                     \
    X(io_pipe_writable)                                                     \
    X(io_hangup_and_error)                                                  \
    X(io_narrowing_is_lazy)                                                 \
    X(io_poll_split)                                                        \
    X(io_eexist)                                                            \
    X(io_eperm_regular_file)                                                \
    X(io_bad_args)                                                          \
    X(io_fd_closed_while_watched)                                           \
    X(io_fd_reused_same_iteration)                                          \
    X(io_stale_events_after_close)                                          \
    X(io_unowned_event_drops_registration)                                  \
    X(io_detach_then_close_dup)                                             \
    X(io_callback_changes_watchers)                                         \
    X(io_large_fd)                                                          \
    X(wakeup_from_thread)                                                   \
    X(wakeup_coalesces)                                                     \
    X(wakeup_stress)                                                        \
    X(wakeup_preserves_errno)                                               \
    X(wakeup_loops_independent)                                             \
    X(wait_timeout_rounding)                                                \
    X(wait_eintr)                                                           \
    X(stream_read_and_eof)                                                  \
    X(stream_callback_failure)                                              \
    X(stream_one_read_per_event)                                            \
    X(stream_alloc_declined)                                                \
    X(stream_econnreset)                                                    \
    X(stream_writev_batching)                                               \
    X(stream_queue_storage)                                                 \
    X(stream_eagain)                                                        \
    X(stream_partial_writes)                                                \
    X(stream_epipe)                                                         \
    X(stream_write_error_async)                                             \
    X(stream_shutdown_after_drain)                                          \
    X(stream_close_with_pending_data)                                       \
    X(stream_notify_defers)                                                 \
    X(stream_pipe)                                                          \
    X(stream_closed_loop)                                                   \
    X(stream_stale_fd)                                                      \
    X(stream_write_reserve)                                                 \
    X(stream_read_pause_is_lazy)

#define TEST_DECLARE(name) void test_##name(void);
TEST_LIST(TEST_DECLARE)
#undef TEST_DECLARE

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define CHECK_EQ(a, b)                                                      \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_) {                                                     \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
                    __FILE__, __LINE__, #a, #b, a_, b_);                    \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* For calls returning 0 or -errno (and for syscalls returning -1). */
#define CHECK_OK(expr)                                                      \
    do {                                                                    \
        long long r_ = (long long)(expr);                                   \
        if (r_ < 0) {                                                       \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__,   \
                    #expr, strerror(r_ == -1 ? errno : (int)-r_));          \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define SKIP(why)                                                           \
    do {                                                                    \
        printf("skip: %s\n", why);                                          \
        exit(77);                                                           \
    } while (0)

/* A watcher that records what it was told. */
typedef struct {
    el_io_t io;
    int calls;
    unsigned revents;   /* union over all calls */
} watcher;

static inline int
watcher_record(el_loop_t *loop, el_io_t *io, unsigned revents)
{
    watcher *w = el_container_of(io, watcher, io);

    (void)loop;
    w->calls++;
    w->revents |= revents;
    return 0;
}

static inline void
watcher_init(watcher *w, int fd)
{
    el_io_init(&w->io, fd, watcher_record);
    w->calls = 0;
    w->revents = 0;
}

#endif /* EL_TEST_H */
