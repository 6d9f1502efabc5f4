/*
 * module.c -- the eloop._eloop extension module: module state, type
 * creation and the few module-level functions the loop hands to Python.
 *
 * Every object the binding needs from asyncio or the stdlib is imported
 * once here and kept in module state (no C globals), so the module also
 * works under multi-phase initialisation and in sub-interpreters.
 */
#include "state.h"

static PyObject *
sighandler_noop(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(args))
{
    /* Python-level handler installed by add_signal_handler(): the real
     * work happens when the wakeup fd wakes the loop. */
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"_run_until_complete_cb", (PyCFunction)eloop_run_until_complete_cb,
     METH_O, NULL},
    {"_sighandler_noop", (PyCFunction)sighandler_noop, METH_VARARGS, NULL},
    {"_handle_freelists", eloop_handle_freelists, METH_NOARGS, NULL},
    {"_after_fork_child", eloop_after_fork_child, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static eloop_state *
get_state(PyObject *mod)
{
    return (eloop_state *)PyModule_GetState(mod);
}

static struct PyModuleDef eloop_module;

PyObject *
eloop_module_of_type(PyTypeObject *tp)
{
    return PyType_GetModuleByDef(tp, &eloop_module);
}

PyObject *
eloop_call_kw(PyObject *callable, PyObject *const *args, Py_ssize_t nargs,
              const char *name, PyObject *value)
{
    PyObject *v[4];
    if (callable == NULL) {
        return NULL;
    }
    assert(nargs < (Py_ssize_t)Py_ARRAY_LENGTH(v));
    PyObject *kwnames = Py_BuildValue("(s)", name);
    if (kwnames == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        v[i] = args[i];
    }
    v[nargs] = value;
    PyObject *r = PyObject_Vectorcall(callable, v, nargs, kwnames);
    Py_DECREF(kwnames);
    return r;
}

/* *dst = modname.attr (or the module itself when attr is NULL). */
int
eloop_import_attr(PyObject **dst, const char *modname, const char *attr)
{
    PyObject *mod = PyImport_ImportModule(modname);
    if (mod == NULL) {
        return -1;
    }
    *dst = attr ? PyObject_GetAttrString(mod, attr) : Py_NewRef(mod);
    Py_DECREF(mod);
    return *dst ? 0 : -1;
}

/* Adds the methods of another file's table to the Loop type. */
static int
add_loop_methods(PyTypeObject *tp, PyMethodDef *defs)
{
    PyObject *dict = tp->tp_dict;   /* borrowed */
    for (PyMethodDef *d = defs; d->ml_name != NULL; d++) {
        PyObject *descr = PyDescr_NewMethod(tp, d);
        if (descr == NULL) {
            return -1;
        }
        int rc = PyDict_SetItemString(dict, d->ml_name, descr);
        Py_DECREF(descr);
        if (rc < 0) {
            return -1;
        }
    }
    PyType_Modified(tp);
    return 0;
}

/* 1 if the Python function f takes keyword-only arguments, 0 if not. */
static int
takes_kwonly(PyObject *f)
{
    PyObject *code = PyObject_GetAttrString(f, "__code__");
    PyObject *n = code ? PyObject_GetAttrString(code, "co_kwonlyargcount")
                       : NULL;
    long v = n ? PyLong_AsLong(n) : -1;
    Py_XDECREF(code);
    Py_XDECREF(n);
    return v < 0 ? -1 : v > 0;
}

static int
module_exec(PyObject *mod)
{
    eloop_state *st = get_state(mod);

    st->LoopType = (PyTypeObject *)PyType_FromModuleAndSpec(mod, &Loop_spec,
                                                            NULL);
    if (st->LoopType == NULL
        || add_loop_methods(st->LoopType, Loop_transport_methods) < 0
        || add_loop_methods(st->LoopType, Loop_sock_methods) < 0
        || add_loop_methods(st->LoopType, Loop_udp_methods) < 0
        || add_loop_methods(st->LoopType, Loop_child_methods) < 0
        || add_loop_methods(st->LoopType, Loop_pipe_methods) < 0
        || PyModule_AddType(mod, st->LoopType) < 0) {
        return -1;
    }
    st->HandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &Handle_spec, NULL);
    if (st->HandleType == NULL
        || PyModule_AddType(mod, st->HandleType) < 0) {
        return -1;
    }
    /* 3.9 insists on a tuple of bases. */
    PyObject *bases = PyTuple_Pack(1, (PyObject *)st->HandleType);
    if (bases == NULL) {
        return -1;
    }
    st->TimerHandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &TimerHandle_spec, bases);
    Py_DECREF(bases);
    if (st->TimerHandleType == NULL
        || PyModule_AddType(mod, st->TimerHandleType) < 0) {
        return -1;
    }

    /* Weak: a strong one would only move _asyncio's teardown, not stop
     * a late Task finalizer from reaching it. */
    PyObject *asyncio_c = PyImport_ImportModule("_asyncio");
    if (asyncio_c == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ImportError)) {
            return -1;
        }
        PyErr_Clear();      /* pure-Python asyncio: nothing to outlive */
        st->asyncio_c_wr = Py_NewRef(Py_None);
    }
    else {
        st->asyncio_c_wr = PyWeakref_NewRef(asyncio_c, NULL);
        Py_DECREF(asyncio_c);
        if (st->asyncio_c_wr == NULL) {
            return -1;
        }
    }
    if (eloop_import_attr(&st->Future, "asyncio.futures", "Future") < 0
        || eloop_import_attr(&st->Task, "asyncio.tasks", "Task") < 0
        || eloop_import_attr(&st->ensure_future, "asyncio.tasks",
                       "ensure_future") < 0
        || eloop_import_attr(&st->isfuture, "asyncio.futures",
                             "isfuture") < 0
        || eloop_import_attr(&st->wrap_future, "asyncio.futures",
                       "wrap_future") < 0
        || eloop_import_attr(&st->iscoroutine, "asyncio.coroutines",
                       "iscoroutine") < 0
        || eloop_import_attr(&st->iscoroutinefunction, "asyncio.coroutines",
                       "iscoroutinefunction") < 0
        || eloop_import_attr(&st->events, "asyncio.events", NULL) < 0
        || eloop_import_attr(&st->coroutines, "asyncio.coroutines", NULL) < 0
        || eloop_import_attr(&st->format_callback_source,
                       "asyncio.format_helpers",
                       "_format_callback_source") < 0
        || (st->format_takes_debug = takes_kwonly(
                st->format_callback_source)) < 0
        || eloop_import_attr(&st->extract_stack, "asyncio.format_helpers",
                       "extract_stack") < 0
        || eloop_import_attr(&st->format_list, "traceback", "format_list") < 0
        || eloop_import_attr(&st->logger, "asyncio.log", "logger") < 0
        || eloop_import_attr(&st->ThreadPoolExecutor, "concurrent.futures",
                       "ThreadPoolExecutor") < 0
        || eloop_import_attr(&st->WeakSet, "weakref", "WeakSet") < 0
        || eloop_import_attr(&st->sys, "sys", NULL) < 0
        || eloop_import_attr(&st->signal, "signal", NULL) < 0
        || eloop_import_attr(&st->BufferedProtocol, "asyncio.protocols",
                       "BufferedProtocol") < 0
        || eloop_import_attr(&st->TransportSocket, "asyncio.trsock",
                       "TransportSocket") < 0
        || eloop_import_attr(&st->set_result_unless_cancelled, "asyncio.futures",
                       "_set_result_unless_cancelled") < 0) {
        return -1;
    }
    st->run_until_complete_cb = PyObject_GetAttrString(
        mod, "_run_until_complete_cb");
    st->sighandler_noop = PyObject_GetAttrString(mod, "_sighandler_noop");
    st->str_call_exception_handler = PyUnicode_InternFromString(
        "call_exception_handler");
    st->str_default_exception_handler = PyUnicode_InternFromString(
        "default_exception_handler");
    st->str_time = PyUnicode_InternFromString("time");
    st->kw_loop = Py_BuildValue("(s)", "loop");
    st->kw_task = Py_BuildValue("(sss)", "loop", "name", "context");
    st->kw_context = Py_BuildValue("(s)", "context");
    st->str_data_received = PyUnicode_InternFromString("data_received");
    st->str_buffer_updated = PyUnicode_InternFromString("buffer_updated");
    st->str_get_buffer = PyUnicode_InternFromString("get_buffer");
    st->str_read_ready = PyUnicode_InternFromString("_read_ready");
    st->str_write_ready = PyUnicode_InternFromString("_write_ready");
    if (st->str_data_received == NULL || st->str_buffer_updated == NULL
        || st->str_get_buffer == NULL || st->str_read_ready == NULL
        || st->str_write_ready == NULL || transport_type_init(mod, st) < 0) {
        return -1;
    }
    if (st->kw_loop == NULL || st->kw_task == NULL || st->kw_context == NULL
        || st->run_until_complete_cb == NULL || st->sighandler_noop == NULL
        || st->str_call_exception_handler == NULL
        || st->str_default_exception_handler == NULL
        || st->str_time == NULL) {
        return -1;
    }
    if (sock_state_init(mod, st) < 0 || tls_state_init(mod, st) < 0) {
        return -1;
    }
    st->str_datagram_received = PyUnicode_InternFromString(
        "datagram_received");
    st->str_socket = PyUnicode_InternFromString("socket");
    st->str_sockname = PyUnicode_InternFromString("sockname");
    st->str_peername = PyUnicode_InternFromString("peername");
    if (st->str_datagram_received == NULL || st->str_socket == NULL
        || st->str_sockname == NULL || st->str_peername == NULL
        || udp_type_init(mod, st) < 0 || pipe_type_init(mod, st) < 0) {
        return -1;
    }
    /* A fork child gives up its copies of the loops' kernel objects
     * (loop_fork.c).  Hooks cannot be unregistered; the one registered
     * here keeps the module alive, which it is until exit anyway. */
    PyObject *os = PyImport_ImportModule("os");
    PyObject *reg = os ? PyObject_GetAttrString(os, "register_at_fork")
                       : NULL;
    PyObject *hook = reg ? PyObject_GetAttrString(mod, "_after_fork_child")
                         : NULL;
    PyObject *r = hook ? eloop_call_kw(reg, NULL, 0, "after_in_child", hook)
                       : NULL;
    Py_XDECREF(hook);
    Py_XDECREF(reg);
    Py_XDECREF(os);
    return discard(r);
}

#define STATE_FIELDS(X)                                                     \
    X(LoopType) X(HandleType) X(TimerHandleType) X(Future) X(Task)          \
    X(ensure_future) X(wrap_future) X(iscoroutine) X(iscoroutinefunction)   \
    X(events) X(coroutines) X(format_callback_source)       \
    X(extract_stack) X(format_list) X(logger) X(ThreadPoolExecutor)         \
    X(asyncio_c_wr) X(WeakSet) X(sys) X(signal) X(run_until_complete_cb)                    \
    X(sighandler_noop) X(str_call_exception_handler)                        \
    X(str_default_exception_handler) X(str_time) X(isfuture)            \
    X(kw_loop) X(kw_task) X(kw_context) X(TransportType)                    \
    X(TransportDictType)                                                    \
    X(BufferedProtocol) X(TransportSocket) X(set_result_unless_cancelled)   \
    X(str_data_received) X(str_buffer_updated) X(str_get_buffer)          \
    X(str_read_ready) X(str_write_ready) X(DatagramTransportType)          \
    X(ReadPipeType) X(WritePipeType)                                        \
    X(str_datagram_received) X(str_socket) X(str_sockname) X(str_peername)

static int
module_traverse(PyObject *mod, visitproc visit, void *arg)
{
    eloop_state *st = get_state(mod);
#define VISIT(f) Py_VISIT(st->f);
    STATE_FIELDS(VISIT)
#undef VISIT
    int rc = sock_state_traverse(st, visit, arg);
    return rc ? rc : tls_state_traverse(st, visit, arg);
}

static int
module_clear(PyObject *mod)
{
    eloop_state *st = get_state(mod);
    handle_freelists_clear(st);
#define CLEAR(f) Py_CLEAR(st->f);
    STATE_FIELDS(CLEAR)
#undef CLEAR
    sock_state_clear(st);
    tls_state_clear(st);
    return 0;
}

static void
module_free(void *mod)
{
    module_clear((PyObject *)mod);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef eloop_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "eloop._eloop",
    .m_doc = "eloop's C event loop (binding layer over the pure-C core).",
    .m_size = sizeof(eloop_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__eloop(void)
{
    return PyModuleDef_Init(&eloop_module);
}
