/*
 * handle.c -- Handle and TimerHandle: the callback objects call_soon(),
 * call_later() and the I/O watchers return, with asyncio.Handle's
 * semantics (cancel, cancelled, get_context, repr, comparisons).
 *
 * A handle runs in the contextvars.Context it was created with; entering
 * and leaving the context here is what asyncio's Context.run() does, minus
 * the Python-level call.
 */
#include "state.h"

static inline eloop_state *
handle_state(HandleObject *h)
{
    return h->loop->st;
}

/* ---- the freelists of dead handles (see HANDLE_FREELIST_MAX) ----------- */

static inline PyObject *
freelist_pop(handle_freelist *f)
{
    return f->n > 0 ? f->items[--f->n] : NULL;
}

/* 0 if the freelist took `o`, -1 if it is full (the caller frees it). */
static inline int
freelist_push(handle_freelist *f, PyObject *o)
{
#if HANDLE_FREELIST_MAX > 0
    if (f->n < HANDLE_FREELIST_MAX) {
        f->items[f->n++] = o;
        return 0;
    }
#else
    (void)f;
    (void)o;
#endif
    return -1;
}

/* _eloop._handle_freelists() -> (handles, timer handles, bound): how many
 * dead handles each freelist holds now, and how many it may.  For tests. */
PyObject *
eloop_handle_freelists(PyObject *mod, PyObject *Py_UNUSED(unused))
{
    eloop_state *st = PyModule_GetState(mod);
    return Py_BuildValue("iii", st->handles.n, st->timers.n,
                         HANDLE_FREELIST_MAX);
}

static HandleObject *
handle_init_fields(HandleObject *h, LoopObject *loop, PyObject *callback,
                   PyObject *const *args, Py_ssize_t nargs,
                   PyObject *context)
{
    h->callback = Py_NewRef(callback);
    h->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    h->source_traceback = NULL;
    h->weakreflist = NULL;
    h->context = NULL;
    h->args = PyTuple_New(nargs);
    if (h->args == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(h->args, i, Py_NewRef(args[i]));
    }
    if (context == NULL || context == Py_None) {
        h->context = PyContext_CopyCurrent();
        if (h->context == NULL) {
            goto fail;
        }
    }
    else {
        h->context = Py_NewRef(context);
    }
    if (loop->debug) {
        /* Called from C, extract_stack() starts at the caller's frame, so
         * unlike asyncio there is no loop-internal frame to drop. */
        h->source_traceback =
            PyObject_CallNoArgs(loop->st->extract_stack);
        if (h->source_traceback == NULL) {
            goto fail;
        }
    }
    PyObject_GC_Track(h);
    return h;
fail:
    PyObject_GC_Track(h);
    Py_DECREF(h);
    return NULL;
}

HandleObject *
handle_new(LoopObject *loop, PyObject *callback, PyObject *const *args,
           Py_ssize_t nargs, PyObject *context)
{
    eloop_state *st = loop->st;
    HandleObject *h = (HandleObject *)freelist_pop(&st->handles);
    if (h != NULL) {
        PyObject_Init((PyObject *)h, st->HandleType);
    }
    else {
        h = PyObject_GC_New(HandleObject, st->HandleType);
        if (h == NULL) {
            return NULL;
        }
    }
    return handle_init_fields(h, loop, callback, args, nargs, context);
}

TimerHandleObject *
timer_handle_new(LoopObject *loop, double whenf, PyObject *when,
                 PyObject *callback, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *context)
{
    eloop_state *st = loop->st;
    TimerHandleObject *t = (TimerHandleObject *)freelist_pop(&st->timers);
    if (t != NULL) {
        PyObject_Init((PyObject *)t, st->TimerHandleType);
    }
    else {
        t = PyObject_GC_New(TimerHandleObject, st->TimerHandleType);
        if (t == NULL) {
            return NULL;
        }
    }
    el_timer_init(&t->timer);
    t->when = Py_XNewRef(when);
    t->whenf = whenf;
    return (TimerHandleObject *)handle_init_fields(
        (HandleObject *)t, loop, callback, args, nargs, context);
}

/* format_helpers._format_callback_source(callback, args), with
 * debug=loop.get_debug() where it takes that (3.13 shows the arguments
 * only in debug mode). */
PyObject *
handle_format_source(HandleObject *h, PyObject *callback, PyObject *args)
{
    eloop_state *st = handle_state(h);
    if (!st->format_takes_debug) {
        return PyObject_CallFunctionObjArgs(st->format_callback_source,
                                            callback, args, NULL);
    }
    PyObject *a[2] = {callback, args};
    return eloop_call_kw(st->format_callback_source, a, 2, "debug",
                         h->loop->debug ? Py_True : Py_False);
}

/* Reports an exception raised by a callback the way asyncio's
 * Handle._run() does.  Returns -1 (with the error set) only for what must
 * escape the loop: SystemExit, KeyboardInterrupt, or a failing handler. */
int
handle_report(HandleObject *h, PyObject *callback, PyObject *args)
{
    PyObject *exc = el_fetch_exc();
    if (PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)
        || PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt)) {
        el_restore_exc(exc);
        return -1;
    }
    PyObject *context = NULL, *src = NULL, *msg = NULL;
    src = handle_format_source(h, callback, args);
    if (src == NULL) {
        goto fail;
    }
    msg = PyUnicode_FromFormat("Exception in callback %U", src);
    if (msg == NULL) {
        goto fail;
    }
    context = Py_BuildValue("{sOsOsO}", "message", msg, "exception", exc,
                            "handle", (PyObject *)h);
    if (context == NULL) {
        goto fail;
    }
    if (h->source_traceback != NULL && PyObject_IsTrue(h->source_traceback)
        && PyDict_SetItemString(context, "source_traceback",
                                h->source_traceback) < 0) {
        goto fail;
    }
    int rc = loop_call_exception_handler(h->loop, context);
    Py_DECREF(context);
    Py_DECREF(msg);
    Py_DECREF(src);
    Py_DECREF(exc);
    return rc;
fail:
    Py_XDECREF(context);
    Py_XDECREF(msg);
    Py_XDECREF(src);
    Py_DECREF(exc);
    return -1;
}

int
handle_run(HandleObject *h)
{
    /* Own everything for the duration of the call: the callback may cancel
     * its own handle, which clears these fields. */
    PyObject *callback = h->callback, *args = h->args, *ctx = h->context;
    if (callback == NULL) {
        return 0;
    }
    Py_INCREF(callback);
    Py_INCREF(args);
    Py_INCREF(ctx);
    int rc = 0;
    PyObject *res = NULL;
    if (PyContext_Enter(ctx) == 0) {
        res = PyObject_Vectorcall(callback, &PyTuple_GET_ITEM(args, 0),
                                  PyTuple_GET_SIZE(args), NULL);
        if (PyContext_Exit(ctx) < 0) {
            Py_CLEAR(res);
        }
    }
    if (res == NULL) {
        /* asyncio formats the handle's fields at report time: a callback
         * that cancelled its own handle is reported as "None()". */
        rc = handle_cancelled(h) ? handle_report(h, Py_None, Py_None)
                                 : handle_report(h, callback, args);
    }
    else {
        Py_DECREF(res);
    }
    Py_DECREF(callback);
    Py_DECREF(args);
    Py_DECREF(ctx);
    return rc;
}

void
handle_cancel(HandleObject *h)
{
    if (handle_cancelled(h)) {
        return;
    }
    if (PyObject_TypeCheck(h, h->loop->st->TimerHandleType)) {
        TimerHandleObject *t = (TimerHandleObject *)h;
        if (el_timer_linked(&t->timer)) {
            el_heap_cancel(&h->loop->core.timers, &t->timer);
            Py_DECREF(h);   /* the heap's reference; the caller holds one */
        }
    }
    /* In debug mode keep the repr: "Executing <Handle ...> took 2.5
     * seconds" must still name the callback after it is dropped.  It is
     * taken before the callback goes, which is what marks cancellation. */
    PyObject *repr = NULL;
    if (h->loop->debug) {
        repr = handle_format(h, 1);
        if (repr == NULL) {
            PyErr_WriteUnraisable((PyObject *)h);
        }
    }
    Py_CLEAR(h->callback);
    Py_XSETREF(h->args, repr);
}

/* "<Handle cb() at f.py:1>" pieces, as asyncio's Handle._repr_info(). */
static PyObject *
handle_repr_info(HandleObject *h, int cancelled)
{
    PyObject *info = PyList_New(0);
    if (info == NULL) {
        return NULL;
    }
    PyObject *name = PyType_GetName(Py_TYPE(h));
    if (name == NULL || PyList_Append(info, name) < 0) {
        Py_XDECREF(name);
        goto fail;
    }
    Py_DECREF(name);
    if (cancelled) {
        PyObject *s = PyUnicode_FromString("cancelled");
        if (s == NULL || PyList_Append(info, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    if (h->callback != NULL) {
        PyObject *s = handle_format_source(h, h->callback, h->args);
        if (s == NULL || PyList_Append(info, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    if (h->source_traceback != NULL && PyList_Check(h->source_traceback)
        && PyList_GET_SIZE(h->source_traceback) > 0) {
        PyObject *frame = PyList_GET_ITEM(
            h->source_traceback, PyList_GET_SIZE(h->source_traceback) - 1);
        PyObject *fn = PySequence_GetItem(frame, 0);
        PyObject *ln = fn ? PySequence_GetItem(frame, 1) : NULL;
        PyObject *s = ln ? PyUnicode_FromFormat("created at %S:%S", fn, ln)
                         : NULL;
        Py_XDECREF(fn);
        Py_XDECREF(ln);
        if (s == NULL || PyList_Append(info, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    if (PyObject_TypeCheck(h, handle_state(h)->TimerHandleType)) {
        PyObject *w = timer_when((TimerHandleObject *)h);
        PyObject *s = w ? PyUnicode_FromFormat("when=%S", w) : NULL;
        Py_XDECREF(w);
        if (s == NULL || PyList_Insert(info, cancelled ? 2 : 1, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    return info;
fail:
    Py_DECREF(info);
    return NULL;
}

/* The repr; `cancelled` says to show the handle as cancelled already
 * (handle_cancel() freezes it while the callback is still there). */
PyObject *
handle_format(HandleObject *h, int cancelled)
{
    if (handle_cancelled(h) && h->args != NULL) {
        return Py_NewRef(h->args);     /* frozen when cancelled */
    }
    PyObject *info = handle_repr_info(h, cancelled || handle_cancelled(h));
    if (info == NULL) {
        return NULL;
    }
    PyObject *sep = PyUnicode_FromString(" ");
    PyObject *joined = sep ? PyUnicode_Join(sep, info) : NULL;
    Py_XDECREF(sep);
    Py_DECREF(info);
    if (joined == NULL) {
        return NULL;
    }
    PyObject *res = PyUnicode_FromFormat("<%U>", joined);
    Py_DECREF(joined);
    return res;
}

static PyObject *
Handle_repr(HandleObject *h)
{
    return handle_format(h, 0);
}

static int
Handle_traverse(HandleObject *h, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(h));
    Py_VISIT(h->callback);
    Py_VISIT(h->args);
    Py_VISIT(h->context);
    Py_VISIT(h->loop);
    Py_VISIT(h->source_traceback);
    return 0;
}

static int
TimerHandle_traverse(TimerHandleObject *t, visitproc visit, void *arg)
{
    Py_VISIT(t->when);
    return Handle_traverse(&t->base, visit, arg);
}

static int
Handle_clear(HandleObject *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
    Py_CLEAR(h->context);
    Py_CLEAR(h->loop);
    Py_CLEAR(h->source_traceback);
    return 0;
}

static int
TimerHandle_clear(TimerHandleObject *t)
{
    Py_CLEAR(t->when);
    return Handle_clear(&t->base);
}

static void
Handle_dealloc(HandleObject *h)
{
    PyTypeObject *tp = Py_TYPE(h);
    /* The loop goes last, as the module goes last in Loop_dealloc: st and
     * its freelists live in the loop's module, and at exit, once the GC
     * has cleared our types, this loop may be the module's last holder. */
    LoopObject *loop = h->loop;
    h->loop = NULL;
    eloop_state *st = loop ? loop->st : NULL;
    PyObject_GC_UnTrack(h);
    if (h->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)h);
    }
    /* A linked timer is owned by the heap, so it cannot be dying here.
     * TimerHandle is final, so the type says which fields there are; a
     * Python subclass of Handle is not kept. */
    handle_freelist *fl = NULL;
    if (st != NULL && tp == st->TimerHandleType) {
        TimerHandle_clear((TimerHandleObject *)h);
        fl = &st->timers;
    }
    else {
        Handle_clear(h);
        if (st != NULL && tp == st->HandleType) {
            fl = &st->handles;
        }
    }
    if (fl == NULL || freelist_push(fl, (PyObject *)h) < 0) {
        tp->tp_free(h);
    }
    Py_DECREF(tp);
    Py_XDECREF(loop);
}

void
handle_freelists_clear(eloop_state *st)
{
    PyObject *o;
    while ((o = freelist_pop(&st->handles)) != NULL
           || (o = freelist_pop(&st->timers)) != NULL) {
        PyObject_GC_Del(o);
    }
}

static PyObject *
Handle_cancel(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    handle_cancel(h);
    Py_RETURN_NONE;
}

static PyObject *
Handle_cancelled(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(handle_cancelled(h));
}

static PyObject *
Handle_get_context(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(h->context ? h->context : Py_None);
}

static PyObject *
Handle__run(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    if (handle_run(h) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
TimerHandle_when(TimerHandleObject *t, PyObject *Py_UNUSED(ignored))
{
    return timer_when(t);
}

static PyObject *
TimerHandle_get_when(TimerHandleObject *t, void *Py_UNUSED(c))
{
    return timer_when(t);
}

static PyObject *
Handle_get_callback(HandleObject *h, void *Py_UNUSED(c))
{
    return Py_NewRef(h->callback ? h->callback : Py_None);
}

static PyObject *
Handle_get_args(HandleObject *h, void *Py_UNUSED(c))
{
    return Py_NewRef(!handle_cancelled(h) ? h->args : Py_None);
}

static PyObject *
Handle_get_cancelled(HandleObject *h, void *Py_UNUSED(c))
{
    return PyBool_FromLong(handle_cancelled(h));
}

static PyObject *
Handle_get_source_traceback(HandleObject *h, void *Py_UNUSED(c))
{
    return Py_NewRef(h->source_traceback ? h->source_traceback : Py_None);
}

static int
Handle_set_source_traceback(HandleObject *h, PyObject *v, void *Py_UNUSED(c))
{
    Py_XSETREF(h->source_traceback, v == Py_None ? NULL : Py_XNewRef(v));
    return 0;
}

static PyObject *
TimerHandle_get_scheduled(TimerHandleObject *t, void *Py_UNUSED(c))
{
    return PyBool_FromLong(el_timer_linked(&t->timer));
}

static PyObject *
TimerHandle_richcompare(PyObject *a, PyObject *b, int op)
{
    if (Py_TYPE(b) != Py_TYPE(a)) {     /* TimerHandle is final */
        Py_RETURN_NOTIMPLEMENTED;
    }
    TimerHandleObject *x = (TimerHandleObject *)a;
    TimerHandleObject *y = (TimerHandleObject *)b;
    PyObject *res = NULL, *wx = timer_when(x), *wy = timer_when(y);
    if (wx == NULL || wy == NULL) {
        goto done;
    }
    if (op == Py_LT || op == Py_GT) {
        res = PyObject_RichCompare(wx, wy, op);
        goto done;
    }
    /* Equality, as asyncio: same deadline, callback, args and state. */
    int eq = PyObject_RichCompareBool(wx, wy, Py_EQ);
    if (eq > 0) {
        eq = handle_cancelled(&x->base) == handle_cancelled(&y->base);
    }
    if (eq > 0) {
        PyObject *cx = x->base.callback ? x->base.callback : Py_None;
        PyObject *cy = y->base.callback ? y->base.callback : Py_None;
        eq = PyObject_RichCompareBool(cx, cy, Py_EQ);
    }
    if (eq > 0) {
        PyObject *ax = handle_cancelled(&x->base) ? Py_None : x->base.args;
        PyObject *ay = handle_cancelled(&y->base) ? Py_None : y->base.args;
        eq = PyObject_RichCompareBool(ax, ay, Py_EQ);
    }
    if (eq < 0) {
        goto done;
    }
    if (op == Py_EQ || op == Py_NE) {
        res = PyBool_FromLong(op == Py_EQ ? eq : !eq);
    }
    else if (eq) {
        res = Py_NewRef(Py_True);
    }
    else {
        res = PyObject_RichCompare(wx, wy, op == Py_LE ? Py_LT : Py_GT);
    }
done:
    Py_XDECREF(wx);
    Py_XDECREF(wy);
    return res;
}

static Py_hash_t
TimerHandle_hash(TimerHandleObject *t)
{
    PyObject *w = timer_when(t);
    if (w == NULL) {
        return -1;
    }
    Py_hash_t r = PyObject_Hash(w);
    Py_DECREF(w);
    return r;
}

static PyObject *
TimerHandle_cancel(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    handle_cancel(h);
    Py_RETURN_NONE;
}

static PyMethodDef Handle_methods[] = {
    {"cancel", (PyCFunction)Handle_cancel, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)Handle_cancelled, METH_NOARGS, NULL},
    {"get_context", (PyCFunction)Handle_get_context, METH_NOARGS, NULL},
    {"_run", (PyCFunction)Handle__run, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Handle_getset[] = {
    {"_callback", (getter)Handle_get_callback, NULL, NULL, NULL},
    {"_args", (getter)Handle_get_args, NULL, NULL, NULL},
    {"_cancelled", (getter)Handle_get_cancelled, NULL, NULL, NULL},
    {"_source_traceback", (getter)Handle_get_source_traceback,
     (setter)Handle_set_source_traceback, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Handle_members[] = {
    {"_loop", EL_T_OBJECT, offsetof(HandleObject, loop), EL_READONLY, NULL},
    {"_context", EL_T_OBJECT, offsetof(HandleObject, context), EL_READONLY,
     NULL},
    {"__weaklistoffset__", EL_T_PYSSIZET,
     offsetof(HandleObject, weakreflist), EL_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Handle_slots[] = {
    {Py_tp_dealloc, Handle_dealloc},
    {Py_tp_traverse, Handle_traverse},
    {Py_tp_clear, Handle_clear},
    {Py_tp_repr, Handle_repr},
    {Py_tp_methods, Handle_methods},
    {Py_tp_getset, Handle_getset},
    {Py_tp_members, Handle_members},
    {Py_tp_doc, "A callback scheduled on an eloop Loop (asyncio.Handle)."},
    {0, NULL},
};

PyType_Spec Handle_spec = {
    .name = "eloop.Handle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Handle_slots,
};

static PyMethodDef TimerHandle_methods[] = {
    {"when", (PyCFunction)TimerHandle_when, METH_NOARGS, NULL},
    {"cancel", (PyCFunction)TimerHandle_cancel, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef TimerHandle_getset[] = {
    {"_scheduled", (getter)TimerHandle_get_scheduled, NULL, NULL, NULL},
    {"_when", (getter)TimerHandle_get_when, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};


static PyType_Slot TimerHandle_slots[] = {
    {Py_tp_dealloc, Handle_dealloc},
    {Py_tp_traverse, TimerHandle_traverse},
    {Py_tp_clear, TimerHandle_clear},
    {Py_tp_methods, TimerHandle_methods},
    {Py_tp_getset, TimerHandle_getset},
    {Py_tp_richcompare, TimerHandle_richcompare},
    {Py_tp_hash, TimerHandle_hash},
    {Py_tp_doc, "A callback scheduled for a deadline (asyncio.TimerHandle)."},
    {0, NULL},
};

PyType_Spec TimerHandle_spec = {
    .name = "eloop.TimerHandle",
    .basicsize = sizeof(TimerHandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = TimerHandle_slots,
};
