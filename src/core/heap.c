/*
 * heap.c -- the timer heap: an array-backed binary min-heap of el_timer_t.
 *
 * Pure C, no Python.h.  The heap stores pointers to timers embedded in the
 * caller's objects and never frees them.  Invariant: for every linked timer
 * t, h->nodes[t->index] == t; every unlinked timer has EL_TIMER_UNLINKED.
 * That back-pointer is what makes cancel O(log n) instead of a scan.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "el.h"

#define HEAP_MIN_CAP 64

/* Orders by deadline, then by scheduling order, so equal deadlines fire
 * FIFO (asyncio's call_at guarantees this through heapq's tuple order). */
static inline int
timer_before(const el_timer_t *a, const el_timer_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void
heap_place(el_heap_t *h, size_t i, el_timer_t *t)
{
    h->nodes[i] = t;
    t->index = i;
}

/* Moves the hole at i up until t fits, then puts t there.  Moving a hole
 * instead of swapping halves the stores on the hot push path. */
static void
sift_up(el_heap_t *h, size_t i, el_timer_t *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, h->nodes[parent])) {
            break;
        }
        heap_place(h, i, h->nodes[parent]);
        i = parent;
    }
    heap_place(h, i, t);
}

static void
sift_down(el_heap_t *h, size_t i, el_timer_t *t)
{
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len) {
            break;
        }
        if (child + 1 < h->len
            && timer_before(h->nodes[child + 1], h->nodes[child])) {
            child++;
        }
        if (!timer_before(h->nodes[child], t)) {
            break;
        }
        heap_place(h, i, h->nodes[child]);
        i = child;
    }
    heap_place(h, i, t);
}

void
el_heap_init(el_heap_t *h)
{
    h->nodes = NULL;
    h->len = 0;
    h->cap = 0;
    h->next_seq = 0;
}

void
el_heap_free(el_heap_t *h)
{
    free(h->nodes);
    h->nodes = NULL;
    h->len = 0;
    h->cap = 0;
}

int
el_heap_push(el_heap_t *h, el_timer_t *t, int64_t when)
{
    assert(!el_timer_linked(t));
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
        if (h->cap > SIZE_MAX / 2 / sizeof(el_timer_t *)) {
            return -ENOMEM;
        }
        el_timer_t **nodes = realloc(h->nodes, cap * sizeof(el_timer_t *));
        if (nodes == NULL) {
            return -ENOMEM;
        }
        h->nodes = nodes;
        h->cap = cap;
    }
    t->when = when;
    t->seq = h->next_seq++;
    h->len++;
    sift_up(h, h->len - 1, t);
    return 0;
}

void
el_heap_remove(el_heap_t *h, el_timer_t *t)
{
    size_t i = t->index;

    assert(i < h->len && h->nodes[i] == t);
    el_timer_t *last = h->nodes[--h->len];
    t->index = EL_TIMER_UNLINKED;
    if (last == t) {
        return;
    }
    /* The last leaf refills the hole.  It may belong above the hole (it
     * came from another subtree) or below it, never both. */
    if (i > 0 && timer_before(last, h->nodes[(i - 1) / 2])) {
        sift_up(h, i, last);
    }
    else {
        sift_down(h, i, last);
    }
}

el_timer_t *
el_heap_pop(el_heap_t *h)
{
    el_timer_t *t = el_heap_min(h);

    if (t != NULL) {
        el_heap_remove(h, t);
    }
    return t;
}
