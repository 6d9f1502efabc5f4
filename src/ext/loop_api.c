/*
 * loop_api.c -- the Loop methods that are not per-event work: exception
 * handling, futures and tasks, executors and the async generator hooks.
 * Each mirrors the asyncio method of the same name, messages included.
 */
#include "state.h"

/* ---- exception handling ----------------------------------------------- */

static int
is_fatal(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)
           || PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
}

/* logger.error(text, exc_info=exc_info) */
static int
log_error(LoopObject *self, PyObject *text, PyObject *exc_info)
{
    PyObject *meth = PyObject_GetAttrString(self->st->logger, "error");
    PyObject *r = eloop_call_kw(meth, &text, 1, "exc_info", exc_info);
    Py_XDECREF(meth);
    return discard(r);
}

/* logger.error(msg, exc_info=exc): the log line asyncio writes from an
 * `except` block with exc_info=True. */
static int
log_error_exc(LoopObject *self, const char *msg, PyObject *exc)
{
    PyObject *text = PyUnicode_FromString(msg);
    if (text == NULL) {
        return -1;
    }
    int rc = log_error(self, text, exc ? exc : Py_False);
    Py_DECREF(text);
    return rc;
}

static PyObject *
format_tb_value(LoopObject *self, const char *title, PyObject *value)
{
    PyObject *lines = PyObject_CallOneArg(self->st->format_list, value);
    if (lines == NULL) {
        return NULL;
    }
    PyObject *empty = PyUnicode_FromString("");
    PyObject *tb = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    if (tb == NULL) {
        return NULL;
    }
    PyObject *stripped = PyObject_CallMethod(tb, "rstrip", NULL);
    Py_DECREF(tb);
    if (stripped == NULL) {
        return NULL;
    }
    PyObject *res = PyUnicode_FromFormat("%s\n%U", title, stripped);
    Py_DECREF(stripped);
    return res;
}

/* At exit a pending Task can be finalized after the modules it needs were
 * torn down: our state cleared (m_clear in the last collections), or
 * _asyncio freed, whose Task/Future repr then calls through NULL.  asyncio's
 * own handler cannot run then either (its module globals are gone), so
 * there is nothing to report with. */
static int
asyncio_torn_down(eloop_state *st)
{
    return st->logger == NULL || st->format_list == NULL
           || (st->asyncio_c_wr != Py_None
               && el_weakref_dead(st->asyncio_c_wr));
}

PyObject *
loop_default_exception_handler(LoopObject *self, PyObject *context)
{
    PyObject *lines = NULL, *keys = NULL, *text = NULL, *sep = NULL;
    if (!PyDict_Check(context)) {
        PyErr_Format(PyExc_TypeError, "context must be a dict, not %.100s",
                     Py_TYPE(context)->tp_name);
        return NULL;
    }
    if (asyncio_torn_down(self->st)) {
        Py_RETURN_NONE;
    }
    PyObject *message = PyDict_GetItemString(context, "message"); /* borrowed */
    int has_msg = message ? PyObject_IsTrue(message) : 0;
    if (has_msg < 0) {
        return NULL;
    }
    PyObject *exception = PyDict_GetItemString(context, "exception");
    if (exception == Py_None) {
        exception = NULL;
    }
    if (PyDict_GetItemString(context, "source_traceback") == NULL
        && self->current_handle != NULL) {
        PyObject *tb = ((HandleObject *)self->current_handle)
                           ->source_traceback;
        if (tb != NULL && PyObject_IsTrue(tb)
            && PyDict_SetItemString(context, "handle_traceback", tb) < 0) {
            return NULL;
        }
    }
    lines = PyList_New(0);
    if (lines == NULL) {
        return NULL;
    }
    if (has_msg) {
        if (PyList_Append(lines, message) < 0) {
            goto fail;
        }
    }
    else {
        PyObject *m = PyUnicode_FromString(
            "Unhandled exception in event loop");
        if (m == NULL || PyList_Append(lines, m) < 0) {
            Py_XDECREF(m);
            goto fail;
        }
        Py_DECREF(m);
    }
    keys = PyDict_Keys(context);
    if (keys == NULL || PyList_Sort(keys) < 0) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (PyUnicode_Check(key)
            && (PyUnicode_EqualToUTF8Compat(key, "message")
                || PyUnicode_EqualToUTF8Compat(key, "exception"))) {
            continue;
        }
        PyObject *value = PyDict_GetItemWithError(context, key);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                goto fail;
            }
            continue;
        }
        PyObject *shown;
        if (PyUnicode_Check(key)
            && PyUnicode_EqualToUTF8Compat(key, "source_traceback")) {
            shown = format_tb_value(
                self, "Object created at (most recent call last):", value);
        }
        else if (PyUnicode_Check(key)
                 && PyUnicode_EqualToUTF8Compat(key, "handle_traceback")) {
            shown = format_tb_value(
                self, "Handle created at (most recent call last):", value);
        }
        else {
            shown = PyObject_Repr(value);
        }
        if (shown == NULL) {
            goto fail;
        }
        PyObject *line = PyUnicode_FromFormat("%S: %U", key, shown);
        Py_DECREF(shown);
        if (line == NULL || PyList_Append(lines, line) < 0) {
            Py_XDECREF(line);
            goto fail;
        }
        Py_DECREF(line);
    }
    sep = PyUnicode_FromString("\n");
    text = sep ? PyUnicode_Join(sep, lines) : NULL;
    if (text == NULL) {
        goto fail;
    }
    PyObject *exc_info;
    if (exception != NULL) {
        PyObject *tb = PyException_GetTraceback(exception);
        exc_info = PyTuple_Pack(3, (PyObject *)Py_TYPE(exception), exception,
                                tb ? tb : Py_None);
        Py_XDECREF(tb);
        if (exc_info == NULL) {
            goto fail;
        }
    }
    else {
        exc_info = Py_NewRef(Py_False);
    }
    int rc = log_error(self, text, exc_info);
    Py_DECREF(exc_info);
    if (rc < 0) {
        goto fail;
    }
    Py_DECREF(text);
    Py_DECREF(sep);
    Py_DECREF(keys);
    Py_DECREF(lines);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(text);
    Py_XDECREF(sep);
    Py_XDECREF(keys);
    Py_XDECREF(lines);
    return NULL;
}

/* call_exception_handler()'s result once the default handler returned r
 * (taken): None; or, if it raised, SystemExit and KeyboardInterrupt go
 * on and anything else is logged, as asyncio's `except BaseException:
 * logger.error(msg, exc_info=True)` does. */
static PyObject *
default_handler_done(LoopObject *self, PyObject *r, const char *msg)
{
    if (r != NULL) {
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    PyObject *exc = el_fetch_exc();
    if (is_fatal(exc)) {
        el_restore_exc(exc);
        return NULL;
    }
    int rc = log_error_exc(self, msg, exc);
    Py_DECREF(exc);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

PyObject *
loop_call_exception_handler_meth(LoopObject *self, PyObject *context)
{
    eloop_state *st = self->st;
    PyObject *r, *exc;
    if (st->str_default_exception_handler == NULL) {
        Py_RETURN_NONE;     /* our module state is cleared: exit's end */
    }
    if (self->exception_handler == NULL) {
        r = PyObject_CallMethodOneArg((PyObject *)self,
                                      st->str_default_exception_handler,
                                      context);
        return default_handler_done(self, r,
                                    "Exception in default exception handler");
    }
    PyObject *handler = Py_NewRef(self->exception_handler);
    r = PyObject_CallFunctionObjArgs(handler, (PyObject *)self, context,
                                     NULL);
    Py_DECREF(handler);
    if (r != NULL) {
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    exc = el_fetch_exc();
    if (is_fatal(exc)) {
        el_restore_exc(exc);
        return NULL;
    }
    PyObject *ctx2 = Py_BuildValue(
        "{sssOsO}", "message", "Unhandled error in exception handler",
        "exception", exc, "context", context);
    Py_DECREF(exc);
    if (ctx2 == NULL) {
        return NULL;
    }
    r = PyObject_CallMethodOneArg((PyObject *)self,
                                  st->str_default_exception_handler, ctx2);
    Py_DECREF(ctx2);
    return default_handler_done(
        self, r,
        "Exception in default exception handler while handling an "
        "unexpected error in custom exception handler");
}

int
loop_call_exception_handler(LoopObject *self, PyObject *context)
{
    PyObject *r = PyObject_CallMethodOneArg(
        (PyObject *)self, self->st->str_call_exception_handler, context);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

PyObject *
loop_set_exception_handler(LoopObject *self, PyObject *handler)
{
    if (handler != Py_None && !PyCallable_Check(handler)) {
        PyErr_Format(PyExc_TypeError,
                     "A callable object or None is expected, got %R",
                     handler);
        return NULL;
    }
    Py_XSETREF(self->exception_handler,
               handler == Py_None ? NULL : Py_NewRef(handler));
    Py_RETURN_NONE;
}

PyObject *
loop_get_exception_handler(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self->exception_handler ? self->exception_handler
                                             : Py_None);
}

/* ---- futures and tasks ----------------------------------------------------- */

static PyObject *
call_with_loop_kw(PyObject *callable, LoopObject *self, PyObject *arg0)
{
    PyObject *kwnames = self->st->kw_loop;
    PyObject *args[2] = {arg0, (PyObject *)self};
    return arg0 ? PyObject_Vectorcall(callable, args, 1, kwnames)
                : PyObject_Vectorcall(callable, args + 1, 0, kwnames);
}

PyObject *
loop_create_future(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return call_with_loop_kw(self->st->Future, self, NULL);
}

/* Python 3.14's create_task(coro, **kwargs): every keyword goes to the
 * task factory as given, or to Task() with loop=self (eager_start= among
 * them; TaskGroup.create_task() passes its keywords on the same way).
 * Always compiled so that it builds everywhere; used on 3.14 and later. */
static PyObject *
create_task_forward(LoopObject *self, PyObject *coro, PyObject *const *kwv,
                    PyObject *kwnames)
{
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *callable = self->task_factory ? self->task_factory
                                            : self->st->Task;
    PyObject *names = NULL;
    PyObject **a = PyMem_New(PyObject *, nkw + 3);
    if (a == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t npos;
    if (self->task_factory) {           /* factory(loop, coro, **kwargs) */
        a[0] = (PyObject *)self;
        a[1] = coro;
        npos = 2;
        names = Py_XNewRef(kwnames);
    }
    else {                              /* Task(coro, loop=loop, **kwargs) */
        a[0] = coro;
        a[1] = (PyObject *)self;
        npos = 1;
        names = kwnames ? PySequence_Concat(self->st->kw_loop, kwnames)
                        : Py_NewRef(self->st->kw_loop);
        if (names == NULL) {
            PyMem_Free(a);
            return NULL;
        }
    }
    Py_ssize_t nnames = names ? PyTuple_GET_SIZE(names) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        a[npos + nnames - nkw + i] = kwv[i];
    }
    Py_INCREF(callable);
    PyObject *task = PyObject_Vectorcall(callable, a, npos, names);
    Py_DECREF(callable);
    Py_XDECREF(names);
    PyMem_Free(a);
    return task;
}

PyObject *
loop_create_task(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                 PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *name = Py_None, *context = Py_None;
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "create_task() takes 1 positional argument but %zd "
                     "were given", nargs);
        return NULL;
    }
    if (PY_VERSION_HEX >= 0x030E0000) {
        return create_task_forward(self, args[0], args + nargs, kwnames);
    }
    for (Py_ssize_t i = 0; kwnames && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_EqualToUTF8Compat(k, "name")) {
            name = args[nargs + i];
        }
        else if (PyUnicode_EqualToUTF8Compat(k, "context")) {
            context = args[nargs + i];
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "create_task() got an unexpected keyword argument "
                         "'%S'", k);
            return NULL;
        }
    }
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    PyObject *task;
    if (self->task_factory == NULL) {
        PyObject *a[4] = {args[0], (PyObject *)self, name, context};
        /* Keywords that are None are left out: each one costs Task's
         * argument parser a lookup (measured with bench/callgrind.sh). */
        PyObject *kw = (name == Py_None && context == Py_None)
                           ? self->st->kw_loop : self->st->kw_task;
        return PyObject_Vectorcall(self->st->Task, a, 1, kw);
    }
    PyObject *factory = Py_NewRef(self->task_factory);
    if (context == Py_None) {
        task = PyObject_CallFunctionObjArgs(factory, (PyObject *)self,
                                            args[0], NULL);
    }
    else {
        PyObject *a[3] = {(PyObject *)self, args[0], context};
        task = PyObject_Vectorcall(factory, a, 2, self->st->kw_context);
    }
    Py_DECREF(factory);
    if (task == NULL || name == Py_None) {
        return task;
    }
    /* asyncio.tasks._set_task_name() */
    PyObject *set_name = PyObject_GetAttrString(task, "set_name");
    if (set_name == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            Py_DECREF(task);
            return NULL;
        }
        PyErr_Clear();
        if (PyErr_WarnEx(PyExc_DeprecationWarning,
                         "Task.set_name() was added in Python 3.8, the "
                         "method will be mandatory for third-party task "
                         "implementations since 3.13.", 1) < 0) {
            Py_DECREF(task);
            return NULL;
        }
        return task;
    }
    PyObject *r = PyObject_CallOneArg(set_name, name);
    Py_DECREF(set_name);
    if (r == NULL) {
        Py_DECREF(task);
        return NULL;
    }
    Py_DECREF(r);
    return task;
}

PyObject *
loop_set_task_factory(LoopObject *self, PyObject *factory)
{
    if (factory != Py_None && !PyCallable_Check(factory)) {
        PyErr_SetString(PyExc_TypeError,
                        "task factory must be a callable or None");
        return NULL;
    }
    Py_XSETREF(self->task_factory,
               factory == Py_None ? NULL : Py_NewRef(factory));
    Py_RETURN_NONE;
}

PyObject *
loop_get_task_factory(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self->task_factory ? self->task_factory : Py_None);
}

/* ---- executors ------------------------------------------------------------------ */

PyObject *
loop_run_in_executor(LoopObject *self, PyObject *const *args,
                     Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError,
                        "run_in_executor() missing required positional "
                        "arguments: 'executor' and 'func'");
        return NULL;
    }
    if (loop_check_closed(self) < 0) {
        return NULL;
    }
    if (self->debug
        && loop_check_callback(self, args[1], "run_in_executor") < 0) {
        return NULL;
    }
    PyObject *executor = args[0];
    if (executor == Py_None) {
        if (self->executor_shutdown_called) {
            PyErr_SetString(PyExc_RuntimeError,
                            "Executor shutdown has been called");
            return NULL;
        }
        if (self->default_executor == NULL) {
            PyObject *kw = Py_BuildValue("{ss}", "thread_name_prefix",
                                         "asyncio");
            PyObject *a = kw ? PyTuple_New(0) : NULL;
            self->default_executor = a ? PyObject_Call(
                self->st->ThreadPoolExecutor, a, kw) : NULL;
            Py_XDECREF(a);
            Py_XDECREF(kw);
            if (self->default_executor == NULL) {
                return NULL;
            }
        }
        executor = self->default_executor;
    }
    Py_INCREF(executor);
    PyObject *submit = PyObject_GetAttrString(executor, "submit");
    Py_DECREF(executor);
    if (submit == NULL) {
        return NULL;
    }
    PyObject *cf = PyObject_Vectorcall(submit, args + 1, nargs - 1, NULL);
    Py_DECREF(submit);
    if (cf == NULL) {
        return NULL;
    }
    PyObject *fut = call_with_loop_kw(self->st->wrap_future, self, cf);
    Py_DECREF(cf);
    return fut;
}

PyObject *
loop_set_default_executor(LoopObject *self, PyObject *executor)
{
    int ok = PyObject_IsInstance(executor, self->st->ThreadPoolExecutor);
    if (ok < 0) {
        return NULL;
    }
    if (!ok) {
        PyErr_SetString(PyExc_TypeError,
                        "executor must be ThreadPoolExecutor instance");
        return NULL;
    }
    Py_XSETREF(self->default_executor, Py_NewRef(executor));
    Py_RETURN_NONE;
}

/* ---- async generators (PEP 525) ------------------------------------------------ */

PyObject *
loop_asyncgen_firstiter_hook(LoopObject *self, PyObject *agen)
{
    if (self->asyncgens_shutdown_called) {
        PyObject *msg = PyUnicode_FromFormat(
            "asynchronous generator %R was scheduled after "
            "loop.shutdown_asyncgens() call", agen);
        if (msg == NULL) {
            return NULL;
        }
        /* warnings.warn(..., ResourceWarning, source=self) */
        PyObject *warnings = PyImport_ImportModule("warnings");
        PyObject *warn = warnings ? PyObject_GetAttrString(warnings, "warn")
                                  : NULL;
        Py_XDECREF(warnings);
        PyObject *a[2] = {msg, PyExc_ResourceWarning};
        PyObject *r = eloop_call_kw(warn, a, 2, "source", (PyObject *)self);
        Py_XDECREF(warn);
        Py_DECREF(msg);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    return PyObject_CallMethod(self->asyncgens, "add", "O", agen);
}

PyObject *
loop_asyncgen_finalizer_hook(LoopObject *self, PyObject *agen)
{
    PyObject *r = PyObject_CallMethod(self->asyncgens, "discard", "O", agen);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    if (self->closed) {
        Py_RETURN_NONE;
    }
    PyObject *create_task = PyObject_GetAttrString((PyObject *)self,
                                                   "create_task");
    PyObject *aclose = create_task ? PyObject_CallMethod(agen, "aclose",
                                                         NULL) : NULL;
    if (aclose == NULL) {
        Py_XDECREF(create_task);
        return NULL;
    }
    PyObject *a[2] = {create_task, aclose};
    PyObject *h = loop_call_soon_threadsafe(self, a, 2, NULL);
    Py_DECREF(create_task);
    Py_DECREF(aclose);
    if (h == NULL) {
        return NULL;
    }
    Py_DECREF(h);
    Py_RETURN_NONE;
}
