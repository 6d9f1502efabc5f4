/*
 * test_heap.c -- the timer heap.
 */
#include <stdint.h>

#include "test.h"

/* xorshift64: deterministic, so a failure reproduces. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* (when, seq) order; the heap keeps seq only in its slots, so the tests
 * pass the push order they know. */
static int
before(const el_timer_t *a, uint64_t sa, const el_timer_t *b, uint64_t sb)
{
    return a->when < b->when || (a->when == b->when && sa < sb);
}

/* For timers pushed in array order: their push order is their address. */
static int
before_in_array(const el_timer_t *a, const el_timer_t *b)
{
    return before(a, (uint64_t)(uintptr_t)a, b, (uint64_t)(uintptr_t)b);
}

static int
entry_before(const el_heap_entry_t *a, const el_heap_entry_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Checks the heap property, that every live node knows its index and that
 * the tombstone count is right. */
static void
check_heap(const el_heap_t *h)
{
    size_t tombs = 0;
    CHECK(h->len <= h->cap);
    for (size_t i = 0; i < h->len; i++) {
        if (h->nodes[i].t == NULL) {
            tombs++;
        }
        else {
            CHECK_EQ(h->nodes[i].t->index, i);
            CHECK_EQ(h->nodes[i].when, h->nodes[i].t->when);
        }
        if (i > 0) {
            CHECK(!entry_before(&h->nodes[i], &h->nodes[(i - 1) / 4]));
        }
    }
    CHECK_EQ(tombs, h->ntomb);
}

void
test_heap_order(void)
{
    static const int64_t whens[] = {50, 10, 40, -5, 30, 20, 0, 60};
    enum { N = sizeof(whens) / sizeof(whens[0]) };
    el_timer_t t[N];
    el_heap_t h;

    el_heap_init(&h);
    CHECK(el_heap_min(&h) == NULL);
    CHECK(el_heap_pop(&h) == NULL);
    for (int i = 0; i < N; i++) {
        el_timer_init(&t[i]);
        CHECK(!el_timer_linked(&t[i]));
        CHECK_OK(el_heap_push(&h, &t[i], whens[i]));
        CHECK(el_timer_linked(&t[i]));
        CHECK_EQ(t[i].when, whens[i]);
        check_heap(&h);
    }
    int64_t prev = INT64_MIN;
    for (int i = 0; i < N; i++) {
        el_timer_t *m = el_heap_pop(&h);
        CHECK(m != NULL);
        CHECK(m->when >= prev);
        CHECK_EQ(m->index, EL_TIMER_UNLINKED);
        prev = m->when;
        check_heap(&h);
    }
    CHECK(el_heap_pop(&h) == NULL);
    el_heap_free(&h);
}

void
test_heap_ties_fifo(void)
{
    enum { N = 1000 };
    static el_timer_t t[N];
    el_heap_t h;

    el_heap_init(&h);
    /* Equal deadlines, interleaved with others, come out in push order. */
    for (int i = 0; i < N; i++) {
        el_timer_init(&t[i]);
        CHECK_OK(el_heap_push(&h, &t[i], i % 2 ? 7 : 3));
        CHECK_EQ(h.nodes[t[i].index].seq, i);
    }
    for (int k = 0; k < 2; k++) {
        for (int i = k; i < N; i += 2) {
            CHECK(el_heap_pop(&h) == &t[i]);
        }
    }
    /* A re-armed timer goes behind timers already waiting for its time. */
    for (int i = 0; i < 3; i++) {
        CHECK_OK(el_heap_push(&h, &t[i], 1));
    }
    el_heap_remove(&h, &t[0]);
    CHECK_OK(el_heap_push(&h, &t[0], 1));
    CHECK(el_heap_pop(&h) == &t[1]);
    CHECK(el_heap_pop(&h) == &t[2]);
    CHECK(el_heap_pop(&h) == &t[0]);
    el_heap_free(&h);
}

void
test_heap_remove_middle(void)
{
    enum { N = 257 };
    static el_timer_t t[N];
    el_heap_t h;

    el_heap_init(&h);
    for (int i = 0; i < N; i++) {
        el_timer_init(&t[i]);
        CHECK_OK(el_heap_push(&h, &t[i], (i * 37) % N));
    }
    /* Remove every third timer, from wherever it sits. */
    for (int i = 0; i < N; i += 3) {
        size_t len = h.len;
        el_heap_remove(&h, &t[i]);
        CHECK_EQ(h.len, len - 1);
        CHECK(!el_timer_linked(&t[i]));
        check_heap(&h);
    }
    /* Removing the last leaf and the root are the edge cases. */
    el_timer_t *last = h.nodes[h.len - 1].t;
    el_heap_remove(&h, last);
    CHECK(!el_timer_linked(last));
    el_timer_t *root = el_heap_min(&h);
    el_heap_remove(&h, root);
    CHECK(!el_timer_linked(root));
    check_heap(&h);
    int64_t prev = INT64_MIN;
    el_timer_t *m;
    while ((m = el_heap_pop(&h)) != NULL) {
        CHECK(m != root && m != last && (m - t) % 3 != 0);
        CHECK(m->when >= prev);
        prev = m->when;
    }
    el_heap_free(&h);
}

/* Random push/remove/cancel/pop against a brute-force reference: the heap
 * must always return the linked timer that is least by (when, seq). */
void
test_heap_random_vs_reference(void)
{
    enum { N = 500, OPS = 100000 };
    static el_timer_t t[N];
    static uint64_t seq[N];     /* push order of each linked timer */
    uint64_t seed = 0x9e3779b97f4a7c15u, next_seq = 0;
    size_t linked = 0;
    el_heap_t h;

    el_heap_init(&h);
    for (int i = 0; i < N; i++) {
        el_timer_init(&t[i]);
    }
    for (int op = 0; op < OPS; op++) {
        el_timer_t *x = &t[rnd(&seed) % N];
        switch (rnd(&seed) % 4) {
        case 0:
            if (!el_timer_linked(x)) {
                /* A narrow range of deadlines makes ties common. */
                CHECK_OK(el_heap_push(&h, x, (int64_t)(rnd(&seed) % 64)));
                seq[x - t] = next_seq++;
                linked++;
            }
            break;
        case 1:
            if (el_timer_linked(x)) {
                el_heap_remove(&h, x);
                CHECK(!el_timer_linked(x));
                linked--;
            }
            break;
        case 2:
            if (el_timer_linked(x)) {
                el_heap_cancel(&h, x);
                CHECK(!el_timer_linked(x));
                linked--;
            }
            break;
        default: {
            el_timer_t *want = NULL;
            for (int i = 0; i < N; i++) {
                if (el_timer_linked(&t[i])
                    && (want == NULL
                        || before(&t[i], seq[i], want, seq[want - t]))) {
                    want = &t[i];
                }
            }
            CHECK(el_heap_pop(&h) == want);
            if (want != NULL) {
                CHECK(!el_timer_linked(want));
                linked--;
            }
            break;
        }
        }
        CHECK_EQ(el_heap_count(&h), linked);
        if (op % 16 == 0) {
            check_heap(&h);
        }
    }
    check_heap(&h);
    el_heap_free(&h);
}

void
test_heap_million(void)
{
    enum { N = 1000000 };
    el_timer_t *t = malloc(N * sizeof(*t));
    uint64_t seed = 42;
    el_heap_t h;

    CHECK(t != NULL);
    el_heap_init(&h);
    for (size_t i = 0; i < N; i++) {
        el_timer_init(&t[i]);
        CHECK_OK(el_heap_push(&h, &t[i], (int64_t)(rnd(&seed) % 100000)));
    }
    CHECK_EQ(h.len, N);
    check_heap(&h);
    /* Cancel half of them, as a server timing out idle connections. */
    for (size_t i = 0; i < N; i += 2) {
        el_heap_remove(&h, &t[i]);
    }
    check_heap(&h);
    el_timer_t *prev = NULL, *m;
    size_t n = 0;
    while ((m = el_heap_pop(&h)) != NULL) {
        CHECK((m - t) % 2 == 1);
        CHECK(prev == NULL || before_in_array(prev, m));
        CHECK_EQ(m->index, EL_TIMER_UNLINKED);
        prev = m;
        n++;
    }
    CHECK_EQ(n, N / 2);
    el_heap_free(&h);
    free(t);
}

/* Cancelling most of a large heap, then a tidy-up, compacts it: the
 * tombstones go, the survivors keep their order, and nothing cancelled
 * comes back. */
void
test_heap_cancel_compacts(void)
{
    enum { N = 10000 };
    static el_timer_t t[N];
    el_heap_t h;

    el_heap_init(&h);
    for (size_t i = 0; i < N; i++) {
        el_timer_init(&t[i]);
        CHECK_OK(el_heap_push(&h, &t[i], (int64_t)(i % 100)));
    }
    /* FIFO cancel of all but every tenth: the worst order for an eager
     * heap (each cancel removes the root's neighbourhood). */
    for (size_t i = 0; i < N; i++) {
        if (i % 10 != 0) {
            el_heap_cancel(&h, &t[i]);
            CHECK(!el_timer_linked(&t[i]));
        }
    }
    check_heap(&h);
    CHECK_EQ(el_heap_count(&h), N / 10);
    CHECK(h.len > N / 2);       /* the tombstones wait for the tidy-up */
    el_heap_tidy(&h);
    CHECK_EQ(h.len, N / 10);
    CHECK_EQ(h.ntomb, 0);
    check_heap(&h);
    el_heap_tidy(&h);           /* nothing to do: a no-op */
    CHECK_EQ(h.len, N / 10);
    el_timer_t *prev = NULL, *m;
    size_t n = 0;
    while ((m = el_heap_pop(&h)) != NULL) {
        CHECK((m - t) % 10 == 0);
        CHECK(prev == NULL || before_in_array(prev, m));
        prev = m;
        n++;
        if (n % 64 == 0) {
            check_heap(&h);
        }
    }
    CHECK_EQ(n, N / 10);
    CHECK_EQ(h.len, 0);
    CHECK_EQ(h.ntomb, 0);
    el_heap_free(&h);
}
