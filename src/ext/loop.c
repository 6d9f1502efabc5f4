/*
 * loop.c -- the Loop type: construction, GC, scheduling (call_soon,
 * call_later, call_at, call_soon_threadsafe) and running (run_forever,
 * run_until_complete, stop, close).
 *
 * One iteration follows asyncio's BaseEventLoop._run_once() exactly: poll
 * I/O (timeout 0 when callbacks are ready), queue the handles of ready fds,
 * then the timers that are due, then run exactly the handles that were
 * queued when the run phase started.  Callbacks added meanwhile wait for the
 * next iteration, after another poll.
 */
#include "state.h"

#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

/* asyncio's MAXIMUM_SELECT_TIMEOUT: one day. */
#define MAX_TIMEOUT_NS (INT64_C(86400) * 1000000000)

int64_t
loop_when_to_ns(double when)
{
    /* NaN deadlines compare false against everything in asyncio's heap, so
     * a lone NaN timer fires at once; -inf/inf saturate. */
    if (isnan(when)) {
        return INT64_MIN;
    }
    double ns = when * 1e9;
    if (ns >= 9.2e18) {
        return INT64_MAX;
    }
    if (ns <= -9.2e18) {
        return INT64_MIN;
    }
    return (int64_t)ns;
}

/* ---- checks shared by many methods ------------------------------------- */

int
loop_check_closed(LoopObject *self)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

int
loop_check_thread(LoopObject *self)
{
    if (self->running && self->thread_id != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Non-thread-safe operation invoked on an event loop "
                        "other than the current one");
        return -1;
    }
    return 0;
}

/* Debug-mode validation, as asyncio's _check_callback(). */
int
loop_check_callback(LoopObject *self, PyObject *cb, const char *method)
{
    eloop_state *st = self->st;
    int r = 0;
    PyObject *res = PyObject_CallOneArg(st->iscoroutine, cb);
    if (res == NULL) {
        return -1;
    }
    r = PyObject_IsTrue(res);
    Py_DECREF(res);
    if (r == 0) {
        res = PyObject_CallOneArg(st->iscoroutinefunction, cb);
        if (res == NULL) {
            return -1;
        }
        r = PyObject_IsTrue(res);
        Py_DECREF(res);
    }
    if (r < 0) {
        return -1;
    }
    if (r) {
        PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()",
                     method);
        return -1;
    }
    if (!PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError,
                     "a callable object was expected by %s(), got %R",
                     method, cb);
        return -1;
    }
    return 0;
}

static int
loop_now_ns(LoopObject *self, int64_t *now)
{
    if (!self->custom_time) {
        *now = el_now_ns();
        return 0;
    }
    PyObject *t = PyObject_CallMethodNoArgs((PyObject *)self,
                                            self->st->str_time);
    if (t == NULL) {
        return -1;
    }
    double d = PyFloat_AsDouble(t);
    Py_DECREF(t);
    if (d == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *now = loop_when_to_ns(d);
    return 0;
}

static PyObject *
loop_time_obj(LoopObject *self)
{
    if (self->custom_time) {
        return PyObject_CallMethodNoArgs((PyObject *)self,
                                         self->st->str_time);
    }
    return PyFloat_FromDouble((double)el_now_ns() * 1e-9);
}

int
loop_push_ready(LoopObject *self, HandleObject *h)
{
    if (el_ring_push(&self->ready, h) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(h);
    return 0;
}

int
loop_flush_pending(LoopObject *self)
{
    /* A failing iteration's exception waits outside while we flush. */
    PyObject *exc = el_fetch_exc();
    while (el_ring_len(&self->flushq) > 0) {
        eloop_item *it = el_ring_pop(&self->flushq);
        PyObject *owner = eloop_item_owner(it);
        it->flush_queued = 0;
        if (it->ops->flush(owner) < 0) {
            if (exc == NULL) {
                exc = el_fetch_exc();
            }
            else {
                PyErr_WriteUnraisable(owner);
            }
        }
        Py_DECREF(owner);
    }
    if (exc != NULL) {
        el_restore_exc(exc);
        return -1;
    }
    return 0;
}

/* ---- argument parsing ---------------------------------------------------- */

/* Accepts only the keyword argument `context`, like asyncio's signatures. */
static inline int
parse_context_kw(PyObject *kwnames, PyObject *const *kwvalues,
                 const char *method, PyObject **context)
{
    *context = NULL;
    if (kwnames == NULL) {
        return 0;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (!PyUnicode_Check(name)
            || !PyUnicode_EqualToUTF8Compat(name, "context")) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%S'",
                         method, name);
            return -1;
        }
        *context = kwvalues[i];
    }
    return 0;
}

static PyObject *
loop_schedule_soon(LoopObject *self, PyObject *const *args,
                   Py_ssize_t nargsf, PyObject *kwnames, const char *method,
                   int threadsafe)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing 1 required positional argument: "
                     "'callback'", method);
        return NULL;
    }
    if (parse_context_kw(kwnames, args + nargs, method, &context) < 0) {
        return NULL;
    }
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->debug) {
        if (!threadsafe && loop_check_thread(self) < 0) {
            return NULL;
        }
        if (loop_check_callback(self, args[0], method) < 0) {
            return NULL;
        }
    }
    HandleObject *h = handle_new(self, args[0], args + 1, nargs - 1,
                                 context);
    if (h == NULL) {
        return NULL;
    }
    if (loop_push_ready(self, h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    /* From the loop's own thread the next poll already has timeout 0. */
    if (threadsafe && !(self->running
                        && self->thread_id == PyThread_get_thread_ident())) {
        el_loop_wakeup(&self->core);
    }
    return (PyObject *)h;
}

static PyObject *
loop_call_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
               PyObject *kwnames)
{
    return loop_schedule_soon(self, args, nargsf, kwnames, "call_soon", 0);
}

/* call_soon(*args) made by the loop's own C code (transports, servers):
 * straight to the ready queue, unless a subclass replaced call_soon(),
 * which then gets the call as asyncio would make it.  args[-1] must be
 * writable (PY_VECTORCALL_ARGUMENTS_OFFSET). */
int
loop_soon(LoopObject *self, PyObject **args, Py_ssize_t nargs)
{
    PyObject *r;
    if (!self->custom_call_soon) {
        r = loop_schedule_soon(self, args, nargs, NULL, "call_soon", 0);
    }
    else {
        PyObject *meth = PyObject_GetAttrString((PyObject *)self,
                                                "call_soon");
        r = meth ? PyObject_Vectorcall(
                       meth, args, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET,
                       NULL)
                 : NULL;
        Py_XDECREF(meth);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

PyObject *
loop_call_soon_threadsafe(LoopObject *self, PyObject *const *args,
                          Py_ssize_t nargsf, PyObject *kwnames)
{
    return loop_schedule_soon(self, args, nargsf, kwnames,
                              "call_soon_threadsafe", 1);
}

/* `when` is the deadline as given, or NULL when it is the float `w`. */
static PyObject *
loop_schedule_at(LoopObject *self, double w, PyObject *when,
                 PyObject *const *args, Py_ssize_t nargs, PyObject *context)
{
    if (when != NULL) {
        w = PyFloat_AsDouble(when);
        if (w == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (PyFloat_CheckExact(when)) {
            when = NULL;
        }
    }
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->debug) {
        if (loop_check_thread(self) < 0
            || loop_check_callback(self, args[0], "call_at") < 0) {
            return NULL;
        }
    }
    TimerHandleObject *t = timer_handle_new(self, w, when, args[0],
                                            args + 1, nargs - 1, context);
    if (t == NULL) {
        return NULL;
    }
    if (el_heap_push(&self->core.timers, &t->timer,
                     loop_when_to_ns(w)) < 0) {
        Py_DECREF(t);
        return PyErr_NoMemory();
    }
    Py_INCREF(t);   /* the heap's reference */
    return (PyObject *)t;
}

static PyObject *
loop_call_at(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
             PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError,
                        "call_at() missing required positional arguments: "
                        "'when' and 'callback'");
        return NULL;
    }
    if (parse_context_kw(kwnames, args + nargs, "call_at", &context) < 0) {
        return NULL;
    }
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, "when cannot be None");
        return NULL;
    }
    return loop_schedule_at(self, 0.0, args[0], args + 1, nargs - 1,
                            context);
}

/* asyncio's call_later() is self.call_at(self.time() + delay, ...), so a
 * replaced call_at() gets the call: args are the callback and its
 * arguments, followed by the values of kwnames. */
static PyObject *
loop_call_at_through_self(LoopObject *self, PyObject *when,
                          PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *meth = PyObject_GetAttrString((PyObject *)self, "call_at");
    PyObject **v = meth ? PyMem_New(PyObject *, 1 + nargs + nkw) : NULL;
    if (v == NULL) {
        Py_XDECREF(meth);
        return meth ? PyErr_NoMemory() : NULL;
    }
    v[0] = when;
    memcpy(v + 1, args, (nargs + nkw) * sizeof(PyObject *));
    PyObject *res = PyObject_Vectorcall(meth, v, 1 + nargs, kwnames);
    PyMem_Free(v);
    Py_DECREF(meth);
    return res;
}

static PyObject *
loop_call_later(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError,
                        "call_later() missing required positional "
                        "arguments: 'delay' and 'callback'");
        return NULL;
    }
    if (parse_context_kw(kwnames, args + nargs, "call_later",
                         &context) < 0) {
        return NULL;
    }
    PyObject *delay = args[0];
    if (delay == Py_None) {
        PyErr_SetString(PyExc_TypeError, "delay must not be None");
        return NULL;
    }
    if (!self->custom_time && !self->custom_call_at
        && PyFloat_CheckExact(delay)) {
        /* The same double arithmetic as asyncio's self.time() + delay. */
        return loop_schedule_at(self,
                                (double)el_now_ns() * 1e-9
                                    + PyFloat_AS_DOUBLE(delay),
                                NULL, args + 1, nargs - 1, context);
    }
    PyObject *now = loop_time_obj(self);
    if (now == NULL) {
        return NULL;
    }
    PyObject *when = PyNumber_Add(now, delay);
    Py_DECREF(now);
    if (when == NULL) {
        return NULL;
    }
    PyObject *res = self->custom_call_at
        ? loop_call_at_through_self(self, when, args + 1, nargs - 1, kwnames)
        : loop_schedule_at(self, 0.0, when, args + 1, nargs - 1, context);
    Py_DECREF(when);
    return res;
}

static PyObject *
loop_time(LoopObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble((double)el_now_ns() * 1e-9);
}

/* ---- one iteration -------------------------------------------------------- */

static int
run_handle_debug(LoopObject *self, HandleObject *h)
{
    PyObject *t0 = NULL, *t1 = NULL;
    Py_XSETREF(self->current_handle, Py_NewRef((PyObject *)h));
    t0 = loop_time_obj(self);
    int rc = t0 ? handle_run(h) : -1;
    if (rc == 0) {
        t1 = loop_time_obj(self);
        rc = t1 ? 0 : -1;
    }
    Py_CLEAR(self->current_handle);
    if (rc == 0) {
        double dt = PyFloat_AsDouble(t1) - PyFloat_AsDouble(t0);
        if (PyErr_Occurred()) {
            rc = -1;
        }
        else if (dt >= self->slow_callback_duration) {
            /* asyncio's _format_handle(): a Task's step shows the task. */
            PyObject *desc = NULL;
            PyObject *cb = h->callback;
            PyObject *owner = cb ? PyObject_GetAttrString(cb, "__self__")
                                 : NULL;
            if (owner == NULL) {
                PyErr_Clear();
            }
            else if (PyObject_IsInstance(owner, self->st->Task) == 1) {
                desc = PyObject_Repr(owner);
            }
            PyErr_Clear();
            Py_XDECREF(owner);
            if (desc == NULL) {
                desc = PyObject_Str((PyObject *)h);
            }
            PyObject *r = desc ? PyObject_CallMethod(
                self->st->logger, "warning", "sOd",
                "Executing %s took %.3f seconds", desc, dt) : NULL;
            Py_XDECREF(desc);
            if (r == NULL) {
                rc = -1;
            }
            Py_XDECREF(r);
        }
    }
    Py_XDECREF(t0);
    Py_XDECREF(t1);
    return rc;
}

static int
loop_run_iteration(LoopObject *self)
{
    int64_t timeout = -1, now;
    el_timer_t *t;

    el_heap_tidy(&self->core.timers);

    /* flushq is empty here unless the last iteration failed before its
     * flush: then the writes must not wait behind a blocking poll. */
    if (el_ring_len(&self->ready) || self->stopping
        || el_ring_len(&self->flushq)) {
        timeout = 0;
    }
    else if ((t = el_heap_min(&self->core.timers)) != NULL) {
        if (loop_now_ns(self, &now) < 0) {
            return -1;
        }
        timeout = t->when <= now ? 0 : t->when - now;
        if (timeout > MAX_TIMEOUT_NS) {
            timeout = MAX_TIMEOUT_NS;
        }
    }

    /* Only the poll runs without the GIL: the fd table work before it and
     * the dispatch after it must not race with other threads that call
     * into the loop (add_reader, transport.write) against the rules. */
    int n;
    if (timeout == 0) {
        /* No prepare: lazy narrowing matters only before a poll that can
         * block (this one at most reports an event nobody wants, which
         * dispatch skips), so a reader paused and resumed within one busy
         * iteration (flow control) costs no epoll_ctl at all. */
        n = el_loop_poll(&self->core, 0);
    }
    else {
        el_loop_prepare(&self->core);
        Py_BEGIN_ALLOW_THREADS
        n = el_loop_poll(&self->core, timeout);
        Py_END_ALLOW_THREADS
    }
    if (n == -EINTR) {
        /* PEP 475: run Python signal handlers; they may raise. */
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
    else if (n < 0) {
        return eloop_raise_errno(n);
    }
    else if (el_loop_deliver(&self->core, n) < 0) {
        return -1;      /* a watcher callback failed, exception set */
    }

    if (el_heap_min(&self->core.timers) != NULL) {
        if (loop_now_ns(self, &now) < 0) {
            return -1;
        }
        while ((t = el_heap_min(&self->core.timers)) != NULL
               && t->when <= now) {
            el_heap_pop(&self->core.timers);
            TimerHandleObject *th = el_container_of(t, TimerHandleObject,
                                                    timer);
            /* The heap's reference moves to the ready ring. */
            if (el_ring_push(&self->ready, th) < 0) {
                Py_DECREF(th);
                PyErr_NoMemory();
                return -1;
            }
        }
    }

    size_t ntodo = el_ring_len(&self->ready);
    int rc = 0;
    /* After a callback forks, the child runs nothing more of the
     * parent's batch and sends nothing the parent will send too. */
    for (size_t i = 0; i < ntodo && rc == 0 && !self->forked; i++) {
        void *item = el_ring_pop(&self->ready);
        if (ready_is_item(item)) {
            eloop_item *it = ready_item(item);
            PyObject *owner = eloop_item_owner(it);
            rc = it->ops->run(owner);
            Py_DECREF(owner);
            continue;
        }
        HandleObject *h = item;
        if (!handle_cancelled(h)) {
            rc = self->debug ? run_handle_debug(self, h) : handle_run(h);
        }
        Py_DECREF(h);
    }
    if (self->forked) {
        return rc < 0 ? -1 : loop_check_forked(self);
    }
    /* Write coalescing (stream_transport.c): what the callbacks wrote
     * leaves now, one writev per transport.  Also when a callback failed, so that no
     * data is left unsent while the loop is stopped. */
    if (el_ring_len(&self->flushq) && loop_flush_pending(self) < 0) {
        return -1;
    }
    return rc;
}

static int
loop_run_once(LoopObject *self)
{
    self->in_iteration = 1;
    int rc = loop_run_iteration(self);
    self->in_iteration = 0;
    return rc;
}

static PyObject *
loop__run_once(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    /* asyncio fails on both too, less politely: its selector is None once
     * closed, and a nested _run_once() pops from an empty ready deque.
     * Here a nested iteration (from a callback, or from another thread
     * while this one polls) would pop past the end of the ready ring and
     * share the poll's event buffer. */
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->in_iteration) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot run a loop iteration inside another one");
        return NULL;
    }
    if (loop_run_once(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- running ---------------------------------------------------------------- */

static int
loop_check_running(LoopObject *self)
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "This event loop is already running");
        return -1;
    }
    PyObject *cur = PyObject_CallMethod(self->st->events,
                                        "_get_running_loop", NULL);
    if (cur == NULL) {
        return -1;
    }
    int busy = cur != Py_None;
    Py_DECREF(cur);
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot run the event loop while another loop is "
                        "running");
        return -1;
    }
    return 0;
}

static int
loop_set_origin_tracking(LoopObject *self, int enabled)
{
    if (!enabled == !self->origin_tracking) {
        return 0;
    }
    PyObject *r;
    if (enabled) {
        r = PyObject_CallMethod(self->st->sys,
                                "get_coroutine_origin_tracking_depth", NULL);
        if (r == NULL) {
            return -1;
        }
        self->origin_saved_depth = (int)PyLong_AsLong(r);
        Py_DECREF(r);
        /* asyncio.constants.DEBUG_STACK_DEPTH */
        r = PyObject_CallMethod(self->st->sys,
                                "set_coroutine_origin_tracking_depth", "i",
                                10);
    }
    else {
        r = PyObject_CallMethod(self->st->sys,
                                "set_coroutine_origin_tracking_depth", "i",
                                self->origin_saved_depth);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    self->origin_tracking = (char)(enabled != 0);
    return 0;
}

static PyObject *
loop__set_coroutine_origin_tracking(LoopObject *self, PyObject *arg)
{
    int enabled = PyObject_IsTrue(arg);
    if (enabled < 0 || loop_set_origin_tracking(self, enabled) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Takes the exception set now into *first unless that holds one already. */
static void
keep_first_exc(PyObject **first)
{
    PyObject *e = el_fetch_exc();
    if (*first == NULL) {
        *first = e;
    }
    else {
        Py_XDECREF(e);
    }
}

/* fn(arg) for a step of run_forever()'s `finally:`, which must not be
 * skipped for want of memory: a loop left set as running would refuse
 * every later run in this thread.  One retry after a MemoryError gets past
 * a transient shortage.  A failure stays set for the caller. */
static int
call_finally(PyObject *fn, PyObject *const *args, size_t nargs)
{
    if (discard(PyObject_Vectorcall(fn, args, nargs, NULL)) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_MemoryError)) {
        return -1;
    }
    PyErr_Clear();
    return discard(PyObject_Vectorcall(fn, args, nargs, NULL));
}

static PyObject *
loop_run_forever(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    eloop_state *st = self->st;
    if (loop_check_closed(self) < 0 || loop_check_forked(self) < 0
        || loop_check_running(self) < 0) {
        return NULL;
    }
    if (loop_set_origin_tracking(self, self->debug) < 0) {
        return NULL;
    }
    PyObject *old_hooks = PyObject_CallMethod(st->sys, "get_asyncgen_hooks",
                                              NULL);
    if (old_hooks == NULL) {
        return NULL;
    }
    /* What the `finally:` calls is fetched before the loop is marked
     * running, so that undoing it needs as little memory as possible. */
    PyObject *set_running = PyObject_GetAttrString(st->events,
                                                   "_set_running_loop");
    PyObject *set_hooks = set_running ? PyObject_GetAttrString(
        st->sys, "set_asyncgen_hooks") : NULL;
    if (set_hooks == NULL) {
        Py_XDECREF(set_running);
        Py_DECREF(old_hooks);
        return NULL;
    }
    int failed = 0;
    self->thread_id = PyThread_get_thread_ident();
    self->running = 1;
    PyObject *firstiter = PyObject_GetAttrString(
        (PyObject *)self, "_asyncgen_firstiter_hook");
    PyObject *finalizer = firstiter ? PyObject_GetAttrString(
        (PyObject *)self, "_asyncgen_finalizer_hook") : NULL;
    PyObject *r = NULL;
    if (finalizer != NULL) {
        PyObject *kw = Py_BuildValue("{sOsO}", "firstiter", firstiter,
                                     "finalizer", finalizer);
        PyObject *noargs = kw ? PyTuple_New(0) : NULL;
        r = noargs ? PyObject_Call(set_hooks, noargs, kw) : NULL;
        Py_XDECREF(noargs);
        Py_XDECREF(kw);
    }
    Py_XDECREF(firstiter);
    Py_XDECREF(finalizer);
    if (r == NULL) {
        failed = 1;
    }
    Py_XDECREF(r);
    if (!failed) {
        failed = discard(PyObject_CallOneArg(set_running,
                                             (PyObject *)self)) < 0;
    }
    while (!failed) {
        /* A callback forked and this is the child (checked here too for a
         * replaced _run_once()). */
        if (loop_check_forked(self) < 0) {
            failed = 1;
            break;
        }
        /* asyncio's run_forever() calls self._run_once(): so does ours
         * when a subclass replaces it (instrumentation does). */
        if (self->custom_run_once
                ? discard(PyObject_CallMethod((PyObject *)self, "_run_once",
                                              NULL)) < 0
                : loop_run_once(self) < 0) {
            failed = 1;
            break;
        }
        if (self->stopping) {
            break;
        }
    }
    /* The `finally:` of asyncio's run_forever(); keep the first error. */
    PyObject *exc = el_fetch_exc();
    self->stopping = 0;
    self->running = 0;
    self->thread_id = 0;
    /* Every step runs, with no exception set; the first error wins. */
    PyObject *none = Py_None;
    if (call_finally(set_running, &none, 1) < 0) {
        keep_first_exc(&exc);
    }
    if (loop_set_origin_tracking(self, 0) < 0) {
        keep_first_exc(&exc);
    }
    /* set_asyncgen_hooks(*old_hooks): (firstiter, finalizer) */
    if (call_finally(set_hooks, &PyTuple_GET_ITEM(old_hooks, 0), 2) < 0) {
        keep_first_exc(&exc);
    }
    Py_DECREF(set_running);
    Py_DECREF(set_hooks);
    Py_DECREF(old_hooks);
    if (exc != NULL) {
        el_restore_exc(exc);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The done-callback of run_until_complete() (module-level, see module.c). */
PyObject *
eloop_run_until_complete_cb(PyObject *Py_UNUSED(mod), PyObject *fut)
{
    PyObject *r = PyObject_CallMethod(fut, "cancelled", NULL);
    if (r == NULL) {
        return NULL;
    }
    int cancelled = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (cancelled < 0) {
        return NULL;
    }
    if (!cancelled) {
        PyObject *exc = PyObject_CallMethod(fut, "exception", NULL);
        if (exc == NULL) {
            return NULL;
        }
        /* run_forever() already finished for these; don't stop again. */
        int fatal = PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)
                    || PyErr_GivenExceptionMatches(exc,
                                                   PyExc_KeyboardInterrupt);
        Py_DECREF(exc);
        if (fatal) {
            Py_RETURN_NONE;
        }
    }
    PyObject *loop = PyObject_CallMethod(fut, "get_loop", NULL);
    if (loop == NULL) {
        return NULL;
    }
    r = PyObject_CallMethod(loop, "stop", NULL);
    Py_DECREF(loop);
    return r;
}

static PyObject *
loop_run_until_complete(LoopObject *self, PyObject *future)
{
    eloop_state *st = self->st;
    if (loop_check_closed(self) < 0 || loop_check_forked(self) < 0
        || loop_check_running(self) < 0) {
        return NULL;
    }
    PyObject *isfut = PyObject_CallOneArg(st->isfuture, future);
    int new_task = isfut ? !PyObject_IsTrue(isfut) : -1;
    Py_XDECREF(isfut);
    if (new_task < 0) {
        return NULL;
    }
    PyObject *fut = eloop_call_kw(st->ensure_future, &future, 1, "loop",
                                  (PyObject *)self);
    if (fut == NULL) {
        return NULL;
    }
    if (new_task && PyObject_SetAttrString(fut, "_log_destroy_pending",
                                           Py_False) < 0) {
        goto fail;
    }
    PyObject *r = PyObject_CallMethod(fut, "add_done_callback", "O",
                                      st->run_until_complete_cb);
    if (r == NULL) {
        goto fail;
    }
    Py_DECREF(r);
    r = loop_run_forever(self, NULL);
    if (r == NULL) {
        PyObject *exc = el_fetch_exc();
        if (new_task) {
            /* Mark the exception retrieved: it is being raised here. */
            PyObject *d = PyObject_CallMethod(fut, "done", NULL);
            PyObject *c = d == Py_True ? PyObject_CallMethod(
                fut, "cancelled", NULL) : NULL;
            if (c == Py_False) {
                PyObject *e = PyObject_CallMethod(fut, "exception", NULL);
                Py_XDECREF(e);
            }
            Py_XDECREF(d);
            Py_XDECREF(c);
            PyErr_Clear();
        }
        r = PyObject_CallMethod(fut, "remove_done_callback", "O",
                                st->run_until_complete_cb);
        Py_XDECREF(r);
        PyErr_Clear();
        el_restore_exc(exc);
        goto fail;
    }
    Py_DECREF(r);
    r = PyObject_CallMethod(fut, "remove_done_callback", "O",
                            st->run_until_complete_cb);
    if (r == NULL) {
        goto fail;
    }
    Py_DECREF(r);
    r = PyObject_CallMethod(fut, "done", NULL);
    if (r == NULL) {
        goto fail;
    }
    int done = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (done <= 0) {
        if (done == 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "Event loop stopped before Future completed.");
        }
        goto fail;
    }
    r = PyObject_CallMethod(fut, "result", NULL);
    Py_DECREF(fut);
    return r;
fail:
    Py_DECREF(fut);
    return NULL;
}

static PyObject *
loop_stop(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    self->stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *
loop_is_running(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->running);
}

static PyObject *
loop_is_closed(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

/* Drops every reference the reactor holds: ready handles, armed timers,
 * watcher handles.  Used by close() and tp_clear. */
static void
loop_clear_reactor(LoopObject *self)
{
    while (el_ring_len(&self->ready)) {
        Py_DECREF(ready_owner(el_ring_pop(&self->ready)));
    }
    el_timer_t *t;
    while ((t = el_heap_pop(&self->core.timers)) != NULL) {
        Py_DECREF(el_container_of(t, TimerHandleObject, timer));
    }
    loop_io_clear(self);
    loop_child_clear(self);
    while (el_ring_len(&self->flushq) > 0) {
        eloop_item *it = el_ring_pop(&self->flushq);
        it->flush_queued = 0;
        Py_DECREF(eloop_item_owner(it));
    }
    el_ring_free(&self->flushq);
    Py_CLEAR(self->read_spare);
    Py_CLEAR(self->read_fresh);
    Py_CLEAR(self->owned);
}

static PyObject *
loop_close(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot close a running event loop");
        return NULL;
    }
    if (self->closed) {
        Py_RETURN_NONE;
    }
    if (self->debug) {
        PyObject *r = PyObject_CallMethod(self->st->logger, "debug", "sO",
                                          "Close %r", (PyObject *)self);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    self->closed = 1;
    loop_clear_reactor(self);
    self->executor_shutdown_called = 1;
    PyObject *executor = self->default_executor;
    self->default_executor = NULL;
    if (executor != NULL) {
        PyObject *r = PyObject_CallMethod(executor, "shutdown", "O",
                                          Py_False);
        Py_DECREF(executor);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    loop_signals_close(self);
    if (self->core_ready) {
        self->core_ready = 0;
        el_loop_close(&self->core);
    }
    /* The freelists are module state, shared with other loops; a closed
     * loop still gives their memory back (refilling them is cheap). */
    handle_freelists_clear(self->st);
    Py_RETURN_NONE;
}

static PyObject *
loop_get_debug(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->debug);
}

static PyObject *
loop_set_debug(LoopObject *self, PyObject *arg)
{
    int enabled = PyObject_IsTrue(arg);
    if (enabled < 0) {
        return NULL;
    }
    self->debug = (char)enabled;
    if (self->running) {
        PyObject *meth = PyObject_GetAttrString(
            (PyObject *)self, "_set_coroutine_origin_tracking");
        if (meth == NULL) {
            return NULL;
        }
        PyObject *args[2] = {meth, enabled ? Py_True : Py_False};
        PyObject *h = loop_call_soon_threadsafe(self, args, 2, NULL);
        Py_DECREF(meth);
        if (h == NULL) {
            return NULL;
        }
        Py_DECREF(h);
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_repr(LoopObject *self)
{
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat(
        "<%U running=%s closed=%s debug=%s>", name,
        self->running ? "True" : "False", self->closed ? "True" : "False",
        self->debug ? "True" : "False");
    Py_DECREF(name);
    return r;
}

/* ---- construction and GC -------------------------------------------------------- */

static void Loop_dealloc(LoopObject *self);

/* Drops a half-built loop without the unclosed-loop warning. */
static PyObject *
loop_new_fail(LoopObject *self)
{
    self->closed = 1;
    Py_DECREF(self);
    return NULL;
}

/* 1 if the subclass `type` replaces Loop's method `name`, 0 if not.  The
 * loop's own C code calls such methods directly unless they are replaced,
 * so that a subclass sees every call as asyncio's would make it. */
static int
loop_overrides(PyTypeObject *type, eloop_state *st, const char *name)
{
    PyObject *mine = PyObject_GetAttrString((PyObject *)type, name);
    PyObject *ours = mine ? PyObject_GetAttrString((PyObject *)st->LoopType,
                                                   name) : NULL;
    int r = ours == NULL ? -1 : mine != ours;
    Py_XDECREF(mine);
    Py_XDECREF(ours);
    return r;
}

/* The methods asyncio's own code calls through self, so that replacing one,
 * in a subclass or on the instance (test suites patch loop.time), reroutes
 * those calls; the C paths take them directly while the flag is clear. */
static const struct {
    const char *name;
    size_t flag;                /* offset of its char flag in LoopObject */
} loop_hooks[] = {
    {"time", offsetof(LoopObject, custom_time)},
    {"call_soon", offsetof(LoopObject, custom_call_soon)},
    {"_run_once", offsetof(LoopObject, custom_run_once)},
    {"call_at", offsetof(LoopObject, custom_call_at)},
};
#define N_LOOP_HOOKS (sizeof(loop_hooks) / sizeof(loop_hooks[0]))

/* Sets hook i's flag from the type alone. */
static int
loop_hook_from_type(LoopObject *self, size_t i)
{
    int r = loop_overrides(Py_TYPE(self), self->st, loop_hooks[i].name);
    if (r < 0) {
        return -1;
    }
    *((char *)self + loop_hooks[i].flag) = (char)r;
    return 0;
}

/* Notices an instance patch when it is made (and `del` when it is undone),
 * so the hot paths test a flag instead of looking the name up per call. */
static int
Loop_setattro(LoopObject *self, PyObject *name, PyObject *value)
{
    if (PyObject_GenericSetAttr((PyObject *)self, name, value) < 0) {
        return -1;
    }
    for (size_t i = 0; i < N_LOOP_HOOKS; i++) {
        if (PyUnicode_EqualToUTF8Compat(name, loop_hooks[i].name)) {
            if (value == NULL) {
                return loop_hook_from_type(self, i);
            }
            *((char *)self + loop_hooks[i].flag) = 1;
            break;
        }
    }
    return 0;
}

static PyObject *
Loop_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
         PyObject *Py_UNUSED(kwds))
{
    LoopObject *self = (LoopObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* Before any failure path: tp_alloc zeroed them, and dealloc closes
     * what is >= 0 (fd 0 is someone's stdin). */
    self->sig_rfd = self->sig_wfd = -1;
    PyObject *mod = eloop_module_of_type(type);
    if (mod == NULL) {
        return loop_new_fail(self);
    }
    self->module = Py_NewRef(mod);
    self->st = PyModule_GetState(mod);
    loop_live_link(self);
    self->slow_callback_duration = 0.1;
    el_ring_init(&self->ready);
    int err = el_loop_init(&self->core);
    if (err < 0) {
        eloop_raise_errno(err);
        return loop_new_fail(self);
    }
    self->core_ready = 1;

    eloop_state *st = self->st;
    self->signal_handlers = PyDict_New();
    self->transports = self->signal_handlers ? PyDict_New() : NULL;
    self->asyncgens = self->transports ? PyObject_CallNoArgs(
        st->WeakSet) : NULL;
    if (self->asyncgens == NULL) {
        return loop_new_fail(self);
    }
    for (size_t i = 0; i < N_LOOP_HOOKS; i++) {
        if (loop_hook_from_type(self, i) < 0) {
            return loop_new_fail(self);
        }
    }
    /* asyncio's loop asks coroutines._is_debug_mode() (sys.flags.dev_mode
     * or PYTHONASYNCIODEBUG); ask it too, so patching it works the same. */
    PyObject *dbg = PyObject_CallMethod(st->coroutines, "_is_debug_mode",
                                        NULL);
    int on = dbg ? PyObject_IsTrue(dbg) : -1;
    Py_XDECREF(dbg);
    if (on < 0) {
        return loop_new_fail(self);
    }
    self->debug = (char)on;
    return (PyObject *)self;
}

static int
Loop_init(LoopObject *Py_UNUSED(self), PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Loop() takes no arguments");
        return -1;
    }
    return 0;
}

static int
Loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    for (size_t i = 0; i < el_ring_len(&self->ready); i++) {
        Py_VISIT(ready_owner(el_ring_at(&self->ready, i)));
    }
    el_heap_t *heap = &self->core.timers;
    for (size_t i = 0; i < heap->len; i++) {
        if (heap->nodes[i].t != NULL) {     /* not a tombstone */
            Py_VISIT((PyObject *)el_container_of(heap->nodes[i].t,
                                                 TimerHandleObject, timer));
        }
    }
    for (size_t i = 0; i < el_ring_len(&self->flushq); i++) {
        Py_VISIT(eloop_item_owner(el_ring_at(&self->flushq, i)));
    }
    Py_VISIT(self->owned);
    int r = loop_io_traverse(self, visit, arg);
    if (r == 0) {
        r = loop_child_traverse(self, visit, arg);
    }
    if (r) {
        return r;
    }
    Py_VISIT(self->exception_handler);
    Py_VISIT(self->task_factory);
    Py_VISIT(self->default_executor);
    Py_VISIT(self->asyncgens);
    Py_VISIT(self->signal_handlers);
    Py_VISIT(self->current_handle);
    Py_VISIT(self->transports);
    return 0;
}

static int
Loop_clear(LoopObject *self)
{
    loop_clear_reactor(self);
    Py_CLEAR(self->exception_handler);
    Py_CLEAR(self->task_factory);
    Py_CLEAR(self->default_executor);
    Py_CLEAR(self->asyncgens);
    Py_CLEAR(self->signal_handlers);
    Py_CLEAR(self->current_handle);
    Py_CLEAR(self->transports);
    return 0;
}

static void
Loop_finalize(LoopObject *self)
{
    /* LoopType NULL: the module state was cleared at exit, and close()
     * needs it. */
    if (self->closed || self->st == NULL || self->st->LoopType == NULL) {
        return;
    }
    PyObject *exc = el_fetch_exc();
    if (PyErr_ResourceWarning((PyObject *)self, 1,
                              "unclosed event loop %R", self) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    if (!self->running) {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "close", NULL);
        if (r == NULL) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(r);
    }
    el_restore_exc(exc);
}

static void
Loop_dealloc(LoopObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return;     /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    loop_live_unlink(self);
    Loop_clear(self);
    loop_signals_close(self);
    if (self->core_ready) {
        self->core_ready = 0;
        el_loop_close(&self->core);
    }
    el_ring_free(&self->ready);
    /* Last: everything above may still use st.  Not in Loop_clear, which
     * the GC may call long before this. */
    PyObject *mod = self->module;
    tp->tp_free(self);
    Py_DECREF(tp);
    Py_XDECREF(mod);
}

/* ---- attributes ------------------------------------------------------------ */

static PyObject *
Loop_get_thread_id(LoopObject *self, void *Py_UNUSED(c))
{
    if (!self->running) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->thread_id);
}

static PyObject *
Loop_get_flag(LoopObject *self, void *c)
{
    return PyBool_FromLong(*((char *)self + (Py_ssize_t)c));
}

static int
Loop_set_flag(LoopObject *self, PyObject *v, void *c)
{
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0) {
        return -1;
    }
    *((char *)self + (Py_ssize_t)c) = (char)b;
    return 0;
}

static PyObject *
Loop_get_clock_resolution(LoopObject *Py_UNUSED(self), void *Py_UNUSED(c))
{
    /* time.get_clock_info('monotonic').resolution, as asyncio. */
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC, &ts) < 0) {
        return PyFloat_FromDouble(1e-9);
    }
    return PyFloat_FromDouble((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

static PyObject *
Loop_get_backend(LoopObject *self, void *Py_UNUSED(c))
{
    if (!self->core_ready) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(el_loop_backend_name(&self->core));
}

#define FLAG(name, field)                                                   \
    {name, (getter)Loop_get_flag, (setter)Loop_set_flag, NULL,              \
     (void *)offsetof(LoopObject, field)}

static PyGetSetDef Loop_getset[] = {
    {"_thread_id", (getter)Loop_get_thread_id, NULL, NULL, NULL},
    {"_clock_resolution", (getter)Loop_get_clock_resolution, NULL, NULL,
     NULL},
    {"_backend", (getter)Loop_get_backend, NULL,
     "Name of the poller backend in use.", NULL},
    FLAG("_closed", closed),
    FLAG("_stopping", stopping),
    FLAG("_debug", debug),
    FLAG("_asyncgens_shutdown_called", asyncgens_shutdown_called),
    FLAG("_executor_shutdown_called", executor_shutdown_called),
    FLAG("_coroutine_origin_tracking_enabled", origin_tracking),
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Loop_members[] = {
    {"slow_callback_duration", EL_T_DOUBLE,
     offsetof(LoopObject, slow_callback_duration), 0, NULL},
    {"_default_executor", EL_T_OBJECT,
     offsetof(LoopObject, default_executor), 0, NULL},
    {"_exception_handler", EL_T_OBJECT,
     offsetof(LoopObject, exception_handler), EL_READONLY, NULL},
    {"_task_factory", EL_T_OBJECT, offsetof(LoopObject, task_factory),
     EL_READONLY, NULL},
    {"_asyncgens", EL_T_OBJECT, offsetof(LoopObject, asyncgens),
     EL_READONLY, NULL},
    {"_signal_handlers", EL_T_OBJECT, offsetof(LoopObject, signal_handlers),
     EL_READONLY, NULL},
    {"_current_handle", EL_T_OBJECT, offsetof(LoopObject, current_handle),
     EL_READONLY, NULL},
    {"_transports", EL_T_OBJECT, offsetof(LoopObject, transports),
     EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};


#define FASTKW(name, fn) \
    {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL | METH_KEYWORDS, NULL}
#define FAST(name, fn) \
    {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, NULL}

static PyMethodDef Loop_methods[] = {
    FASTKW("call_soon", loop_call_soon),
    FASTKW("call_soon_threadsafe", loop_call_soon_threadsafe),
    FASTKW("call_later", loop_call_later),
    FASTKW("call_at", loop_call_at),
    {"time", (PyCFunction)loop_time, METH_NOARGS, NULL},
    {"run_forever", (PyCFunction)loop_run_forever, METH_NOARGS, NULL},
    {"run_until_complete", (PyCFunction)loop_run_until_complete, METH_O,
     NULL},
    {"_run_once", (PyCFunction)loop__run_once, METH_NOARGS, NULL},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, NULL},
    {"close", (PyCFunction)loop_close, METH_NOARGS, NULL},
    {"is_running", (PyCFunction)loop_is_running, METH_NOARGS, NULL},
    {"is_closed", (PyCFunction)loop_is_closed, METH_NOARGS, NULL},
    {"get_debug", (PyCFunction)loop_get_debug, METH_NOARGS, NULL},
    {"set_debug", (PyCFunction)loop_set_debug, METH_O, NULL},
    {"_set_coroutine_origin_tracking",
     (PyCFunction)loop__set_coroutine_origin_tracking, METH_O, NULL},
    FAST("add_reader", loop_add_reader),
    FAST("add_writer", loop_add_writer),
    {"remove_reader", (PyCFunction)loop_remove_reader, METH_O, NULL},
    {"remove_writer", (PyCFunction)loop_remove_writer, METH_O, NULL},
    FAST("add_signal_handler", loop_add_signal_handler),
    {"remove_signal_handler", (PyCFunction)loop_remove_signal_handler,
     METH_O, NULL},
    {"call_exception_handler",
     (PyCFunction)loop_call_exception_handler_meth, METH_O, NULL},
    {"default_exception_handler",
     (PyCFunction)loop_default_exception_handler, METH_O, NULL},
    {"set_exception_handler", (PyCFunction)loop_set_exception_handler,
     METH_O, NULL},
    {"get_exception_handler", (PyCFunction)loop_get_exception_handler,
     METH_NOARGS, NULL},
    {"create_future", (PyCFunction)loop_create_future, METH_NOARGS, NULL},
    FASTKW("create_task", loop_create_task),
    {"set_task_factory", (PyCFunction)loop_set_task_factory, METH_O, NULL},
    {"get_task_factory", (PyCFunction)loop_get_task_factory, METH_NOARGS,
     NULL},
    FAST("run_in_executor", loop_run_in_executor),
    {"set_default_executor", (PyCFunction)loop_set_default_executor, METH_O,
     NULL},
    {"_asyncgen_firstiter_hook", (PyCFunction)loop_asyncgen_firstiter_hook,
     METH_O, NULL},
    {"_asyncgen_finalizer_hook", (PyCFunction)loop_asyncgen_finalizer_hook,
     METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Loop_slots[] = {
    {Py_tp_new, Loop_new},
    {Py_tp_init, Loop_init},
    {Py_tp_dealloc, Loop_dealloc},
    {Py_tp_finalize, Loop_finalize},
    {Py_tp_traverse, Loop_traverse},
    {Py_tp_clear, Loop_clear},
    {Py_tp_repr, Loop_repr},
    {Py_tp_setattro, Loop_setattro},
    {Py_tp_methods, Loop_methods},
    {Py_tp_getset, Loop_getset},
    {Py_tp_members, Loop_members},
    {Py_tp_doc, "The C base of eloop.Loop."},
    {0, NULL},
};

PyType_Spec Loop_spec = {
    .name = "eloop._eloop.Loop",
    .basicsize = sizeof(LoopObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = Loop_slots,
};
