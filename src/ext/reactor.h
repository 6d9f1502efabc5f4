/*
 * reactor.h -- what the loop's dispatch knows of the objects it runs
 * besides Handles: a small interface, so that a new kind of transport adds
 * no edge into loop.c or loop_io.c (nginx's and Redis's dispatchers know
 * their event sources the same way, through a table of function pointers).
 *
 * An object that wants to be run by the loop without a Handle embeds an
 * eloop_item and points it at a static eloop_item_ops of its kind:
 *   - a *ready entry*: loop_push_ready_item() queues the item on the ready
 *     ring, among the Handles, in asyncio's order; when its turn comes the
 *     loop calls ops->run(owner).  (A readable transport queued this way
 *     costs no Handle and no bound method per read.)
 *   - a *flush entry*: loop_push_flush() links it on loop->flushq; after
 *     the callback phase of the iteration the loop calls ops->flush(owner)
 *     (coalesced writes, see stream_transport.c).
 * Each link holds one strong reference to the owner (the ownership rule of
 * state.h), which Loop_traverse visits and loop close drops.
 */
#ifndef ELOOP_REACTOR_H
#define ELOOP_REACTOR_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eloop_item_ops {
    Py_ssize_t offset;          /* of the eloop_item within its owner */
    /* Its turn on the ready ring came: 0, or -1 with an exception that
     * stops the iteration (as a failing Handle's SystemExit does). */
    int (*run)(PyObject *owner);
    /* Send what the owner queued during this iteration; -1 with an
     * exception to raise from the iteration. */
    int (*flush)(PyObject *owner);
} eloop_item_ops;

typedef struct {
    const eloop_item_ops *ops;
    char flush_queued;          /* on loop->flushq (the loop's flag) */
} eloop_item;

static inline void
eloop_item_init(eloop_item *it, const eloop_item_ops *ops)
{
    it->ops = ops;
    it->flush_queued = 0;
}

static inline PyObject *
eloop_item_owner(eloop_item *it)
{
    return (PyObject *)((char *)it - it->ops->offset);
}

/* The ready ring holds Handles and tagged items, told apart by the low bit
 * of the pointer (both are at least 8-byte aligned). */
#define READY_TAG_ITEM ((uintptr_t)1)

static inline int
ready_is_item(const void *entry)
{
    return ((uintptr_t)entry & READY_TAG_ITEM) != 0;
}

static inline eloop_item *
ready_item(void *entry)
{
    return (eloop_item *)((uintptr_t)entry & ~READY_TAG_ITEM);
}

/* The object an entry of the ready ring holds a reference to. */
static inline PyObject *
ready_owner(void *entry)
{
    return ready_is_item(entry) ? eloop_item_owner(ready_item(entry))
                                : (PyObject *)entry;
}

#endif /* ELOOP_REACTOR_H */
