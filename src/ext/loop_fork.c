/*
 * loop_fork.c -- what a fork() child does with the loops it inherits.
 *
 * A child gets a copy of every Loop, but the kernel objects behind them are
 * shared with the parent: the epoll set (a DEL from the child would remove
 * the parent's registration), the eventfd (a wakeup from the child would
 * wake the parent) and the signal socketpair (the child's signals would be
 * read by the parent's loop).  So the child gives its copies up at once,
 * from an os.register_at_fork(after_in_child=...) hook, and an inherited
 * loop refuses to run there: a child builds a loop of its own.  close() of
 * an inherited loop is allowed and releases only the child's resources.
 *
 * The same hook does what asyncio's own does from 3.12 on (events.py,
 * on_fork): forget the running loop and the signal wakeup fd; on 3.11 it
 * is the only one that does.
 */
#include "state.h"

#include <unistd.h>

void
loop_live_link(LoopObject *self)
{
    eloop_state *st = self->st;
    self->live_next = st->live_loops;
    if (st->live_loops != NULL) {
        st->live_loops->live_pprev = &self->live_next;
    }
    self->live_pprev = &st->live_loops;
    st->live_loops = self;
}

void
loop_live_unlink(LoopObject *self)
{
    if (self->live_pprev == NULL) {
        return;
    }
    *self->live_pprev = self->live_next;
    if (self->live_next != NULL) {
        self->live_next->live_pprev = self->live_pprev;
    }
    self->live_next = NULL;
    self->live_pprev = NULL;
}

int
loop_check_forked(LoopObject *self)
{
    if (self->forked) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot run an event loop inherited across fork(): "
                        "it belongs to the parent process; create a new "
                        "loop in the child");
        return -1;
    }
    return 0;
}

/* Gives up the loop's share of the parent's kernel objects.  Touches no
 * Python object: the loop's handles, transports and signal handler
 * records stay for close() or the GC to drop. */
static int
loop_forget_parent(LoopObject *self)
{
    int had_signals = self->sig_wfd >= 0;
    self->forked = 1;
    if (self->core_ready) {
        el_loop_abandon(&self->core);
    }
    loop_child_forget(self);
    if (self->sig_rfd >= 0) {
        if (self->core_ready) {
            el_io_set(&self->core, &self->sig_io, 0);  /* forgets only */
        }
        close(self->sig_rfd);
        close(self->sig_wfd);
        self->sig_rfd = self->sig_wfd = -1;
    }
    return had_signals;
}

/* The after_in_child hook (module.c registers it). */
PyObject *
eloop_after_fork_child(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    eloop_state *st = PyModule_GetState(mod);
    int had_signals = 0;
    if (st == NULL || st->events == NULL) {
        Py_RETURN_NONE;     /* the module is being torn down */
    }
    for (LoopObject *l = st->live_loops; l != NULL; l = l->live_next) {
        if (!l->closed && !l->forked) {
            had_signals |= loop_forget_parent(l);
        }
    }
    if (discard(PyObject_CallMethod(st->events, "_set_running_loop", "O",
                                    Py_None)) < 0) {
        return NULL;
    }
    /* Python's C signal handler would still write the child's signals to
     * the parent's socketpair.  Only the main thread may change it; a
     * child forked from another thread keeps it, as with asyncio. */
    if (had_signals
        && discard(PyObject_CallMethod(st->signal, "set_wakeup_fd", "i",
                                       -1)) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return NULL;
        }
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}
