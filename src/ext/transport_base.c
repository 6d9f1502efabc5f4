/*
 * transport_base.c -- what every transport does the same way, stream or
 * datagram: the methods and attributes of asyncio's BaseTransport,
 * _SelectorTransport and _FlowControlMixin that only read or set the
 * fields of TransportBase (transport.h), the head of every transport's
 * struct.  Where kinds differ (how reading stops, what is buffered, how a
 * transport closes) the method asks the transport's kind (transport_kind).
 * Used by the socket and pipe transports (stream_transport.c,
 * socket_transport.c, pipe.c) and the datagram transport (udp.c).
 */
#include "transport.h"

/* ---- methods ------------------------------------------------------------ */

PyObject *
tb_is_closing(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closing);
}

PyObject *
tb_get_protocol(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self->protocol ? self->protocol : Py_None);
}

PyObject *
tb_get_extra_info(TransportBase *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "default", NULL};
    PyObject *name, *dflt = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:get_extra_info",
                                     kwlist, &name, &dflt)) {
        return NULL;
    }
    if (self->extra_lazy && PyUnicode_CheckExact(name)
        && !PyUnicode_EqualToUTF8Compat(name, "socket")
        && !PyUnicode_EqualToUTF8Compat(name, "sockname")
        && !PyUnicode_EqualToUTF8Compat(name, "peername")) {
        /* Not a key of the lazy dict: no need to build it. */
        return Py_NewRef(dflt);
    }
    PyObject *extra = tb_attr_extra(self, NULL);
    if (extra == NULL) {
        return NULL;
    }
    PyObject *v;
    if (!PyDict_CheckExact(extra)) {
        v = PyObject_CallMethod(extra, "get", "OO", name, dflt);
    }
    else {
        v = PyDict_GetItemWithError(extra, name);
        v = v ? Py_NewRef(v) : PyErr_Occurred() ? NULL : Py_NewRef(dflt);
    }
    Py_DECREF(extra);
    return v;
}

PyObject *
tb_is_reading(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!self->closing && !self->paused);
}

PyObject *
tb_pause_reading(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closing || self->paused) {
        Py_RETURN_NONE;
    }
    self->paused = 1;
    self->kind->read_pause(self);
    if (transport_debug_log(self->loop, (PyObject *)self, "%r pauses reading",
                            NULL, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
tb_resume_reading(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closing || !self->paused) {
        Py_RETURN_NONE;
    }
    self->paused = 0;
    if (self->kind->read_resume(self) < 0
        || transport_debug_log(self->loop, (PyObject *)self,
                               "%r resumes reading", NULL, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
tb_set_write_buffer_limits(TransportBase *self, PyObject *args,
                           PyObject *kwds)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *high = Py_None, *low = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds,
                                     "|OO:set_write_buffer_limits", kwlist,
                                     &high, &low)
        || transport_limits_parse(high, low, &self->high_obj, &self->low_obj,
                                  &self->high_water, &self->low_water) < 0
        || self->kind->limits_changed(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
tb_get_write_buffer_limits(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    return PyTuple_Pack(2, self->low_obj, self->high_obj);
}

PyObject *
tb_get_write_buffer_size(TransportBase *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->kind->buffer_size(self));
}

PyObject *
tb_call_connection_lost_meth(TransportBase *self, PyObject *exc)
{
    if (self->kind->connection_lost(self, exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
tb_force_close_meth(TransportBase *self, PyObject *exc)
{
    if (self->kind->force_close(self, exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
tb_fatal_error_meth(TransportBase *self, PyObject *args, PyObject *kwds)
{
    PyObject *exc;
    const char *message = "Fatal error on transport";
    if (transport_fatal_error_args(args, kwds, &exc, &message) < 0
        || self->kind->fatal_error(self, exc, message) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
transport_repr_head(TransportBase *self)
{
    PyObject *name = PyType_GetName(Py_TYPE(self));
    if (name == NULL) {
        return NULL;
    }
    const char *state = self->sock_closed ? " closed"
                        : self->closing ? " closing" : "";
    PyObject *r = PyUnicode_FromFormat("<%U%s fd=%d", name, state,
                                       self->sock_fd);
    Py_DECREF(name);
    return r;
}

PyObject *
tb_repr(TransportBase *self)
{
    PyObject *head = transport_repr_head(self);
    if (head == NULL) {
        return NULL;
    }
    PyObject *r;
    if (self->loop != NULL && !self->lost && !self->loop->closed) {
        unsigned polling = self->kind->polling(self);
        r = PyUnicode_FromFormat(
            "%U read=%s write=<%s, bufsize=%zd>>", head,
            (polling & EL_READABLE) ? "polling" : "idle",
            (polling & EL_WRITABLE) ? "polling" : "idle",
            self->kind->buffer_size(self));
    }
    else {
        r = PyUnicode_FromFormat("%U>", head);
    }
    Py_DECREF(head);
    return r;
}

/* ---- closing ------------------------------------------------------------ */

PyObject *
transport_lost_notify(TransportBase *self, PyObject *exc)
{
    PyObject *err = NULL;
    if (self->protocol_connected && self->protocol != NULL) {
        PyObject *protocol = Py_NewRef(self->protocol);
        if (discard(call_method1(protocol, "connection_lost",
                                 exc ? exc : Py_None)) < 0) {
            err = el_fetch_exc();
        }
        Py_DECREF(protocol);
    }
    return err;
}

void
transport_finally_failed(PyObject **err)
{
    /* As a raise in `finally:`: the new error wins, chained. */
    PyObject *e = el_fetch_exc();
    if (*err != NULL) {
        PyException_SetContext(e, *err);
    }
    *err = e;
}

/* ---- type slots --------------------------------------------------------- */

int
tb_dealloc_begin(TransportBase *self)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return -1;
    }
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    return 0;
}

int
transport_base_traverse(TransportBase *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->extra);
    Py_VISIT(self->loop);
    Py_VISIT(self->sock);
    Py_VISIT(self->protocol);
    Py_VISIT(self->read_handle);
    Py_VISIT(self->write_handle);
    Py_VISIT(self->high_obj);
    Py_VISIT(self->low_obj);
    return 0;
}

void
transport_base_clear(TransportBase *self)
{
    self->closing = 1;
    self->lost = 1;
    if (self->conn_lost == 0) {
        self->conn_lost = 1;
    }
    self->extra_lazy = 0;
    Py_CLEAR(self->extra);
    self->sock_closed = 1;
    Py_CLEAR(self->sock);
    Py_CLEAR(self->protocol);
    Py_CLEAR(self->read_handle);
    Py_CLEAR(self->write_handle);
    Py_CLEAR(self->high_obj);
    Py_CLEAR(self->low_obj);
}

/* Failures are unraisable, as in a __del__. */
void
tb_finalize(TransportBase *self)
{
    if (self->sock == NULL || self->sock_closed) {
        return;
    }
    PyObject *exc = el_fetch_exc();
    if (PyErr_ResourceWarning((PyObject *)self, 1, "unclosed transport %R",
                              (PyObject *)self) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    self->kind->detach(self);
    self->sock_closed = 1;
    if (discard(call_method1(self->sock, "close", NULL)) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    el_restore_exc(exc);
}

/* ---- attributes --------------------------------------------------------- */

PyObject *
tb_attr_loop(TransportBase *self, void *Py_UNUSED(c))
{
    /* asyncio sets _loop = None in _call_connection_lost(). */
    PyObject *v = self->lost ? NULL : (PyObject *)self->loop;
    return Py_NewRef(v ? v : Py_None);
}

PyObject *
tb_attr_sock(TransportBase *self, void *Py_UNUSED(c))
{
    PyObject *v = self->sock_closed ? NULL : self->sock;
    return Py_NewRef(v ? v : Py_None);
}

PyObject *
tb_attr_sock_fd(TransportBase *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->sock_fd);
}

/* BaseTransport's `_extra` slot, shadowed so that a socket's lazy dict is
 * built when it is looked at (see transport_extra). */
PyObject *
tb_attr_extra(TransportBase *self, void *Py_UNUSED(c))
{
    if (self->extra_lazy) {
        return Py_XNewRef(transport_extra((TransportObject *)self));
    }
    if (self->extra == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_extra");
        return NULL;
    }
    return Py_NewRef(self->extra);
}

int
tb_set_attr_extra(TransportBase *self, PyObject *value, void *Py_UNUSED(c))
{
    self->extra_lazy = 0;
    Py_XSETREF(self->extra, Py_XNewRef(value));
    return 0;
}

PyObject *
tb_attr_conn_lost(TransportBase *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->conn_lost);
}
