/*
 * heap.c -- the timer heap: an array-backed 4-ary min-heap of el_timer_t.
 *
 * Pure C, no Python.h.  The heap stores pointers to timers embedded in the
 * caller's objects and never frees them.  Invariant: for every linked timer
 * t, h->nodes[t->index].t == t; every unlinked timer has EL_TIMER_UNLINKED.
 * That back-pointer is what makes removal O(log n) instead of a scan.
 *
 * Cancelling (el_heap_cancel) is lazier still: the slot keeps its key and
 * loses its timer (a tombstone), which costs O(1) and touches nothing but
 * that slot.  Tombstones leave from the top as el_heap_min() meets them,
 * or all at once when they outnumber live timers and the loop calls
 * el_heap_tidy() between iterations, as asyncio's loop does with its
 * cancelled-timer count.  Waiting for the loop matters: compacting in the
 * middle of a mass cancel rewrote every surviving timer's index, a cache
 * miss each, over and over as the live half kept shrinking.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "el.h"

#define HEAP_MIN_CAP 64
#define ARITY 4

/* Orders by deadline, then by scheduling order, so equal deadlines fire
 * FIFO (asyncio's call_at guarantees this through heapq's tuple order). */
static inline int
entry_before(const el_heap_entry_t *a, const el_heap_entry_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Below this many tombstones the heap is not compacted: a few are
 * cheaper to pop from the top when they get there. */
#define COMPACT_MIN 64

static inline void
heap_place(el_heap_t *h, size_t i, el_heap_entry_t e)
{
    h->nodes[i] = e;
    if (e.t != NULL) {
        e.t->index = i;
    }
}

/* Moves the hole at i up until e fits, then puts e there.  Moving a hole
 * instead of swapping halves the stores on the hot push path. */
static void
sift_up(el_heap_t *h, size_t i, el_heap_entry_t e)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!entry_before(&e, &h->nodes[parent])) {
            break;
        }
        heap_place(h, i, h->nodes[parent]);
        i = parent;
    }
    heap_place(h, i, e);
}

static void
sift_down(el_heap_t *h, size_t i, el_heap_entry_t e)
{
    for (;;) {
        size_t first = ARITY * i + 1;
        if (first >= h->len) {
            break;
        }
        size_t end = first + ARITY < h->len ? first + ARITY : h->len;
        size_t best = first;
        for (size_t c = first + 1; c < end; c++) {
            if (entry_before(&h->nodes[c], &h->nodes[best])) {
                best = c;
            }
        }
        if (!entry_before(&h->nodes[best], &e)) {
            break;
        }
        heap_place(h, i, h->nodes[best]);
        i = best;
    }
    heap_place(h, i, e);
}

void
el_heap_init(el_heap_t *h)
{
    h->nodes = NULL;
    h->len = 0;
    h->cap = 0;
    h->ntomb = 0;
    h->next_seq = 0;
}

void
el_heap_free(el_heap_t *h)
{
    free(h->nodes);
    h->nodes = NULL;
    h->len = 0;
    h->cap = 0;
    h->ntomb = 0;
}

int
el_heap_push(el_heap_t *h, el_timer_t *t, int64_t when)
{
    assert(!el_timer_linked(t));
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
        if (h->cap > SIZE_MAX / 2 / sizeof(el_heap_entry_t)) {
            return -ENOMEM;
        }
        el_heap_entry_t *nodes = realloc(h->nodes, cap * sizeof(*nodes));
        if (nodes == NULL) {
            return -ENOMEM;
        }
        h->nodes = nodes;
        h->cap = cap;
    }
    t->when = when;
    h->len++;
    sift_up(h, h->len - 1, (el_heap_entry_t){when, h->next_seq++, t});
    return 0;
}

/* Removes slot i; the last slot refills the hole.  It may belong above
 * the hole (it came from another subtree) or below it, never both. */
static void
heap_remove_at(el_heap_t *h, size_t i)
{
    el_heap_entry_t last = h->nodes[--h->len];
    if (i == h->len) {
        return;
    }
    if (i > 0 && entry_before(&last, &h->nodes[(i - 1) / ARITY])) {
        sift_up(h, i, last);
    }
    else {
        sift_down(h, i, last);
    }
}

void
el_heap_remove(el_heap_t *h, el_timer_t *t)
{
    size_t i = t->index;

    assert(i < h->len && h->nodes[i].t == t);
    t->index = EL_TIMER_UNLINKED;
    heap_remove_at(h, i);
}

void
el_heap_cancel(el_heap_t *h, el_timer_t *t)
{
    size_t i = t->index;

    assert(i < h->len && h->nodes[i].t == t);
    t->index = EL_TIMER_UNLINKED;
    if (i == h->len - 1) {
        h->len--;       /* the last slot: nothing moves */
        return;
    }
    h->nodes[i].t = NULL;
    h->ntomb++;
}

void
el_heap_tidy(el_heap_t *h)
{
    if (h->ntomb >= COMPACT_MIN && h->ntomb * 2 > h->len) {
        el_heap_compact(h);
    }
}

void
el_heap_compact(el_heap_t *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->len; i++) {
        if (h->nodes[i].t != NULL) {
            h->nodes[n++] = h->nodes[i];
        }
    }
    h->len = n;
    h->ntomb = 0;
    /* Floyd's heapify, bottom up; heap_place() refreshes every index. */
    for (size_t i = n; i-- > 0;) {
        sift_down(h, i, h->nodes[i]);
    }
}

el_timer_t *
el_heap_min(el_heap_t *h)
{
    while (h->len > 0 && h->nodes[0].t == NULL) {
        h->ntomb--;
        heap_remove_at(h, 0);
    }
    return h->len ? h->nodes[0].t : NULL;
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
