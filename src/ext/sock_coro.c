/*
 * sock_coro.c -- the coroutine object returned by the loop's sock_*(),
 * getaddrinfo() and getnameinfo() methods.
 *
 * In asyncio these methods are `async def`: calling one only binds the
 * arguments, the body runs when the coroutine is first awaited (or first
 * stepped by a Task), and create_task(loop.sock_recv(...)) is legal --
 * CPython's own test suite relies on it.  A Future would break that and
 * would start the operation too early, so the methods return this small
 * coroutine instead: it is registered as a collections.abc.Coroutine,
 * starts the operation on its first send(), returns the result at once
 * when the syscall succeeds (no future is made at all, as in asyncio),
 * and otherwise delegates to the pending future's __await__() iterator,
 * exactly as `return await fut` would.
 *
 * Like a native coroutine it cannot be awaited twice, refuses a non-None
 * first send(), and warns "coroutine ... was never awaited" when dropped
 * unstarted.
 */
#include "state.h"

#include <string.h>

#include "sock.h"

enum { CORO_CREATED, CORO_AWAITING, CORO_DONE };
enum { STEP_ERROR = -1, STEP_RETURN = 0, STEP_NEXT = 1 };

typedef struct {
    PyObject_HEAD
    LoopObject *loop;                   /* strong */
    const sk_coro_def *def;             /* static */
    PyObject *args[SK_CORO_MAXARGS];    /* strong or NULL until started */
    PyObject *it;                       /* fut.__await__() while awaiting */
    char state;                         /* CORO_* */
    char running;                       /* inside a step */
} SockCoroObject;

PyObject *
sk_coro_new(LoopObject *loop, const sk_coro_def *def, PyObject *const *v)
{
    SockCoroObject *c = PyObject_GC_New(SockCoroObject,
                                        loop->st->sk.SockCoroType);
    if (c == NULL) {
        return NULL;
    }
    c->loop = (LoopObject *)Py_NewRef((PyObject *)loop);
    c->def = def;
    for (int i = 0; i < SK_CORO_MAXARGS; i++) {
        c->args[i] = i < def->nargs ? Py_XNewRef(v[i]) : NULL;
    }
    c->it = NULL;
    c->state = CORO_CREATED;
    c->running = 0;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static void
coro_clear_args(SockCoroObject *c)
{
    for (int i = 0; i < SK_CORO_MAXARGS; i++) {
        Py_CLEAR(c->args[i]);
    }
}

/* PyIter_Send() (3.10+), spelled out for 3.9. */
static int
iter_send(PyObject *it, PyObject *value, PyObject **result)
{
#if PY_VERSION_HEX >= 0x030A0000
    PySendResult r = PyIter_Send(it, value, result);
    return r == PYGEN_RETURN ? STEP_RETURN
           : r == PYGEN_NEXT ? STEP_NEXT : STEP_ERROR;
#else
    PyObject *r;
    *result = NULL;
    if (value == Py_None && Py_TYPE(it)->tp_iternext != NULL) {
        r = Py_TYPE(it)->tp_iternext(it);
    }
    else {
        r = PyObject_CallMethod(it, "send", "(O)", value);
    }
    if (r != NULL) {
        *result = r;
        return STEP_NEXT;
    }
    if (!PyErr_Occurred()) {
        *result = Py_NewRef(Py_None);
        return STEP_RETURN;
    }
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return STEP_ERROR;
    }
    PyObject *exc = el_fetch_exc();
    *result = PyObject_GetAttrString(exc, "value");
    Py_DECREF(exc);
    return *result ? STEP_RETURN : STEP_ERROR;
#endif
}

static PyObject *
await_iter(PyObject *fut)
{
    PyAsyncMethods *am = Py_TYPE(fut)->tp_as_async;
    if (am != NULL && am->am_await != NULL) {
        return am->am_await(fut);
    }
    return PyObject_CallMethod(fut, "__await__", NULL);
}

/* One step: start the operation, or resume awaiting its future. */
static int
coro_step(SockCoroObject *c, PyObject *value, PyObject **result)
{
    *result = NULL;
    if (c->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return STEP_ERROR;
    }
    if (c->state == CORO_DONE) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot reuse already awaited coroutine");
        return STEP_ERROR;
    }
    if (c->state == CORO_CREATED) {
        if (value != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "can't send non-None value to a just-started "
                            "coroutine");
            return STEP_ERROR;
        }
        int pending = 0;
        c->state = CORO_DONE;
        c->running = 1;
        PyObject *r = c->def->start(c->loop, c->args, &pending);
        c->running = 0;
        coro_clear_args(c);
        if (r == NULL) {
            return STEP_ERROR;
        }
        if (!pending) {
            *result = r;
            return STEP_RETURN;
        }
        c->it = await_iter(r);
        Py_DECREF(r);
        if (c->it == NULL) {
            return STEP_ERROR;
        }
        c->state = CORO_AWAITING;
    }
    c->running = 1;
    int st = iter_send(c->it, value, result);
    c->running = 0;
    if (st != STEP_NEXT) {
        Py_CLEAR(c->it);
        c->state = CORO_DONE;
    }
    return st;
}

/* A step's outcome as tp_iternext / send() report it. */
static PyObject *
step_to_iter_result(int st, PyObject *result)
{
    if (st == STEP_NEXT) {
        return result;
    }
    if (st == STEP_RETURN) {
        if (result != Py_None) {
            /* StopIteration(value), even for a tuple or an exception. */
            PyObject *e = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (e != NULL) {
                PyErr_SetObject(PyExc_StopIteration, e);
                Py_DECREF(e);
            }
        }
        else {
            PyErr_SetNone(PyExc_StopIteration);
        }
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *
SockCoro_iternext(SockCoroObject *c)
{
    PyObject *result;
    int st = coro_step(c, Py_None, &result);
    if (st == STEP_RETURN && result == Py_None) {
        Py_DECREF(result);
        return NULL;    /* exhausted: StopIteration without a value */
    }
    return step_to_iter_result(st, result);
}

static PyObject *
SockCoro_send(SockCoroObject *c, PyObject *value)
{
    PyObject *result;
    int st = coro_step(c, value, &result);
    return step_to_iter_result(st, result);
}

#if PY_VERSION_HEX >= 0x030A0000
static PySendResult
SockCoro_am_send(SockCoroObject *c, PyObject *value, PyObject **result)
{
    int st = coro_step(c, value, result);
    return st == STEP_RETURN ? PYGEN_RETURN
           : st == STEP_NEXT ? PYGEN_NEXT : PYGEN_ERROR;
}
#endif

/* Raises what gen.throw(typ, val, tb) would raise into a coroutine that
 * has not started (or has finished). */
static PyObject *
raise_thrown(PyObject *typ, PyObject *val, PyObject *tb)
{
    PyObject *type, *value;
    if (tb == Py_None) {
        tb = NULL;
    }
    if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError,
                        "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionInstance_Check(typ)) {
        if (val != NULL && val != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate "
                            "value");
            return NULL;
        }
        type = Py_NewRef((PyObject *)Py_TYPE(typ));
        value = Py_NewRef(typ);
    }
    else if (PyExceptionClass_Check(typ)) {
        type = Py_NewRef(typ);
        value = Py_XNewRef(val);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving from "
                     "BaseException, not %s", Py_TYPE(typ)->tp_name);
        return NULL;
    }
    PyErr_Restore(type, value, Py_XNewRef(tb));
    return NULL;
}

static PyObject *
SockCoro_throw(SockCoroObject *c, PyObject *args)
{
    PyObject *typ, *val = NULL, *tb = NULL;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb)) {
        return NULL;
    }
    if (c->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return NULL;
    }
    if (c->state != CORO_AWAITING) {
        c->state = CORO_DONE;
        coro_clear_args(c);
        return raise_thrown(typ, val, tb);
    }
    /* Thrown in at `await fut`: the future's iterator raises it.  The
     * arguments go on as given: the 3-argument form is deprecated in
     * 3.12+ and warns even when val and tb are None. */
    PyObject *meth = PyObject_GetAttrString(c->it, "throw");
    if (meth == NULL) {
        return NULL;
    }
    c->running = 1;
    PyObject *r = PyObject_Call(meth, args, NULL);
    c->running = 0;
    Py_DECREF(meth);
    if (r == NULL) {
        Py_CLEAR(c->it);
        c->state = CORO_DONE;
    }
    return r;
}

static PyObject *
SockCoro_close(SockCoroObject *c, PyObject *Py_UNUSED(ignored))
{
    if (c->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return NULL;
    }
    /* As asyncio's coroutine closed at `await fut`: the operation itself
     * is left as it is. */
    c->state = CORO_DONE;
    Py_CLEAR(c->it);
    coro_clear_args(c);
    Py_RETURN_NONE;
}

static PyObject *
SockCoro_await(SockCoroObject *c)
{
    return Py_NewRef((PyObject *)c);
}

static PyObject *
SockCoro_get_qualname(SockCoroObject *c, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(c->def->qualname);
}

static PyObject *
SockCoro_get_name(SockCoroObject *c, void *Py_UNUSED(closure))
{
    const char *dot = strrchr(c->def->qualname, '.');
    return PyUnicode_FromString(dot ? dot + 1 : c->def->qualname);
}

static PyObject *
SockCoro_get_running(SockCoroObject *c, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(c->running);
}

static PyObject *
SockCoro_repr(SockCoroObject *c)
{
    return PyUnicode_FromFormat("<coroutine object %s at %p>",
                                c->def->qualname, (void *)c);
}

static void
SockCoro_finalize(SockCoroObject *c)
{
    if (c->state != CORO_CREATED || c->loop == NULL) {
        return;
    }
    PyObject *exc = el_fetch_exc();
    if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                         "coroutine '%s' was never awaited",
                         c->def->qualname) < 0) {
        PyErr_WriteUnraisable((PyObject *)c);
    }
    el_restore_exc(exc);
}

static int
SockCoro_traverse(SockCoroObject *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c));
    Py_VISIT(c->loop);
    Py_VISIT(c->it);
    for (int i = 0; i < SK_CORO_MAXARGS; i++) {
        Py_VISIT(c->args[i]);
    }
    return 0;
}

static int
SockCoro_clear(SockCoroObject *c)
{
    Py_CLEAR(c->loop);
    Py_CLEAR(c->it);
    coro_clear_args(c);
    return 0;
}

static void
SockCoro_dealloc(SockCoroObject *c)
{
    PyTypeObject *tp = Py_TYPE(c);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)c) < 0) {
        return;     /* resurrected */
    }
    PyObject_GC_UnTrack(c);
    SockCoro_clear(c);
    tp->tp_free(c);
    Py_DECREF(tp);
}

static PyMethodDef SockCoro_methods[] = {
    {"send", (PyCFunction)SockCoro_send, METH_O, NULL},
    {"throw", (PyCFunction)SockCoro_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)SockCoro_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef SockCoro_getset[] = {
    {"__qualname__", (getter)SockCoro_get_qualname, NULL, NULL, NULL},
    {"__name__", (getter)SockCoro_get_name, NULL, NULL, NULL},
    {"cr_running", (getter)SockCoro_get_running, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot SockCoro_slots[] = {
    {Py_am_await, SockCoro_await},
#if PY_VERSION_HEX >= 0x030A0000
    {Py_am_send, SockCoro_am_send},
#endif
    {Py_tp_iternext, SockCoro_iternext},
    {Py_tp_methods, SockCoro_methods},
    {Py_tp_getset, SockCoro_getset},
    {Py_tp_repr, SockCoro_repr},
    {Py_tp_finalize, SockCoro_finalize},
    {Py_tp_dealloc, SockCoro_dealloc},
    {Py_tp_traverse, SockCoro_traverse},
    {Py_tp_clear, SockCoro_clear},
    {0, NULL},
};

static PyType_Spec SockCoro_spec = {
    .name = "eloop._eloop._SockCoroutine",
    .basicsize = sizeof(SockCoroObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
             | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SockCoro_slots,
};

int
sock_coro_init_type(PyObject *mod, eloop_state *st)
{
    st->sk.SockCoroType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &SockCoro_spec, NULL);
    if (st->sk.SockCoroType == NULL) {
        return -1;
    }
    /* asyncio.iscoroutine() -- hence create_task() and ensure_future() --
     * accepts it through the ABC. */
    PyObject *abc = PyImport_ImportModule("collections.abc");
    PyObject *coroutine = abc ? PyObject_GetAttrString(abc, "Coroutine")
                              : NULL;
    Py_XDECREF(abc);
    PyObject *r = coroutine ? PyObject_CallMethod(coroutine, "register", "(O)",
                                        (PyObject *)st->sk.SockCoroType)
                  : NULL;
    Py_XDECREF(coroutine);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}
