/*
 * ring.c -- the ready queue: a growable FIFO ring of opaque pointers.
 *
 * Pure C, no Python.h.  The ring never owns what it stores.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "el.h"

/* Big enough that a loop iteration of ordinary size never reallocates. */
#define RING_MIN_CAP 64

void
el_ring_init(el_ring_t *r)
{
    r->buf = NULL;
    r->cap = 0;
    r->head = 0;
    r->len = 0;
}

void
el_ring_free(el_ring_t *r)
{
    free(r->buf);
    el_ring_init(r);
}

/* Doubles a full ring.  The capacity stays a power of two so that the
 * inline accessors in el.h can wrap with a mask instead of a division. */
static int
ring_grow(el_ring_t *r)
{
    size_t cap = r->cap ? r->cap * 2 : RING_MIN_CAP;

    if (r->cap > SIZE_MAX / 2 / sizeof(void *)) {
        return -ENOMEM;
    }
    void **buf = realloc(r->buf, cap * sizeof(void *));
    if (buf == NULL) {
        return -ENOMEM;
    }
    /* The ring is full, so the newest items are the ones that wrapped to
     * [0, head).  Moving them to just past the old end makes the whole
     * sequence contiguous from head again, preserving FIFO order. */
    memcpy(buf + r->cap, buf, r->head * sizeof(void *));
    r->buf = buf;
    r->cap = cap;
    return 0;
}

int
el_ring_push(el_ring_t *r, void *item)
{
    if (r->len == r->cap) {
        int err = ring_grow(r);
        if (err < 0) {
            return err;
        }
    }
    r->buf[(r->head + r->len) & (r->cap - 1)] = item;
    r->len++;
    return 0;
}
