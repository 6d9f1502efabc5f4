/*
 * test_ring.c -- the ready queue.
 */
#include <stdint.h>

#include "test.h"

static void *
item(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

void
test_ring_basic(void)
{
    el_ring_t r;

    el_ring_init(&r);
    CHECK_EQ(el_ring_len(&r), 0);
    CHECK_EQ(r.cap, 0);
    for (size_t i = 0; i < 10; i++) {
        CHECK_OK(el_ring_push(&r, item(i)));
    }
    CHECK_EQ(r.cap, 64);
    CHECK_EQ(el_ring_len(&r), 10);
    for (size_t i = 0; i < 10; i++) {
        CHECK(el_ring_at(&r, i) == item(i));
    }
    for (size_t i = 0; i < 10; i++) {
        CHECK(el_ring_pop(&r) == item(i));
    }
    CHECK_EQ(el_ring_len(&r), 0);
    /* The same pointer may be queued more than once. */
    CHECK_OK(el_ring_push(&r, item(7)));
    CHECK_OK(el_ring_push(&r, item(7)));
    CHECK(el_ring_pop(&r) == item(7));
    CHECK(el_ring_pop(&r) == item(7));
    el_ring_free(&r);
    CHECK(r.buf == NULL && r.cap == 0 && r.len == 0);
    el_ring_free(&r);
}

/* Growth must keep FIFO order wherever head is when the ring fills up,
 * including when the contents wrap around the end of the buffer. */
void
test_ring_fifo_across_growth(void)
{
    for (size_t offset = 0; offset < 64; offset++) {
        el_ring_t r;
        size_t pushed = 0, popped = 0;

        el_ring_init(&r);
        for (size_t i = 0; i < offset; i++) {
            CHECK_OK(el_ring_push(&r, item(pushed++)));
            CHECK(el_ring_pop(&r) == item(popped++));
        }
        /* Fill past several doublings, popping now and then. */
        while (pushed < offset + 1000) {
            size_t cap = r.cap;
            CHECK_OK(el_ring_push(&r, item(pushed++)));
            CHECK((r.cap & (r.cap - 1)) == 0);
            if (cap != r.cap) {
                for (size_t i = 0; i < el_ring_len(&r); i++) {
                    CHECK(el_ring_at(&r, i) == item(popped + i));
                }
            }
            if (pushed % 3 == 0) {
                CHECK(el_ring_pop(&r) == item(popped++));
            }
        }
        while (el_ring_len(&r)) {
            CHECK(el_ring_pop(&r) == item(popped++));
        }
        CHECK_EQ(popped, pushed);
        el_ring_free(&r);
    }
}

void
test_ring_million(void)
{
    enum { N = 1000000 };
    el_ring_t r;

    el_ring_init(&r);
    for (size_t i = 0; i < N; i++) {
        CHECK_OK(el_ring_push(&r, item(i)));
    }
    CHECK_EQ(el_ring_len(&r), N);
    CHECK_EQ(r.cap, 1 << 20);
    for (size_t i = 0; i < N; i++) {
        CHECK(el_ring_pop(&r) == item(i));
    }
    CHECK_EQ(el_ring_len(&r), 0);
    el_ring_free(&r);
}
